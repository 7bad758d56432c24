"""How many threads the in-process stages use by default (rate control's analysis, the decoder's clips)."""

from __future__ import annotations

import os


def default_workers() -> int:
    """The CPUs this process may use (its affinity mask on Linux), at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))
