"""Video sources: anything ffmpeg (PyAV) decodes, raw planar .yuv, and .y4m.

A source yields ``(timestamp_seconds, RawFrame)`` pairs in display order; conversion to RGB happens
only in :meth:`RawFrame.rgb`, so frames that frame-rate resampling drops are never converted.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional, Union

import numpy as np

from ..errors import InputError
from ..fileio import check_input_file
from .color import yuv_to_rgb

PathLike = Union[str, "os.PathLike[str]"]


class RawFrame:
    """A decoded frame whose RGB conversion is deferred (and cached)."""

    __slots__ = ("_convert", "_rgb")

    def __init__(self, convert: Callable[[], np.ndarray]) -> None:
        self._convert = convert
        self._rgb: Optional[np.ndarray] = None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = np.ascontiguousarray(self._convert())
            self._convert = None  # type: ignore[assignment]  # drop the decoder's frame early
        return self._rgb


class VideoSource(ABC):
    """An opened input video."""

    def __init__(self, path: PathLike, width: int, height: int, fps: Fraction, frame_count: Optional[int]):
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.frame_count = frame_count  # None when the container does not say

    @abstractmethod
    def frames(self) -> Iterator[tuple[float, RawFrame]]:
        """Yield (time in seconds, frame) in display order."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
class AVSource(VideoSource):
    """Any container/codec that ffmpeg decodes, through PyAV (multi-threaded decoding)."""

    def __init__(self, path: PathLike) -> None:
        import av

        try:
            container = av.open(str(path))
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"cannot read {path}: not a video that ffmpeg can decode ({exc})") from None
        if not container.streams.video:
            container.close()
            raise InputError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = Fraction(rate) if rate else Fraction(25)
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            container.close()
            raise InputError(f"{path}: the video stream has no frame size")
        super().__init__(path, width, height, fps, stream.frames or None)
        self._container = container
        self._stream = stream

    def frames(self) -> Iterator[tuple[float, RawFrame]]:
        import av

        index = 0
        try:
            for frame in self._container.decode(self._stream):
                t = frame.time if frame.time is not None else float(index / self.fps)
                yield t, RawFrame(lambda f=frame: f.to_ndarray(format="rgb24"))
                index += 1
        except av.error.FFmpegError as exc:
            if index == 0:
                raise InputError(f"cannot decode {self.path}: {exc}") from None
            # a damaged tail: keep what was decoded, as players do
        if index == 0:
            raise InputError(f"{self.path} contains no decodable video frames")

    def close(self) -> None:
        self._container.close()


# --------------------------------------------------------------------------------------------
_Y4M_MAGIC = b"YUV4MPEG2"
_CHROMA = {  # y4m colourspace tag -> (horizontal, vertical) chroma subsampling, or None for mono
    "420jpeg": (2, 2), "420paldv": (2, 2), "420mpeg2": (2, 2), "420": (2, 2),
    "422": (2, 1), "444": (1, 1), "mono": None,
}


