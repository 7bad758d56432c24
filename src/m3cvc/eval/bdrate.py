"""Bjontegaard deltas between codecs' R-D curves, with the ``bjontegaard`` package (Akima, or PCHIP where
Akima overshoots).

Rate is bpp; quality is a metric oriented so that higher is better (LPIPS and DISTS are negated internally).

- BD-rate (%): the mean bitrate difference of the test codec against the anchor at equal quality,
  integrated over the quality interval both curves cover. Negative = the test codec saves bits.
- BD-quality: the mean metric difference (test - anchor) at equal rate over the shared log-rate
  interval, in the metric's own units (dB for PSNR). For LPIPS and DISTS it is reported as a plain
  difference, so there negative is better.
- overlap: the shared interval's share of the union of both intervals (0..1), for quality (BD-rate) and
  log-rate (BD-quality). With no overlap the delta is ``None``; the package warns below 75 %.

Interpolation: Akima (the package's recommendation, Herglotz et al. 2022, the most accurate against densely
measured curves), unless its interpolant of either curve leaves, somewhere in the integration interval,
the range of the two measured points around it. Akima does that next to points whose base values nearly
coincide (two rate-controlled points 0.03 dB apart gave an interpolated rate ten times every measured one
and a BD-rate of +117 % where PCHIP and the cubic fit give +36 % / +35 %); an R-D curve that rises past its
own points is no R-D curve. Then both curves use PCHIP (the JVET / JCT-VC common test conditions'
interpolation, which never overshoots) and the result says so (``interpolation``, ``note``).

Curves: a dataset curve averages bpp and metric over the sequences at each rate point present in every
sequence. Points with a non-finite metric (lossless PSNR) are dropped. A curve whose quality does not
rise with rate is flagged ``monotonic: false`` and its points are sorted by quality for BD-rate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import BackendError
from .metrics import LOWER_IS_BETTER
METHOD = "akima"
FALLBACK = "pchip"  # where Akima overshoots (module doc)


@dataclass(frozen=True)
class Curve:
    rates: tuple[float, ...]  # bpp
    values: tuple[Optional[float], ...]  # the metric as stored (LPIPS not negated); None = missing
    labels: tuple[str, ...] = ()  # rate point labels, when known

    def clean(self) -> "Curve":
        """Usable points only (positive rate, finite metric), sorted by rate."""
        labels = self.labels or ("",) * len(self.rates)
        pts = sorted(
            (r, v, lab) for r, v, lab in zip(self.rates, self.values, labels) if r > 0 and v is not None and math.isfinite(v)
        )
        return Curve(tuple(p[0] for p in pts), tuple(p[1] for p in pts), tuple(p[2] for p in pts))


@dataclass(frozen=True)
class BDResult:
    bd_rate: Optional[float]
    bd_quality: Optional[float]
    overlap_quality: float
    overlap_rate: float
    points: tuple[int, int]
    monotonic: bool
    note: str = ""
    # the interpolation of each delta: akima, or pchip where Akima overshoots
    interpolation: dict[str, str] = field(default_factory=lambda: {"bd_rate": METHOD, "bd_quality": METHOD})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bjontegaard() -> Any:
    try:
        import bjontegaard
    except ImportError:
        raise BackendError("BD-rate needs the bjontegaard package: pip install 'm3cvc[eval]'") from None
    return bjontegaard


def overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Shared interval of two point sets as a share of their union (the bjontegaard definition)."""
    lo, hi = max(min(a), min(b)), min(max(a), max(b))
    span = max(max(a), max(b)) - min(min(a), min(b))
    if span <= 0:
        return 1.0
    return float(max(hi - lo, 0.0) / span)


