"""Cost of the full profile's keyframe refinement (SD 1.5 img2img) at its real size (random weights, GPU).

No weights can be downloaded where m3cvc is developed, so this builds Stable Diffusion 1.5's
architecture (UNet 0.86 B, VAE 84 M, CLIP ViT-L/14 text encoder 123 M; their published configs) with
random weights and the tests' tiny tokenizer, saves it as a pipeline folder, and loads it through the
real refiner (:class:`m3cvc.keyframe_codec.refine.Img2ImgRefiner`, ``AutoPipelineForImage2Image``),
which then refines 512x320 keyframes with the profile's defaults (strength 0.25 of 40 steps = 10
denoising steps, guidance 4 with the negative prompt). Only speed and memory mean anything.

    python benchmarks/refine_gpu.py [--keyframes 4] [--json out.json]
    python benchmarks/refine_gpu.py --scale tiny        # the same code path, tiny, on the CPU

Not run yet: no GPU has been lent since the refiner was added.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from m3cvc.config import RefineOptions, load_config  # noqa: E402


def build_sd15(folder: Path, full: bool) -> Path:
    """An SD 1.5-sized (``full``) or tiny random StableDiffusionPipeline saved in ``folder``."""
    if not full:
        from tiny_models import build_tiny_sd

        return build_tiny_sd(folder, pipeline=True)
    import transformers
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from tiny_models import write_clip_tokenizer

    write_clip_tokenizer(folder / "_tok")
    tok = transformers.CLIPTokenizer.from_pretrained(str(folder / "_tok"), model_max_length=77)
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
        max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id))  # fmt: skip
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)  # SD 1.x defaults
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=512)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched, safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(str(folder))
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=("full", "tiny"), default="full")
    p.add_argument("--keyframes", type=int, default=4, help="keyframes refined after one warm-up")
    p.add_argument("--work", metavar="DIR", help="where the random model is saved (default: a temporary folder)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    import torch
    from video_diffusion_gpu import benchmark_device

    from m3cvc.keyframe_codec.refine import Img2ImgRefiner

    full = args.scale == "full"
    device = benchmark_device(args.scale)
    if device is None:
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="m3cvc-sd15-"))
    t0 = time.perf_counter()
    build_sd15(work, full)
    built = time.perf_counter() - t0
    defaults = load_config(profile="full").keyframe_codec.refine
    options: RefineOptions = replace(defaults, model=str(work), local_files_only=True, device=device)
    refiner = Img2ImgRefiner(options, progress=False)
    t0 = time.perf_counter()
    pipe = refiner.pipeline()
    loaded = time.perf_counter() - t0
    params = {name: sum(q.numel() for q in m.parameters()) / 1e9 for name, m in pipe.components.items()
              if isinstance(m, torch.nn.Module)}  # fmt: skip
    dtype = str(pipe.unet.dtype).replace("torch.", "")
    print(f"device: {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'} ({dtype}); built + saved {built:.1f} s, "
          f"loaded {loaded:.1f} s; parameters (billions): " + ", ".join(f"{k} {v:.3f}" for k, v in params.items()), flush=True)
    height, width = (320, 512) if full else (64, 96)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    refiner.refine(frame, "a man walks a dog in a park")  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.keyframes):
        t0 = time.perf_counter()
        refiner.refine(frame, "a man walks a dog in a park")
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    steps = int(options.steps * options.strength)
    result = {"scale": args.scale, "device": device, "dtype": dtype, "size": [width, height], "params_billion": params,
              "denoising_steps": steps, "seconds_per_keyframe": float(np.median(times)), "peak_gib": peak}  # fmt: skip
    print(f"refine {width}x{height}, {steps} steps: {result['seconds_per_keyframe']:.3f} s per keyframe (median of "
          f"{len(times)})" + (f", peak {peak:.1f} GiB" if peak is not None else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
