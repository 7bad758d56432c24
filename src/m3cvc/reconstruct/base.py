"""Clip reconstruction (paper II-D): keyframe(s) + clip text -> the clip's frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator, Mapping, Optional

import numpy as np

from ..registry import Registry

MODES = ("interpolation", "prediction")


class ClipReconstructor(ABC):
    """Rebuilds clip frames between decoded keyframes.

    A clip of ``length`` frames starts at its keyframe (frame 0, at t = 0). In interpolation mode
    the next keyframe sits at t = 1, i.e. just after the clip's last frame; in prediction mode (or
    for the video's last clip when no next keyframe exists) only the first keyframe is used.
    """

    name: str = ""
    # True where :meth:`reconstruct` may run for several clips at once on threads (each clip depends only on
    # its arguments, and the object keeps no per-clip state shared between threads): the decoder then
    # reconstructs the next clips while the current one is being consumed
    independent_clips: bool = False

    def __init__(self, mode: str = "interpolation") -> None:
        if mode not in MODES:
            from ..errors import ConfigError

            raise ConfigError(f"unknown reconstruction mode {mode!r}; choose one of: {', '.join(MODES)}")
        self.mode = mode
        self.video_fps: Optional[float] = None  # set by the decoder from the stream header

    def set_video_fps(self, fps: Any) -> None:
        """The decoded video's frame rate (the decoder calls this before the first clip); backends
        that condition on a frame rate use it, the others ignore it."""
        self.video_fps = float(fps)

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Decoder settings (scalars), stored in the sequence header; must include ``mode``."""

    @classmethod
    @abstractmethod
    def from_params(cls, params: Mapping[str, Any]) -> "ClipReconstructor":
        """Rebuild from header params."""

    @abstractmethod
    def reconstruct(
        self, first: np.ndarray, following: Optional[np.ndarray], length: int, text: str = "", motion: Any = None
    ) -> Iterator[np.ndarray]:
        """Yield exactly ``length`` RGB uint8 frames; the first is ``first`` (the keyframe).

        ``motion`` is the clip's :class:`~m3cvc.reconstruct.motion.ClipMotion` when the stream
        carries motion hints (only for backends whose :meth:`motion_estimator` made them), else None.
        """

    def motion_estimator(self) -> Any:
        """Encoder side: a :class:`~m3cvc.reconstruct.motion.MotionHintEstimator` when this backend
        wants motion hints in the stream, else None (the default)."""
        return None

    def hint_trial(self) -> Any:
        """Encoder side: an object whose ``small(frame)`` and ``tried(first, following, frames, motion)`` decide
        per clip whether its hints are worth sending and what else to send with them
        (:class:`~m3cvc.reconstruct.flow.HintTrial`), else None (the default: every clip keeps its hints)."""
        return None


RECONSTRUCTORS: Registry[ClipReconstructor] = Registry("clip reconstructor")


# --------------------------------------------------------------------------------------------
# helpers shared by the weight-free backends
def check_clip(first: np.ndarray, following: Optional[np.ndarray], length: int) -> None:
    """Programming errors (not user errors): wrong frame types/shapes or a negative length."""
    if length < 0:
        raise ValueError(f"clip length must be >= 0, got {length}")
    if first.dtype != np.uint8 or first.ndim != 3 or first.shape[2] != 3:
        raise ValueError(f"keyframe must be RGB uint8 (H, W, 3), got {first.shape} {first.dtype}")
    if following is not None and (following.shape != first.shape or following.dtype != np.uint8):
        raise ValueError(f"next keyframe is {following.shape} {following.dtype}, first is {first.shape}")


def hold(first: np.ndarray, length: int) -> Iterator[np.ndarray]:
    """The keyframe repeated: frame 0 is ``first`` itself, later frames are copies of it."""
    for j in range(length):
        yield first if j == 0 else first.copy()


def read_params(backend: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Header ``params`` over ``defaults``; unknown keys or wrongly typed values raise BitstreamError."""
    from ..registry import read_params as read

    return read(f"{backend} reconstructor", params, defaults)


def rebuild(cls: Any, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
    """``cls(**header params)``; invalid stored settings raise BitstreamError (the stream is bad)."""
    from ..errors import BitstreamError, ConfigError

    values = read_params(cls.name, params, defaults)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise BitstreamError(f"{cls.name} reconstructor: invalid parameters in the stream header ({exc})") from None
