"""Decode cost of the generative clip reconstructors at their real model sizes (random weights, GPU).

No weights can be downloaded where m3cvc is developed, so this builds each backend's architecture
at its published size from the diffusers / transformers configs, with random weights, directly on
the GPU in bfloat16, hands the pipeline to the real reconstructor (``use_pipeline``) and times the
reconstruction of 16-frame clips at 512x320 (the paper's size) in the backend's modes. Speed and
memory are those of the real architecture; the frames themselves are noise.

    python benchmarks/video_diffusion_gpu.py [--backends ltx,wan,seine] [--steps 40] [--json out.json]
    python benchmarks/video_diffusion_gpu.py --scale tiny      # the same code path, tiny, on the CPU

Architectures (``--scale full``):

- ``ltx``: LTX-Video's 2B transformer (28 layers, 32 x 64 heads, diffusers' defaults, as in
  Lightricks/LTX-Video 0.9.x), the 0.9.1 video VAE (diffusers' defaults: 32x spatial, 8x temporal),
  a T5-v1.1-XXL text encoder (24 layers, d_model 4096).
- ``seine``: SEINE (the paper's model): our UNet3D at Stable Diffusion v1.4's size (0.91B, 16 temporal
  attention layers), SD v1.4's VAE and CLIP ViT-L/14 text encoder; 16 generated frames at 512x320.
  Its official sampler takes 250 steps: time it with few ``--steps``; the per-step time scales.
- ``wan``: Wan2.1 FLF2V/I2V 14B (40 layers, 40 x 128 heads, FFN 13824, CLIP image context with the
  FLF2V position embedding), the Wan2.1 VAE, a UMT5-XXL text encoder and a CLIP ViT-H/14 image
  encoder. Slow: run it with few ``--steps``; the per-step time scales to any step count.

Each backend: one warm-up clip, then ``--clips`` timed clips per mode; classifier-free guidance on
(the backends' default guidance), so each step runs the transformer twice. Peak is
``torch.cuda.max_memory_allocated`` during the timed clips.

Recorded run (one NVIDIA H200, torch 2.11 + CUDA 13, diffusers 0.42.1, transformers 5.17; 16-frame
clips, 17 frames generated at 512x320; benchmarks/video_diffusion_gpu_results.json):

    backend (parameters)            steps | seconds per clip  ms/step | peak GPU memory
    ltx (2B + T5-XXL 4.8B)             40 | 1.6               40      | 13.6 GiB
    ltx, model CPU offload             40 | 10.4 (moves incl.)        |  9.7 GiB
    wan (16.4B + UMT5-XXL 5.7B)        10 | 4.4               441     | 44.4 GiB
    wan, model CPU offload             10 | 37.6 (moves incl.)        | 31.3 GiB

At 40 steps Wan takes about 18 s per clip, so an 80-frame 8 fps video (5 clips) about 1.5 min; LTX
about 8 s. Interpolation and prediction cost the same.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from m3cvc.config import LtxOptions, SeineOptions, VideoDiffusionOptions, WanOptions  # noqa: E402

WIDTH, HEIGHT = 512, 320


@contextlib.contextmanager
def building(device: str, dtype: Any) -> Iterator[None]:
    """Create parameters directly on ``device`` in ``dtype`` (no float32 copy on the CPU first)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


# T5-v1.1-XXL / UMT5-XXL encoder sizes (their published configs)
T5_XXL = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, feed_forward_proj="gated-gelu")


def build_ltx(full: bool) -> Any:
    """LTX-Video at its published size (diffusers' default configs), or the tests' tiny pipeline."""
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXConditionPipeline, LTXVideoTransformer3DModel
    from tiny_models import t5_encoder, t5_tokenizer, tiny_ltx

    if not full:
        return tiny_ltx()
    return LTXConditionPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=AutoencoderKLLTXVideo(),
                                text_encoder=t5_encoder(32128, **T5_XXL), tokenizer=t5_tokenizer(),
                                transformer=LTXVideoTransformer3DModel())


def build_wan(full: bool) -> Any:
    """Wan2.1 FLF2V/I2V 14B at its published size, or the tests' tiny FLF2V-layout pipeline."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    from tiny_models import t5_encoder, t5_tokenizer, tiny_wan

    if not full:
        return tiny_wan(with_clip=True)
    clip = CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                            patch_size=14, image_size=224, projection_dim=1024, hidden_act="gelu")
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36, out_channels=16,
        text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=1280, added_kv_proj_dim=5120,
        rope_max_seq_len=1024, pos_embed_seq_len=2 * 257)
    return WanImageToVideoPipeline(
        tokenizer=t5_tokenizer(), text_encoder=t5_encoder(256384, umt5=True, **T5_XXL), vae=AutoencoderKLWan(),
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        image_encoder=CLIPVisionModelWithProjection(clip), image_processor=CLIPImageProcessor(crop_size=224, size=224))


def build_seine(full: bool) -> Any:
    """SEINE at its published size: our UNet for SD v1.4's config (0.91B), SD v1.4's VAE and CLIP ViT-L/14
    text encoder; or a tiny one (the tests' layout)."""
    import transformers
    from diffusers import AutoencoderKL
    from m3cvc.reconstruct.seine_pipeline import SeinePipeline, seine_scheduler
    from m3cvc.reconstruct.seine_unet import SeineUNet3D
    from tiny_models import write_clip_tokenizer

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_clip_tokenizer(Path(tmp))
        tokenizer = transformers.CLIPTokenizer.from_pretrained(tmp, model_max_length=77 if full else 16)
    if full:
        sys.path.insert(0, str(ROOT / "scripts"))
        from seine_reference import SD14_UNET

        unet = SeineUNet3D.from_sd_config(SD14_UNET)
        vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=512)
        text = transformers.CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                           num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")
    else:
        unet = SeineUNet3D.from_sd_config(dict(
            sample_size=8, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8, cross_attention_dim=32,
            attention_head_dim=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")))
        vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=8, latent_channels=4)
        text = transformers.CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                           num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=16,
                                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                           pad_token_id=tokenizer.pad_token_id)
    return SeinePipeline(unet=unet, vae=vae, text_encoder=transformers.CLIPTextModel(text), tokenizer=tokenizer,
                         scheduler=seine_scheduler())


