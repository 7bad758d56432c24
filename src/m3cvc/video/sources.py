"""Video sources: every input is read through FFmpeg (PyAV) and shown as ``ffmpeg`` shows it.

A source yields ``(timestamp_seconds, RawFrame)`` pairs in display order; conversion to RGB happens
only in :meth:`RawFrame.rgb`, so frames that frame-rate resampling drops are never converted.

What "as ffmpeg shows it" means here (each rule mirrors the ``ffmpeg`` command line):

- **Stream**: the video stream ffmpeg would map -- attached pictures (cover art) skipped, then the
  largest ``width x height`` with a bonus for the *default* disposition, the first on ties; or the
  stream the caller names (``stream=N``, the container's stream index as ``ffprobe`` prints it). A file
  whose only pictures are cover art has no video (:class:`~m3cvc.errors.InputError`).
- **Orientation**: the display matrix (rotation and flips, e.g. phone video) is applied like ffmpeg's
  autorotate: multiples of 90 degrees exactly (a transpose / flip of the pixels), other angles by a
  rotation about the centre (bilinear, black corners, same size).
- **Pixel aspect**: non-square samples (``SAR`` != 1, e.g. 240x176 at 4:3 shows as 320x176) are
  resampled to square pixels, width ``round(W * SAR)``, before anything else sees the frame.
- **Colour**: YUV -> RGB by swscale with the stream's own matrix and range tags (untagged input gets
  ffmpeg's defaults: BT.601, limited range unless the format says full).
- **Timing**: a frame's time is its best-effort timestamp (libavcodec's rule: the presentation
  timestamp unless it has been less reliable than the decoding one, as with B-frames in AVI, whose
  container has no PTS); a timestamp that goes backwards (a reset) or is missing continues the
  timeline by the previous frame's duration; gaps and duplicates stay as they are (the resampler
  repeats or drops frames like ffmpeg's ``fps`` filter), and each frame carries its duration, so the
  last one lasts as long as it says.
- **Damage**: a packet that cannot be decoded is skipped and decoding goes on (as ffmpeg does); the
  source logs one warning at the end with how many were lost (``lost_packets``).
- **Raw input**: ``.y4m`` through ffmpeg's yuv4mpegpipe demuxer (every colourspace ffmpeg reads:
  mono 8-16 bit, 4:1:1, 4:4:4 with alpha, ...), headerless ``.yuv`` through its rawvideo demuxer with
  the size, rate and any pixel format ffmpeg knows (``raw_pix_fmt``).
"""

from __future__ import annotations

import logging
import math
import os
import re
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from ..errors import InputError
from ..fileio import check_input_file

PathLike = Union[str, "os.PathLike[str]"]
log = logging.getLogger("m3cvc.video")

_Y4M_MAGIC = b"YUV4MPEG2"
_M3C_MAGIC = b"M3CV"  # m3cvc.bitstream.MAGIC (not imported: the video layer sits below the bitstream)
DEFAULT_SCORE = 5_000_000  # ffmpeg's bonus for the default disposition over the frame area
DISCONT_S = 10.0  # ffmpeg's dts_delta_threshold: a larger jump of a discontinuous clock is not a gap


class RawFrame:
    """A decoded frame whose RGB conversion is deferred (and cached). ``duration``: seconds, or None."""

    __slots__ = ("_convert", "_rgb", "duration")

    def __init__(self, convert: Callable[[], np.ndarray], duration: Optional[float] = None) -> None:
        self._convert = convert
        self._rgb: Optional[np.ndarray] = None
        self.duration = duration

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = np.ascontiguousarray(self._convert())
            self._convert = None  # type: ignore[assignment]  # drop the decoder's frame early
        return self._rgb


