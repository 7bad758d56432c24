"""R-D plots like the paper's Fig. 4: one figure per dataset and metric, every codec's dataset curve.

Written as PNG and SVG (matplotlib, Agg backend, fixed SVG hash salt and no date metadata, so the same
results give the same files). Codecs whose metric is null everywhere are left out of that figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import BackendError
from ..fileio import atomic_path
from .bdrate import dataset_curve
from .metrics import LABELS, LOWER_IS_BETTER
_MARKERS = "osD^v<>ph*"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, SVG ids salted for repeatable files (BackendError if absent)."""
    try:
        import matplotlib
    except ImportError:
        raise BackendError("plots need matplotlib: pip install 'm3cvc[eval]'") from None
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "m3cvc"
    import matplotlib.pyplot as plt

    return plt


def rd_figure(dataset: str, results: dict[str, dict[str, Any]], metric: str) -> Any:
    """The R-D figure of one dataset and metric (every codec's dataset curve), or None without data."""
    curves = []
    for name in sorted(results):
        c = dataset_curve(results[name], metric).clean()
        if c.rates:
            curves.append((name, c))
    if not curves:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.6), dpi=120)
    for i, (name, c) in enumerate(curves):
        ax.plot(c.rates, c.values, marker=_MARKERS[i % len(_MARKERS)], linewidth=1.5, markersize=5, label=name)
    ax.set_xlabel("bpp")
    ax.set_ylabel(LABELS.get(metric, metric) + (" (lower is better)" if metric in LOWER_IS_BETTER else ""))
    ax.set_title(f"{dataset}: {LABELS.get(metric, metric)}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: Any, path: Path, fmt: str) -> Path:
    """Write ``fig`` as ``fmt`` (png, svg) atomically; SVGs carry no date, so the same figure gives the same bytes."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return path


def plot_metric(dataset: str, results: dict[str, dict[str, Any]], metric: str, folder: Path) -> list[Path]:
    """Write ``folder/<dataset>_<metric>.png`` and ``.svg``; return the paths (none if no data)."""
    fig = rd_figure(dataset, results, metric)
    if fig is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{dataset}_{metric}")
    paths = [save_figure(fig, folder / f"{stem}.{ext}", ext) for ext in ("png", "svg")]
    pyplot().close(fig)
    return paths


def plot_all(grouped: dict[str, dict[str, dict[str, Any]]], metrics: Sequence[str], folder: Path) -> list[Path]:
    out: list[Path] = []
    for dataset, results in sorted(grouped.items()):
        for metric in metrics:
            out += plot_metric(dataset, results, metric, folder)
    return out
