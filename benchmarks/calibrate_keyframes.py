"""Calibrate the composite keyframe score (paper II-A) on real footage: what do the semantic and motion
terms say about how predictable the frames between two keyframes are? (issue 17)

    .venv/bin/python benchmarks/calibrate_keyframes.py [--clips bikes.mp4,bigbuckbunny.mp4,...]
        [--target-psnr 20] [--out results/calibrate_keyframes.json]

For keyframe candidates ``l`` and ``n = l + g`` inside one shot (g = 2, 4, 8, 16; scene cuts found by the
encoder's own detector), the lite decoder's flow interpolation rebuilds the midpoint frame from the two
*original* frames, and its PSNR (and LPIPS, with weights) is regressed on the selector's two terms,
``1 - sim(F_l, F_n)`` (semantic backend) and ``motion(F_l, F_n)`` (% of the frame diagonal):

    PSNR_mid ~ a - b * motion - c * (1 - sim)

so one unit of the motion term costs ``b / c`` units of the semantic one: ``lambda2 / lambda1 = b / c``
makes ``D`` a single predictability scale, and a keyframe fires (``D > 0``) when the predicted midpoint
PSNR falls below ``--target-psnr``: ``threshold = (a - target) / c`` (lambda1 = 1). The script prints
the fit, the implied ``lambda2`` / ``threshold``, the profile's current values and what they imply (the
predicted PSNR at which they fire, and the motion at which the motion term alone fires), and the share of
keyframes each term triggers on the clips with both settings. Redo it for CLIP / RAFT backends with
``--semantic clip --motion raft`` (their weights needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from m3cvc.config import load_config  # noqa: E402
from m3cvc.keyframes import TRIGGERS, build_selector  # noqa: E402
from m3cvc.keyframes.cuts import SceneCutDetector  # noqa: E402
from m3cvc.reconstruct.flow import FlowReconstructor  # noqa: E402
from m3cvc.samples import sample_clip_path  # noqa: E402
from m3cvc.video import read_frames  # noqa: E402

GAPS = (2, 4, 8, 16)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-9))


def pairs(frames: list[np.ndarray], cfg, step: int) -> list[dict]:
    """Within-shot (l, l + g) pairs: the two terms and the interpolated midpoint's quality."""
    from m3cvc.keyframes.selectors import _create  # the selector's own backends
    from m3cvc.keyframes.base import MOTION_BACKENDS, SEMANTIC_BACKENDS

    semantic = _create(SEMANTIC_BACKENDS, cfg.semantic, cfg)
    motion = _create(MOTION_BACKENDS, cfg.motion, cfg)
    cuts = SceneCutDetector(cfg.cut_threshold)
    shot, shots = 0, []
    for f in frames:
        cuts.update(f)
        shot += cuts.take()
        shots.append(shot)
    emb = [semantic.embed(f) for f in frames]
    prep = [motion.prepare(f) for f in frames]
    recon = FlowReconstructor("interpolation")
    out = []
    for g in GAPS:
        for l in range(0, len(frames) - g, step):
            n = l + g
            if shots[l] != shots[n]:
                continue
            mid = list(recon.reconstruct(frames[l], frames[n], g))[g // 2]
            out.append({
                "gap": g, "l": l, "semantic": 1.0 - semantic.similarity(emb[l], emb[n]),
                "motion": motion.magnitude(prep[l], prep[n]), "mid": mid, "ref": frames[l + g // 2],
            })  # fmt: skip
    return out


def triggers(frames: list[np.ndarray], kcfg) -> dict[str, int]:
    selector = build_selector(kcfg)
    selector.reset()
    counts = dict.fromkeys(TRIGGERS, 0)
    for i, f in enumerate(frames):
        if selector.is_keyframe(i, f):
            counts[selector.last_score.trigger] += 1
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="bikes.mp4,bigbuckbunny.mp4,carphone_pristine.mp4")
    ap.add_argument("--target-psnr", type=float, default=20.0, help="fire when the predicted midpoint PSNR is below this")
    ap.add_argument("--target-lpips", type=float, default=0.3, help="the same with the LPIPS fit: fire when the predicted midpoint LPIPS is above this")
    ap.add_argument("--semantic", default=None, help="semantic backend (default: the lite profile's)")
    ap.add_argument("--motion", default=None, help="motion backend (default: the lite profile's)")
    ap.add_argument("--step", type=int, default=3, help="distance between sampled candidates l")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "calibrate_keyframes.json")
    args = ap.parse_args()
    kcfg = load_config(profile="lite").keyframes
    kcfg = replace(kcfg, semantic=args.semantic or kcfg.semantic, motion=args.motion or kcfg.motion)
    clips = {}
    for name in [c.strip() for c in args.clips.split(",") if c.strip()]:
        path = Path(name) if Path(name).is_file() else sample_clip_path(name)
        if path is None:
            raise SystemExit(f"no clip {name!r}")
        clips[name] = read_frames(path)
    rows = [r for frames in clips.values() for r in pairs(frames, kcfg, args.step)]
    m = np.array([r["motion"] for r in rows])
    s = np.array([r["semantic"] for r in rows])
    p = np.array([psnr(r["mid"], r["ref"]) for r in rows])
    x = np.stack([np.ones_like(m), m, s], 1)
    (a, bm, bs), *_ = np.linalg.lstsq(x, p, rcond=None)
    r2 = 1 - np.var(p - x @ np.array([a, bm, bs])) / np.var(p)
    b, c = -bm, -bs
    lam2 = b / c
    thr = (a - args.target_psnr) / c
    report = {"pairs": len(rows), "fit_psnr": {"a": a, "b_motion": b, "c_semantic": c, "r2": r2},
              "calibrated": {"lambda1": 1.0, "lambda2": lam2, "threshold": thr, "target_psnr": args.target_psnr},
              "current": {"lambda2": kcfg.lambda2, "threshold": kcfg.threshold,
                          "fires_below_psnr": a - kcfg.threshold * c,
                          "motion_alone_fires_at": kcfg.threshold / kcfg.lambda2 if kcfg.lambda2 else None}}  # fmt: skip
    try:  # the same regression on LPIPS (the paper's metric), when its weights are here
        from m3cvc.eval.metrics import MetricSuite

        suite = MetricSuite(["lpips"])
        lp = np.array([suite.measure([r["ref"]], [r["mid"]])[0]["lpips"] for r in rows])
        (la, lm, ls), *_ = np.linalg.lstsq(x, lp, rcond=None)
        report["fit_lpips"] = {"a": la, "b_motion": lm, "c_semantic": ls, "lambda2_over_lambda1": lm / ls,
                               "threshold_for_target": (args.target_lpips - la) / ls, "target_lpips": args.target_lpips,
                               "current_fires_above_lpips": la + kcfg.threshold * ls}  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - no weights: PSNR only
        report["fit_lpips"] = f"not measured: {exc}"
    cal = replace(kcfg, lambda2=float(lam2), threshold=float(thr))
    report["triggers"] = {name: {"current": triggers(f, kcfg), "calibrated": triggers(f, cal)} for name, f in clips.items()}
    print(f"{len(rows)} within-shot pairs from {', '.join(clips)}")
    print(f"PSNR_mid = {a:.2f} - {b:.3f} * motion(% diagonal) - {c:.2f} * (1 - sim)   (R^2 {r2:.2f})")
    if isinstance(report["fit_lpips"], dict):
        f = report["fit_lpips"]
        print(f"LPIPS_mid = {f['a']:.3f} + {f['b_motion']:.4f} * motion + {f['c_semantic']:.3f} * (1 - sim): "
              f"lambda2 / lambda1 = {f['lambda2_over_lambda1']:.4f}; threshold {f['threshold_for_target']:.3f} fires "
              f"above LPIPS {args.target_lpips:g} (the current threshold fires above {f['current_fires_above_lpips']:.2f})")
    cur = report["current"]
    alone = f"{cur['motion_alone_fires_at']:.1f} %" if cur["motion_alone_fires_at"] else "never"
    print(f"current: lambda2 {kcfg.lambda2}, threshold {kcfg.threshold}: fires below {cur['fires_below_psnr']:.1f} dB; "
          f"motion alone fires at {alone} of the diagonal")
    print(f"calibrated for {args.target_psnr:g} dB: lambda2 {lam2:.4f}, threshold {thr:.3f}; motion alone fires at "
          f"{thr / lam2:.1f} % of the diagonal")
    for name, t in report["triggers"].items():
        print(f"  {name:<24} keyframes by trigger: current {t['current']}, calibrated {t['calibrated']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
