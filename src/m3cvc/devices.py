"""The one place where ``device`` and ``dtype`` settings become torch devices and dtypes.

Every model stage (CLIP, RAFT, Qwen-VL, the keyframe codecs, the keyframe refiner, the video
diffusion backends, training) takes ``device: auto`` and ``dtype: auto`` and resolves them here:

- device ``auto``: ``cuda`` where torch sees a GPU, else ``cpu``;
- dtype ``auto``: ``bfloat16`` on a CUDA GPU that supports it (Ampere and later), ``float16`` on
  older CUDA GPUs and on ``mps``, ``float32`` on the CPU.

torch is imported only by the functions that need it, so the lite profile never loads it.
"""

from __future__ import annotations

from typing import Any

from .errors import BackendError, ConfigError

DTYPES = ("auto", "float32", "float16", "bfloat16")


def check_dtype(name: str, key: str) -> str:
    """``name`` if it is one of :data:`DTYPES`, else a :class:`ConfigError` naming the config ``key``."""
    if name not in DTYPES:
        raise ConfigError(f"{key}: unknown dtype {name!r}; choose one of: {', '.join(DTYPES)}")
    return name


DEVICE_PATTERN = r"(auto|cpu|mps|cuda(:[0-9]+)?)"


def check_device(name: str, key: str) -> str:
    """``name`` if it is ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``, else a :class:`ConfigError`
    naming ``key`` (a syntax check: whether the device exists is decided where it is used)."""
    import re

    if not isinstance(name, str) or not re.fullmatch(DEVICE_PATTERN, name):
        raise ConfigError(f"{key}: invalid device {name!r}; use auto, cpu, mps, cuda or cuda:N")
    return name


def resolve_device(name: str) -> str:
    """``device: auto`` -> ``cuda`` where torch sees a GPU, else ``cpu``; other names unchanged."""
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def torch_device(name: str, key: str) -> Any:
    """``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ...) as a ``torch.device``; a
    :class:`ConfigError` for a malformed name and a :class:`BackendError` for CUDA without a GPU,
    both naming the config ``key``."""
    import torch

    check_device(name, key)
    device = torch.device(resolve_device(name))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"{key}: device {name!r} requested but CUDA is not available here (set it to auto or cpu; "
                           "when decoding a stream that stores it: decode --device cpu)")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise BackendError(f"{key}: device {name!r} requested but this torch has no usable mps backend")
    return device


def auto_dtype_name(device: str) -> str:
    """What ``dtype: auto`` means on ``device`` (a resolved device name such as ``cuda:1``)."""
    import torch

    kind = str(device).split(":")[0]
    if kind == "cuda":
        try:
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        except (RuntimeError, AssertionError):  # no usable GPU: the caller fails on the device itself
            return "float16"
    if kind == "mps":
        return "float16"
    return "float32"


def resolve_dtype(name: str, device: Any, key: str = "dtype") -> Any:
    """A dtype setting on a resolved ``device`` as a ``torch.dtype`` (``auto``: see the module doc)."""
    import torch

    check_dtype(name, key)
    if name == "auto":
        name = auto_dtype_name(str(device))
    return getattr(torch, name)
