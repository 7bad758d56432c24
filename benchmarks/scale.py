"""Scale-out benchmark (issue 13): wall time of the same eval on 1 and 2 workers, local / process / Ray,
measured in one run, and a check that every run stored the same results.

    .venv/bin/python benchmarks/scale.py [--max-frames 16] [--codecs m3cvc:lite,x265] [--json out.json]

Each configuration runs ``m3cvc eval --dataset quick`` (3 sequences: bikes plus two synthetic clips)
as a child process into its own results folder, so every figure includes what a user waits for:
start-up (Python imports, worker processes, a local Ray started for the run and shut down after it),
model loading per worker (LPIPS), coding and measuring. Timings are wall seconds of the whole command;
speed-up is local / run; overhead of an executor is its 1-worker time minus local's (the cost of the
machinery alone). Every run's results JSON must equal the local run's apart from timing fields.
Run it on an idle machine: the figures are only as steady as the CPUs are free.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from m3cvc.eval.results import without_timings  # noqa: E402


def run(out: Path, args: argparse.Namespace, executor: list[str]) -> float:
    cmd = [sys.executable, "-m", "m3cvc", "eval", "--dataset", "quick", "--out", str(out), "--codecs", args.codecs,
           "--max-frames", str(args.max_frames), "--metrics", args.metrics, "-q", *executor]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-frames", type=int, default=16)
    p.add_argument("--codecs", default="m3cvc:lite,x265")
    p.add_argument("--metrics", default="psnr,lpips,vmaf")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args()
    configs = {
        "local": [],
        "process x1": ["--executor", "process", "--workers", "1"],
        "process x2": ["--executor", "process", "--workers", "2"],
        "ray x1": ["--executor", "ray", "--workers", "1"],
        "ray x2": ["--executor", "ray", "--workers", "2"],
    }
    with tempfile.TemporaryDirectory(prefix="m3cvc-scale-") as tmp:
        # the quick dataset's synthetic clips are generated once, before any timing
        run(Path(tmp) / "warm", argparse.Namespace(**{**vars(args), "codecs": "x265", "metrics": "psnr", "max_frames": 2}), [])
        times, docs = {}, {}
        for name, options in configs.items():
            out = Path(tmp) / name.replace(" ", "_")
            times[name] = run(out, args, options)
            docs[name] = {f.name: without_timings(json.loads(f.read_text())) for f in sorted((out / "quick").glob("*.json"))}
            print(f"{name:<11} {times[name]:7.1f} s", flush=True)
    same = {name: docs[name] == docs["local"] for name in configs}
    points = sum(len(s["points"]) for d in docs["local"].values() for s in d["sequences"].values())
    print(f"\neval quick: {points} points ({args.codecs}; {args.metrics}; {args.max_frames} frames per sequence), "
          f"{os.cpu_count()} CPUs")
    print(f"{'run':<11} {'wall s':>7} {'speed-up':>9}  results equal local's")
    for name in configs:
        print(f"{name:<11} {times[name]:7.1f} {times['local'] / times[name]:8.2f}x  {same[name]}")
    overhead = {e: times[f"{e} x1"] - times["local"] for e in ("process", "ray")}
    print(f"overhead of the machinery at 1 worker: process {overhead['process']:+.1f} s, ray {overhead['ray']:+.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"times_s": times, "same_results": same, "points": points,
                                         "overhead_s": overhead, "cpus": os.cpu_count(), "settings": {
                                             "codecs": args.codecs, "metrics": args.metrics,
                                             "max_frames": args.max_frames}}, indent=1) + "\n")  # fmt: skip
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
