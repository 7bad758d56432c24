"""Keyframe selection (paper II-A): abstract bases of the semantic and motion measures and of
selectors, plus the registries that name their backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable

import numpy as np

from ..registry import Registry


class SemanticBackend(ABC):
    """Maps a frame to a global descriptor; similarity is the cosine of two descriptors."""

    @abstractmethod
    def embed(self, frame: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> 1-D float descriptor."""

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
        if na == 0.0 or nb == 0.0:
            return 1.0 if na == nb else 0.0
        return float(np.dot(a, b) / (na * nb))


class MotionBackend(ABC):
    """Optical-flow motion magnitude between two frames, in percent of the frame diagonal."""

    def prepare(self, frame: np.ndarray) -> Any:
        """Per-frame work that can be cached for the last keyframe (default: the frame itself)."""
        return frame

    @abstractmethod
    def magnitude(self, previous: Any, current: Any) -> float:
        """Mean flow magnitude from ``previous`` to ``current`` (both from :meth:`prepare`)."""


class KeyframeSelector(ABC):
    """Decides, frame by frame in display order, which frames become keyframes."""

    @abstractmethod
    def reset(self) -> None:
        """Forget all state (start of a new video)."""

    @abstractmethod
    def is_keyframe(self, index: int, frame: np.ndarray) -> bool:
        """Called once per frame, in order, starting at index 0 (always a keyframe)."""

    def select(self, frames: Iterable[np.ndarray]) -> list[int]:
        self.reset()
        return [i for i, frame in enumerate(frames) if self.is_keyframe(i, frame)]


SEMANTIC_BACKENDS: Registry[SemanticBackend] = Registry("semantic")
MOTION_BACKENDS: Registry[MotionBackend] = Registry("motion")
SELECTORS: Registry[KeyframeSelector] = Registry("keyframe selector")