class Y4MSource(VideoSource):
    """YUV4MPEG2 with 8-bit 4:2:0 / 4:2:2 / 4:4:4 / mono (XCOLORRANGE=FULL honoured)."""

    def __init__(self, path: PathLike) -> None:
        self._fh: BinaryIO = open(path, "rb")
        header = self._fh.readline(4096)
        if not header.startswith(_Y4M_MAGIC) or not header.endswith(b"\n"):
            self._fh.close()
            raise InputError(f"{path} is not a YUV4MPEG2 file")
        tags = header.decode("ascii", "replace").split()[1:]
        width = height = 0
        fps = Fraction(25)
        chroma = "420jpeg"
        self.full_range = False
        for tag in tags:
            key, val = tag[0], tag[1:]
            try:
                if key == "W":
                    width = int(val)
                elif key == "H":
                    height = int(val)
                elif key == "F":
                    num, den = val.split(":")
                    fps = Fraction(int(num), int(den))
                elif key == "C":
                    chroma = val
                elif key == "X" and val.upper() == "COLORRANGE=FULL":
                    self.full_range = True
            except (ValueError, ZeroDivisionError):
                self._fh.close()
                raise InputError(f"{path}: bad y4m header tag {tag!r}") from None
        self.bits = 8
        m = re.fullmatch(r"(420|422|444|mono)p(9|10|12|14|16)", chroma)
        if m:
            chroma, self.bits = m.group(1), int(m.group(2))
        if chroma not in _CHROMA:
            self._fh.close()
            raise InputError(f"{path}: unsupported y4m colourspace C{chroma} (420/422/444/mono, 8-16 bit)")
        if width <= 0 or height <= 0:
            self._fh.close()
            raise InputError(f"{path}: y4m header has no valid frame size")
        self._sub = _CHROMA[chroma]
        # frames without parameters ("FRAME\n") make the count exact; otherwise it stays unknown
        super().__init__(path, width, height, fps, None)
        payload = os.fstat(self._fh.fileno()).st_size - len(header)
        per_frame = len(b"FRAME\n") + self._frame_bytes(self._plane_sizes())
        self.frame_count = payload // per_frame if payload % per_frame == 0 else None

    def _plane_sizes(self) -> list[tuple[int, int]]:
        sizes = [(self.height, self.width)]
        if self._sub is not None:
            sx, sy = self._sub
            sizes += [(-(-self.height // sy), -(-self.width // sx))] * 2
        return sizes

    def _frame_bytes(self, sizes: list[tuple[int, int]]) -> int:
        return sum(h * w for h, w in sizes) * (1 if self.bits == 8 else 2)

    def frames(self) -> Iterator[tuple[float, RawFrame]]:
        sizes = self._plane_sizes()
        frame_bytes = self._frame_bytes(sizes)
        index = 0
        while True:
            line = self._fh.readline(1024)
            if not line:
                break
            if not line.startswith(b"FRAME"):
                raise InputError(f"{self.path}: damaged y4m frame header at frame {index}")
            buf = self._fh.read(frame_bytes)
            if len(buf) < frame_bytes:
                raise InputError(f"{self.path}: truncated y4m frame {index}")
            yield index / self.fps, RawFrame(lambda b=buf: self._to_rgb(b, sizes))
            index += 1
        if index == 0:
            raise InputError(f"{self.path} contains no frames")

    def _to_rgb(self, buf: bytes, sizes: list[tuple[int, int]]) -> np.ndarray:
        arr = np.frombuffer(buf, dtype=np.uint8 if self.bits == 8 else np.dtype("<u2"))
        planes, pos = [], 0
        for h, w in sizes:
            planes.append(arr[pos : pos + h * w].reshape(h, w))
            pos += h * w
        if len(planes) == 1:
            neutral = np.full_like(planes[0], 1 << (self.bits - 1))
            planes += [neutral, neutral]
        return yuv_to_rgb(*planes, full_range=self.full_range, bits=self.bits)

    def close(self) -> None:
        self._fh.close()


class RawYUVSource(Y4MSource):
    """Headerless planar 8-bit YUV (yuv420p default, yuv422p, yuv444p), size and fps given."""

    PIX_FMTS = {"yuv420p": "420", "yuv422p": "422", "yuv444p": "444", "gray": "mono"}

    def __init__(self, path: PathLike, size: tuple[int, int], fps: float, pix_fmt: str = "yuv420p") -> None:
        if pix_fmt not in self.PIX_FMTS:
            raise InputError(f"unsupported raw pixel format {pix_fmt!r}; use one of {', '.join(self.PIX_FMTS)}")
        width, height = size
        if width <= 0 or height <= 0 or fps <= 0:
            raise InputError("raw .yuv input needs a positive --input-size WxH and --input-fps")
        self._fh = open(path, "rb")
        self.full_range = False
        self.bits = 8
        self._sub = _CHROMA[self.PIX_FMTS[pix_fmt]]
        VideoSource.__init__(self, path, width, height, Fraction(fps).limit_denominator(1001), None)
        frame_bytes = self._frame_bytes(self._plane_sizes())
        total = os.fstat(self._fh.fileno()).st_size
        if total % frame_bytes:
            self._fh.close()
            raise InputError(
                f"{path}: size {total} bytes is not a whole number of {width}x{height} {pix_fmt} frames"
            )
        self.frame_count = total // frame_bytes

    def frames(self) -> Iterator[tuple[float, RawFrame]]:
        sizes = self._plane_sizes()
        frame_bytes = self._frame_bytes(sizes)
        for index in range(self.frame_count or 0):
            buf = self._fh.read(frame_bytes)
            yield index / self.fps, RawFrame(lambda b=buf: self._to_rgb(b, sizes))


# --------------------------------------------------------------------------------------------
_SIZE_RE = re.compile(r"^(\d+)[xX](\d+)$")


def parse_size(text: str) -> tuple[int, int]:
    """'512x320' -> (512, 320)."""
    m = _SIZE_RE.match(text.strip())
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise InputError(f"invalid size {text!r}; expected WIDTHxHEIGHT, e.g. 512x320")
    return int(m.group(1)), int(m.group(2))


def open_video(
    path: PathLike,
    *,
    raw_size: Optional[tuple[int, int]] = None,
    raw_fps: Optional[float] = None,
    raw_pix_fmt: str = "yuv420p",
) -> VideoSource:
    """Open a video file; ``.yuv`` needs ``raw_size`` and ``raw_fps``."""
    p = check_input_file(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(_Y4M_MAGIC))
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    if head == _Y4M_MAGIC:
        return Y4MSource(p)
    if p.suffix.lower() == ".yuv":
        if raw_size is None or raw_fps is None:
            raise InputError(f"{p} is raw YUV: give its size and frame rate (--input-size WxH --input-fps F)")
        return RawYUVSource(p, raw_size, raw_fps, raw_pix_fmt)
    return AVSource(p)
