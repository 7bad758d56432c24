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
# hevc / avif keyframes refined on decode by a text-to-image model (keyframe_codec.refine; the full profile)
KEYFRAME_CODECS.register("hevc+img2img", "m3cvc.keyframe_codec.refine:HevcImg2ImgCodec", uses_text=True)
KEYFRAME_CODECS.register("avif+img2img", "m3cvc.keyframe_codec.refine:AvifImg2ImgCodec", uses_text=True)


def build_keyframe_codec(cfg: KeyframeCodecConfig) -> KeyframeCodec:
    """Encoder side: the codec the config names, with its options (and the decode-side refinement
    ``cfg.refine`` where it is on)."""
    cls = KEYFRAME_CODECS.resolve(cfg.backend)
    if cls is AvifCodec:
        return with_refine(AvifCodec.from_options(cfg.avif), cfg)
    if cls is HevcChainCodec:
        return with_refine(HevcChainCodec.from_options(cfg.hevc), cfg)
    if cfg.refine.backend != "none":
        from ..errors import ConfigError

        raise ConfigError(f"keyframe_codec.refine refines hevc or avif keyframes; {cfg.backend} decodes with its own "
                          "model (set keyframe_codec.refine.backend to none)")  # fmt: skip
    return cls.from_config(cfg)  # type: ignore[attr-defined]


def with_refine(inner: KeyframeCodec, cfg: KeyframeCodecConfig) -> KeyframeCodec:
    """``inner`` wrapped by the decode-side refinement of ``cfg.refine`` (``inner`` itself when it is off).
    Builds no model: the encoder never runs the refiner."""
    if cfg.refine.backend == "none":
        return inner
    from .refine import REFINED, check_refine_options

    check_refine_options(cfg.refine)
    return REFINED[inner.name](inner, cfg.refine)


def keyframe_codec_from_params(name: str, params: Mapping[str, Any]) -> KeyframeCodec:
    """Decoder side: rebuild the codec from the name and params in the stream header."""
    if name not in KEYFRAME_CODECS:  # a damaged stream, or one from a version of m3cvc with more backends
        from ..errors import BitstreamError

        raise BitstreamError(f"the stream names an unknown keyframe codec {name!r} (this m3cvc has: {', '.join(KEYFRAME_CODECS.names())})")
    return KEYFRAME_CODECS.resolve(name).from_params(params)  # type: ignore[attr-defined]


__all__ = ["AvifCodec", "HevcChainCodec", "KeyframeCodec", "KEYFRAME_CODECS", "build_keyframe_codec", "keyframe_codec_from_params",
           "with_refine"]
