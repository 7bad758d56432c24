"""torch helpers shared by the torch-backed keyframe backends (imported only with them)."""

from __future__ import annotations

import torch

from ..devices import resolve_device, resolve_dtype, torch_device  # noqa: F401  (the one resolver, re-exported)
from ..errors import first_line  # noqa: F401  (re-exported)

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

__all__ = ["TORCH_DTYPES", "first_line", "resolve_device", "resolve_dtype", "torch_device"]
