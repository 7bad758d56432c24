"""Video input/output and preprocessing (stage 1)."""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from ..config import PreprocessConfig
from .preprocess import PreprocessedVideo, crop_box, fit_frame, fps_fraction, preprocess
from .sources import RawFrame, VideoSource, open_video, parse_size
from .writers import FrameWriter, is_png_pattern, open_writer


def read_frames(path: Union[str, "os.PathLike[str]"], cfg: PreprocessConfig = PreprocessConfig(), **open_kwargs) -> list[np.ndarray]:
    """All preprocessed frames of a (short) video, as a list. Streaming code should use preprocess()."""
    with open_video(path, **open_kwargs) as source:
        return list(preprocess(source, cfg))


__all__ = [
    "FrameWriter", "PreprocessedVideo", "RawFrame", "VideoSource", "crop_box", "fit_frame", "fps_fraction",
    "is_png_pattern", "open_video", "open_writer", "parse_size", "preprocess", "read_frames",
]
