"""``ltx``: LTX-Video's ``LTXConditionPipeline`` with keyframe conditions at frame 0 and at m.

LTX conditions on images at any frame index, so the next keyframe is placed exactly at the clip
length ``m`` (``t = 1``) and generated frames map 1:1 onto clip frames. Frame counts are
``8k + 1``, sizes multiples of 32 (``LTX-Video-0.9.5`` and later support ``LTXConditionPipeline``).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..config import LtxOptions
from .video_diffusion import VideoDiffusionReconstructor, load_pretrained


class LtxReconstructor(VideoDiffusionReconstructor):
    name = "ltx"
    options_class = LtxOptions

    def load_pipeline(self, model: str, dtype: Any) -> Any:
        from diffusers import LTXConditionPipeline

        return load_pretrained(LTXConditionPipeline, model, dtype, self.runtime.local_files_only)

    def frame_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_temporal_compression_ratio)

    def size_multiple(self, pipe: Any) -> int:
        return 32  # LTXConditionPipeline.check_inputs

    def generate(
        self,
        pipe: Any,
        first: np.ndarray,
        last: Optional[np.ndarray],
        end: int,
        text: str,
        frames: int,
        width: int,
        height: int,
        generator: Any,
    ) -> np.ndarray:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
        from PIL import Image

        conditions = [LTXVideoCondition(image=Image.fromarray(first), frame_index=0)]
        if last is not None:
            conditions.append(LTXVideoCondition(image=Image.fromarray(last), frame_index=end))
        opts = self.options
        out = pipe(
            conditions=conditions,
            prompt=text,
            negative_prompt=opts.negative_prompt,
            height=height,
            width=width,
            num_frames=frames,
            frame_rate=opts.frame_rate,
            num_inference_steps=opts.steps,
            guidance_scale=opts.guidance,
            generator=generator,
            output_type="np",
            **self.max_sequence_length(pipe),
        )
        return out.frames[0]