def reconstructors(backend: str, mode: str, steps: int, runtime: VideoDiffusionOptions) -> Any:
    from m3cvc.reconstruct.ltx import LtxReconstructor
    from m3cvc.reconstruct.seine import SeineReconstructor
    from m3cvc.reconstruct.wan import WanReconstructor

    if backend == "ltx":
        return LtxReconstructor(mode, LtxOptions(model="(random, in memory)", steps=steps), runtime)
    if backend == "seine":
        return SeineReconstructor(mode, SeineOptions(model="(random, in memory)", steps=steps), runtime)
    return WanReconstructor(mode, WanOptions(model="(random, in memory)", prediction_model="(random, in memory)",
                                             steps=steps), runtime)


BUILDERS: dict[str, Callable[[bool], Any]] = {"ltx": build_ltx, "wan": build_wan, "seine": build_seine}
MODES = {backend: ("interpolation", "prediction") for backend in BUILDERS}


def benchmark_device(scale: str) -> str | None:
    """``cuda`` when torch sees a GPU, else ``cpu``; None (after saying why) for ``full`` without a GPU."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if scale == "full" and device == "cpu":
        print("--scale full needs a CUDA GPU (use --scale tiny to check the code path on the CPU)", file=sys.stderr)
        return None
    return device


def count_params(pipe: Any) -> dict[str, float]:
    import torch

    return {name: sum(p.numel() for p in comp.parameters()) / 1e9
            for name, comp in pipe.components.items() if isinstance(comp, torch.nn.Module)}


def bench_backend(backend: str, args: argparse.Namespace, device: str) -> dict[str, Any]:
    import torch

    full = args.scale == "full"
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    torch.manual_seed(0)
    with building(device, dtype):
        pipe = BUILDERS[backend](full)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # modules built from configs start in train mode
    built_s = time.perf_counter() - start
    params = count_params(pipe)
    print(f"{backend}: built in {built_s:.1f} s, parameters (billions): "
          + ", ".join(f"{k} {v:.2f}" for k, v in params.items()), flush=True)
    rng = np.random.default_rng(0)
    width, height = (WIDTH, HEIGHT) if full else (64, 64)
    first = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    following = np.roll(first, 8, axis=1)
    runtime = VideoDiffusionOptions(device=device, dtype="auto", max_sequence_length=args.max_sequence_length,
                                    cpu_offload=args.cpu_offload)
    out: dict[str, Any] = {"backend": backend, "params_billion": params, "build_seconds": built_s,
                           "cpu_offload": args.cpu_offload, "modes": {}}
    for mode in MODES[backend][: args.modes]:
        recon = reconstructors(backend, mode, args.steps, runtime)
        recon.use_pipeline(pipe)
        pipe.set_progress_bar_config(disable=True)
        run = lambda: sum(1 for _ in recon.reconstruct(first, following, args.clip_length, "a man walks a dog"))  # noqa: E731
        run()  # warm-up (kernels, autotuning)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.clips):
            t0 = time.perf_counter()
            frames = run()
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        seconds = float(np.median(times))
        gen = recon.window_frames(recon.pipeline(), args.clip_length)
        row = {
            "clip_frames": frames,
            "generated_frames": gen,
            "generation_size": list(recon.generation_size(recon.pipeline(), width, height)),
            "steps": args.steps,
            "seconds_per_clip": seconds,
            "ms_per_step": 1000.0 * seconds / args.steps,
            "clip_frames_per_second": frames / seconds,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        }
        out["modes"][mode] = row
        peak = f", peak {row['peak_gib']:.1f} GiB" if cuda else ""
        print(f"  {mode:<13} {frames} frames ({gen} generated at {row['generation_size'][0]}x{row['generation_size'][1]}), "
              f"{args.steps} steps: {seconds:.2f} s per clip ({row['ms_per_step']:.0f} ms/step){peak}", flush=True)
    del pipe, recon
    if cuda:
        torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="ltx", help="comma-separated: ltx, wan, seine")
    p.add_argument("--scale", choices=("full", "tiny"), default="full")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--clips", type=int, default=2, help="timed clips per mode (median)")
    p.add_argument("--modes", type=int, default=2, help="how many of interpolation, prediction to time")
    p.add_argument("--clip-length", type=int, default=16)
    p.add_argument("--max-sequence-length", type=int, default=128, help="text tokens")
    p.add_argument("--cpu-offload", action="store_true", help="model CPU offload (reconstruct.diffusion.cpu_offload)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    import torch
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # the schedulers' notes on random-weight runs are noise here
    device = benchmark_device(args.scale)
    if device is None:
        return 2
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print(f"device: {gpu}; torch {torch.__version__}", flush=True)
    results = {"device": gpu, "torch": torch.__version__, "scale": args.scale,
               "backends": [bench_backend(b, args, device) for b in args.backends.split(",")]}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
