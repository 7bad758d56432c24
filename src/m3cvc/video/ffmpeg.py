"""The ffmpeg program that imageio-ffmpeg bundles (libx264, libx265, libvvenc, libvmaf), for the tools
that need a subprocess: the VVC anchor (no libvvenc in PyAV) and VMAF (no libvmaf in PyAV)."""

from __future__ import annotations

import subprocess

from ..errors import BackendError

_VERSION: dict[str, str] = {}
_FILTERS: dict[str, str] = {}


def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's static ffmpeg."""
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - a core dependency
        raise BackendError("needs imageio-ffmpeg: pip install imageio-ffmpeg") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_version() -> str:
    """``ffmpeg version n9.0.2-...`` (first line of ``ffmpeg -version``)."""
    exe = ffmpeg_exe()
    if exe not in _VERSION:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stdout
        first = out.splitlines()[0] if out else "unknown"
        _VERSION[exe] = first.split(" Copyright")[0]
    return _VERSION[exe]


def has_filter(name: str) -> bool:
    """Whether this ffmpeg was built with the filter ``name`` (e.g. ``libvmaf``)."""
    exe = ffmpeg_exe()
    if exe not in _FILTERS:
        _FILTERS[exe] = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True, check=False).stdout
    return any(line.split()[1:2] == [name] for line in _FILTERS[exe].splitlines() if line.strip())
