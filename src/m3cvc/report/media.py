"""Media for report pages: videos a browser plays from disk, keyframe thumbnails, difference frames.

Browsers play H.264 (yuv420p, even sizes) in MP4 everywhere and VP9 in WebM in Chromium and Firefox;
:func:`write_browser_video` writes H.264 when PyAV's FFmpeg has libx264, else VP9. Frames of odd
width or height are padded by repeating the last column / row (yuv420p needs even sizes), so such a
video is one pixel wider or taller than the stream; thumbnails and metrics use the exact frames.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import BackendError

# how much a difference frame amplifies |original - decoded| (8: an error of 32 levels is white)
DIFF_GAIN = 8


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    return np.pad(frame, pad, mode="edge") if h % 2 or w % 2 else frame


def browser_codec() -> tuple[str, str, str]:
    """``(codec, container, mime type)`` of the videos reports write: H.264/MP4, else VP9/WebM."""
    import av

    if "libx264" in av.codecs_available:
        return "libx264", "mp4", 'video/mp4; codecs="avc1.64001f"'
    if "libvpx-vp9" in av.codecs_available:
        return "libvpx-vp9", "webm", 'video/webm; codecs="vp9"'
    raise BackendError("this PyAV build has neither libx264 nor libvpx-vp9: no browser video can be written")


def write_browser_video(path: Path, frames: Iterable[np.ndarray], fps: Fraction, crf: int = 18) -> Path:
    """Write RGB frames (H x W x 3 uint8) as a video every browser plays: H.264 high profile,
    yuv420p, CRF ``crf``, moov atom first (plays while loading), or VP9 in WebM. Same frames -> same bytes."""
    import av

    codec, fmt, _ = browser_codec()
    container = av.open(str(path), mode="w", format=fmt, options={"movflags": "+faststart"} if fmt == "mp4" else {})
    try:
        stream = None
        for frame in frames:
            frame = _even(np.ascontiguousarray(frame))
            if stream is None:
                stream = container.add_stream(codec, rate=fps)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": str(crf), "preset": "medium", "profile": "high", "threads": "1"}
                else:
                    stream.options = {"crf": str(crf + 14), "b": "0", "row-mt": "0", "threads": "1", "deadline": "good"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise BackendError(f"no frames to write to {path}")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path


def difference_frames(refs: Sequence[np.ndarray], decs: Sequence[np.ndarray], gain: int = DIFF_GAIN) -> Iterable[np.ndarray]:
    """Per frame, the absolute RGB difference times ``gain`` (clipped): black where the decoded frame
    equals the original, bright where it departs from it."""
    for a, b in zip(refs, decs):
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16)) * gain
        yield np.clip(diff, 0, 255).astype(np.uint8)


def jpeg(frame: np.ndarray, width: int = 256, quality: int = 85) -> bytes:
    """A thumbnail ``width`` pixels wide (aspect kept), as JPEG bytes."""
    from PIL import Image

    img = Image.fromarray(frame)
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
