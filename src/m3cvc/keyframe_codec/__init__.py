"""Keyframe codecs (stage 4): ``hevc`` (lite: the keyframe chain as a low-delay video), ``avif``
(independent images); model codecs register lazily by name."""

from __future__ import annotations

from typing import Any, Mapping

from ..config import KeyframeCodecConfig
from .avif import AvifCodec
from .base import KEYFRAME_CODECS, KeyframeCodec
from .hevc import HevcChainCodec

# uses_text: whether the keyframe text D^F changes the decoded keyframe
KEYFRAME_CODECS.register("hevc", HevcChainCodec, uses_text=False)
KEYFRAME_CODECS.register("avif", AvifCodec, uses_text=False)
KEYFRAME_CODECS.register("vq-diffusion", "m3cvc.keyframe_codec.vq_diffusion:VQDiffusionCodec", uses_text=True)


def build_keyframe_codec(cfg: KeyframeCodecConfig) -> KeyframeCodec:
    """Encoder side: the codec the config names, with its options."""
    cls = KEYFRAME_CODECS.resolve(cfg.backend)
    if cls is AvifCodec:
        return AvifCodec.from_options(cfg.avif)
    if cls is HevcChainCodec:
        return HevcChainCodec.from_options(cfg.hevc)
    return cls.from_config(cfg)  # type: ignore[attr-defined]


def keyframe_codec_from_params(name: str, params: Mapping[str, Any]) -> KeyframeCodec:
    """Decoder side: rebuild the codec from the name and params in the stream header."""
    return KEYFRAME_CODECS.resolve(name).from_params(params)  # type: ignore[attr-defined]


__all__ = ["AvifCodec", "HevcChainCodec", "KeyframeCodec", "KEYFRAME_CODECS", "build_keyframe_codec", "keyframe_codec_from_params"]