class VideoSource(ABC):
    """An opened input video; ``width`` x ``height`` is the displayed size (orientation and pixel aspect applied)."""

    def __init__(self, path: PathLike, width: int, height: int, fps: Fraction, frame_count: Optional[int]):
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.frame_count = frame_count  # None when the container does not say (may be an estimate)

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
def choose_stream(container: Any, index: Optional[int], path: PathLike) -> Any:
    """The video stream ffmpeg would map (module doc), or stream ``index`` if given."""
    import av

    attached = av.stream.Disposition.attached_pic
    if index is not None:
        streams = {s.index: s for s in container.streams}
        if index not in streams:
            raise InputError(f"{path} has no stream {index} (it has {len(streams)}: 0..{len(streams) - 1})")
        if streams[index].type != "video":
            raise InputError(f"{path}: stream {index} is {streams[index].type}, not video")
        return streams[index]
    videos = list(container.streams.video)
    moving = [s for s in videos if not s.disposition & attached]
    if not moving:
        if videos:
            raise InputError(f"{path} has no video: its only picture is cover art (an attached picture)")
        raise InputError(f"{path} has no video stream")

    def score(s: Any) -> int:
        cc = s.codec_context
        return (cc.width or 0) * (cc.height or 0) + DEFAULT_SCORE * bool(s.disposition & av.stream.Disposition.default)

    best = moving[0]
    for s in moving[1:]:
        if score(s) > score(best):
            best = s
    return best


def display_transform(frame: Any) -> tuple[int, bool, float]:
    """``(k, hflip, angle)`` from a frame's display matrix: show the frame as ``np.rot90(x[:, ::-1] if
    hflip else x, k)``, then (for angles that are not multiples of 90) rotated by ``angle`` degrees
    counter-clockwise. No matrix: ``(0, False, 0.0)``."""
    matrix = None
    for sd in getattr(frame, "side_data", ()):
        if "DISPLAYMATRIX" in str(getattr(sd, "type", "")):
            raw = bytes(sd)
            if len(raw) >= 36:
                matrix = np.frombuffer(raw[:36], "<i4").astype(np.float64)
    if matrix is None:
        return 0, False, 0.0
    a, b, c, d = matrix[0] / 65536, matrix[1] / 65536, matrix[3] / 65536, matrix[4] / 65536
    flip = a * d - b * c < 0
    if flip:  # mirrored: flip the source horizontally, which negates the matrix's first row
        a, b = -a, -b
    if not (math.isfinite(a) and math.isfinite(b)) or a == b == 0:
        return 0, False, 0.0
    angle = math.degrees(math.atan2(-b, a)) % 360.0
    k = int(round(angle / 90.0)) % 4
    if abs(angle - 90.0 * round(angle / 90.0)) < 1.0:
        return k, bool(flip), 0.0
    # any other angle: ffmpeg rotates the stored picture by the matrix's rotation alone (no mirroring)
    unflipped = math.degrees(math.atan2(-matrix[1], matrix[0])) % 360.0 if flip else angle
    return 0, False, unflipped


