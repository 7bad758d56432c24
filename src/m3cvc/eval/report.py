"""Text and JSON summaries of results folders: R-D tables and BD-rates against an anchor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import InputError
from ..fileio import write_text_atomic
from .bdrate import compare, dataset_curve, metrics_present
from .results import METRICS


def _fmt(value: Optional[float], digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def bd_report(
    grouped: dict[str, dict[str, dict[str, Any]]], anchor: str, metrics: Sequence[str] = METRICS
) -> dict[str, Any]:
    """``{dataset: {metric: [comparison, ...]}}`` for every codec against ``anchor``."""
    report: dict[str, Any] = {}
    for dataset, results in sorted(grouped.items()):
        if anchor not in results:
            raise InputError(f"dataset {dataset}: no results of anchor {anchor!r} (have: {', '.join(sorted(results))})")
        usable = metrics_present(list(results.values()), metrics)
        report[dataset] = {
            m: [compare(results[anchor], results[name], m) for name in sorted(results) if name != anchor] for m in usable
        }
        for m in metrics:
            if m not in usable:
                report[dataset].setdefault("missing_metrics", []).append(m)
    return report


def format_bd(report: dict[str, Any]) -> str:
    lines = []
    for dataset, per_metric in report.items():
        missing = per_metric.get("missing_metrics", [])
        for metric, rows in per_metric.items():
            if metric == "missing_metrics" or not rows:
                continue
            lines.append(f"{dataset} / {metric} vs {rows[0]['anchor']}")
            lines.append(f"  {'codec':<28} {'BD-rate %':>10} {'BD-quality':>11} {'overlap q/r':>12} {'seq mean %':>11}  note")
            for r in rows:
                c = r["dataset_curve"]
                overlap = f"{c['overlap_quality']:.2f}/{c['overlap_rate']:.2f}"
                digits = 4 if metric in ("ms_ssim", "lpips", "clip_sim") else 2
                lines.append(
                    f"  {r['test']:<28} {_fmt(c['bd_rate'], 1, True):>10} {_fmt(c['bd_quality'], digits, True):>11} "
                    f"{overlap:>12} {_fmt(r['mean_sequence_bd_rate'], 1, True):>11}  {c['note']}"
                )
        if missing:
            lines.append(f"{dataset}: no BD for {', '.join(missing)} (metric missing for some codec)")
    return "\n".join(lines)


def format_rd_table(grouped: dict[str, dict[str, dict[str, Any]]], metrics: Sequence[str] = ("psnr", "ms_ssim")) -> str:
    """Each codec's dataset curve: one line per rate point with bpp and the metrics."""
    lines = []
    for dataset, results in sorted(grouped.items()):
        lines.append(f"{dataset}: dataset-mean R-D points")
        lines.append(f"  {'codec':<28} {'point':<12} {'bpp':>8} " + " ".join(f"{m:>9}" for m in metrics))
        for name in sorted(results):
            curves = [dataset_curve(results[name], m) for m in metrics]
            order = sorted(range(len(curves[0].rates)), key=lambda i: curves[0].rates[i])
            for i in order:
                vals = " ".join(f"{_fmt(c.values[i], 2 if m.startswith('psnr') else 4):>9}" for m, c in zip(metrics, curves))
                lines.append(f"  {name:<28} {curves[0].labels[i]:<12} {curves[0].rates[i]:>8.4f} {vals}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, json.dumps(report, indent=1) + "\n")
    return path
