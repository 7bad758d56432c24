"""Finding the inputs of a batch job in a folder (videos for encode and dataset build, streams for decode)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from ..errors import InputError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".y4m", ".mpg", ".mpeg", ".ts", ".flv", ".gif")


def find_files(folder: Union[str, Path], suffixes: Sequence[str], what: str) -> list[Path]:
    """Files under ``folder`` (recursively, sorted, case-insensitive suffixes); InputError when none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of {what}")
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not found:
        raise InputError(f"no {what} ({', '.join(suffixes)}) found in {folder}")
    return found


def find_videos(folder: Union[str, Path], raw: bool = False) -> list[Path]:
    """Every video file under ``folder`` (by suffix: :data:`VIDEO_SUFFIXES`, and with ``raw`` the headerless
    ``.yuv`` / ``.raw`` files, which need their size and frame rate to be read)."""
    from .sources import RAW_SUFFIXES

    return find_files(folder, VIDEO_SUFFIXES + (RAW_SUFFIXES if raw else ()), "videos")


def raw_files(folder: Union[str, Path]) -> list[Path]:
    """The headerless ``.yuv`` / ``.raw`` files under ``folder`` (none: an empty list)."""
    from .sources import RAW_SUFFIXES

    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in RAW_SUFFIXES)
