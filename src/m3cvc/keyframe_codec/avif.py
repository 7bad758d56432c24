"""Lite keyframe codec: AVIF (AV1 intra) through Pillow, at a quality setting."""

from __future__ import annotations

import io
from typing import Any, Mapping

import numpy as np

from ..config import AvifOptions
from ..errors import BitstreamError, ConfigError
from .base import KeyframeCodec

_SUBSAMPLINGS = ("4:2:0", "4:2:2", "4:4:4")


class AvifCodec(KeyframeCodec):
    name = "avif"

    def __init__(self, quality: int = 30, speed: int = 6, subsampling: str = "4:2:0") -> None:
        if not 0 <= quality <= 100:
            raise ConfigError(f"AVIF quality must be in 0..100, got {quality}")
        if not 0 <= speed <= 10:
            raise ConfigError(f"AVIF speed must be in 0..10, got {speed}")
        if subsampling not in _SUBSAMPLINGS:
            raise ConfigError(f"AVIF subsampling must be one of {', '.join(_SUBSAMPLINGS)}, got {subsampling!r}")
        from PIL import features

        if not features.check("avif"):
            raise ConfigError("this Pillow has no AVIF support; install Pillow >= 11.3")
        self.quality, self.speed, self.subsampling = quality, speed, subsampling

    @classmethod
    def from_options(cls, opts: AvifOptions) -> "AvifCodec":
        return cls(opts.quality, opts.speed, opts.subsampling)

    def params(self) -> dict[str, Any]:
        # AVIF is self-describing: the decoder needs no setting. Quality is kept for `m3cvc info`.
        return {"quality": self.quality}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "AvifCodec":
        """Decoder side: AVIF images describe themselves, so quality only informs ``info``; an unknown key or
        an invalid value still means a damaged or foreign header (BitstreamError)."""
        from ..errors import BitstreamError
        from ..registry import read_params

        values = read_params("avif keyframe codec", params, {"quality": 30})
        try:
            return cls(quality=values["quality"])
        except ConfigError as exc:
            raise BitstreamError(f"avif keyframe codec: invalid parameters in the stream header ({exc})") from None

    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(frame).save(
            buf, format="AVIF", quality=self.quality, speed=self.speed, subsampling=self.subsampling
        )
        return buf.getvalue()

    def decompress(self, data: bytes, shape: tuple[int, int], text: str = "") -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data), formats=["AVIF"]) as img:
                if img.size != (shape[1], shape[0]):  # checked before the pixels are decoded
                    raise BitstreamError(f"keyframe image is {img.size[0]}x{img.size[1]}, header says {shape[1]}x{shape[0]}")
                rgb = np.asarray(img.convert("RGB"))
        except BitstreamError:
            raise
        except Exception as exc:  # Pillow raises many types on damaged data
            raise BitstreamError(f"keyframe image cannot be decoded ({type(exc).__name__})") from None
        if rgb.shape[:2] != tuple(shape):
            raise BitstreamError(f"keyframe image is {rgb.shape[1]}x{rgb.shape[0]}, header says {shape[1]}x{shape[0]}")
        return np.ascontiguousarray(rgb)
