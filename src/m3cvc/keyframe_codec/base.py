"""Keyframe image codecs (paper II-C). CompressAI-style: ``compress`` gives real bytes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping

import numpy as np

from ..registry import Registry

Params = Mapping[str, Any]  # int | float | str | bool values, stored in the sequence header


class KeyframeCodec(ABC):
    """Codes one RGB keyframe to bytes and back.

    ``params()`` are the settings the decoder needs; they go into the stream header, and
    ``from_params`` rebuilds an equivalent decoder from them. A codec instance codes (or decodes) the
    keyframes of one stream in order, so an inter codec may predict a keyframe from the previous ones;
    ``intra=True`` asks for a keyframe that depends on no earlier one (a scene cut). Image codecs are
    always intra.
    """

    name: str = ""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Decoder-side settings (scalars only) written into the sequence header."""

    @classmethod
    @abstractmethod
    def from_params(cls, params: Params) -> "KeyframeCodec":
        """Rebuild the codec from header params (decoder side)."""

    @abstractmethod
    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False) -> bytes:
        """RGB uint8 (H, W, 3) -> bytes."""

    @abstractmethod
    def decompress(self, data: bytes, shape: tuple[int, int], text: str = "") -> np.ndarray:
        """Bytes -> RGB uint8 of ``shape`` (H, W). Raises BitstreamError on undecodable data."""


KEYFRAME_CODECS: Registry[KeyframeCodec] = Registry("keyframe codec")
