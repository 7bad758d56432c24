"""x265 settings of lite's keyframe chain (issue 11): the default (preset medium, motion search star) against
variants at the same QPs (36..48, the first 40 frames, default keyframe selection and flow reconstruction);
BD-rate on LPIPS (real AlexNet) and PSNR over the whole clip, and plain encode time.

    M3CVC_WEIGHTS=../shared/weights/lpips .venv/bin/python benchmarks/x265_presets.py \\
        [carphone_pristine.mp4,bigbuckbunny.mp4,bikes.mp4] [hex,umh,star-subme3,fast,faster,veryfast]

A negative BD-rate means the variant needs fewer bits than the default for the same quality. Variants are
x265 parameters appended to the chain's fixed ones (patched in this process only) or another preset:

- ``hex``: the presets' own motion search (the default before 2026-12-01), ``umh``: uneven multi-hexagon,
  ``star-subme3``: star with finer sub-pel refinement;
- ``fast`` / ``faster`` / ``veryfast``: faster presets.

Recorded (2026-12-01), variant against the default (star), LPIPS / PSNR BD-rate and encode seconds
(4 QPs, plain encodes; the machine was shared, so times are rough):

| variant | carphone | bigbuckbunny | bikes |
|---|---|---|---|
| hex (the default before) | +9.2 / -1.7 % | +4.4 / +5.3 % | +2.2 / +5.7 % |
| umh | -0.7 / +0.7 % | +2.9 / +1.2 % | +0.2 / +1.3 % |
| star-subme3 | -0.2 / -1.5 % | +1.8 / -3.0 % | -2.4 / -0.0 % |
| fast | +12.8 / -4.9 % | +7.2 / +0.8 % | +0.8 / +1.8 % |
| faster | +17.4 / -5.5 % | +6.7 / +1.2 % | +16.0 / +16.1 % |
| veryfast | +17.1 / -3.4 % | +5.8 / +0.5 % | +17.4 / +19.0 % |

Encode: default 1.08 / 1.26 / 2.21 s, hex 1.13 / 1.39 / 1.80 s, veryfast 0.89 / 1.28 / 1.91 s. Star is the
default: no variant is better on LPIPS on all three clips; the faster presets lose up to 17 %.
"""

import sys
import time
from fractions import Fraction

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src"))
import m3cvc.keyframe_codec.hevc as hevc  # noqa: E402
import m3cvc.pipeline as pipeline  # noqa: E402
from m3cvc.config import load_config, with_overrides  # noqa: E402
from m3cvc.eval.m3cvc_codec import ArraySource  # noqa: E402
from m3cvc.samples import sample_clip_path  # noqa: E402
from m3cvc.video import open_video, preprocess  # noqa: E402
from _rd import bd_rates, lpips_psnr_suite  # noqa: E402  (benchmarks/_rd.py)

QPS = (36, 40, 44, 48)
# name -> (preset, x265 parameters appended to the fixed ones; later keys override earlier ones)
VARIANTS = {
    "hex": ("medium", "me=hex"),
    "umh": ("medium", "me=umh"),
    "star-subme3": ("medium", "subme=3"),
    "fast": ("fast", ""),
    "faster": ("faster", ""),
    "veryfast": ("veryfast", ""),
}


def curve(ref, cfg, suite, preset: str, extra: str) -> tuple[list[tuple[float, float, float]], float]:
    """(bpp, LPIPS, PSNR) per QP and the total plain encode seconds, with ``extra`` x265 parameters."""
    base = hevc.X265_FIXED
    hevc.X265_FIXED = base + (":" + extra if extra else "")
    pts, seconds = [], 0.0
    try:
        for qp in QPS:
            c = with_overrides(cfg, keyframe_codec={"hevc": {"qp": qp, "preset": preset}})
            t0 = time.perf_counter()
            res = pipeline.Encoder(c).encode(ArraySource(ref, Fraction(8)))
            seconds += time.perf_counter() - t0
            v, _ = suite.measure(ref, list(pipeline.Decoder().decode(res.data)))
            pts.append((res.bpp, v["lpips"], v["psnr"]))
    finally:
        hevc.X265_FIXED = base
    return pts, seconds


def main() -> int:
    clips = (sys.argv[1] if len(sys.argv) > 1 else "carphone_pristine.mp4,bigbuckbunny.mp4,bikes.mp4").split(",")
    names = (sys.argv[2] if len(sys.argv) > 2 else ",".join(VARIANTS)).split(",")
    suite = lpips_psnr_suite("x265_presets", names, list(VARIANTS))
    if suite is None:
        return 2
    cfg = load_config(profile="lite")
    for clip in clips:
        with open_video(sample_clip_path(clip)) as src:
            ref = [f for _, f in zip(range(40), preprocess(src, cfg.preprocess))]
        default, t_default = curve(ref, cfg, suite, cfg.keyframe_codec.hevc.preset, "")
        for name in names:
            pts, t = curve(ref, cfg, suite, *VARIANTS[name])
            print(clip, name, f"encode {t:.2f} s vs {t_default:.2f} s", *bd_rates(default, pts), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
