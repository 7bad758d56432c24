"""Frame writers: .y4m (uncompressed 4:4:4, 10-bit limited range BT.601: ffmpeg reads it back to the exact
RGB), anything PyAV encodes (.mp4, .mkv, ...),
and numbered PNG files (``out_%05d.png``, lossless RGB). Every file is written atomically."""

from __future__ import annotations

import contextlib
import os
import re
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Union

import numpy as np

from ..errors import InputError
from ..fileio import atomic_path, check_output_path
from .color import rgb_to_yuv444

PathLike = Union[str, "os.PathLike[str]"]


class FrameWriter(ABC):
    def __init__(self, path: Path, width: int, height: int, fps: Fraction) -> None:
        self.path, self.width, self.height, self.fps = path, width, height, fps
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} != ({self.height}, {self.width}, 3) uint8")
        self._write(frame)
        self.count += 1

    @abstractmethod
    def _write(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


class Y4MWriter(FrameWriter):
    def __init__(self, path: Path, width: int, height: int, fps: Fraction) -> None:
        super().__init__(path, width, height, fps)
        self._fh = open(path, "wb")
        self._fh.write(
            f"YUV4MPEG2 W{width} H{height} F{fps.numerator}:{fps.denominator} Ip A1:1 C444p10 "
            "XCOLORRANGE=LIMITED\n".encode("ascii")
        )

    def _write(self, frame: np.ndarray) -> None:
        self._fh.write(b"FRAME\n")
        # limited range: swscale's 10-bit limited-range 4:4:4 -> RGB inverse is exact (full range is not)
        for plane in rgb_to_yuv444(frame, full_range=False, bits=10):
            self._fh.write(plane.astype("<u2").tobytes())

    def close(self) -> None:
        self._fh.close()


class AVWriter(FrameWriter):
    """H.264 (CRF 16) in the container the extension names, VP9 (CRF 20) in WebM (what browsers play there);
    yuv444p when a side is odd."""

    def __init__(self, path: Path, width: int, height: int, fps: Fraction, fmt: str) -> None:
        import av

        super().__init__(path, width, height, fps)
        try:
            self._container = av.open(str(path), mode="w", format=fmt)
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot write video {path}: {exc}") from None
        if fmt == "webm":
            if "libvpx-vp9" not in av.codecs_available:
                self._container.close()
                raise InputError(f"cannot write {path}: this FFmpeg has no VP9 encoder for WebM; use .mp4 or .mkv")
            codec = "libvpx-vp9"
        else:
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._stream = self._container.add_stream(codec, rate=fps)
        self._stream.width, self._stream.height = width, height
        even = width % 2 == 0 and height % 2 == 0
        self._stream.pix_fmt = "yuv420p" if even else "yuv444p"
        if codec == "libx264":
            self._stream.options = {"crf": "16", "preset": "medium"}
        elif codec == "libvpx-vp9":  # constant quality; one thread and row-mt off: the same bytes on any machine
            self._stream.options = {"crf": "20", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "0"}
            self._stream.codec_context.thread_count = 1

    def _write(self, frame: np.ndarray) -> None:
        import av

        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


_AV_FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".avi": "avi", ".webm": "webm"}


def is_png_pattern(path: PathLike) -> bool:
    p = str(path)
    return p.lower().endswith(".png") and "%" in Path(p).name


@contextlib.contextmanager
def open_writer(
    path: PathLike, width: int, height: int, fps: Fraction, inputs: Iterable[PathLike] = ()
) -> Iterator[FrameWriter]:
    """Yield a writer for ``path`` (chosen by extension); the file appears only on success."""
    p = Path(path)
    suffix = p.suffix.lower()
    if is_png_pattern(p):
        with _png_writer(p, width, height, fps, inputs) as writer:
            yield writer
        return
    if suffix != ".y4m" and suffix not in _AV_FORMATS:
        raise InputError(f"unsupported output type {p.suffix or '(none)'}; use .y4m, .mp4, .mkv, .mov, .avi, .webm or a %05d.png pattern")
    with atomic_path(p, inputs) as tmp:
        writer: FrameWriter = (
            Y4MWriter(tmp, width, height, fps) if suffix == ".y4m" else AVWriter(tmp, width, height, fps, _AV_FORMATS[suffix])
        )
        try:
            yield writer
        finally:
            writer.close()


class PNGWriter(FrameWriter):
    def __init__(self, path: Path, width: int, height: int, fps: Fraction, inputs: list[Path]) -> None:
        super().__init__(path, width, height, fps)
        self.inputs = inputs
        self.written: list[Path] = []

    def _write(self, frame: np.ndarray) -> None:
        from PIL import Image

        try:
            name = str(self.path) % self.count
        except (TypeError, ValueError):
            raise InputError(f"bad PNG pattern {self.path}; use e.g. frames/out_%05d.png") from None
        with atomic_path(name, self.inputs) as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")
        self.written.append(Path(name))


_PNG_FIELD = re.compile(r"%(0?)(\d*)d")


def check_png_pattern(path: PathLike, overwrite: bool = False) -> Path:
    """A PNG output pattern with exactly one integer field (``out_%05d.png``); without ``overwrite``, no
    file it names may exist already. Raises :class:`InputError` otherwise."""
    p = Path(path)
    name = p.name.replace("%%", "")
    fields = _PNG_FIELD.findall(name)
    if len(fields) != 1 or name.count("%") != 1:
        raise InputError(f"bad PNG pattern {p.name!r}: it needs exactly one frame-number field, e.g. out_%05d.png")
    if not overwrite:
        taken = sorted(f.name for f in _pattern_matches(p))
        if taken:
            raise InputError(f"{p.parent / taken[0]} exists ({len(taken)} file(s) match {p.name}); pass --overwrite to replace them")
    return p


def _pattern_matches(p: Path) -> list[Path]:
    """The files in ``p``'s folder that the PNG pattern ``p`` names (any frame number)."""
    if not p.parent.is_dir():
        return []
    zero, width = _PNG_FIELD.findall(p.name.replace("%%", ""))[0]
    digits = rf"\d{{{int(width)},}}" if zero and width else r"-?\d+"
    regex = re.compile(re.escape(p.name.replace("%%", "%")).replace(re.escape(_PNG_FIELD.search(p.name).group(0)), digits))
    return [f for f in p.parent.iterdir() if regex.fullmatch(f.name)]


@contextlib.contextmanager
def _png_writer(p: Path, width: int, height: int, fps: Fraction, inputs: Iterable[PathLike]) -> Iterator[FrameWriter]:
    check_png_pattern(p, overwrite=True)
    check_output_path(str(p) % 0, inputs)
    writer = PNGWriter(p, width, height, fps, [Path(i) for i in inputs])
    try:
        yield writer
    except BaseException:  # the frames are one output: none of this run's stays behind
        for f in writer.written:
            with contextlib.suppress(OSError):
                f.unlink()
        raise
    written = set(writer.written)
    for f in _pattern_matches(p):  # an earlier, longer video's frames would pass for this one's (--overwrite)
        if f not in written:
            with contextlib.suppress(OSError):
                f.unlink()
