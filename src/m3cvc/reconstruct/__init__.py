"""Clip reconstructors (stage 5), registered by name; model backends are imported lazily.

Every backend class offers ``from_config(ReconstructConfig)`` (encoder side) and
``from_params(params)`` (decoder side, from the stream header).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..config import ReconstructConfig
from .base import MODES, RECONSTRUCTORS, ClipReconstructor

# video diffusion (diffusers; torch is imported only when one of these is used)
RECONSTRUCTORS.register("ltx", "m3cvc.reconstruct.ltx:LtxReconstructor")
RECONSTRUCTORS.register("wan", "m3cvc.reconstruct.wan:WanReconstructor")
RECONSTRUCTORS.register("cogvideox", "m3cvc.reconstruct.cogvideox:CogVideoXReconstructor")


def build_reconstructor(cfg: ReconstructConfig) -> ClipReconstructor:
    return RECONSTRUCTORS.resolve(cfg.backend).from_config(cfg)  # type: ignore[attr-defined]


def reconstructor_from_params(name: str, params: Mapping[str, Any]) -> ClipReconstructor:
    return RECONSTRUCTORS.resolve(name).from_params(params)  # type: ignore[attr-defined]


__all__ = ["MODES", "RECONSTRUCTORS", "ClipReconstructor", "build_reconstructor", "reconstructor_from_params"]
