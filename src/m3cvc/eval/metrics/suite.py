"""The metric registry: every quality metric m3cvc measures, one place that says which can run and why not.

A metric has a *spec* (name, axis label, direction) and is computed by an
*engine*, registered by name and imported lazily (torch only for the learned ones). One engine can
produce several metrics in one pass (``pixel``: PSNR and MS-SSIM; ``vmaf``: VMAF and VMAF NEG from one
libvmaf run). A :class:`MetricSuite` is the set of engines of one run: loaded once, reused for every
rate point, and asked ``measure(refs, decs)`` for the per-frame values and their means.

=========  ========  ==========================================================================
name       engine    what (sequence value = mean over frames)
=========  ========  ==========================================================================
psnr       pixel     RGB PSNR in dB (also ``psnr_seq``: PSNR of the mean MSE)
ms_ssim    pixel     MS-SSIM per RGB channel, averaged
lpips      lpips     LPIPS (``lpips`` package, net ``alex`` by default or ``vgg``), lower is better
dists      dists     DISTS (``DISTS_pytorch``, VGG16 backbone), lower is better
vmaf       vmaf      VMAF v0.6.1 (libvmaf in imageio-ffmpeg's ffmpeg; also ``vmaf_hmean``)
vmaf_neg   vmaf      VMAF v0.6.1 NEG, the no-enhancement-gain model (also ``vmaf_neg_hmean``)
clip_sim   clip_sim  cosine of CLIP image embeddings (paper's semantic metric)
=========  ========  ==========================================================================

Nothing is ever computed from random weights: an engine whose weights or packages are missing is
*unavailable* with a one-line reason, and its metrics are stored as ``null``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ...errors import ConfigError
from ...registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    name: str
    engine: str
    label: str
    lower_is_better: bool = False
    digits: int = 4

SPECS: dict[str, MetricSpec] = {
    s.name: s
    for s in (
        MetricSpec("psnr", "pixel", "PSNR (dB)", digits=2),
        MetricSpec("ms_ssim", "pixel", "MS-SSIM"),
        MetricSpec("lpips", "lpips", "LPIPS", lower_is_better=True),
        MetricSpec("dists", "dists", "DISTS", lower_is_better=True),
        MetricSpec("vmaf", "vmaf", "VMAF v0.6.1", digits=2),
        MetricSpec("vmaf_neg", "vmaf", "VMAF NEG v0.6.1", digits=2),
        MetricSpec("clip_sim", "clip_sim", "CLIP-sim"),
    )
}
METRIC_NAMES: tuple[str, ...] = tuple(SPECS)
# values stored beside the metrics (not metrics of their own: no BD-rate, no --metrics name)
DERIVED = {"psnr_seq": "psnr", "vmaf_hmean": "vmaf", "vmaf_neg_hmean": "vmaf_neg"}
LABELS = {**{s.name: s.label for s in SPECS.values()}, "psnr_seq": "PSNR of mean MSE (dB)"}
LOWER_IS_BETTER = frozenset(s.name for s in SPECS.values() if s.lower_is_better)

ENGINES: Registry["MetricEngine"] = Registry("metric engine")
ENGINES.register("pixel", "m3cvc.eval.metrics.pixel:PixelEngine")
ENGINES.register("lpips", "m3cvc.eval.metrics.learned:Lpips")
ENGINES.register("dists", "m3cvc.eval.metrics.learned:Dists")
ENGINES.register("clip_sim", "m3cvc.eval.metrics.learned:ClipSim")
ENGINES.register("vmaf", "m3cvc.eval.metrics.vmaf:Vmaf")


def parse_metrics(text: str) -> list[str]:
    """``"psnr,lpips"`` -> names, checked against the registry (``all`` = every metric)."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    if names == ["all"]:
        return list(METRIC_NAMES)
    unknown = [m for m in names if m not in SPECS]
    if unknown or not names:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METRIC_NAMES)}")
    return list(dict.fromkeys(names))


@dataclass
class MetricOptions:
    """Settings of the learned / external metrics (the CLI's ``--lpips-net`` etc.)."""

    lpips_net: str = "alex"
    lpips_backbone: Optional[str] = None
    dists_backbone: Optional[str] = None
    clip_model: str = "openai/clip-vit-base-patch32"
    device: str = "cpu"
    batch: int = 4  # frames per forward pass of LPIPS
    dists_cache_gib: float = 3.0  # reference-frame VGG features kept across rate points (DISTS)


