"""How rate control ranks its finalists (issue 11): GMSD (``rate.choice: gmsd``) vs the former fixed rule vs
LPIPS itself, at equal rate.

    M3CVC_WEIGHTS=../shared/weights/lpips .venv/bin/python benchmarks/rate_choice.py [--clips a.mp4,b.mp4]
        [--frames 40] [--targets 0.002,0.003,...]

Per clip (512x320, 8 fps, first ``--frames`` frames), every (spacing, QP) candidate is coded once
(``ratecontrol.plan(exhaustive=True)``, the chains rate control codes); per target, the in-band finalists
(``ratecontrol.band_finalists``: each spacing's lowest QP within 10 % of the target) are decoded by the real
decoder with detail restoration off, and each is measured: mean GMSD against the source (what the encoder
ranks by) and LPIPS (what the README's figures use). Printed per target: the finalist each way of choosing
picks and its LPIPS; per clip: the mean LPIPS of each way's picks (equal rate: the finalists all lie within
the band). Needs the LPIPS weights (``M3CVC_WEIGHTS``); about 5 min per clip on 2 cores.

Recorded (2026-12-01, 40 frames; a clip's targets are those with at least one finalist): mean LPIPS of the
picks, GMSD / rule / LPIPS' own choice: bigbuckbunny 0.3481 / 0.3649 / 0.3464 (11 targets), carphone
0.1918 / 0.1963 / 0.1913 (10), bikes 0.3309 / 0.3309 / 0.3288 (8). The full R-D effect (detail restoration
on, every metric): ``benchmarks/lite_rd.py --rate-choice gmsd`` (README, "Rate control").
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from m3cvc import ratecontrol as rc  # noqa: E402
from m3cvc.bitstream import StageInfo, write_stream  # noqa: E402
from m3cvc.config import load_config  # noqa: E402
from m3cvc.eval.metrics import MetricSuite  # noqa: E402
from m3cvc.pipeline import Decoder  # noqa: E402
from m3cvc.reconstruct.detail import gmsd, luma  # noqa: E402
from _rd import clip_frames  # noqa: E402  (benchmarks/_rd.py)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default="bigbuckbunny.mp4,carphone_pristine.mp4,bikes.mp4")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--targets", default="0.002,0.0025,0.003,0.004,0.005,0.006,0.008,0.01,0.012,0.015,0.02")
    args = ap.parse_args()
    suite = MetricSuite(["lpips"])
    if suite.unavailable():
        raise SystemExit(f"rate_choice: {suite.unavailable()['lpips']} (set M3CVC_WEIGHTS to the lpips backbones)")
    cfg = load_config(profile="lite")
    targets = [float(t) for t in args.targets.split(",")]
    for clip in args.clips.split(","):
        path, ref = clip_frames(clip, args.frames)
        h, w = ref[0].shape[:2]
        pixels = len(ref) * h * w
        streams: dict = {}
        original = rc.choose

        def spy(candidates, *a, **k):  # the exhaustive plan's streams, before its own choice
            streams.update(candidates)
            return original(candidates, *a, **k)

        rc.choose = spy
        try:
            rc.plan(replace(cfg, rate=replace(cfg.rate, choice="rule")), ref, w, h, Fraction(8), targets[0], exhaustive=True)
        finally:
            rc.choose = original
        measured: dict = {}

        def measure(c):
            if c not in measured:
                st = streams[c]
                params = {**st.header.reconstructor.params, "sharpen": 0}
                header = replace(st.header, reconstructor=StageInfo(st.header.reconstructor.name, params))
                dec = list(Decoder().decode(write_stream(replace(st, header=header), cfg.text.codec)))
                values, _ = suite.measure(ref, dec)
                measured[c] = (float(np.mean([gmsd(luma(a), luma(b)) for a, b in zip(ref, dec)])), values["lpips"])
            return measured[c]

        sums = {"gmsd": 0.0, "rule": 0.0, "lpips": 0.0}
        n = 0
        for t in targets:
            finalists = rc.band_finalists(streams, t, pixels)
            if not finalists:
                continue
            picks = {
                "gmsd": rc.choose(finalists, t, pixels, distortion=lambda c: measure(c)[0])[0],
                "rule": rc.choose(finalists, t, pixels)[0],
                "lpips": min(finalists, key=lambda c: measure(c)[1]),
            }
            n += 1
            for k, c in picks.items():
                sums[k] += measure(c)[1]
            print(f"{path.name} target {t}: " + " | ".join(
                f"{k} {c.interval}/{c.qp} LPIPS {measure(c)[1]:.4f}" for k, c in picks.items()), flush=True)
        if n:
            print(f"{path.name}: mean LPIPS of the picks over {n} targets: " + ", ".join(f"{k} {v / n:.4f}" for k, v in sums.items()), flush=True)


if __name__ == "__main__":
    main()
