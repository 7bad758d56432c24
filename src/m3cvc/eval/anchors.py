"""Traditional-codec anchors through the ffmpeg that imageio-ffmpeg bundles.

Every anchor reads the same 8-bit 4:2:0 .y4m file, made once per clip from the preprocessed RGB frames
with m3cvc's own BT.601 limited-range conversion (2x2 chroma averaging), and writes a raw elementary
stream (.264 / .265 / .266, no container) whose size in bytes gives the bpp. The stream is decoded with
PyAV and converted back to RGB with the inverse of that conversion, so metrics are computed on RGB in
Python for every codec alike.

- ``x264``: libx264 ``-preset veryslow``, constant QP (``-qp``), default GOP (one IDR for short clips).
- ``x265``: libx265 ``-preset veryslow``, constant QP (``qp=`` in x265-params).

x264 and x265 write their full settings string into an SEI message (about 0.6 kB and 2.3 kB); it is
metadata, not video, and at ultra-low rates it would be a large share of the stream, so it is left out
(x264: ``filter_units`` bitstream filter drops SEI NAL units; x265: ``info=0``). The library versions
come from a separate 2-frame probe encode instead.
- ``vvc``: libvvenc low delay (``PicReordering=0``, GOP 8, ``IntraPeriod=-1``: only the first frame is
  intra, ``DecodingRefreshType=0``), 10-bit (yuv420p10le, libvvenc's only input format), preset
  ``medium`` by default (``--vvc-preset``), QP 63, 58, 53, 48, 43 as in the paper. The paper used
  VTM-17.0 low-delay P; vvenc's low-delay mode codes B slices with past references only.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import BackendError, InputError
from ..video.ffmpeg import ffmpeg_exe, ffmpeg_version
from .codecs import Clip, CodedVideo, EvalCodec, RatePoint

_LIBRARY_VERSION: dict[str, str] = {}


def write_y4m_420(clip: Clip) -> Path:
    """The clip as 8-bit 4:2:0 .y4m (made once per clip and reused by every anchor)."""
    from ..fileio import atomic_path
    from ..video.color import rgb_to_yuv420

    path = clip.workdir / "source_420p.y4m"
    if path.is_file():
        return path
    if clip.width % 2 or clip.height % 2:
        raise InputError(f"{clip.name}: the anchors need an even frame size, got {clip.width}x{clip.height}")
    clip.workdir.mkdir(parents=True, exist_ok=True)
    header = (
        f"YUV4MPEG2 W{clip.width} H{clip.height} F{clip.fps.numerator}:{clip.fps.denominator} "
        "Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n"
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(header.encode("ascii"))
        for frame in clip.frames:
            fh.write(b"FRAME\n")
            for plane in rgb_to_yuv420(frame):
                fh.write(np.ascontiguousarray(plane).tobytes())
    return path


def _plane(plane: Any, wide: bool) -> np.ndarray:
    dtype = np.dtype("<u2") if wide else np.dtype(np.uint8)
    arr = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return arr[:, : plane.width]


def decode_stream(path: Path, fmt: str) -> list[np.ndarray]:
    """Decode a raw elementary stream to RGB frames (inverse of :func:`write_y4m_420`'s conversion)."""
    import av

    from ..video.color import yuv_to_rgb

    frames = []
    try:
        with av.open(str(path), format=fmt) as container:
            for frame in container.decode(video=0):
                name = frame.format.name
                if name not in ("yuv420p", "yuv420p10le"):
                    raise BackendError(f"{path.name}: unexpected decoded pixel format {name}")
                wide = name.endswith("10le")
                y, u, v = (_plane(p, wide) for p in frame.planes[:3])
                frames.append(yuv_to_rgb(y, u, v, full_range=False, bits=10 if wide else 8))
    except av.error.FFmpegError as exc:
        raise BackendError(f"cannot decode {path.name}: {exc}") from None
    return frames


class FFmpegAnchor(EvalCodec):
    """An anchor: one ffmpeg encoder at constant QP, written as a raw elementary stream."""

    encoder = ""
    fmt = ""  # raw muxer / demuxer name
    suffix = ""
    default_points: tuple[float, ...] = ()
    version_pattern = ""

    def __init__(self, points: Optional[Sequence[float]] = None, preset: str = "veryslow") -> None:
        self.qps = [int(round(q)) for q in (points or self.default_points)]
        for q in self.qps:
            if not 0 <= q <= self.max_qp():
                raise InputError(f"{self.name}: QP {q} out of range 0..{self.max_qp()}")
        self.preset = preset

    def max_qp(self) -> int:
        return 51

    def rate_points(self) -> list[RatePoint]:
        return [RatePoint(f"qp{q}", {"qp": q}) for q in sorted(self.qps, reverse=True)]

    def encoder_args(self, qp: object) -> list[str]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        args = self.encoder_args("QP")
        return {
            "description": f"{self.encoder} via ffmpeg: {' '.join(args)}",
            "versions": {"ffmpeg": ffmpeg_version(), self.encoder: self.library_version()},
            "settings": {"encoder": self.encoder, "preset": self.preset, "args": args},
        }

    def library_version(self) -> str:
        """The encoder library's version, from a 2-frame probe encode (its log or its info SEI)."""
        if self.encoder not in _LIBRARY_VERSION:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / f"probe{self.suffix}"
                cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=8"]
                cmd += ["-frames:v", "2", "-c:v", self.encoder, "-f", self.fmt, str(out)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                data = out.read_bytes() if out.is_file() else b""
            text = proc.stderr + data.decode("latin-1")
            match = re.search(self.version_pattern, text)
            _LIBRARY_VERSION[self.encoder] = match.group(1) if match else "unknown"
        return _LIBRARY_VERSION[self.encoder]

    def run(self, clip: Clip, point: RatePoint) -> CodedVideo:
        source = write_y4m_420(clip)
        out = clip.workdir / f"{self.name}_{point.label}{self.suffix}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-i", str(source), "-an"]
        cmd += self.encoder_args(int(point.params["qp"])) + ["-f", self.fmt, str(out)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        encode_s = time.perf_counter() - start
        if proc.returncode != 0 or not out.is_file():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise BackendError(f"{self.name} failed on {clip.name} at {point.label}: {tail}")
        nbytes = out.stat().st_size
        start = time.perf_counter()
        frames = decode_stream(out, self.fmt)
        decode_s = time.perf_counter() - start
        if len(frames) != len(clip.frames):
            raise BackendError(f"{self.name} decoded {len(frames)} frames of {clip.name}, expected {len(clip.frames)}")
        return CodedVideo(nbytes, frames, encode_s, decode_s, {"stream": out.name})


class X264(FFmpegAnchor):
    name = "x264"
    encoder = "libx264"
    fmt = "h264"
    suffix = ".264"
    default_points = (51, 47, 43, 39, 35)
    version_pattern = r"x264 - (core \d+(?: r\d+ [0-9a-f]+)?)"

    def encoder_args(self, qp: object) -> list[str]:
        return [
            "-c:v", "libx264", "-preset", self.preset, "-qp", str(qp), "-pix_fmt", "yuv420p",
            "-bsf:v", "filter_units=remove_types=6",
        ]  # fmt: skip


class X265(FFmpegAnchor):
    name = "x265"
    encoder = "libx265"
    fmt = "hevc"
    suffix = ".265"
    default_points = (51, 47, 43, 39, 35)
    version_pattern = r"HEVC encoder version (\S+)"

    def encoder_args(self, qp: object) -> list[str]:
        return ["-c:v", "libx265", "-preset", self.preset, "-x265-params", f"qp={qp}:info=0", "-pix_fmt", "yuv420p"]


class VVC(FFmpegAnchor):
    name = "vvc"
    encoder = "libvvenc"
    fmt = "vvc"
    suffix = ".266"
    default_points = (63, 58, 53, 48, 43)
    version_pattern = r"libvvenc version: (\S+)"
    low_delay = "PicReordering=0:GOPSize=8:DecodingRefreshType=0:IntraPeriod=-1"

    def __init__(self, points: Optional[Sequence[float]] = None, preset: str = "medium") -> None:
        super().__init__(points, preset)

    def max_qp(self) -> int:
        return 63

    def encoder_args(self, qp: object) -> list[str]:
        return [
            "-c:v", "libvvenc", "-preset", self.preset, "-qp", str(qp),
            "-vvenc-params", self.low_delay, "-pix_fmt", "yuv420p10le",
        ]  # fmt: skip
