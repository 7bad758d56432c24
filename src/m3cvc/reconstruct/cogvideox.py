"""``cogvideox``: ``CogVideoXImageToVideoPipeline`` (prediction only: it has no end-frame input).

CogVideoX 1.0 generates one fixed shape (``THUDM/CogVideoX-5b-I2V``: 49 frames at 720x480, its
transformer's ``sample_frames`` / ``sample_height`` / ``sample_width``); the clip takes the first
frames of each window (1:1) and longer clips chain windows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import CogVideoXOptions
from ..errors import ConfigError
from .video_diffusion import VideoDiffusionReconstructor, Window, load_pretrained


class CogVideoXReconstructor(VideoDiffusionReconstructor):
    name = "cogvideox"
    options_class = CogVideoXOptions
    supports_interpolation = False

    def load_pipeline(self, model: str, dtype: Any) -> Any:
        from diffusers import CogVideoXImageToVideoPipeline

        return load_pretrained(CogVideoXImageToVideoPipeline, model, dtype, self.runtime.local_files_only, "reconstruct.cogvideox.model")

    def frame_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor_temporal)

    def window_frames(self, pipe: Any, cover: int) -> int:
        return self.options.num_frames or int(pipe.transformer.config.sample_frames)

    def max_cover(self, pipe: Any) -> int:
        frames = self.window_frames(pipe, 0)
        if frames < 2 or (frames - 1) % self.frame_multiple(pipe):
            raise ConfigError(
                f"reconstruct.cogvideox.num_frames must be k*{self.frame_multiple(pipe)}+1 (got {frames})"
            )
        return frames - 1

    def generation_size(self, pipe: Any, width: int, height: int) -> tuple[int, int]:
        opts = self.options
        if opts.width > 0 and opts.height > 0:
            return opts.width, opts.height
        config, scale = pipe.transformer.config, int(pipe.vae_scale_factor_spatial)
        return int(config.sample_width) * scale, int(config.sample_height) * scale

    def max_sequence_length(self, pipe: Any) -> dict[str, Any]:
        n = self.runtime.max_sequence_length or int(pipe.transformer.config.max_text_seq_length)
        return {"max_sequence_length": n}

    def generate(self, pipe: Any, window: Window) -> np.ndarray:
        from PIL import Image

        return self.call_pipeline(pipe, window, image=Image.fromarray(window.first))
