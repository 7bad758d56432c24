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

One analysis pass over the video finds that point with exact byte counts (no retry loop): the frames
are read once, and for every candidate spacing a decision track runs keyframe selection, scene cuts and
motion hints while its keyframe chain is coded at its candidate QPs (x265 is cheap on keyframes alone,
and the QPs of a keyframe are coded concurrently on ``workers`` threads). Each (spacing, QP) candidate
that stays to the end has its stream assembled exactly as the encoder would write it, so its size is
known to the byte. Coding every QP at every spacing would cost 4 x 12 x265 chains, so the pass skips
what cannot be chosen (nothing is skipped without a frame count):

- QPs whose first keyframe alone (an IDR, estimated from one probe encode) exceeds the budget;
- a QP whose units so far add up to more than the band's top (exact: its stream can only grow), or
  whose *optimistic* projection does (the keyframes ahead at a third of its mean predicted-keyframe
  size; ``low``);
- the densest spacing (4) leads: the other tracks hold their keyframes back until the lead has coded
  its first predicted keyframe at every QP, then start with the QPs whose optimistic projection from
  the lead's sizes is within the band's top. A spacing that cannot land even optimistically at QP 51
  is dropped (except the sparsest: the smallest candidate of all); a spacing whose *pessimistic*
  projection at ``QP_CAP`` (every keyframe ahead as large as an IDR, times 1.5; ``high``) is under the
  band's top will be chosen or beaten by a denser one, so spacings sparser than its next sparser one
  are dropped.

Only "too expensive" is decided by projection, and generously; nothing is dropped for being too cheap
(those are the fastest encodes). On the quick dataset and the lite_rd clips the choice was the same
as with every candidate coded, at a half to a third of the time.
The choice:

1. candidates within +-``tolerance`` (10 %) of the target: the smallest spacing whose QP is at most
   ``QP_CAP`` (any QP when none is), then the lowest QP;
2. otherwise the largest candidate below the target (the target falls between ladder rungs or above
   the highest), and if every candidate is above it, the smallest one (the target is below reach):
   the encode says so.

Texts are not part of the plan (lite has none; with a describer they add their bytes to the result).
The chosen candidate's stream, assembled by the analysis exactly as the encoder would write it (the
target recorded in the header's keyframe codec params), is the encoder's output when no describer runs;
with a describer the encoder codes the video once more with the chosen settings, which reproduces the
planned keyframe bytes exactly (the pipeline is deterministic) and adds the texts.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable, Iterable, Optional

import numpy as np

from .config import M3Config
from .errors import ConfigError

