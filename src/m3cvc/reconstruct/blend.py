"""``blend``: the naive baseline, a linear cross-fade from one decoded keyframe to the next.

Frame j of a clip of ``length`` frames is ``(1 - t) * first + t * following`` with t = j / length
(rounded to the nearest integer). Prediction mode and the last clip hold the keyframe.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

import numpy as np

from ..config import ReconstructConfig
from .base import ClipReconstructor, check_clip, hold, rebuild


class BlendReconstructor(ClipReconstructor):
    name = "blend"

    @classmethod
    def from_config(cls, cfg: ReconstructConfig) -> "BlendReconstructor":
        return cls(cfg.mode)

    def params(self) -> dict[str, Any]:
        return {"mode": self.mode}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "BlendReconstructor":
        return rebuild(cls, params, cls().params())

    def reconstruct(
        self, first: np.ndarray, following: Optional[np.ndarray], length: int, text: str = "", motion: Any = None
    ) -> Iterator[np.ndarray]:
        check_clip(first, following, length)
        if self.mode == "prediction" or following is None or length <= 1:
            return hold(first, length)
        return self._fade(first, following, length)

    @staticmethod
    def _fade(first: np.ndarray, following: np.ndarray, length: int) -> Iterator[np.ndarray]:
        import cv2

        yield first
        for j in range(1, length):
            t = j / length
            yield cv2.addWeighted(first, 1 - t, following, t, 0.0)
