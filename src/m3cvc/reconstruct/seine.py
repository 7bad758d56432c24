"""``seine``: SEINE (Chen et al., ICLR 2024), the paper's clip reconstruction model (paper II-D).

SEINE generates 16-frame windows by masked video diffusion on Stable Diffusion v1.4: prediction
conditions frame 0 on the keyframe (official mask ``first1``), interpolation also puts the next
keyframe on the last frame (``onelast1``). So, as for Wan's ``last_image``, an interpolated window
is stretched over the clip (clip frame ``i`` read at generated position ``i * 15 / m``, blending
neighbours), a predicted one maps 1:1 (clips longer than 15 frames are chained windows; only the
last one of an interpolated clip sees the next keyframe). Sizes are multiples of 8 within
``max_area`` (at most 512x512 pixels; 512x320 clips generate at 512x320, SEINE's training size).

The model: :mod:`m3cvc.reconstruct.seine_unet` (our implementation of the official UNet, loading
the released ``seine.pt`` strictly) and :mod:`m3cvc.reconstruct.seine_pipeline` (conditioning and
the official DDPM / DDIM samplers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import SEINE_SAMPLERS as SAMPLERS
from ..config import SeineOptions
from ..errors import ConfigError
from .video_diffusion import VideoDiffusionReconstructor, Window, bounded_size

# bounds on what a config or a crafted stream header can ask of the decoder (official: 250 steps of
# 16 frames at 512x320; the worst allowed window costs about 13x that), tighter than the shared ones
# of video_diffusion (steps 1..1000, SEINE's training steps; guidance 0..100)
MAX_FRAMES = 32  # per window (SEINE is trained on 16; its relative position bias saturates at 32)
MAX_SIDE = 1024
MAX_AREA = 512 * 512  # the paper: "output resolution up to 512 x 512"
SIZE_MULTIPLE = 8  # Stable Diffusion's VAE


class SeineReconstructor(VideoDiffusionReconstructor):
    name = "seine"
    options_class = SeineOptions

    def check_options(self) -> None:
        o = self.options
        if not 2 <= o.num_frames <= MAX_FRAMES:
            raise ConfigError(f"reconstruct.seine.num_frames must be in 2..{MAX_FRAMES} (got {o.num_frames})")
        if not 0 < o.max_area <= MAX_AREA:
            raise ConfigError(f"reconstruct.seine.max_area must be in 1..{MAX_AREA} pixels (got {o.max_area})")
        if (o.width, o.height) != (0, 0):
            if not (0 < o.width <= MAX_SIDE and 0 < o.height <= MAX_SIDE and o.width * o.height <= MAX_AREA
                    and o.width % SIZE_MULTIPLE == 0 and o.height % SIZE_MULTIPLE == 0):
                raise ConfigError(
                    f"reconstruct.seine.width/height must both be 0 (the clip's size within max_area) or multiples "
                    f"of {SIZE_MULTIPLE} up to {MAX_SIDE} a side and {MAX_AREA} pixels (got {o.width}x{o.height})")
        if not o.model:
            raise ConfigError("reconstruct.seine.model is empty: set it to seine.pt, a folder holding it, or a hub id")
        if o.sampler not in SAMPLERS:
            raise ConfigError(f"reconstruct.seine.sampler must be one of {', '.join(SAMPLERS)} (got {o.sampler!r})")
        if not o.base:
            raise ConfigError("reconstruct.seine.base is empty: set it to Stable Diffusion v1.4 (a folder or hub id)")
        for key, value in (("model", o.model), ("base", o.base)):
            if "://" in value:
                raise ConfigError(f"reconstruct.seine.{key} is a URL ({value}); m3cvc does not download files: set a "
                                  "local path or a hub id")

    def params(self) -> dict[str, Any]:
        from ..hub import stored_model_path

        out = super().params()
        out["model"], out["base"] = stored_model_path(out["model"]), stored_model_path(out["base"])
        return out

    def load_pipeline(self, model: str, dtype: Any) -> Any:
        from .seine_pipeline import SeinePipeline

        return SeinePipeline.from_checkpoint(model, self.options.base, dtype, self.runtime.local_files_only)

    def frame_multiple(self, pipe: Any) -> int:
        return 1  # any frame count; the window is num_frames

    def size_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor)

    def generation_size(self, pipe: Any, width: int, height: int) -> tuple[int, int]:
        """As the base, with SEINE's tighter side and area limits (also for automatic sizes)."""
        size = super().generation_size(pipe, width, height)
        return bounded_size(*size, self.size_multiple(pipe), min(self.options.max_area, MAX_AREA), MAX_SIDE)

    def end_position(self, frames: int, cover: int, has_end: bool) -> int:
        return frames - 1 if has_end else cover  # onelast1: the next keyframe is the last generated frame

    def generate(self, pipe: Any, window: Window) -> np.ndarray:
        o = self.options
        out = pipe(image=window.first, last_image=window.last, prompt=window.text, negative_prompt=o.negative_prompt,
                   num_frames=window.frames, num_inference_steps=o.steps, guidance_scale=o.guidance,
                   generator=window.generator, sampler=o.sampler)
        return out.frames[0]