@dataclass
class MetricValue:
    """One metric of one sequence: the mean over frames, the per-frame values, and derived values."""

    mean: float
    per_frame: list[float]
    extra: dict[str, float] = field(default_factory=dict)


class Unavailable(Exception):
    """Raised by an engine's ``load``: the one-line reason it cannot run here."""


class MetricEngine(ABC):
    """Computes one or more metrics (``names``) of frame sequences; loaded on first use, then reused.

    Frames are RGB ``uint8`` arrays of shape ``(H, W, 3)``; both sequences have the same length.
    """

    def __init__(self, names: Sequence[str], options: MetricOptions) -> None:
        self.names = tuple(names)
        self.options = options
        self.reason: Optional[str] = None
        self._loaded = False

    def available(self) -> bool:
        if not self._loaded:
            self._loaded = True
            try:
                self.load()
            except Unavailable as exc:
                self.reason = str(exc)
        return self.reason is None

    @abstractmethod
    def load(self) -> None:
        """Load networks / check tools, or raise :class:`Unavailable`."""

    @abstractmethod
    def compute(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> dict[str, MetricValue]:
        """Every metric of ``names`` for these frames."""

    def info(self, name: str) -> dict[str, Any]:
        """Versions / weights / settings behind metric ``name``'s numbers (stored in the results header)."""
        return {}

    def measure(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> Optional[dict[str, MetricValue]]:
        """``compute`` when available, else ``None``."""
        if not self.available():
            return None
        if len(refs) != len(decs) or not refs:
            from ...errors import InputError

            raise InputError(f"cannot measure {len(decs)} decoded frames against {len(refs)} reference frames")
        return self.compute(refs, decs)


def mean_value(per_frame: Sequence[float], **extra: float) -> MetricValue:
    values = [float(v) for v in per_frame]
    return MetricValue(float(np.mean(values)), values, dict(extra))


class MetricSuite:
    """The engines that compute ``names`` for one run (each loaded once)."""

    def __init__(self, names: Sequence[str], options: Optional[MetricOptions] = None) -> None:
        self.names = list(dict.fromkeys(names))
        unknown = [n for n in self.names if n not in SPECS]
        if unknown:
            raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRIC_NAMES)}")
        self.options = options or MetricOptions()
        by_engine: dict[str, list[str]] = {}
        for n in self.names:
            by_engine.setdefault(SPECS[n].engine, []).append(n)
        self.engines = [ENGINES.create(engine, group, self.options) for engine, group in by_engine.items()]
        self.seconds: dict[str, float] = {}  # wall time of each engine in the last measure()

    def unavailable(self) -> dict[str, str]:
        """``{metric: one-line reason}`` of every requested metric that cannot run here."""
        out = {}
        for e in self.engines:
            if not e.available():
                out.update({n: str(e.reason) for n in e.names})
        return out

    def available_names(self) -> list[str]:
        return [n for e in self.engines if e.available() for n in e.names]

    def info(self) -> dict[str, Any]:
        """Per metric: available, reason or the engine's versions / weights."""
        out: dict[str, Any] = {}
        for e in self.engines:
            ok = e.available()
            for n in e.names:
                out[n] = dict(e.info(n), available=True) if ok else {"available": False, "reason": e.reason}
        return out

    def measure(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> tuple[dict[str, Any], dict[str, list[float]]]:
        """``(values, per_frame)``: every requested metric's mean (``None`` when unavailable) plus derived
        values (``psnr_seq``, ``vmaf_hmean``...), and the per-frame arrays of the metrics that ran."""
        values: dict[str, Any] = {}
        per_frame: dict[str, list[float]] = {}
        self.seconds = {}
        for e in self.engines:
            start = time.perf_counter()
            result = e.measure(refs, decs)
            if result:
                self.seconds["+".join(e.names)] = round(time.perf_counter() - start, 4)
            for n in e.names:
                v = result.get(n) if result else None
                values[n] = v.mean if v else None
                if v:
                    values.update(v.extra)
                    per_frame[n] = v.per_frame
        return values, per_frame
