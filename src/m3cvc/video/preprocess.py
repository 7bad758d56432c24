"""Preprocessing (paper III-A): centre-crop to the target aspect, resize, resample the frame rate.

Frame-rate resampling is by timestamps: output frame k (time k / fps) is the source frame whose
timestamp is nearest to it (ties go to the earlier frame), over the source's duration (last
timestamp + one source frame period). Frames are streamed: only the current and the previous
source frame are held, and dropped frames are never converted to RGB.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterator, Optional

import cv2
import numpy as np

from ..config import PreprocessConfig
from ..errors import ConfigError, InputError
from .sources import RawFrame, VideoSource

_EPS = 1e-6


def crop_box(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the largest centred crop of the source with the target's aspect ratio."""
    if src_w * dst_h > dst_w * src_h:  # source is wider: crop columns
        w = max(1, round(src_h * dst_w / dst_h))
        return (src_w - w) // 2, 0, w, src_h
    h = max(1, round(src_w * dst_h / dst_w))
    return 0, (src_h - h) // 2, src_w, h


def fit_frame(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop ``rgb`` to width:height and resize it to exactly (height, width)."""
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    x, y, cw, ch = crop_box(w, h, width, height)
    crop = rgb[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if cw >= width and ch >= height else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(crop, (width, height), interpolation=interp))


def fps_fraction(fps: float) -> Fraction:
    if not fps > 0:
        raise ConfigError(f"frame rate must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


class PreprocessedVideo:
    """Iterable of the exact RGB frames the encoder sees, with their size and frame rate."""

    def __init__(self, source: VideoSource, cfg: PreprocessConfig) -> None:
        if not cfg.keep_size and (cfg.width <= 0 or cfg.height <= 0):
            raise ConfigError(f"target size must be positive, got {cfg.width}x{cfg.height}")
        if not cfg.keep_size and (cfg.width > 16384 or cfg.height > 16384):
            raise ConfigError(f"target size {cfg.width}x{cfg.height} is too large (max 16384)")
        self.source = source
        self.cfg = cfg
        self.width = source.width if cfg.keep_size else cfg.width
        self.height = source.height if cfg.keep_size else cfg.height
        self.fps: Fraction = source.fps if cfg.keep_fps else fps_fraction(cfg.fps)
        self.frame_count: Optional[int] = source.frame_count if cfg.keep_fps else None

    def _fit(self, raw: RawFrame) -> np.ndarray:
        rgb = raw.rgb()
        if rgb.shape[:2] != (self.source.height, self.source.width) and self.cfg.keep_size:
            raise InputError(f"{self.source.path}: frame size changes mid-stream; use --size")
        return rgb if self.cfg.keep_size else fit_frame(rgb, self.width, self.height)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.cfg.keep_fps:
            for _, raw in self.source.frames():
                yield self._fit(raw)
            return
        period = 1.0 / float(self.fps)
        k = 0
        prev: Optional[tuple[float, RawFrame]] = None
        prev_out: Optional[np.ndarray] = None
        t0: Optional[float] = None
        for t, raw in self.source.frames():
            if t0 is None:
                t0 = t
            t = t - t0
            if prev is not None:
                t = max(t, prev[0])
                midpoint = (prev[0] + t) / 2.0
                while k * period <= midpoint + _EPS:
                    if prev_out is None:
                        prev_out = self._fit(prev[1])
                    yield prev_out
                    k += 1
            prev, prev_out = (t, raw), None
        if prev is None:
            return
        end = prev[0] + 1.0 / float(self.source.fps)
        while k * period < end - _EPS:
            if prev_out is None:
                prev_out = self._fit(prev[1])
            yield prev_out
            k += 1


def preprocess(source: VideoSource, cfg: PreprocessConfig) -> PreprocessedVideo:
    return PreprocessedVideo(source, cfg)
