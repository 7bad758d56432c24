"""Keyframe selection (paper II-A): abstract bases of the semantic and motion measures and of
selectors, plus the registries that name their backends.

Motion normalisation: every motion backend returns the mean optical-flow magnitude between two
frames in *percent of the frame diagonal*. Flow is estimated at a backend-specific working
resolution, the per-pixel magnitudes (in working-resolution pixels) are averaged and divided by
the working-resolution diagonal, then multiplied by 100. A value of 5 therefore means "content
moved on average by 5 % of the diagonal" at 256x160, 512x320 or 1920x1080 alike, so ``lambda2``
and ``threshold`` keep their meaning whatever the video size or the backend's working size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Iterable, Optional

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


def working_size(
    width: int, height: int, working_width: int, multiple: int = 1, minimum: int = 1
) -> tuple[int, int]:
    """The (width, height) at which flow is computed: the frame scaled to ``working_width``
    (never upscaled beyond the frame, except to reach ``minimum``), aspect kept, each side a
    multiple of ``multiple`` and at least ``minimum``."""
    target = min(working_width, width)
    scale = target / width

    def side(value: float) -> int:
        rounded = int(value / multiple + 0.5) * multiple  # nearest multiple, halves up
        return max(rounded, minimum, multiple)

    return side(width * scale), side(height * scale)


def mean_flow_percent(flow: np.ndarray) -> float:
    """Mean magnitude of a (H, W, 2) flow field in percent of its own (H, W) diagonal."""
    height, width = flow.shape[:2]
    magnitude = np.sqrt(np.square(flow[..., 0], dtype=np.float64) + np.square(flow[..., 1]))
    return float(100.0 * magnitude.mean() / np.hypot(width, height))


@dataclass(frozen=True)
class KeyframeScore:
    """The terms of the last decision (for ``m3cvc info`` / debugging).

    ``similarity`` and ``motion`` are None where they were not computed (first frame, frames
    inside ``min_interval``, a zero weight, or a keyframe forced by ``max_interval``).
    """

    index: int
    reference: int  # index of the last keyframe the frame was compared with
    similarity: Optional[float]
    motion: Optional[float]  # percent of the frame diagonal
    distance: Optional[float]  # D = lambda1*(1 - similarity) + lambda2*motion - threshold
    keyframe: bool
    reason: str  # first | score | max_interval | min_interval | fixed | none

    # what made a keyframe (TRIGGERS): the first frame, max_interval and the fixed period are "interval";
    # a score decision is "semantic" or "motion", whichever term contributed more to D (the selector,
    # which knows its weights, sets it)
    trigger: str = "interval"


# What made each keyframe, as stored in the stream (2 bits per keyframe, m3cvc.bitstream). ``cut`` is
# reserved for a keyframe forced by the scene-cut detector where the score had not chosen one; no
# selector of this version emits it (a missed cut is coded as an IDR at the next keyframe).
TRIGGERS = ("interval", "semantic", "motion", "cut")


class KeyframeSelector(ABC):
    """Decides, frame by frame in display order, which frames become keyframes."""

    last_score: Optional[KeyframeScore] = None

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


class NoMotion(MotionBackend):
    """``none``: no motion term (semantic-only selection, the paper's lambda2 = 0 ablation)."""

    def prepare(self, frame: np.ndarray) -> None:
        return None

    def magnitude(self, previous: Any, current: Any) -> float:
        return 0.0
