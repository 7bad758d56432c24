"""Flow interpolation variant (issue 17): where the two warped keyframes disagree (mean |w0 - w1| from D0
to D1 grey levels, smoothed), blend toward the nearer / more visible one instead of averaging (less
ghosting, more popping). Decoder-side only: the same streams decoded both ways, so rates are equal.

    M3CVC_WEIGHTS=../shared/weights/lpips .venv/bin/python benchmarks/blend_variants.py carphone_pristine.mp4,bigbuckbunny.mp4 10 40

Recorded (2026-12-01, 40 frames, QP 36/42/48): carphone LPIPS 0.2159/0.2396/0.2815 -> 0.2208/0.2440/0.2843
(worse), PSNR -0.12..-0.14 dB; bigbuckbunny LPIPS 0.1833/0.2860/0.4528 -> 0.1824/0.2845/0.4516 (better by
0.001), PSNR -0.4..-0.5 dB. Rejected: the averaging blend stays.
"""

import sys
from fractions import Fraction
import cv2
import numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src"))
import m3cvc.reconstruct.flow as flow
import m3cvc.pipeline as pipeline
from m3cvc.config import load_config, with_overrides
from m3cvc.eval.m3cvc_codec import ArraySource
from m3cvc.eval.metrics import MetricSuite
from m3cvc.samples import sample_clip_path
from m3cvc.video import open_video, preprocess

orig = flow._time_blend
D0, D1 = float(sys.argv[2]), float(sys.argv[3])

def sharp(w0, w1, a0, a1, t):
    a0 += flow._TINY; a0 *= np.float32(1 - t); a1 += flow._TINY; a1 *= np.float32(t)
    d = np.abs(w0.astype(np.float32) - w1.astype(np.float32)).mean(axis=2)
    d = cv2.GaussianBlur(d, (0, 0), 2.0)
    s = np.clip((d - D0) / (D1 - D0), 0, 1).astype(np.float32)
    hard0 = (a0 >= a1).astype(np.float32)
    tot = a0 + a1
    b0 = (1 - s) * (a0 / tot) + s * hard0
    return cv2.blendLinear(w0, w1, b0, 1 - b0 + 1e-6)

suite = MetricSuite(["lpips", "psnr"])
cfg = load_config(profile="lite")
for clip in sys.argv[1].split(","):
    with open_video(sample_clip_path(clip)) as src:
        ref = [f for _, f in zip(range(40), preprocess(src, cfg.preprocess))]
    for qp in (36, 42, 48):
        res = pipeline.Encoder(with_overrides(cfg, keyframe_codec={"hevc": {"qp": qp}})).encode(ArraySource(ref, Fraction(8)))
        flow._time_blend = orig
        base, _ = suite.measure(ref, list(pipeline.Decoder().decode(res.data)))
        flow._time_blend = sharp
        var, _ = suite.measure(ref, list(pipeline.Decoder().decode(res.data)))
        flow._time_blend = orig
        print(f"{clip} qp{qp} bpp {res.bpp:.4f} lpips {base['lpips']:.4f} -> {var['lpips']:.4f}  psnr {base['psnr']:.2f} -> {var['psnr']:.2f}", flush=True)
