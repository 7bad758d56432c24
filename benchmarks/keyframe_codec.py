"""Keyframe codec benchmark: VQ-then-TAEF2-decode at both grids vs AVIF at matched bpp.

Trains the post-encoder + 256-entry codebook + causal prior (CPU, a few minutes per grid) in the
latent space of the real pretrained TAEF2 autoencoder (../shared/weights/taef2) on frames of real
clips, then codes held-out frames (other frames / another clip) with the ``vq-diffusion`` codec
in ``decoder=vae`` mode (no diffusion: z_hat -> TAEF2 decoder) and reports bpp, PSNR, MS-SSIM,
the coded size against the prior's ideal code length, and AVIF (Pillow) at the same bytes per
frame (highest quality that fits; if even quality 0 does not fit, AVIF of a downscaled frame,
upscaled back, as the smallest AVIF can reach).

    .venv/bin/python benchmarks/keyframe_codec.py --work /tmp/m3cvc-kfbench

Recorded run (benchmarks/keyframe_codec_results.json; 2-core CPU shared with other jobs):

    keyframe_codec.py --work W --grids half --steps 2000 --prior-steps 1500 --channels 96 --blocks 2 --crop 24 --lr 1e-3
    keyframe_codec.py --work W --grids full --steps 800 --prior-steps 1500 --channels 96 --blocks 2 --crop 24 --lr 1e-3
    keyframe_codec.py --work W --eval-only --json benchmarks/keyframe_codec_results.json

    grid  | bpp     coded/ideal | PSNR   MS-SSIM | AVIF bpp  PSNR   MS-SSIM
    half  | 0.0306  1.0050      | 17.85  0.6047  | 0.0299    23.45  0.7907
    full  | 0.1016  1.0017      | 19.92  0.7593  | 0.0989    30.62  0.9504
    (TAEF2 alone, no VQ: 36.78 dB, MS-SSIM 0.9941)

Frames: 512x320 at 8 fps (the paper's preprocessing). Training: bigbuckbunny.mp4 (all) and
bikes.mp4 frames 0-47; evaluation: bikes.mp4 frames 56-79 (every 3rd) and carphone_pristine.mp4
(every 4th) - none of them seen in training.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from m3cvc.config import PreprocessConfig  # noqa: E402
from m3cvc.eval.metrics import ms_ssim, psnr  # noqa: E402
from m3cvc.samples import sample_clip  # noqa: E402
from m3cvc.video import read_frames  # noqa: E402

TAEF2_DIR = ROOT.parent / "shared" / "weights" / "taef2"


def load_frames() -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    cfg = PreprocessConfig()
    bunny = read_frames(sample_clip("bigbuckbunny.mp4"), cfg)
    bikes = read_frames(sample_clip("bikes.mp4"), cfg)
    carphone = read_frames(sample_clip("carphone_pristine.mp4"), cfg)
    train = bunny + bikes[:48]
    test_bikes = bikes[56:80:3]
    test_car = carphone[::4]
    names = [f"bikes#{56 + 3 * i}" for i in range(len(test_bikes))] + [f"carphone#{4 * i}" for i in range(len(test_car))]
    return train, test_bikes + test_car, names


def avif_at_bytes(frame: np.ndarray, budget: int) -> tuple[np.ndarray, int, int, int]:
    """(decoded, bytes, quality, downscale) of the best AVIF not larger than ``budget`` bytes."""
    from PIL import Image

    def enc(img: Image.Image, q: int) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="AVIF", quality=q, speed=6)
        return buf.getvalue()

    h, w = frame.shape[:2]
    full = Image.fromarray(frame)
    for scale in (1, 2, 3, 4, 6, 8):
        img = full if scale == 1 else full.resize((max(1, w // scale), max(1, h // scale)), Image.LANCZOS)
        lo, hi, best = 0, 100, None
        while lo <= hi:  # highest quality whose size fits
            mid = (lo + hi) // 2
            data = enc(img, mid)
            if len(data) <= budget:
                best, lo = (data, mid), mid + 1
            else:
                hi = mid - 1
        if best is None and scale < 8:
            continue
        data, q = best if best is not None else (enc(img, 0), 0)
        dec = Image.open(io.BytesIO(data)).convert("RGB")
        if scale != 1:
            dec = dec.resize((w, h), Image.BICUBIC)
        return np.asarray(dec), len(data), q, scale
    raise AssertionError("unreachable")


def latents_of(vae, frames, cache: Path):
    import torch

    from m3cvc.keyframe_codec.train import encode_latents

    if cache.is_file():
        return torch.load(cache)
    lat = encode_latents(vae, frames, batch_size=2, desc=f"TAEF2 encode ({cache.stem})")
    torch.save(lat, cache)
    return lat


def train_grid(grid: str, latents, work: Path, args) -> Path:
    from m3cvc.keyframe_codec.train import EncoderTrainConfig, EncoderTrainer
    from m3cvc.keyframe_codec.vq_model import VQModelConfig

    out = work / f"vq-{grid}"
    model_cfg = VQModelConfig(grid=grid, channels=args.channels, blocks=args.blocks, vae=f"taef2:{TAEF2_DIR}",
                              vae_kind="taef2")
    train_cfg = EncoderTrainConfig(steps=args.steps, prior_steps=args.prior_steps, batch_size=args.batch,
                                   crop=args.crop, lr=args.lr, save_every=100)
    t0 = time.time()
    EncoderTrainer(latents, out, model_cfg, train_cfg, resume=args.resume).train()
    print(f"[{grid}] trained in {time.time() - t0:.0f} s -> {out}", flush=True)
    return out


def evaluate(grid: str, checkpoint: Path, test, names, vae) -> dict:
    from m3cvc.keyframe_codec.vq_diffusion import codec_for

    codec = codec_for(str(checkpoint), decoder="vae")
    codec._vae = vae  # share the loaded TAEF2
    rows = []
    for frame, name in zip(test, names):
        t0 = time.time()
        data = codec.compress(frame)
        ideal = codec.ideal_bits(frame)
        rec = codec.decompress(data, frame.shape[:2])
        secs = time.time() - t0
        pixels = frame.shape[0] * frame.shape[1]
        avif, avif_bytes, q, scale = avif_at_bytes(frame, len(data))
        rows.append(dict(frame=name, bytes=len(data), ideal_bytes=ideal / 8, bpp=8 * len(data) / pixels,
                         psnr=psnr(frame, rec), ms_ssim=ms_ssim(frame, rec), seconds=secs,
                         avif_bytes=avif_bytes, avif_bpp=8 * avif_bytes / pixels, avif_quality=q, avif_downscale=scale,
                         avif_psnr=psnr(frame, avif), avif_ms_ssim=ms_ssim(frame, avif)))
        print(f"[{grid}] {name}: {len(data)} B ({rows[-1]['bpp']:.4f} bpp, ideal {ideal / 8:.1f} B) "
              f"PSNR {rows[-1]['psnr']:.2f} MS-SSIM {rows[-1]['ms_ssim']:.4f} | AVIF {avif_bytes} B q{q} /{scale} "
              f"PSNR {rows[-1]['avif_psnr']:.2f} MS-SSIM {rows[-1]['avif_ms_ssim']:.4f}", flush=True)
    return {"grid": grid, "frames": rows, **{f"mean_{k}": float(np.mean([r[k] for r in rows])) for k in rows[0]
                                               if k != "frame"}}


def vae_ceiling(vae, test) -> dict:
    """TAEF2 encode -> decode without VQ: the best any latent-space codec here can do."""
    from m3cvc.keyframe_codec.train import images_to_tensor

    ps, ms = [], []
    for frame in test:
        rec = vae.decode(vae.encode(images_to_tensor([frame])))[0]
        out = ((rec.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        ps.append(psnr(frame, out))
        ms.append(ms_ssim(frame, out))
    return {"psnr": float(np.mean(ps)), "ms_ssim": float(np.mean(ms))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/m3cvc-kfbench"), help="checkpoints + latent cache")
    ap.add_argument("--grids", default="half,full")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--prior-steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--channels", type=int, default=96)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true", help="continue training from the checkpoints in --work")
    ap.add_argument("--eval-only", action="store_true", help="skip training, evaluate the checkpoints in --work")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    if not TAEF2_DIR.is_dir():
        print(f"TAEF2 weights not found at {TAEF2_DIR}", file=sys.stderr)
        return 2
    import torch

    from m3cvc.keyframe_codec.vae import load_vae

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    train, test, names = load_frames()
    print(f"{len(train)} training frames, {len(test)} held-out frames, {test[0].shape[1]}x{test[0].shape[0]}", flush=True)
    vae = load_vae(f"taef2:{TAEF2_DIR}")
    latents = latents_of(vae, train, args.work / "train_latents.pt")
    results = {"command": " ".join(sys.argv), "train_frames": len(train), "test_frames": len(test),
               "vae_ceiling": vae_ceiling(vae, test), "grids": []}
    print(f"TAEF2 without VQ: PSNR {results['vae_ceiling']['psnr']:.2f} MS-SSIM {results['vae_ceiling']['ms_ssim']:.4f}")
    for grid in args.grids.split(","):
        ckpt = args.work / f"vq-{grid}" if args.eval_only else train_grid(grid, latents, args.work, args)
        results["grids"].append(evaluate(grid, ckpt, test, names, vae))
    print("\ngrid  | bpp     coded/ideal | PSNR   MS-SSIM | AVIF bpp  PSNR   MS-SSIM")
    for g in results["grids"]:
        print(f"{g['grid']:<5} | {g['mean_bpp']:.4f}  {g['mean_bytes'] / g['mean_ideal_bytes']:.4f}      | "
              f"{g['mean_psnr']:.2f}  {g['mean_ms_ssim']:.4f}  | {g['mean_avif_bpp']:.4f}    "
              f"{g['mean_avif_psnr']:.2f}  {g['mean_avif_ms_ssim']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
