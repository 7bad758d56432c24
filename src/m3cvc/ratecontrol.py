"""Rate control of the lite profile: ``--target-bpp`` / ``--target-kbps`` choose keyframe spacing and QP.

In lite, the rate is the keyframe chain (plus a few hundred bytes of motion hints and header). Two knobs
set it: the keyframe QP (how good each keyframe is) and ``keyframes.max_interval`` (how many there are).
Measured with LPIPS on real clips (README, "Rate control"), the interpolated frames are lite's weakest
link wherever motion is local (a talking head under a static camera: PSNR stays near 21 dB whatever
the keyframe QP), while keyframes coarser than QP ~48 lose at every rate. So bits go to keyframe
*density* first and to keyframe *quality* second: among the candidates that land, the densest spacing
with QP <= ``QP_CAP``, then its lowest QP. On the measured grid (bigbuckbunny, carphone, 9 targets) this
rule came within 0.0005-0.015 LPIPS of the per-target best choice, where "lowest QP first" lost 0.033
on carphone.

One analysis pass over the video finds that point with exact byte counts (no model, no retry loop):
the frames are read once, and for every candidate spacing a decision track runs keyframe selection,
scene cuts and motion hints while the keyframe chain is coded at every candidate QP in parallel (x265
is cheap on keyframes alone: about 10-16 % of the frames per QP over all spacings). Each (spacing, QP)
candidate's stream is assembled exactly as the encoder would write it, so its size is known to the byte.
The choice:

1. candidates within +-``tolerance`` (10 %) of the target: the smallest spacing whose QP is at most
   ``QP_CAP`` (any QP when none is), then the lowest QP;
2. otherwise the largest candidate below the target (the target falls between ladder rungs or above
   the highest), and if every candidate is above it, the smallest one (the target is below reach):
   the encode says so.

Texts are not part of the plan (lite has none; with a describer they add their bytes to the result).
The encoder then runs once with the chosen settings, which reproduces the planned bytes exactly (the
pipeline is deterministic), and records the target in the header (keyframe codec params).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Callable, Iterable, Optional

import numpy as np

from .config import M3Config
from .errors import ConfigError

QPS = tuple(range(51, 28, -2))  # 51, 49, ..., 29: neighbouring QPs differ by 15-25 % in rate
INTERVALS = (32, 16, 8, 4)
TOLERANCE = 0.10
MAX_BPP = 24.0  # uncompressed 8-bit RGB: no target above it means anything
QP_CAP = 47  # keyframes coarser than this only when no finer candidate lands (they lose at every rate measured)


@dataclass(frozen=True)
class Candidate:
    interval: int
    qp: int
    bytes: int
    keyframes: int

    def bpp(self, pixels: int) -> float:
        return 8.0 * self.bytes / pixels


@dataclass(frozen=True)
class RatePlan:
    """The analysis result: the target, every candidate measured, and the chosen one."""

    target_bpp: float
    pixels: int  # frames x width x height, the bpp denominator
    candidates: tuple[Candidate, ...]
    chosen: Candidate
    within: bool  # the chosen candidate is within the tolerance of the target

    @property
    def predicted_bpp(self) -> float:
        return self.chosen.bpp(self.pixels)

    def note(self) -> str:
        c = self.chosen
        where = "within 10 %" if self.within else ("below reach" if c.bpp(self.pixels) > self.target_bpp else "closest below")
        return (
            f"rate control: target {self.target_bpp:.5f} bpp -> max_interval {c.interval}, QP {c.qp}: "
            f"{self.predicted_bpp:.5f} bpp ({where}; {len(self.candidates)} candidates measured)"
        )


def target_bpp(config: M3Config, width: int, height: int, fps: Fraction) -> Optional[float]:
    """The configured target in bpp (``rate.target_kbps`` converted with the coded size and rate)."""
    rate = config.rate
    for key in ("target_bpp", "target_kbps"):
        value = getattr(rate, key)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"rate.{key} must be a finite number >= 0 (0 = off), got {value}")
    if rate.target_bpp and rate.target_kbps:
        raise ConfigError("set rate.target_bpp or rate.target_kbps, not both")
    target = rate.target_kbps * 1000.0 / (float(fps) * width * height) if rate.target_kbps else rate.target_bpp
    if target and not (math.isfinite(target) and target <= MAX_BPP):
        raise ConfigError(f"a target of {target:g} bpp is beyond any keyframe chain (at most {MAX_BPP} bpp)")
    return target or None


def choose(candidates: Iterable[Candidate], target: float, pixels: int, tolerance: float = TOLERANCE) -> tuple[Candidate, bool]:
    """The rule of the module docstring."""
    cands = list(candidates)
    if not cands:
        raise ConfigError("rate control: no candidate settings")
    band = [c for c in cands if abs(c.bpp(pixels) / target - 1.0) <= tolerance]
    if band:
        fine = [c for c in band if c.qp <= QP_CAP] or band
        return min(fine, key=lambda c: (c.interval, c.qp)), True
    below = [c for c in cands if c.bpp(pixels) < target]
    if below:
        return max(below, key=lambda c: (c.bytes, -c.qp)), False
    return min(cands, key=lambda c: (c.bytes, c.qp)), False


class _QpWindow:
    """The candidate QPs of one analysis, decided on the first keyframe (shared by every track).

    The first keyframe is an IDR in every candidate stream; coded once at a probe QP, its size bounds the
    useful QPs from below: one whose IDR alone (estimated with HEVC's rule of thumb, half the bytes per
    +6 QP) would exceed the whole budget cannot land. The window keeps every QP from one step below the
    lowest feasible one (estimation margin) up to 51 (the fallbacks, needed when scene cuts add IDRs);
    without a frame count (unknown length) every QP stays.
    """

    PROBE_QP = 41

    def __init__(self, preset: str, budget_bytes: Optional[float]) -> None:
        self.preset, self.budget = preset, budget_bytes
        self.qps: Optional[tuple[int, ...]] = None

    def decide(self, frame: np.ndarray) -> tuple[int, ...]:
        if self.qps is None:
            self.qps = QPS
            if self.budget:
                from .keyframe_codec.hevc import HevcChainCodec

                idr = len(HevcChainCodec(self.PROBE_QP, self.preset).compress(frame))
                ascending = sorted(QPS)
                feasible = [i for i, q in enumerate(ascending) if idr * 2 ** ((self.PROBE_QP - q) / 6) <= self.budget]
                lo = max((feasible[0] if feasible else len(ascending) - 1) - 1, 0)
                self.qps = tuple(sorted(ascending[lo:], reverse=True))
        return self.qps


class _MultiQp:
    """Keyframe "codec" of an analysis track: codes each keyframe at every candidate QP, keeps the units."""

    name = "hevc"

    def __init__(self, window: _QpWindow, preset: str, target: float) -> None:
        self.window, self.preset, self.target = window, preset, target
        self.codecs: dict[int, Any] = {}
        self.units: dict[int, list[bytes]] = {}

    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False) -> bytes:
        from .keyframe_codec.hevc import HevcChainCodec, to_picture

        if not self.codecs:
            self.codecs = {qp: HevcChainCodec(qp, self.preset, self.target) for qp in self.window.decide(frame)}
            self.units = {qp: [] for qp in self.codecs}
        picture = to_picture(frame)  # converted once for every QP
        for qp, codec in self.codecs.items():
            self.units[qp].append(codec.compress(frame, text, intra=intra, picture=picture))
        return b""


def spaced(keyframes: Any, interval: int) -> Any:
    """The keyframe config at one candidate spacing: the fixed selector's period, or the composite
    selector's ``max_interval`` (its scores still add keyframes at cuts and fast changes)."""
    if keyframes.selector == "fixed":
        return replace(keyframes, interval=interval)
    return replace(keyframes, max_interval=interval, min_interval=min(keyframes.min_interval, interval))


