"""Detail restoration (the flow reconstructor's ``sharpen``): LPIPS and PSNR at fixed strengths against the
strength the encoder chooses by GMSD (``m3cvc/reconstruct/detail.py``).

    M3CVC_WEIGHTS=../shared/weights/lpips .venv/bin/python benchmarks/detail.py
        [--clips carphone_pristine.mp4,bigbuckbunny.mp4,bikes.mp4] [--frames 40]

Each clip (512x320, 8 fps) is coded at three (spacing, keyframe QP) points; the same stream is decoded with
every strength (0, 0.4, ..., 2.0: only the header's one-byte ``sharpen`` differs), and the row ends with the
strength the encoder chose and the LPIPS there.

Recorded (2026-12-01, 40 frames; LPIPS at strength 0 / the best fixed strength / the encoder's choice):
carphone (spacing 4 QP 43, 8 / 47, 16 / 47): 0.1500 / 0.1500 (0) / 0.1500 (0), 0.2224 / 0.2224 (0) / 0.2224 (0),
0.2669 / 0.2669 (0) / 0.2669 (0); bigbuckbunny: 0.2824 / 0.2509 (1.2) / 0.2641 (0.4), 0.4147 / 0.3757 (2.0) /
0.3785 (1.4), 0.4314 / 0.3950 (2.0) / 0.4011 (1.2); bikes: 0.3021 / 0.3021 (0) / 0.3021 (0), 0.3735 / 0.3725
(0.4) / 0.3735 (0), 0.3844 / 0.3844 (0) / 0.3844 (0). PSNR at the encoder's choice on bigbuckbunny: -0.12,
-0.37, -0.25 dB.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import m3cvc.pipeline as pipeline  # noqa: E402
from m3cvc.bitstream import StageInfo, read_stream, write_stream  # noqa: E402
from m3cvc.config import load_config, with_overrides  # noqa: E402
from m3cvc.eval.m3cvc_codec import ArraySource  # noqa: E402
from m3cvc.ratecontrol import spaced  # noqa: E402
from _rd import clip_frames, lpips_psnr_suite  # noqa: E402  (benchmarks/_rd.py)

POINTS = ((4, 43), (8, 47), (16, 47))  # (keyframe spacing, keyframe QP)
STRENGTHS = (0, 4, 8, 12, 16, 20)  # tenths


def with_strength(data: bytes, tenths: int) -> bytes:
    stream = read_stream(data)
    h = stream.header
    recon = StageInfo(h.reconstructor.name, {**h.reconstructor.params, "sharpen": tenths})
    return write_stream(replace(stream, header=replace(h, reconstructor=recon)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="carphone_pristine.mp4,bigbuckbunny.mp4,bikes.mp4")
    ap.add_argument("--frames", type=int, default=40)
    args = ap.parse_args()
    suite = lpips_psnr_suite("detail")
    if suite is None:
        return 2
    cfg0 = load_config(profile="lite")
    for clip in args.clips.split(","):
        path, ref = clip_frames(clip, args.frames)
        for interval, qp in POINTS:
            cfg = replace(with_overrides(cfg0, keyframe_codec={"hevc": {"qp": qp}}), keyframes=spaced(cfg0.keyframes, interval))
            data = pipeline.Encoder(cfg).encode(ArraySource(ref, Fraction(8))).data
            chosen = read_stream(data).header.reconstructor.params["sharpen"]
            cells, at_choice = [], None
            for tenths in sorted(set(STRENGTHS) | {chosen}):
                values, _ = suite.measure(ref, list(pipeline.Decoder().decode(with_strength(data, tenths))))
                if tenths == chosen:
                    at_choice = values
                if tenths in STRENGTHS:
                    cells.append(f"{tenths / 10:.1f}: {values['lpips']:.4f} {values['psnr']:.2f}")
            assert at_choice is not None
            print(f"{path.stem[:12]:<12} spacing {interval:>2} QP {qp}  " + " | ".join(cells)
                  + f"  -> encoder {chosen / 10:.1f}: LPIPS {at_choice['lpips']:.4f}, PSNR {at_choice['psnr']:.2f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
