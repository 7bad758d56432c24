"""``wan``: Wan 2.x ``WanImageToVideoPipeline``; ``last_image`` = next keyframe for interpolation.

Interpolation uses a first-last-frame model (``Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers``), prediction
an image-to-video model (``Wan-AI/Wan2.1-I2V-14B-480P-Diffusers``). ``last_image`` is always the last
generated frame, so an interpolated window of N frames is stretched over the clip (generated frame
``i * (N - 1) / m`` for clip frame ``i``); frame counts are ``4k + 1``, sizes multiples of 16.

Wan 2.1 FLF2V's transformer expects CLIP tokens of two images. In a window without a next keyframe
(an earlier window of a chained long clip, or a clip with no following keyframe) the start image
stands in for the unknown end in the CLIP context, while the latent condition holds only the start.
(The pipeline refuses ``image_embeds`` together with ``image``, so this wraps its ``encode_image``
for the duration of the call.)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from ..config import WanOptions
from .video_diffusion import VideoDiffusionReconstructor, Window, load_pretrained


class WanReconstructor(VideoDiffusionReconstructor):
    name = "wan"
    options_class = WanOptions

    @property
    def model(self) -> str:
        return self.options.model if self.mode == "interpolation" else self.options.prediction_model

    def params(self) -> dict[str, Any]:
        out = super().params()  # "model" is the one this mode uses
        del out["prediction_model"]
        return out

    @classmethod
    def _stored_options(cls, options: Any, params: Any) -> Any:
        from dataclasses import replace

        model = params.get("model", options.model)
        return replace(options, model=model, prediction_model=model)

    def load_pipeline(self, model: str, dtype: Any) -> Any:
        import torch
        from diffusers import WanImageToVideoPipeline

        if dtype != torch.float32:  # Wan's VAE and CLIP image encoder are meant to run in float32
            dtype = {"default": dtype, "vae": torch.float32, "image_encoder": torch.float32}
        return load_pretrained(WanImageToVideoPipeline, model, dtype, self.runtime.local_files_only, "reconstruct.wan.model")

    def frame_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor_temporal)

    def size_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor_spatial) * int(pipe.transformer.config.patch_size[1])

    def end_position(self, frames: int, cover: int, has_end: bool) -> int:
        return frames - 1 if has_end else cover

    @staticmethod
    def _needs_two_images(pipe: Any) -> bool:
        config = pipe.transformer.config
        return getattr(pipe, "image_encoder", None) is not None and bool(config.get("pos_embed_seq_len"))

    def generate(self, pipe: Any, window: Window) -> np.ndarray:
        from PIL import Image

        image = Image.fromarray(window.first)
        if window.last is not None:
            return self.call_pipeline(pipe, window, image=image, last_image=Image.fromarray(window.last))
        with _start_as_end_in_clip_context(pipe, enabled=self._needs_two_images(pipe)):
            return self.call_pipeline(pipe, window, image=image)


@contextmanager
def _start_as_end_in_clip_context(pipe: Any, enabled: bool) -> Iterator[None]:
    """While active, ``pipe.encode_image(image)`` encodes ``[image, image]`` (FLF2V's two slots)."""
    if not enabled:
        yield
        return
    original = pipe.encode_image

    def encode_pair(image: Any, device: Any = None) -> Any:
        return original(image if isinstance(image, list) else [image, image], device)

    pipe.encode_image = encode_pair
    try:
        yield
    finally:
        del pipe.encode_image  # back to the class's method
