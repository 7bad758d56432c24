"""Charts of a stream report, drawn with matplotlib and written as SVG (no date, salted ids: the
same data gives the same bytes): per-frame quality with the keyframes marked, and the bit budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..eval.metrics import LABELS, LOWER_IS_BETTER
from ..eval.plots import pyplot, save_figure

# picture type of a keyframe -> bar colour (the chain's IDR, its P pictures, independent images)
_PICTURE_COLOURS = {"IDR": "#c0392b", "P": "#2e86c1", "intra": "#7d3c98"}
_SECTION_COLOURS = ("#95a5a6", "#2e86c1", "#27ae60", "#e67e22", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d")


def per_frame_chart(
    path: Path, per_frame: Mapping[str, Sequence[Optional[float]]], keyframes: Sequence[int]
) -> Optional[Path]:
    """One panel per metric (frame index on x), a dashed line at every keyframe. None if no values."""
    names = [m for m, values in per_frame.items() if values and any(v is not None for v in values)]
    if not names:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(names), 1, figsize=(8.0, 1.9 * len(names) + 0.5), dpi=100, sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        values = [float("nan") if v is None else v for v in per_frame[name]]
        for k in keyframes:
            ax.axvline(k, color="#c0392b", linestyle="--", linewidth=0.8, alpha=0.7)
        ax.plot(range(len(values)), values, color="#1f4e79", linewidth=1.4, marker="o", markersize=2.5)
        label = LABELS.get(name, name)
        ax.set_ylabel(label.split(" (")[0], fontsize=9)
        ax.set_title(label + (", lower is better" if name in LOWER_IS_BETTER else ", higher is better"),
                     fontsize=9, loc="left")  # fmt: skip
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("frame (dashed: keyframes)")
    fig.tight_layout()
    save_figure(fig, path, "svg")
    plt.close(fig)
    return path


def budget_chart(path: Path, info: Mapping[str, Any]) -> Path:
    """Left: bytes per section of the stream (with its share in %). Right: bytes per keyframe,
    coloured by picture type, labelled with the keyframe's frame index."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 2.8), dpi=100, gridspec_kw={"width_ratios": [1, 2.2]})
    total = info["bytes_total"]
    names = [n for n, size in info["sections"].items() if size > 0]
    sizes = [info["sections"][n] for n in names]
    ax1.barh(range(len(names)), sizes, color=[_SECTION_COLOURS[i % len(_SECTION_COLOURS)] for i in range(len(names))])
    ax1.set_yticks(range(len(names)))
    ax1.set_yticklabels(names, fontsize=7)
    ax1.invert_yaxis()
    for y, size in enumerate(sizes):
        ax1.text(size, y, f" {100.0 * size / total:.1f} %", va="center", fontsize=7)
    ax1.set_xlim(0, max(sizes) * 1.35)
    ax1.set_xlabel("bytes")
    ax1.set_title(f"stream: {total} bytes by section", fontsize=9, loc="left")
    xs = range(len(info["keyframes"]))
    colours = [_PICTURE_COLOURS.get(p, "#7f8c8d") for p in info["keyframe_pictures"]]
    ax2.bar(xs, info["keyframe_bytes"], color=colours)
    ax2.set_xticks(list(xs))
    ax2.set_xticklabels([str(k) for k in info["keyframes"]], fontsize=7, rotation=90 if len(xs) > 16 else 0)
    ax2.set_xlabel("keyframe (frame index)")
    ax2.set_ylabel("bytes")
    seen = dict.fromkeys(info["keyframe_pictures"])
    handles = [plt.Rectangle((0, 0), 1, 1, color=_PICTURE_COLOURS.get(p, "#7f8c8d")) for p in seen]
    ax2.legend(handles, list(seen), fontsize=7, title="picture", title_fontsize=7)
    ax2.set_title("bytes per keyframe", fontsize=9, loc="left")
    ax2.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, "svg")
    plt.close(fig)
    return path