def _orient(rgb: np.ndarray, k: int, flip: bool, angle: float) -> np.ndarray:
    if flip:
        rgb = rgb[:, ::-1]
    if k:
        rgb = np.rot90(rgb, k)
    if angle:
        import cv2

        h, w = rgb.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
        rgb = cv2.warpAffine(np.ascontiguousarray(rgb), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return rgb


class _BestEffort:
    """libavcodec's best-effort timestamp (``guess_correct_pts``): the PTS unless it has been out of
    order more often than the DTS; the fault counts run over the whole stream."""

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: Optional[int] = None
        self.last_dts: Optional[int] = None

    def __call__(self, pts: Optional[int], dts: Optional[int]) -> Optional[int]:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            return pts
        return dts


class AVSource(VideoSource):
    """Anything FFmpeg demuxes and decodes, through PyAV (module doc). ``fmt`` / ``options``: an
    explicit demuxer and its options (raw input); ``stream``: a stream index to read instead of the
    one ffmpeg would pick."""

    def __init__(
        self,
        path: PathLike,
        *,
        fmt: Optional[str] = None,
        options: Optional[dict[str, str]] = None,
        stream: Optional[int] = None,
    ) -> None:
        import av

        try:
            container = av.open(str(path), format=fmt, options=options or {})
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            what = f"not a valid {fmt} file" if fmt else "not a video that ffmpeg can decode"
            raise InputError(f"cannot read {path}: {what} ({reason})") from None
        try:
            chosen = choose_stream(container, stream, path)
            chosen.thread_type = "AUTO"
            self._container, self._stream = container, chosen
            self.lost_packets = 0
            self._pending: list[Any] = []
            self._packets = self._demux()
            first = self._next_frame()
            if first is None:
                raise InputError(f"{path} contains no decodable video frames")
        except BaseException:
            container.close()
            raise
        self._pending.insert(0, first)
        rate = chosen.guessed_rate or chosen.average_rate or chosen.base_rate  # ffmpeg's av_guess_frame_rate
        fps = Fraction(rate) if rate else Fraction(25)
        self._k, self._flip, self._angle = display_transform(first)
        sar = chosen.sample_aspect_ratio or chosen.codec_context.sample_aspect_ratio
        self._sar = Fraction(sar) if sar and sar > 0 else Fraction(1)
        w, h = first.width, first.height
        if self._sar != 1:
            w = max(1, int(round(w * self._sar)))
        if self._k % 2:
            w, h = h, w
        self._size = (first.width, first.height)
        self._time_base = chosen.time_base or Fraction(1, 90000)
        fmt_flags = str(getattr(container.format, "flags", ""))
        # containers without presentation timestamps (AVI: a B-frame keeps its packet's decode-order
        # stamp): the decode clock is the display clock, as ffmpeg treats them
        self._dts_clock = container.format.name == "avi"
        # times count from the container's start, as ffmpeg's command line counts them
        start = container.start_time
        self._start = float(start) / 1e6 if start is not None else None
        # containers whose clock may jump (MPEG-TS, PS, FLV): a jump over DISCONT_S is a discontinuity
        self._discont = "TS_DISCONT" in fmt_flags or container.format.name in ("mpegts", "mpeg", "flv")
        super().__init__(path, w, h, fps, self._count(chosen, fps))

    @staticmethod
    def _count(stream: Any, fps: Fraction) -> Optional[int]:
        if stream.frames:
            return int(stream.frames)
        if stream.duration and stream.time_base and fps:
            return max(1, int(round(float(stream.duration * stream.time_base * fps))))
        return None

    def _demux(self) -> Iterator[Any]:
        import av

        try:
            yield from self._container.demux(self._stream)
        except av.error.FFmpegError:
            self.lost_packets += 1  # a damaged container tail: keep what was read, as players do

    def _next_frame(self) -> Any:
        import av

        while not self._pending:
            packet = next(self._packets, None)
            if packet is None:
                return None
            try:
                self._pending.extend(packet.decode())
            except av.error.FFmpegError:
                self.lost_packets += 1  # skip what cannot be decoded and go on, as ffmpeg does
        return self._pending.pop(0)

    def _rgb(self, frame: Any) -> np.ndarray:
        if (frame.width, frame.height) != self._size:
            raise InputError(f"{self.path}: frame size changes mid-stream ({self._size[0]}x{self._size[1]} -> "
                             f"{frame.width}x{frame.height})")  # fmt: skip
        # swscale with ffmpeg's default scaler (bicubic: it also sets how subsampled chroma is upsampled),
        # square pixels in the same pass
        width = max(1, int(round(frame.width * self._sar))) if self._sar != 1 else frame.width
        rgb = frame.to_ndarray(width=width, height=frame.height, format="rgb24", interpolation="BICUBIC")
        return _orient(rgb, self._k, self._flip, self._angle)

    def frames(self) -> Iterator[tuple[float, RawFrame]]:
        tb = float(self._time_base)
        best = _BestEffort()
        last_t: Optional[float] = None
        period = last_d = 1.0 / float(self.fps)
        shift = 0.0
        count = missing = 0
        origin: Optional[float] = None
        while True:
            frame = self._next_frame()
            if frame is None:
                break
            ts = frame.dts if self._dts_clock else best(frame.pts, frame.dts)
            duration = frame.duration * tb if frame.duration else None
            if duration is not None and duration < 0.25 * period:  # a container tick, not a frame duration
                duration = None
            if ts is None:
                t = 0.0 if last_t is None else last_t + last_d
            else:
                t = ts * tb + shift
                jump = last_t is not None and (t < last_t or (self._discont and t > last_t + last_d + DISCONT_S))
                if jump:  # a reset or a discontinuity: continue the timeline
                    shift += last_t + last_d - t
                    t = last_t + last_d
                elif last_t is not None:
                    missing += max(0, round((t - last_t) / last_d) - 1)
            last_t, last_d = t, duration or last_d
            count += 1
            if origin is None:
                origin = self._start if self._start is not None and self._start <= t else t
            yield t - origin, RawFrame(lambda f=frame: self._rgb(f), duration)
        if self.lost_packets:
            lost = max(self.lost_packets, missing)
            log.warning(f"{self.path}: {self.lost_packets} damaged packet(s) could not be decoded and were skipped: "
                        f"{lost} frame(s) lost, {count} decoded")  # fmt: skip

    def close(self) -> None:
        self._container.close()


# --------------------------------------------------------------------------------------------
_SIZE_RE = re.compile(r"^(\d+)[xX](\d+)$")


def parse_size(text: str) -> tuple[int, int]:
    """'512x320' -> (512, 320)."""
    m = _SIZE_RE.match(text.strip())
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise InputError(f"invalid size {text!r}; expected WIDTHxHEIGHT, e.g. 512x320")
    return int(m.group(1)), int(m.group(2))


RAW_SUFFIXES = (".yuv", ".raw")  # headerless frames: read with --input-size / --input-fps / --input-pix-fmt


def open_video(
    path: PathLike,
    *,
    raw_size: Optional[tuple[int, int]] = None,
    raw_fps: Optional[float] = None,
    raw_pix_fmt: Optional[str] = None,
    stream: Optional[int] = None,
) -> VideoSource:
    """Open a video file (module doc); raw ``.yuv`` / ``.raw`` needs ``raw_size`` and ``raw_fps`` (``raw_pix_fmt``:
    any pixel format ffmpeg knows, default yuv420p), which any other input refuses (InputError: they would be
    ignored);
    ``stream``: a stream index instead of ffmpeg's choice."""
    p = check_input_file(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(_Y4M_MAGIC))
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    if head.startswith(_M3C_MAGIC):  # ffmpeg would probe its keyframe units as raw HEVC: a wrong video
        raise InputError(f"{p} is an m3cvc stream, not a video: decode it with `m3cvc decode`")
    raw = p.suffix.lower() in RAW_SUFFIXES
    if head == _Y4M_MAGIC or not raw:
        if raw_size is not None or raw_fps is not None or raw_pix_fmt is not None:  # ignored: a silent wrong reading
            kind = "a .y4m stream" if head == _Y4M_MAGIC else "read through its container"
            raise InputError(f"--input-size / --input-fps / --input-pix-fmt describe raw video ({' or '.join(RAW_SUFFIXES)} "
                             f"files); {p} is {kind}, which gives its own size, frame rate and pixel format")
        if head == _Y4M_MAGIC:
            return AVSource(p, fmt="yuv4mpegpipe", stream=stream)
        return AVSource(p, stream=stream)
    if raw_size is None or raw_fps is None:
        raise InputError(f"{p} is raw video: give its size and frame rate (--input-size WxH --input-fps F)")
    return _raw(p, raw_size, raw_fps, raw_pix_fmt or "yuv420p")


def _raw(path: Path, size: tuple[int, int], fps: float, pix_fmt: str) -> AVSource:
    import av

    width, height = size
    if width <= 0 or height <= 0 or not (math.isfinite(fps) and fps > 0):
        raise InputError("raw .yuv input needs a positive --input-size WxH and --input-fps")
    try:
        av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        raise InputError(f"unknown raw pixel format {pix_fmt!r} (any format `ffmpeg -pix_fmts` lists)") from None
    rate = Fraction(fps).limit_denominator(1001)
    options = {"video_size": f"{width}x{height}", "pixel_format": pix_fmt, "framerate": f"{rate.numerator}/{rate.denominator}"}
    source = AVSource(path, fmt="rawvideo", options=options)
    frame_bytes = _raw_frame_bytes(path, options)
    total = path.stat().st_size
    if frame_bytes and total % frame_bytes:
        source.close()
        raise InputError(f"{path}: size {total} bytes is not a whole number of {width}x{height} {pix_fmt} frames "
                         f"({frame_bytes} bytes each)")  # fmt: skip
    if frame_bytes:
        source.frame_count = total // frame_bytes
    return source


def _raw_frame_bytes(path: Path, options: dict[str, str]) -> int:
    """Bytes per frame as ffmpeg's rawvideo demuxer reads them (its first packet)."""
    import av

    with av.open(str(path), format="rawvideo", options=options) as container:
        for packet in container.demux(video=0):
            return int(packet.size)
    return 0
