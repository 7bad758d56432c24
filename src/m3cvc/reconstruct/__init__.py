"""Clip reconstruction (stage 5): decoded keyframes (+ clip text) -> every frame of each clip.

Weight-free backends: ``flow`` (DIS optical-flow interpolation, the lite default) and ``blend``
(linear cross-fade, the benchmark's baseline); video diffusion backends: ``ltx``, ``wan``,
``cogvideox`` and ``seine`` (the paper's). Backends are registered by name and imported on first
use; nothing here imports torch. Every backend class offers ``from_config(ReconstructConfig)``
(encoder side) and ``from_params(params)`` (decoder side, from the stream header).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..config import ReconstructConfig
from .base import MODES, RECONSTRUCTORS, ClipReconstructor

# uses_text: whether the clip text D^C changes the decoded frames (reports say so when it does not)
RECONSTRUCTORS.register("flow", "m3cvc.reconstruct.flow:FlowReconstructor", uses_text=False)
RECONSTRUCTORS.register("blend", "m3cvc.reconstruct.blend:BlendReconstructor", uses_text=False)
# video diffusion (diffusers; torch is imported only when one of these is used)
RECONSTRUCTORS.register("ltx", "m3cvc.reconstruct.ltx:LtxReconstructor", uses_text=True)
RECONSTRUCTORS.register("wan", "m3cvc.reconstruct.wan:WanReconstructor", uses_text=True)
RECONSTRUCTORS.register("cogvideox", "m3cvc.reconstruct.cogvideox:CogVideoXReconstructor", uses_text=True)
# SEINE, the paper's model: our UNet implementation loading the released checkpoint (not in diffusers)
RECONSTRUCTORS.register("seine", "m3cvc.reconstruct.seine:SeineReconstructor", uses_text=True)


def build_reconstructor(cfg: ReconstructConfig) -> ClipReconstructor:
    """Encoder side: the reconstructor the config names, with its options (its params go in the header)."""
    return RECONSTRUCTORS.resolve(cfg.backend).from_config(cfg)  # type: ignore[attr-defined]


def reconstructor_from_params(name: str, params: Mapping[str, Any]) -> ClipReconstructor:
    """Decoder side: rebuild the reconstructor from the name and params in the stream header."""
    if name not in RECONSTRUCTORS:  # a damaged stream, or one from a version of m3cvc with more backends
        from ..errors import BitstreamError

        raise BitstreamError(f"the stream names an unknown clip reconstructor {name!r} (this m3cvc has: {', '.join(RECONSTRUCTORS.names())})")
    return RECONSTRUCTORS.resolve(name).from_params(params)  # type: ignore[attr-defined]


__all__ = ["MODES", "RECONSTRUCTORS", "ClipReconstructor", "build_reconstructor", "reconstructor_from_params"]
