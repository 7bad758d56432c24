"""What ``m3cvc info --json`` says of a stream: header, keyframes (index, bytes, picture type,
trigger), texts, bytes per section, bpp and kbit/s. One function, shared by ``info`` and ``report``."""

from __future__ import annotations

from typing import Any, Optional, Sequence


def _picture_types(codec: str, keyframes: Sequence[Any]) -> list[str]:
    """Per keyframe: ``IDR`` / ``P`` for the HEVC chain (refined or not), ``intra`` for image codecs."""
    if codec.split("+")[0] != "hevc":
        return ["intra"] * len(keyframes)
    from .keyframe_codec.hevc import picture_type

    return [picture_type(k.data) for k in keyframes]


def _motion_counts(stream: Any) -> Optional[dict[str, int]]:
    """``{"clips", "linked", "timed"}`` of a stream with motion hints (None without)."""
    if stream.clip_motion is None:
        return None
    from .pipeline import clip_motions

    motions = clip_motions(stream)
    return {"clips": len(motions), "linked": sum(m.linked for m in motions),
            "timed": sum(m.timing is not None for m in motions)}  # fmt: skip


def kbps(size: int, frames: int, fps: Any) -> float:
    """kbit/s of ``size`` bytes over ``frames`` frames at ``fps`` (a Fraction): computed exactly, then rounded once."""
    from fractions import Fraction

    return float(Fraction(8 * size) * Fraction(fps) / (1000 * frames))


def _rate_target(header: Any) -> Optional[dict[str, float]]:
    """``{"bpp", "kbps"}`` of the rate-control target in the keyframe codec's params (None without one)."""
    bpp = header.keyframe_codec.params.get("target_bpp")
    if not bpp:
        return None
    rate = float(bpp) * header.width * header.height * float(header.fps) / 1000.0
    return {"bpp": float(bpp), "kbps": float(f"{rate:.12g}")}  # 12 digits: 37.3, not the float noise of bpp's conversion


def stream_info(data: bytes) -> dict[str, Any]:
    """Everything ``m3cvc info --json`` prints, from the stream's bytes (:class:`~m3cvc.errors.InputError`
    on a damaged stream). bpp and kbit/s count every byte, header and texts included."""
    from .bitstream import MAGIC, keyframe_sizes, read_stream, section_sizes, text_codecs_used
    from .keyframe_codec import KEYFRAME_CODECS
    from .keyframes import TRIGGERS
    from .reconstruct import RECONSTRUCTORS

    stream = read_stream(data)
    h = stream.header
    kfs = stream.keyframes
    sections = section_sizes(data)
    clip_lengths = [(kfs[i + 1].index if i + 1 < len(kfs) else h.frames) - k.index for i, k in enumerate(kfs)]
    return {
        "format_version": data[len(MAGIC)],
        "profile": h.profile,
        "frames": h.frames,
        "width": h.width,
        "height": h.height,
        "fps": float(h.fps),
        "fps_fraction": f"{h.fps.numerator}/{h.fps.denominator}",
        "duration_seconds": h.frames / float(h.fps),
        "keyframes": [k.index for k in kfs],
        "keyframe_bytes": keyframe_sizes(data),
        "keyframe_pictures": _picture_types(h.keyframe_codec.name, kfs),
        # what made each keyframe (version 1 streams did not record it: all "interval")
        "keyframe_triggers": [TRIGGERS[k.trigger] for k in kfs],
        "trigger_counts": {t: sum(k.trigger == i for k in kfs) for i, t in enumerate(TRIGGERS)},
        "clip_lengths": clip_lengths,
        "longest_clip": h.max_clip,
        "keyframe_codec": {"name": h.keyframe_codec.name, "params": dict(h.keyframe_codec.params)},
        "reconstructor": {"name": h.reconstructor.name, "params": dict(h.reconstructor.params)},
        "text_codecs": text_codecs_used(data),
        "keyframe_texts": list(stream.keyframe_texts),
        "clip_texts": list(stream.clip_texts),
        # whether the decoder's output depends on the texts (False: they are carried, not used; None: unknown backend)
        "decoder_uses_text": {
            "keyframes": KEYFRAME_CODECS.trait(h.keyframe_codec.name, "uses_text"),
            "clips": RECONSTRUCTORS.trait(h.reconstructor.name, "uses_text"),
        },
        "motion_hints": stream.clip_motion is not None,
        # clips whose next keyframe the hints link by a global motion fit (camera motion, or a still
        # camera fitted as such), and clips with timing hints
        "motion_clips": _motion_counts(stream),
        # rate control's target, as the header records it (bpp) and in kbit/s at the coded size and rate
        "rate_target": _rate_target(h),
        "bytes_total": len(data),
        "bpp": 8.0 * len(data) / (h.frames * h.width * h.height),
        "kbps": kbps(len(data), h.frames, h.fps),
        "sections": sections,
    }
