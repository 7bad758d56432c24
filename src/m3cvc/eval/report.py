"""Text and JSON summaries of results folders: R-D tables and BD-rates against an anchor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import InputError
from ..fileio import write_text_atomic
from .bdrate import compare, dataset_curve, metrics_present
from .metrics import METRIC_NAMES, SPECS


def _fmt(value: Optional[float], digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def bd_report(
    grouped: dict[str, dict[str, dict[str, Any]]], anchor: str, metrics: Sequence[str] = METRIC_NAMES
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
            lines.append(f"  {'codec':<28} {'BD-rate %':>10} {'BD-quality':>11} {'overlap q/r':>12} {'seq mean %':>11} "
                         f"{'of seqs':>8}  note")  # fmt: skip
            for r in rows:
                c = r["dataset_curve"]
                note = c["note"]
                n = r.get("dataset_sequences")
                if n and not n["shared"] == n["anchor"] == n["test"]:
                    note = f"curves over the {n['shared']} shared sequences (anchor {n['anchor']}, test {n['test']}) {note}"
                overlap = f"{c['overlap_quality']:.2f}/{c['overlap_rate']:.2f}"
                digits = SPECS[metric].digits if metric in SPECS else 4
                lines.append(
                    f"  {r['test']:<28} {_fmt(c['bd_rate'], 1, True):>10} {_fmt(c['bd_quality'], digits, True):>11} "
                    f"{overlap:>12} {_fmt(r['mean_sequence_bd_rate'], 1, True):>11} {r.get('mean_sequence_count', ''):>8}  {note}"
                )
        if missing:
            lines.append(f"{dataset}: no BD for {', '.join(missing)} (not measured for every codec)")
    return "\n".join(lines)


def format_rd_table(grouped: dict[str, dict[str, dict[str, Any]]], metrics: Optional[Sequence[str]] = None) -> str:
    """Each codec's dataset curve: one line per rate point with bpp and the metrics (default: every
    metric that has values for some codec)."""
    lines = []
    for dataset, results in sorted(grouped.items()):
        if metrics is None:
            shown = [m for m in METRIC_NAMES if any(metrics_present([r], [m]) for r in results.values())]
        else:
            shown = list(metrics)
        lines += _rd_lines(dataset, results, shown)
    return "\n".join(lines)


def _rd_lines(dataset: str, results: dict[str, dict[str, Any]], metrics: Sequence[str]) -> list[str]:
    lines = [f"{dataset}: dataset-mean R-D points"]
    lines.append(f"  {'codec':<28} {'point':<18} {'bpp':>8} " + " ".join(f"{m:>9}" for m in metrics))
    for name in sorted(results):
        curves = [dataset_curve(results[name], m) for m in metrics]
        base = dataset_curve(results[name], "psnr")  # rates and labels do not depend on the metric
        rates, labels = base.rates, base.labels
        for i in sorted(range(len(rates)), key=lambda i: rates[i]):
            vals = " ".join(f"{_fmt(c.values[i], SPECS[m].digits if m in SPECS else 4):>9}" for m, c in zip(metrics, curves))
            lines.append(f"  {name:<28} {labels[i]:<18} {rates[i]:>8.4f} {vals}")
    return lines


def write_report(report: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, json.dumps(report, indent=1) + "\n")
    return path