QPS = tuple(range(51, 28, -2))  # 51, 49, ..., 29: neighbouring QPs differ by 15-25 % in rate
INTERVALS = (32, 16, 8, 4)
TOLERANCE = 0.10
MAX_BPP = 24.0  # uncompressed 8-bit RGB: no target above it means anything
MARGIN = 1.5  # projection margin of the drops on the way
COUNT_MARGIN = 1.25  # a candidate is dropped on the way only when 25 % more frames than counted could not save it
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
    # the chosen candidate's stream and bytes as the analysis assembled them: exactly what the encoder writes
    # when nothing but the analysis decides the stream (no describer), so it need not code the video again
    stream: Optional[Any] = field(default=None, compare=False, repr=False)
    data: Optional[bytes] = field(default=None, compare=False, repr=False)

    @property
    def predicted_bpp(self) -> float:
        return self.chosen.bpp(self.pixels)

    def note(self) -> str:
        c = self.chosen
        where = "within 10 %" if self.within else ("below reach" if c.bpp(self.pixels) > self.target_bpp else "closest below")
        return (
            f"rate control: target {self.target_bpp:.5f} bpp -> max_interval {c.interval}, QP {c.qp}: "
            f"{self.predicted_bpp:.5f} bpp ({where}; {len(self.candidates)} candidate{'s' if len(self.candidates) != 1 else ''} measured)"
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
    if rate.target_kbps and not target > 0:
        raise ConfigError(f"rate.target_kbps {rate.target_kbps:g} is too small to be a rate at {width}x{height}, {float(fps):g} fps")
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
    """Keyframe "codec" of an analysis track: codes each keyframe at its candidate QPs, keeps the units.

    ``budget``: the target's bytes for ``frames`` frames (0 or no frame count: nothing is ever
    dropped); the band's top (``ceiling``) has a margin for an estimated frame count. A *deferred* track
    keeps its keyframes in a backlog until :meth:`release`. The QPs of one keyframe are coded
    concurrently on ``pool`` (each x265 instance is single-threaded and the units are collected in QP
    order, so the bytes do not depend on the worker count)."""

    name = "hevc"

    def __init__(
        self, window: _QpWindow, preset: str, target: float, pool: Any = None, *, interval: int = 1,
        frames: int = 0, budget: float = 0.0, tolerance: float = TOLERANCE, deferred: bool = False,
    ) -> None:  # fmt: skip
        self.window, self.preset, self.target, self.pool = window, preset, target, pool
        self.interval, self.frames = interval, frames
        self.ceiling = budget * (1 + tolerance) * COUNT_MARGIN if budget and frames else None
        self.seen = 0  # frames of the video fed so far (set by the analysis loop)
        self.codecs: dict[int, Any] = {}
        self.units: dict[int, list[bytes]] = {}
        self.dropped: set[int] = set()
        self.backlog: Optional[list[tuple[np.ndarray, bool, int]]] = [] if deferred else None

    # ---------------------------------------------------------------------------------- coding
    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False) -> bytes:
        if self.backlog is not None:
            self.backlog.append((frame, intra, self.seen))
            return b""
        if not self.codecs:
            self._open(self.window.decide(frame))
        self._code(frame, intra)
        return b""

    def _open(self, qps: Iterable[int]) -> None:
        from .keyframe_codec.hevc import HevcChainCodec

        self.codecs = {qp: HevcChainCodec(qp, self.preset, self.target) for qp in sorted(qps, reverse=True)}
        self.units = {qp: [] for qp in self.codecs}

    def _code(self, frame: np.ndarray, intra: bool) -> None:
        from .keyframe_codec.hevc import prepare, to_picture

        live = [qp for qp in self.codecs if qp not in self.dropped]
        first = not self.units[live[0]]
        picture = to_picture(frame)  # converted once for every QP
        prepare(picture, len(self.units[live[0]]), intra or first)

        def code(qp: int) -> bytes:
            return self.codecs[qp].compress(frame, intra=intra, picture=picture)

        coded = list(self.pool.map(code, live)) if self.pool is not None and len(live) > 1 else [code(q) for q in live]
        for qp, unit in zip(live, coded):
            self.units[qp].append(unit)
        self._prune(live)

    def _prune(self, live: list[int]) -> None:
        """Drop the QPs that are too expensive to land: beyond the ceiling already (exact), or, once the
        track has a predicted keyframe, optimistically projected beyond ``MARGIN`` times it."""
        if self.ceiling is None:
            return
        top = max(self.codecs)
        drop = {qp for qp in live if qp != top and self.low(qp) > self.ceiling}
        for qp in drop:
            self.dropped.add(qp)
            self.codecs[qp] = None  # frees the encoder

    def measured(self) -> dict[int, list[bytes]]:
        """The units of every QP that stayed a candidate to the end."""
        return {qp: units for qp, units in self.units.items() if qp not in self.dropped}

    # ------------------------------------------------------------------------------ projection
    def keyframes_ahead(self) -> int:
        """Keyframes still to come at one per ``interval`` (the counted frames, not the margin)."""
        return max(0, math.ceil((self.frames - self.seen) / self.interval))

    def low(self, qp: int) -> float:
        """Optimistic final bytes at ``qp``: the units so far, plus (once there is a predicted keyframe)
        the keyframes ahead at half the mean predicted-keyframe size, divided by ``MARGIN``."""
        units = self.units[qp]
        done = sum(map(len, units))
        if len(units) < 2:
            return done
        return max(done, (done + self.keyframes_ahead() * 0.5 * sum(map(len, units[1:])) / (len(units) - 1)) / MARGIN)

    def high(self, qp: int) -> float:
        """Pessimistic final bytes at ``qp``: every keyframe ahead as large as the largest unit so far
        (an IDR), times ``MARGIN``."""
        units = self.units[qp]
        return (sum(map(len, units)) + self.keyframes_ahead() * max(map(len, units))) * MARGIN

    def outlook(self, lead: "_MultiQp") -> tuple[dict[int, float], dict[int, float]]:
        """Optimistic and pessimistic final bytes per QP (:meth:`low`, :meth:`high`). A deferred track,
        which has coded nothing yet, takes the lead's first IDR and first predicted keyframe: its
        keyframes after the first at half the lead's predicted keyframe (optimistic, divided by
        ``MARGIN``) or each as large as the IDR (pessimistic, times ``MARGIN``)."""
        if lead is self or self.backlog is None:
            qps = list(self.measured())
            return {q: self.low(q) for q in qps}, {q: self.high(q) for q in qps}
        count = max(1, math.ceil(max(self.frames - 1, 0) / self.interval) + 1)
        known = [q for q in (self.window.qps or QPS) if q in lead.units and len(lead.units[q]) > 1]
        idr = {q: len(lead.units[q][0]) for q in known}
        low = {q: (idr[q] + (count - 1) * 0.5 * len(lead.units[q][1])) / MARGIN for q in known}
        high = {q: count * max(idr[q], len(lead.units[q][1])) * MARGIN for q in known}
        return low, high

    def release(self, lead: "_MultiQp") -> None:
        """Start a deferred track with the QPs whose optimistic size (:meth:`outlook`) is within the
        ceiling (and the highest QP), then code its backlog."""
        low, _ = self.outlook(lead)
        backlog, self.backlog = self.backlog or [], None
        qps = list(self.window.qps or QPS)
        if self.ceiling is not None and low:
            qps = sorted({q for q in low if low[q] <= self.ceiling} | {max(qps)}, reverse=True)
        for frame, intra, seen in backlog:
            if not self.codecs:
                self._open(qps)
            self.seen = seen
            self._code(frame, intra)