def _monotonic(values: Sequence[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


def _by_quality(rates: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by quality with repeated quality values merged (Akima needs strictly increasing x)."""
    order = np.argsort(quality, kind="stable")
    q, r = quality[order], rates[order]
    keep = np.concatenate([[True], np.diff(q) > 0])
    return r[keep], q[keep]


def _by_rate(rates: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by rate with repeated rates merged to their best quality (two rate points of a
    rate-controlled codec can land on the same stream; Akima needs strictly increasing x)."""
    order = np.lexsort((-quality, rates))
    r, q = rates[order], quality[order]
    keep = np.concatenate([[True], np.diff(r) > 0])
    return r[keep], q[keep]


def _overshoots(f: Any, x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> bool:
    """Whether the interpolant ``f`` of the points ``(x, y)`` leaves, somewhere in ``[lo, hi]``, the range of
    the two points around it."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    for i in range(len(x) - 1):
        a, b = max(x[i], lo), min(x[i + 1], hi)
        if a >= b:
            continue
        values = f(np.linspace(a, b, 33))
        low, high = min(y[i], y[i + 1]), max(y[i], y[i + 1])
        slack = 1e-9 * max(1.0, abs(high), abs(low))
        if np.any(values < low - slack) or np.any(values > high + slack):
            return True
    return False


def _delta(fn: Any, ar: np.ndarray, aq: np.ndarray, tr: np.ndarray, tq: np.ndarray, by_rate: bool) -> tuple[float, str]:
    """``fn`` (``bjontegaard.bd_rate`` or ``bd_psnr``) with Akima, or PCHIP where Akima overshoots (module doc)."""
    value, f_anchor, f_test = fn(ar, aq, tr, tq, METHOD, require_matching_points=False, interpolators=True, min_overlap=0)
    if by_rate:  # the package interpolates quality over log10(rate)
        anchor_xy, test_xy = (np.log10(ar), aq), (np.log10(tr), tq)
    else:  # ... and log10(rate) over quality
        anchor_xy, test_xy = (aq, np.log10(ar)), (tq, np.log10(tr))
    lo, hi = max(anchor_xy[0].min(), test_xy[0].min()), min(anchor_xy[0].max(), test_xy[0].max())  # integration
    if _overshoots(f_anchor, *anchor_xy, lo, hi) or _overshoots(f_test, *test_xy, lo, hi):
        return float(fn(ar, aq, tr, tq, FALLBACK, require_matching_points=False, min_overlap=0)), FALLBACK
    return float(value), METHOD


def bd(anchor: Curve, test: Curve, metric: str) -> BDResult:
    """BD-rate and BD-quality of ``test`` against ``anchor`` for one metric."""
    a, t = anchor.clean(), test.clean()
    if len(a.rates) < 2 or len(t.rates) < 2:
        return BDResult(None, None, 0.0, 0.0, (len(a.rates), len(t.rates)), True, "fewer than 2 usable points")
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    ar, aq = np.asarray(a.rates), sign * np.asarray(a.values)
    tr, tq = np.asarray(t.rates), sign * np.asarray(t.values)
    # judged after merging repeated rates (rate-controlled points can land on the same stream)
    monotonic = _monotonic(_by_rate(ar, aq)[1]) and _monotonic(_by_rate(tr, tq)[1])
    ov_q = overlap(aq, tq)
    ov_r = overlap(np.log10(ar), np.log10(tr))
    bj = _bjontegaard()
    bd_rate = bd_quality = None
    notes = []
    methods = [METHOD, METHOD]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ov_q > 0:
            (ar_q, aq_q), (tr_q, tq_q) = _by_quality(ar, aq), _by_quality(tr, tq)
            if len(aq_q) >= 2 and len(tq_q) >= 2:
                bd_rate, methods[0] = _delta(bj.bd_rate, ar_q, aq_q, tr_q, tq_q, by_rate=False)
        else:
            notes.append("quality ranges do not overlap")
        if ov_r > 0:
            (ar_r, aq_r), (tr_r, tq_r) = _by_rate(ar, aq), _by_rate(tr, tq)
            if len(ar_r) >= 2 and len(tr_r) >= 2:
                value, methods[1] = _delta(bj.bd_psnr, ar_r, aq_r, tr_r, tq_r, by_rate=True)
                bd_quality = sign * value
        else:
            notes.append("rate ranges do not overlap")
    if not monotonic:
        notes.append("quality does not rise monotonically with rate")
    switched = [name for name, m in zip(("BD-rate", "BD-quality"), methods) if m != METHOD]
    if switched:
        notes.append(f"{' and '.join(switched)} by PCHIP (Akima overshoots between near-equal points)")
    return BDResult(
        _finite(bd_rate), _finite(bd_quality), ov_q, ov_r, (len(ar), len(tr)), monotonic, "; ".join(notes),
        {"bd_rate": methods[0], "bd_quality": methods[1]},
    )  # fmt: skip


def _finite(x: Optional[float]) -> Optional[float]:
    return x if x is not None and math.isfinite(x) else None


def sequence_curve(seq: dict[str, Any], metric: str) -> Curve:
    pts = seq["points"]
    return Curve(tuple(p["bpp"] for p in pts), tuple(p["metrics"].get(metric) for p in pts), tuple(p["point"] for p in pts))


def dataset_curve(results: dict[str, Any], metric: str) -> Curve:
    """Mean bpp and mean metric over sequences at each rate point that every sequence has."""
    seqs = list(results["sequences"].values())
    if not seqs:
        return Curve((), ())
    rates, values, labels = [], [], []
    for label in [p["point"] for p in seqs[0]["points"]]:
        pts = [next((p for p in s["points"] if p["point"] == label), None) for s in seqs]
        if any(p is None for p in pts):
            continue
        vals = [p["metrics"].get(metric) for p in pts]
        rates.append(float(np.mean([p["bpp"] for p in pts])))
        usable = all(v is not None and math.isfinite(v) for v in vals)
        values.append(float(np.mean(vals)) if usable else None)
        labels.append(label)
    return Curve(tuple(rates), tuple(values), tuple(labels))


def _only(results: dict[str, Any], names: set) -> dict[str, Any]:
    return dict(results, sequences={k: v for k, v in results["sequences"].items() if k in names})


def compare(anchor: dict[str, Any], test: dict[str, Any], metric: str) -> dict[str, Any]:
    """BD of ``test`` vs ``anchor`` on the dataset curve, plus per shared sequence and their mean. The dataset
    curves average the sequences both have (means over different sets would compare different content);
    ``dataset_sequences`` says how many that is of each side's."""
    shared = set(anchor["sequences"]) & set(test["sequences"])
    overall = bd(dataset_curve(_only(anchor, shared), metric), dataset_curve(_only(test, shared), metric), metric)
    per_seq = {}
    for name, seq in test["sequences"].items():
        if name in anchor["sequences"]:
            per_seq[name] = bd(sequence_curve(anchor["sequences"][name], metric), sequence_curve(seq, metric), metric)
    rates = [r.bd_rate for r in per_seq.values() if r.bd_rate is not None]
    return {
        "metric": metric,
        "anchor": anchor["codec"]["name"],
        "test": test["codec"]["name"],
        "dataset_curve": overall.as_dict(),
        "mean_sequence_bd_rate": float(np.mean(rates)) if rates else None,
        "mean_sequence_count": f"{len(rates)}/{len(per_seq)}",  # sequences with a BD-rate / shared ones
        # sequences in the dataset curves, and each side's
        "dataset_sequences": {"shared": len(shared), "anchor": len(anchor["sequences"]), "test": len(test["sequences"])},
        "sequences": {k: v.as_dict() for k, v in per_seq.items()},
    }


def metrics_present(results: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[str]:
    """The metrics with at least one non-null value in every codec's results."""
    out = []
    for m in metrics:
        if all(
            any(p["metrics"].get(m) is not None for s in r["sequences"].values() for p in s["points"]) for r in results
        ):
            out.append(m)
    return out
