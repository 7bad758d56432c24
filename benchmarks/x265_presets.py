"""x265 presets for lite's keyframe chain (issue 11, speed): medium (the default) against fast, faster and
veryfast at the same QPs (36..48, 40 frames); BD-rate on LPIPS (real AlexNet) and PSNR, plain encode time.

    M3CVC_WEIGHTS=../shared/weights/lpips .venv/bin/python benchmarks/x265_presets.py carphone_pristine.mp4,bigbuckbunny.mp4

Recorded (2026-12-01): carphone fast / faster / veryfast LPIPS BD-rate +5.4 / +10.8 / +10.7 %, encode
0.78-0.79 s against 0.89 s; bigbuckbunny +8.1 / +5.7 / +6.8 %, 0.89-1.02 s against 1.03 s. The chain is a
small part of a plain encode and the faster presets cost LPIPS: medium stays.
"""

import sys
import time
from fractions import Fraction
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src"))
import m3cvc.pipeline as pipeline
from m3cvc.config import load_config, with_overrides
from m3cvc.eval.bdrate import Curve, bd
from m3cvc.eval.m3cvc_codec import ArraySource
from m3cvc.eval.metrics import MetricSuite
from m3cvc.samples import sample_clip_path
from m3cvc.video import open_video, preprocess

suite = MetricSuite(["lpips", "psnr"])
cfg = load_config(profile="lite")
for clip in sys.argv[1].split(","):
    with open_video(sample_clip_path(clip)) as src:
        ref = [f for _, f in zip(range(40), preprocess(src, cfg.preprocess))]
    pts, times = {}, {}
    for preset in ("medium", "fast", "faster", "veryfast"):
        pts[preset], t = [], 0.0
        for qp in (36, 40, 44, 48):
            c = with_overrides(cfg, keyframe_codec={"hevc": {"qp": qp, "preset": preset}})
            t0 = time.perf_counter()
            res = pipeline.Encoder(c).encode(ArraySource(ref, Fraction(8)))
            t += time.perf_counter() - t0
            v, _ = suite.measure(ref, list(pipeline.Decoder().decode(res.data)))
            pts[preset].append((res.bpp, v["lpips"], v["psnr"]))
        times[preset] = t
    for preset in ("fast", "faster", "veryfast"):
        out = [clip, preset, f"encode {times[preset]:.2f}s vs {times['medium']:.2f}s"]
        for m, i in (("lpips", 1), ("psnr", 2)):
            r = bd(Curve(tuple(p[0] for p in pts["medium"]), tuple(p[i] for p in pts["medium"])), Curve(tuple(p[0] for p in pts[preset]), tuple(p[i] for p in pts[preset])), m)
            out.append(f"BD {m} {r.bd_rate:+.1f}%" if r.bd_rate is not None else f"{m} {r.note}")
        print(*out, flush=True)
