"""Cost of the paper's multi-round description dialogue with Qwen2-VL-7B's architecture (random weights, GPU).

No weights can be downloaded where m3cvc is developed, so this builds Qwen2-VL-7B-Instruct's
architecture (28 layers, hidden 3584, 32-layer ViT; its published config) with random weights and
the tests' tiny tokenizer, saves it, and loads it through the real ``qwen-vl`` backend, which then
runs the dialogue of paper II-B on 512x320 frames with the default token budgets (160 new tokens
per turn, 96 per summary, 8 frames per clip). A random model rarely stops early, so the turns
tend to use their whole budgets and the times approach the upper bound of the default settings
(the script prints the new tokens generated). Only speed and memory mean anything.

    python benchmarks/describe_gpu.py [--keyframes 2] [--json out.json]
    python benchmarks/describe_gpu.py --scale tiny        # the same code path, tiny, on the CPU

Recorded run (one NVIDIA H200, torch 2.11 + CUDA 13, transformers 5.17; 8.29 B parameters, bf16,
sdpa; benchmarks/describe_gpu_results.json): the first keyframe (3 turns, includes CUDA warm-up)
24.3 s and its clip 12.5 s; the second keyframe (4 turns, both images in the comparison turn)
16.8 s and its clip 4.4 s; peak GPU memory 15.8 GiB. That run did not record how many tokens each
turn generated (the script does now).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from m3cvc.config import DescribeConfig, QwenVLOptions  # noqa: E402
from m3cvc.describe import build_describer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=("full", "tiny"), default="full")
    p.add_argument("--keyframes", type=int, default=2, help="keyframes described (each with its clip)")
    p.add_argument("--work", metavar="DIR", help="where the random model is saved (default: a temporary folder)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    import torch
    from describe_helpers import build_tiny_qwen
    from video_diffusion_gpu import benchmark_device, building

    full = args.scale == "full"
    device = benchmark_device(args.scale)
    if device is None:
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="m3cvc-qwen-"))
    t0 = time.perf_counter()
    with building(device, torch.bfloat16 if device == "cuda" else torch.float32):
        build_tiny_qwen(work, "qwen2_vl", full_size=full)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    cfg = DescribeConfig(backend="qwen-vl", qwen_vl=QwenVLOptions(model=str(work), local_files_only=True, device=device))
    describer = build_describer(cfg)
    loaded = time.perf_counter() - t0
    params = sum(p.numel() for p in describer.backend.net.parameters()) / 1e9
    print(f"device: {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'}; built + saved {built:.1f} s, "
          f"loaded {loaded:.1f} s, {params:.2f} B parameters", flush=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    generated: list[int] = []  # new tokens per model call (a random model may still stop early)
    net = describer.backend.net
    generate = net.generate

    def counting_generate(**inputs):
        out = generate(**inputs)
        generated.append(int(out.shape[1] - inputs["input_ids"].shape[1]))
        return out

    net.generate = counting_generate
    rng = np.random.default_rng(0)
    size = (320, 512) if full else (64, 96)
    frames = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(16 * args.keyframes + 1)]
    rows = []
    for k in range(args.keyframes):
        key = frames[16 * k]
        before = len(generated)
        t0 = time.perf_counter()
        text = describer.describe_keyframe(k, key, frames[16 * (k - 1)] if k else None)
        t_key = time.perf_counter() - t0
        t0 = time.perf_counter()
        describer.describe_clip(k, frames[16 * k: 16 * k + 16], text)
        t_clip = time.perf_counter() - t0
        tokens = sum(generated[before:])
        rows.append({"keyframe": k, "keyframe_seconds": t_key, "clip_seconds": t_clip, "new_tokens": tokens})
        print(f"  keyframe {k}: {t_key:.1f} s ({len(describer.exchanges[-2].turns)} turns), "
              f"clip: {t_clip:.1f} s, {tokens} new tokens in both", flush=True)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    turns = [t for e in describer.exchanges for t in e.turns]
    print(f"  {len(turns)} turns; peak GPU memory {peak:.1f} GiB" if peak else f"  {len(turns)} turns", flush=True)
    result = {"scale": args.scale, "device": device, "params_billion": params, "build_seconds": built,
              "load_seconds": loaded, "budgets": {"max_new_tokens": cfg.max_new_tokens,
                                                  "max_summary_tokens": cfg.max_summary_tokens,
                                                  "clip_frames": cfg.clip_frames},
              "rows": rows, "peak_gib": peak}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
