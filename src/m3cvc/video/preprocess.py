"""Preprocessing (paper III-A): centre-crop to the target aspect, resize, resample the frame rate.

Frame-rate resampling is by timestamps, as ffmpeg's ``fps`` filter does it (round to nearest): each
source frame goes to output slot ``round(t * fps)`` (t from the start of the container, as ffmpeg
counts it, so a first frame at 0.2 s starts at slot 2 at 8 fps), a slot shows the latest
frame that went to it or before (so between two frames the earlier one is repeated, and of several
frames in one slot the last one is kept), and the output ends where the last frame's own duration
ends. Frames are streamed: only the latest source frame is held, and dropped frames are never
converted to RGB.
"""

from __future__ import annotations

import math
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


MIN_FPS, MAX_FPS = 0.01, 1000.0  # the frame rates a stream may have (m3cvc.bitstream checks the same)


def fps_fraction(fps: float) -> Fraction:
    """A target frame rate as an exact fraction (denominator <= 1001), in MIN_FPS..MAX_FPS."""
    if not (isinstance(fps, (int, float, Fraction)) and math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise ConfigError(f"frame rate must be a number from {MIN_FPS:g} to {MAX_FPS:g} fps, got {fps}")
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
        if cfg.keep_fps and not MIN_FPS <= source.fps <= MAX_FPS:
            raise ConfigError(f"the input's frame rate ({float(source.fps):g} fps) is outside {MIN_FPS:g}..{MAX_FPS:g}: "
                              "resample it with --fps")  # fmt: skip
        self.fps: Fraction = source.fps if cfg.keep_fps else fps_fraction(cfg.fps)
        # known or estimated from the container (for progress bars' ETA only; resampled: the same duration at
        # the new rate, which the fps conversion may miss by a frame)
        self.frame_count: Optional[int] = source.frame_count
        if not cfg.keep_fps and source.frame_count and source.fps > 0:
            self.frame_count = max(1, round(source.frame_count * self.fps / source.fps))

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
        fps = float(self.fps)
        k: Optional[int] = None  # the next output slot: the first frame's own, then on
        pending: Optional[RawFrame] = None  # the latest frame whose slot is <= k
        pending_out: Optional[np.ndarray] = None
        t_last, d_last = -np.inf, 1.0 / float(self.source.fps)
        for t, raw in self.source.frames():
            t = max(t, t_last)
            slot = _slot(t * fps)
            if k is None:
                k = first = slot
            if pending is not None:
                while k < slot:  # slots up to this frame's own show the latest earlier frame
                    if pending_out is None:
                        pending_out = self._fit(pending)
                    yield pending_out
                    k += 1
            pending, pending_out = raw, None
            t_last, d_last = t, raw.duration or d_last
        if pending is None or k is None:
            return
        end = max(_slot((t_last + d_last) * fps), first + 1)  # the last frame lasts its own duration
        while k < end:
            if pending_out is None:
                pending_out = self._fit(pending)
            yield pending_out
            k += 1


def _slot(x: float) -> int:
    """ffmpeg's rounding of a time to an output slot (to nearest, halves away from zero)."""
    return int(np.floor(x + 0.5 + _EPS))


def preprocess(source: VideoSource, cfg: PreprocessConfig) -> PreprocessedVideo:
    return PreprocessedVideo(source, cfg)
