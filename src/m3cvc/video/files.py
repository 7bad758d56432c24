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


def find_videos(folder: Union[str, Path]) -> list[Path]:
    """Every video file under ``folder`` (by suffix: :data:`VIDEO_SUFFIXES`)."""
    return find_files(folder, VIDEO_SUFFIXES, "videos")
