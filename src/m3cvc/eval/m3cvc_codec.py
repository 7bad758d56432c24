"""m3cvc itself as one codec of the harness (``m3cvc:lite``, ``m3cvc:full``, ``m3cvc:CONFIG.yaml``).

The preprocessed frames are handed to :class:`m3cvc.pipeline.Encoder` through an in-memory source with
``keep_size``/``keep_fps`` set, so m3cvc codes exactly the frames the anchors code. bpp comes from the
length of the .m3c bytes (header, keyframes and texts included). A rate point sets one config key
(``sweep``, by default the AVIF keyframe quality of the lite profile) to one value; ``overrides`` fixes
other keys for every point (the ablation runner uses it).
"""

from __future__ import annotations

import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from ..config import M3Config, PROFILES, from_dict, load_config, to_dict
from ..errors import ConfigError
from ..fileio import write_bytes_atomic
from ..video import RawFrame, VideoSource
from .codecs import Clip, CodedVideo, EvalCodec, RatePoint, slug

# A profile's rate points by keyframe codec: the HEVC chain sweeps the rate-control target (points
# spread over the anchors' ultra-low range at 512x320 / 8 fps), AVIF its quality, the others the spacing.
SWEEPS: dict[str, tuple[str, tuple[float, ...]]] = {
    "hevc": ("rate.target_bpp", (0.0015, 0.0025, 0.004, 0.006, 0.009, 0.014)),
    "avif": ("keyframe_codec.avif.quality", (4.0, 10.0, 18.0, 28.0, 40.0)),
}
FALLBACK_SWEEP = ("keyframes.max_interval", (32.0, 16.0, 8.0, 4.0))
DEFAULT_SWEEP = SWEEPS["hevc"][0]


def default_sweep(config: M3Config) -> tuple[str, tuple[float, ...]]:
    """The config key and values a profile's rate points sweep when ``--sweep`` is not given."""
    return SWEEPS.get(config.keyframe_codec.backend, FALLBACK_SWEEP)


class ArraySource(VideoSource):
    """A :class:`VideoSource` over frames already in memory (timestamps ``i / fps``)."""

    def __init__(self, frames: Sequence[np.ndarray], fps: Fraction, name: str = "frames") -> None:
        h, w = frames[0].shape[:2]
        super().__init__(Path(name), w, h, fps, len(frames))
        self._frames = frames

    def frames(self) -> Iterator[tuple[float, RawFrame]]:
        for i, frame in enumerate(self._frames):
            yield i / float(self.fps), RawFrame(lambda f=frame: f)


def nested(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b.c": 1}`` -> ``{"a": {"b": {"c": 1}}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _typed(config: M3Config, key: str, value: float) -> Any:
    """``value`` cast to the type of the config key (ints stay ints)."""
    node: Any = to_dict(config)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"unknown config key {key!r} to sweep")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise ConfigError(f"config key {key!r} is not numeric; it cannot be a rate point")
    return int(round(value)) if isinstance(node, int) else float(value)


class M3cvcCodec(EvalCodec):
    def __init__(
        self,
        profile_or_config: str = "lite",
        points: Optional[Sequence[float]] = None,
        sweep: Optional[str] = None,
        overrides: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
        per_clip: Optional[Mapping[str, Mapping[str, Any]]] = None,
    ) -> None:
        if profile_or_config in PROFILES:
            base = load_config(profile=profile_or_config)
        else:
            base = load_config(profile_or_config)
        base = from_dict(M3Config, nested(overrides or {}), "", base)
        # the harness preprocesses once for every codec: m3cvc must take the frames as they are
        self.config = replace(base, preprocess=replace(base.preprocess, keep_size=True, keep_fps=True))
        default_key, default_points = default_sweep(self.config)
        self.sweep = sweep or default_key
        if sweep and sweep != default_key and not points:
            raise ConfigError(f"--sweep {sweep} needs its rate points: --points m3cvc...=V1,V2,...")
        self.values = [_typed(self.config, self.sweep, v) for v in (points or default_points)]
        self.overrides = dict(overrides or {})
        # clip name -> config overrides for that clip only (the ablation's equal keyframe counts)
        self.per_clip = {k: dict(v) for k, v in (per_clip or {}).items()}
        self.name = name or f"m3cvc:{profile_or_config}"
        if self.sweep.startswith("rate.") or self.config.rate.target_bpp or self.config.rate.target_kbps:
            from ..ratecontrol import CHOSEN_KEYS, check_not_chosen  # rate control would replace the value silently

            if self.sweep in CHOSEN_KEYS:
                raise ConfigError(f"{self.name}: its target rate makes rate control choose {self.sweep}, which cannot "
                                  "be swept then: sweep rate.target_bpp, or remove the target")  # fmt: skip

            check_not_chosen(self.config, f"{self.name} (sweeping {self.sweep})")
            for clip, values in self.per_clip.items():
                check_not_chosen(from_dict(M3Config, nested(values), "", self.config), f"{self.name} for {clip}")

    def rate_points(self) -> list[RatePoint]:
        short = self.sweep.rsplit(".", 1)[-1]
        return [RatePoint(f"{short}{v}", {self.sweep: v}) for v in self.values]

    def point_config(self, point: RatePoint, clip: Optional[str] = None) -> M3Config:
        config = from_dict(M3Config, nested(point.params), "", self.config)
        if clip is not None and clip in self.per_clip:
            config = from_dict(M3Config, nested(self.per_clip[clip]), "", config)
        return config

    def describe(self) -> dict[str, Any]:
        from .. import __version__

        cfg = to_dict(self.config)
        return {
            "description": (
                f"m3cvc {__version__} profile {self.config.profile}: keyframes {self.config.keyframes.selector}"
                f"/{self.config.keyframes.semantic}/{self.config.keyframes.motion}, keyframe codec "
                f"{self.config.keyframe_codec.backend}, reconstruction {self.config.reconstruct.backend} "
                f"({self.config.reconstruct.mode}); rate points sweep {self.sweep}"
            ),
            "versions": {"m3cvc": __version__},
            "settings": {"config": cfg, "sweep": self.sweep, "overrides": self.overrides,
                         **({"per_clip": self.per_clip} if self.per_clip else {})},
        }

    def run(self, clip: Clip, point: RatePoint) -> CodedVideo:
        from ..pipeline import Decoder, Encoder

        encoder = Encoder(self.point_config(point, clip.name))
        start = time.perf_counter()
        result = encoder.encode(ArraySource(clip.frames, clip.fps, clip.name))
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        frames = list(Decoder().decode(result.data))
        decode_s = time.perf_counter() - start
        # the stream is kept beside the anchors' (deleted with the work folder unless --keep-streams)
        stream = f"{slug(self.name)}_{slug(point.label)}.m3c"
        clip.workdir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(clip.workdir / stream, result.data)
        info = {"keyframes": len(result.keyframe_indices), "keyframe_indices": list(result.keyframe_indices), "stream": stream}
        if result.rate_plan is not None:  # what rate control chose for the point's target (as encode --json shows)
            from ..ratecontrol import summary

            info["rate_control"] = summary(result.rate_plan, len(result.data))
        return CodedVideo(len(result.data), frames, encode_s, decode_s, info)
