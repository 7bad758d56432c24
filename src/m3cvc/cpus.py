"""How many threads the in-process stages use by default (rate control's analysis, the decoder's clips), and
OpenCV's own threads while ours keep the cores busy."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator, Optional


def default_workers() -> int:
    """The CPUs this process may use (its affinity mask on Linux), at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


_lock = threading.Lock()
_users = 0
_saved: Optional[int] = None


@contextmanager
def opencv_single_threaded() -> Iterator[None]:
    """OpenCV's parallel loops run on the calling thread inside this block (``cv2.setNumThreads(1)``; the
    previous setting is restored when the last of nested or concurrent blocks ends).

    For work that already keeps every core busy with its own threads (rate control's analysis: the tracks,
    the x265 chains and the hint trials): OpenCV's pool on top of them only adds contention on pictures as
    small as the trials' 128 pixels. Measured on 2 CPUs (lite_rd clips, seven targets, four interleaved runs
    each): encode CPU -12 % on bigbuckbunny, -13 % on carphone, wall -8 % / -11 %. The streams are byte-identical
    either way (SHA-256 of those 14 streams; tests/test_keyframe_chain.py). The decoder is left as it is: its
    wall time did not change."""
    global _users, _saved
    import cv2

    with _lock:
        if _users == 0:
            _saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                cv2.setNumThreads(_saved)
