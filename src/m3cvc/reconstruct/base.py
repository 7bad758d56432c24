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

    def __init__(self, mode: str = "interpolation") -> None:
        if mode not in MODES:
            from ..errors import ConfigError

            raise ConfigError(f"unknown reconstruction mode {mode!r}; choose one of: {', '.join(MODES)}")
        self.mode = mode

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Decoder settings (scalars), stored in the sequence header; must include ``mode``."""

    @classmethod
    @abstractmethod
    def from_params(cls, params: Mapping[str, Any]) -> "ClipReconstructor":
        """Rebuild from header params."""

    @abstractmethod
    def reconstruct(
        self, first: np.ndarray, following: Optional[np.ndarray], length: int, text: str = ""
    ) -> Iterator[np.ndarray]:
        """Yield exactly ``length`` RGB uint8 frames; the first is ``first`` (the keyframe)."""


RECONSTRUCTORS: Registry[ClipReconstructor] = Registry("clip reconstructor")
