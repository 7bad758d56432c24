"""Bits per character of every registered text coder on realistic VLM descriptions.

usage: python benchmarks/text.py [--data benchmarks/data/descriptions.json] [--json OUT]

Each video's keyframe descriptions and clip descriptions are coded as two text units, exactly as
the .m3c bitstream stores them (codec id byte included); the table also shows each description
coded alone (a one-keyframe video). bits/char = 8 * coded bytes / characters of the texts. Every
unit is decoded again and compared, and the coding speed is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from m3cvc.text import decode_texts, encode_texts, text_coder_names

HERE = Path(__file__).resolve().parent


def load_units(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """(units as the bitstream groups them, every description alone)."""
    videos = json.loads(path.read_text(encoding="utf-8"))["videos"]
    grouped = [v[key] for v in videos for key in ("keyframes", "clips")]
    single = [[t] for unit in grouped for t in unit]
    return grouped, single


def measure(codec: str, units: list[list[str]]) -> dict[str, float]:
    chars = coded = 0
    t_enc = t_dec = 0.0
    for texts in units:
        t0 = time.perf_counter()
        unit = encode_texts(texts, codec)
        t1 = time.perf_counter()
        if decode_texts(unit, len(texts)) != texts:
            raise SystemExit(f"{codec}: round trip failed")
        t_dec += time.perf_counter() - t1
        t_enc += t1 - t0
        chars += sum(len(t) for t in texts)
        coded += len(unit)
    return {
        "bits_per_char": 8 * coded / chars,
        "bytes": coded,
        "chars": chars,
        "encode_us_per_char": 1e6 * t_enc / chars,
        "decode_us_per_char": 1e6 * t_dec / chars,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=HERE / "data" / "descriptions.json")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    grouped, single = load_units(args.data)
    print(f"{args.data.name}: {len(single)} descriptions in {len(grouped)} text units, "
          f"{sum(len(u[0]) for u in single)} characters")
    codecs = [*text_coder_names(), "auto"]
    results = {}
    print(f"{'coder':<6} {'bits/char (per video)':>22} {'bits/char (alone)':>18} {'enc us/char':>12} {'dec us/char':>12}")
    for codec in codecs:
        g, s = measure(codec, grouped), measure(codec, single)
        results[codec] = {"per_video": g, "alone": s}
        print(f"{codec:<6} {g['bits_per_char']:>22.3f} {s['bits_per_char']:>18.3f} "
              f"{g['encode_us_per_char']:>12.0f} {g['decode_us_per_char']:>12.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
