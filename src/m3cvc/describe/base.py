"""Text channel (paper II-B): a describer turns keyframes and clips into text."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional, Sequence

import numpy as np

from ..registry import Registry


class Describer(ABC):
    """Produces D_i^F for each keyframe and D_i^C for each clip, in order."""

    @abstractmethod
    def describe_keyframe(
        self, index: int, frame: np.ndarray, previous: Optional[np.ndarray]
    ) -> str:
        """Keyframe ``index`` (0-based among keyframes); ``previous`` is the previous keyframe."""

    @abstractmethod
    def describe_clip(self, index: int, frames: Sequence[np.ndarray], keyframe_text: str) -> str:
        """Clip ``index`` from (a sample of) its frames and its keyframe's description."""

    def close(self) -> None:
        """Release models / connections."""


DESCRIBERS: Registry[Describer] = Registry("describer")