def plan(
    config: M3Config,
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    fps: Fraction,
    target: float,
    progress: Optional[Callable[[int], None]] = None,
    frame_count: Optional[int] = None,
) -> RatePlan:
    """Measure every (spacing, QP) candidate on ``frames`` (one pass) and choose one for ``target`` bpp."""
    from .bitstream import Keyframe
    from .describe import NoneDescriber
    from .keyframes import build_selector
    from .pipeline import _HintCollector, _Track, assemble
    from .reconstruct import build_reconstructor

    if config.keyframe_codec.backend != "hevc":
        raise ConfigError("rate control chooses the HEVC keyframe chain's QP: it needs keyframe_codec.backend hevc")
    if not (math.isfinite(target) and 0 < target <= MAX_BPP):
        raise ConfigError(f"the target rate must be a positive number of at most {MAX_BPP} bpp, got {target}")
    preset = config.keyframe_codec.hevc.preset
    window = _QpWindow(preset, target * frame_count * width * height / 8 if frame_count else None)
    tracks = []
    for interval in INTERVALS:
        cfg = replace(config, keyframes=spaced(config.keyframes, interval))
        recon = build_reconstructor(cfg.reconstruct)
        hints = _HintCollector(recon.motion_estimator(), cfg.reconstruct.mode == "interpolation")
        codec = _MultiQp(window, preset, float(target))
        track = _Track(cfg, build_selector(cfg.keyframes), codec, NoneDescriber(), False, hints)
        tracks.append((interval, track, codec, hints, recon))
    count = 0
    for index, frame in enumerate(frames):
        for _, track, *_ in tracks:
            track.feed(index, frame)
        count = index + 1
        if progress:
            progress(1)
    if count == 0:
        from .errors import InputError

        raise InputError("the input video has no frames")
    pixels = count * width * height
    candidates = []
    for interval, track, codec, hints, recon in tracks:
        keyframes, kf_texts, clip_texts, frames_seen = track.finish()
        motion = hints.payload()
        for qp, units in codec.units.items():
            kfs = [Keyframe(k.index, u) for k, u in zip(keyframes, units)]
            _, data = assemble(
                config, width, height, Fraction(fps), frames_seen, codec.codecs[qp], recon, kfs, kf_texts, clip_texts, motion
            )
            candidates.append(Candidate(interval, qp, len(data), len(keyframes)))
    chosen, within = choose(candidates, target, pixels)
    return RatePlan(float(target), pixels, tuple(candidates), chosen, within)


def apply(config: M3Config, plan_: RatePlan) -> M3Config:
    """``config`` with the chosen spacing and QP (and the target recorded for the header)."""
    c = plan_.chosen
    return replace(
        config,
        keyframes=spaced(config.keyframes, c.interval),
        keyframe_codec=replace(config.keyframe_codec, hevc=replace(config.keyframe_codec.hevc, qp=c.qp, target_bpp=plan_.target_bpp)),
    )


def summary(plan_: RatePlan) -> dict[str, Any]:
    """JSON-ready description of a plan (for ``encode --json`` and the eval info)."""
    return {
        "target_bpp": plan_.target_bpp,
        "predicted_bpp": plan_.predicted_bpp,
        "within_tolerance": plan_.within,
        "max_interval": plan_.chosen.interval,
        "qp": plan_.chosen.qp,
        "candidates": len(plan_.candidates),
    }
