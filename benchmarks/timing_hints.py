"""Timing hints (``reconstruct.flow.timing``) on and off, same keyframes: LPIPS, PSNR, bytes and encode time.

    M3CVC_WEIGHTS=../shared/weights/lpips .venv/bin/python benchmarks/timing_hints.py [--clips a.mp4,b.mp4]

Each clip (512x320, 8 fps, the first 40 frames) is coded by lite at three fixed keyframe settings (QP 38 with
keyframes at most 4 frames apart, QP 44 / 8, QP 46 / 16), once without and once with timing hints; the
keyframe units are the same, the streams differ by the timing bits.

Recorded (2026-12-01, format 4; LPIPS / PSNR without -> with, bytes added):
carphone 0.1174 -> 0.1036 / 27.34 -> 28.70 dB (+12 B), 0.1883 -> 0.1755 / 24.28 -> 25.25 dB (+13 B),
0.2565 -> 0.2528 / 21.43 -> 21.86 dB (+12 B); bigbuckbunny 0.1648 -> 0.1629, 0.2863 -> 0.2839, 0.3568 -> 0.3530
(+11-15 B); bikes 0.2579 -> 0.2435, 0.3358 -> 0.3277, 0.3692 -> 0.3689 (+9-13 B). Searching only the clips
without camera motion gave 0.1631 / 0.2844 / 0.3553 and 0.2481 / 0.3289 / 0.3717, and in rate control
(lite_rd.py) carphone's LPIPS BD-rate against VVC -28.1 % instead of -32.5 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import m3cvc.pipeline as pipeline  # noqa: E402
from m3cvc.bitstream import section_sizes  # noqa: E402
from m3cvc.config import load_config, with_overrides  # noqa: E402
from m3cvc.eval.m3cvc_codec import ArraySource  # noqa: E402
from _rd import clip_frames, lpips_psnr_suite  # noqa: E402  (benchmarks/_rd.py)

SETTINGS = ((38, 4), (44, 8), (46, 16))  # keyframe QP, keyframes.max_interval


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="carphone_pristine.mp4,bigbuckbunny.mp4,bikes.mp4")
    ap.add_argument("--frames", type=int, default=40)
    args = ap.parse_args()
    suite = lpips_psnr_suite("timing_hints")
    if suite is None:
        return 2
    cfg = load_config(profile="lite")
    for clip in args.clips.split(","):
        path, ref = clip_frames(clip, args.frames)
        for qp, spacing in SETTINGS:
            line = f"{path.name} qp {qp} max_interval {spacing}"
            for timing in (False, True):
                c = with_overrides(cfg, keyframe_codec={"hevc": {"qp": qp}}, keyframes={"max_interval": spacing},
                                   reconstruct={"flow": {"timing": timing}})  # fmt: skip
                start = time.perf_counter()
                result = pipeline.Encoder(c).encode(ArraySource(ref, Fraction(8)))
                seconds = time.perf_counter() - start
                values, _ = suite.measure(ref, list(pipeline.Decoder().decode(result.data)))
                motion = section_sizes(result.data)["clip_motion"]
                line += (f" | timing {'on' if timing else 'off'}: {len(result.data)} B (motion {motion}), LPIPS "
                         f"{values['lpips']:.4f}, {values['psnr']:.2f} dB, encode {seconds:.2f} s")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
