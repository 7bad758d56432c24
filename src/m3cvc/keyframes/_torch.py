"""torch helpers shared by the torch-backed keyframe backends (imported only with them)."""

from __future__ import annotations

import torch

from ..errors import BackendError, ConfigError

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(name: str) -> str:
    """The one place ``device: auto`` is decided: CUDA where torch sees a GPU, else the CPU."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def torch_device(name: str, key: str) -> torch.device:
    """``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ...) as a torch device, or an error naming the config ``key``."""
    try:
        device = torch.device(resolve_device(name))
    except (RuntimeError, ValueError):
        raise ConfigError(f"{key}: invalid torch device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"{key}: device {name!r} requested but CUDA is not available")
    return device


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (for one-line user errors)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