def _needed(codecs: list[_MultiQp], lead: _MultiQp) -> list[bool]:
    """Which tracks (sparse to dense) can still matter once the lead's first predicted keyframe is known.

    The choice takes the densest spacing with a QP <= ``QP_CAP`` in the band. If a spacing is surely
    affordable there (its pessimistic size at the highest such QP under the band's ceiling), the choice
    is that spacing or a denser one, so spacings sparser than its next sparser one (a safety net for a
    band that falls between two QPs) cannot matter. A spacing that cannot land even optimistically at
    its highest QP cannot matter either, except the sparsest, the smallest candidate of all."""
    keep = [True] * len(codecs)
    if lead.ceiling is None:
        return keep
    outlooks = [c.outlook(lead) for c in codecs]
    for i, (low, _) in enumerate(outlooks):
        if i and low and min(low.values()) > lead.ceiling:
            keep[i] = False
    for i in range(len(codecs) - 1, -1, -1):  # densest first
        high = outlooks[i][1]
        capped = [q for q in high if q <= QP_CAP]
        if keep[i] and capped and high[max(capped)] <= lead.ceiling:
            for j in range(i - 1):  # sparser than the next sparser spacing
                keep[j] = False
            break
    return keep


def default_workers() -> int:
    """Encoder threads of the analysis: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


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
    tolerance: float = TOLERANCE,
    workers: int = 0,
) -> RatePlan:
    """Measure every (spacing, QP) candidate on ``frames`` (one pass) and choose one for ``target`` bpp.

    ``frame_count`` (exact or estimated; None if unknown) sizes the budget that narrows the QPs and
    drops candidates on the way (module doc); ``workers``: encoder threads (0: :func:`default_workers`)."""
    from .bitstream import Keyframe, write_stream
    from .describe import NoneDescriber
    from .keyframe_codec import with_refine
    from .keyframes import build_selector
    from .pipeline import _HintCollector, _Track, assemble
    from .reconstruct import build_reconstructor

    if config.keyframe_codec.backend != "hevc":
        raise ConfigError("rate control chooses the HEVC keyframe chain's QP: it needs keyframe_codec.backend hevc")
    if not (math.isfinite(target) and 0 < target <= MAX_BPP):
        raise ConfigError(f"the target rate must be a positive number of at most {MAX_BPP} bpp, got {target}")
    preset = config.keyframe_codec.hevc.preset
    budget = target * frame_count * width * height / 8 if frame_count else None
    window = _QpWindow(preset, budget)
    with ThreadPoolExecutor(workers or default_workers(), thread_name_prefix="m3cvc-rate") as pool:
        tracks = []
        for interval in INTERVALS:  # sparse to dense: the last, densest track leads
            cfg = replace(config, keyframes=spaced(config.keyframes, interval))
            recon = build_reconstructor(cfg.reconstruct)
            hints = _HintCollector(recon.motion_estimator(), cfg.reconstruct.mode == "interpolation")
            codec = _MultiQp(
                window, preset, float(target), pool, interval=interval, frames=frame_count or 0,
                budget=budget or 0.0, tolerance=tolerance, deferred=interval != INTERVALS[-1],
            )  # fmt: skip
            track = _Track(cfg, build_selector(cfg.keyframes), codec, NoneDescriber(), False, hints)
            tracks.append((interval, track, codec, hints, recon, cfg))
        lead = tracks[-1][2]
        waiting = [t[2] for t in tracks[:-1]]
        count = 0
        for index, frame in enumerate(frames):
            for _, track, codec, *_ in tracks:
                codec.seen = index + 1
                track.feed(index, frame)
            count = index + 1
            if waiting and lead.units and len(next(iter(lead.units.values()))) > 1:
                # the lead's first predicted keyframe is known: drop the tracks that cannot matter,
                # start the others
                keep = _needed([t[2] for t in tracks], lead)
                tracks = [t for t, k in zip(tracks, keep) if k]
                for codec in waiting:
                    if any(t[2] is codec for t in tracks):
                        codec.release(lead)
                waiting = []
            if progress:
                progress(1)
        if count == 0:
            from .errors import InputError

            raise InputError("the input video has no frames")
        finished = [track.finish() for _, track, *_ in tracks]  # may code a tail keyframe
        for codec in waiting:  # a video too short for the lead's second keyframe: every QP
            codec.release(codec)
    pixels = count * width * height
    candidates, streams = [], {}
    for (interval, _, codec, hints, recon, cfg), (keyframes, kf_texts, clip_texts, frames_seen) in zip(tracks, finished):
        motion = hints.payload()
        for qp, units in codec.measured().items():
            kfs = [Keyframe(k.index, u, k.trigger) for k, u in zip(keyframes, units)]
            header_codec = with_refine(codec.codecs[qp], cfg.keyframe_codec)  # the codec the header will name
            stream, data = assemble(
                cfg, width, height, Fraction(fps), frames_seen, header_codec, recon, kfs, kf_texts, clip_texts, motion
            )
            candidates.append(Candidate(interval, qp, len(data), len(keyframes)))
            streams[candidates[-1]] = stream  # its units are held anyway; the bytes are written again below
    chosen, within = choose(candidates, target, pixels, tolerance)
    data = write_stream(streams[chosen], config.text.codec)
    return RatePlan(float(target), pixels, tuple(candidates), chosen, within, streams[chosen], data)


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
