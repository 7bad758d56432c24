"""``ltx``: LTX-Video's ``LTXConditionPipeline`` with keyframe conditions at frame 0 and at m.

LTX conditions on images at any frame index, so the next keyframe is placed exactly at the clip
length ``m`` (``t = 1``) and generated frames map 1:1 onto clip frames. Frame counts are
``8k + 1``, sizes multiples of 32 (``LTX-Video-0.9.5`` and later support ``LTXConditionPipeline``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import LtxOptions
from ..errors import ConfigError
from .video_diffusion import VideoDiffusionReconstructor, Window, load_pretrained

DEFAULT_FRAME_RATE = 25.0  # LTXConditionPipeline's default


class LtxReconstructor(VideoDiffusionReconstructor):
    name = "ltx"
    options_class = LtxOptions

    def check_options(self) -> None:
        if self.options.frame_rate < 0:
            raise ConfigError(f"reconstruct.ltx.frame_rate must be >= 0 (0: the video's), got {self.options.frame_rate}")

    def load_pipeline(self, model: str, dtype: Any) -> Any:
        from diffusers import LTXConditionPipeline

        return load_pretrained(LTXConditionPipeline, model, dtype, self.runtime.local_files_only, "reconstruct.ltx.model")

    def frame_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_temporal_compression_ratio)

    def size_multiple(self, pipe: Any) -> int:
        return 32  # LTXConditionPipeline.check_inputs

    def generate(self, pipe: Any, window: Window) -> np.ndarray:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
        from PIL import Image

        conditions = [LTXVideoCondition(image=Image.fromarray(window.first), frame_index=0)]
        if window.last is not None:
            conditions.append(LTXVideoCondition(image=Image.fromarray(window.last), frame_index=window.end))
        return self.call_pipeline(pipe, window, conditions=conditions, frame_rate=self.frame_rate())

    def frame_rate(self) -> float:
        """LTX's frame-rate conditioning: the option if set, else the video's frame rate (frame i
        of a window is clip frame i), else LTX's own default of 25."""
        return float(self.options.frame_rate or self.video_fps or DEFAULT_FRAME_RATE)
