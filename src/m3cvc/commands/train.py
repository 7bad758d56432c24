"""``m3cvc train keyframe-encoder | keyframe-decoder``: train the generative keyframe codec (paper III-A)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError, InputError
from ..fileio import ensure_folder
from .codec import _parser
from .subcommands import dispatch

_USAGE = "usage: m3cvc train {keyframe-encoder,keyframe-decoder} DATASET_DIR -o OUT [options]"
DEFAULT_SD = "stable-diffusion-v1-5/stable-diffusion-v1-5"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="DATASET_DIR", help="folder written by `m3cvc dataset build`")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in OUT")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N steps")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N dataset images")
    p.add_argument("--local-files-only", action="store_true", help="never contact the model hub")
    p.add_argument("--device", default="auto",
                   help="auto (cuda when available, else cpu) | cpu | cuda | cuda:N; several GPUs: "
                        "accelerate launch -m m3cvc train ...")  # fmt: skip
    p.add_argument("--mixed-precision", default="auto", choices=("auto", "no", "bf16", "fp16"),
                   help="auto: bf16 on GPUs that support it, fp16 on older GPUs, no on the CPU")
    p.add_argument("--grad-accum", type=int, default=1, metavar="K",
                   help="micro-batches per optimizer step (effective batch: batch size x K x processes)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _main_process_first(device: str):
    """``accelerate``'s main-process-first context when launched as several processes (``accelerate launch``,
    ``torchrun``), else a no-op."""
    import contextlib

    from ..keyframe_codec.train import launched

    if launched():
        from accelerate import PartialState

        return PartialState(cpu=device == "cpu").main_process_first()
    return contextlib.nullcontext()


def _runtime(args: argparse.Namespace):
    from ..keyframe_codec.train import TrainRuntime

    return TrainRuntime(device=args.device, mixed_precision=args.mixed_precision, grad_accum=args.grad_accum)


def _check_output(out: Path, resume: bool) -> None:
    from ..keyframe_codec.train import STATE_NAME

    if (out / STATE_NAME).exists() and not resume:
        raise InputError(f"{out} already holds a training run; pass --resume to continue it or choose another folder")
    if resume and not (out / STATE_NAME).exists():
        raise InputError(f"{out} holds no training run to resume (no {STATE_NAME}); drop --resume to start one")
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} is a file, not a folder")


def _overrides(args: argparse.Namespace, names: Sequence[str]) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def encoder_main(argv: Sequence[str]) -> int:
    p = _parser("train keyframe-encoder", "Train the post-encoder + 256-entry codebook (commit + latent "
                "reconstruction loss, k-means init, dead-code restarts), then the causal index prior.")
    _common(p)
    p.add_argument("--vae", default=DEFAULT_SD, help="VAE id / folder, or taef2:<folder> (default: SD 1.5's VAE)")
    p.add_argument("--vae-kind", default="autoencoderkl", choices=("autoencoderkl", "autoencodertiny", "taef2"))
    p.add_argument("--grid", default="half", choices=("half", "full"), help="index grid: latent/2 or latent/1")
    p.add_argument("--prior-steps", type=int)
    p.add_argument("--crop", type=int, help="random latent crop size (0: whole latents)")
    p.add_argument("--channels", type=int, default=128)
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--code-dim", type=int, default=32)
    args = p.parse_args(argv)
    from dataclasses import replace

    from ..devices import resolve_device
    from ..keyframe_codec.dataset import KeyframeImages
    from ..keyframe_codec.train import LATENTS_NAME, EncoderTrainConfig, EncoderTrainer, LatentStore
    from ..keyframe_codec.vae import load_vae
    from ..keyframe_codec.vq_model import VQModelConfig

    from ..hub import stored_model_path
    from ..keyframe_codec.train import check_runtime, check_train_config

    out = Path(args.output)
    _check_output(out, args.resume)
    runtime = _runtime(args)
    check_runtime(runtime)
    names = ("steps", "prior_steps", "batch_size", "crop", "lr", "seed", "save_every")
    train_cfg = replace(EncoderTrainConfig(), **_overrides(args, names))
    check_train_config(train_cfg)
    for name in ("channels", "blocks", "code_dim"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    images = KeyframeImages(args.dataset, args.limit)
    kind = "taef2" if args.vae.startswith("taef2:") else args.vae_kind
    vae_id = stored_model_path(args.vae)
    model_cfg = VQModelConfig(grid=args.grid, channels=args.channels, blocks=args.blocks, code_dim=args.code_dim,
                              vae=vae_id, vae_kind=kind)
    if args.resume:  # refuse a run of another architecture before the latent cache is touched
        from ..keyframe_codec.vq_model import read_config

        stored = read_config(out)
        differ = [k for k in ("grid", "channels", "blocks", "code_dim", "vae", "vae_kind") if stored.get(k) != getattr(model_cfg, k)]
        if differ:
            raise InputError(f"{out} holds a model with other settings ({', '.join(differ)}); resume it with its own "
                             "settings or train into another folder")  # fmt: skip
    ensure_folder(out)
    latents_file = out / LATENTS_NAME
    vae = load_vae(vae_id, args.vae_kind, device=resolve_device(args.device), dtype="float32",
                   local_files_only=args.local_files_only, key="--vae")  # fmt: skip
    with _main_process_first(resolve_device(args.device)):  # under accelerate launch one process encodes, the others read its file
        latents = LatentStore.build(latents_file, images, vae, progress=not args.quiet, key=f"{kind}:{vae_id}:{images.key}")
    del vae
    EncoderTrainer(latents, out, model_cfg, train_cfg, resume=args.resume, progress=not args.quiet, runtime=runtime).train()
    if not args.quiet:
        print(f"keyframe encoder ({args.grid} grid, {len(images)} images) -> {out}")
    return 0


def decoder_main(argv: Sequence[str]) -> int:
    p = _parser("train keyframe-decoder", "Fine-tune the SD UNet's linear layers (and its new z_hat input "
                "weights) with the epsilon loss, conditioned on z_hat and the keyframe text.")
    _common(p)
    p.add_argument("--encoder", required=True, metavar="DIR", help="keyframe encoder checkpoint (frozen)")
    p.add_argument("--base", default=DEFAULT_SD, help="Stable Diffusion checkpoint (unet, text encoder, scheduler)")
    p.add_argument("--text-dropout", type=float, help="probability of training with an empty text (CFG)")
    args = p.parse_args(argv)
    from dataclasses import replace

    from ..keyframe_codec.dataset import KeyframeImages
    from ..keyframe_codec.train_decoder import DecoderTrainConfig, DecoderTrainer

    out = Path(args.output)
    _check_output(out, args.resume)
    images = KeyframeImages(args.dataset, args.limit)
    names = ("steps", "batch_size", "lr", "seed", "save_every", "text_dropout")
    train_cfg = replace(DecoderTrainConfig(), **_overrides(args, names))
    DecoderTrainer(images, images.texts, out, args.encoder, args.base, train_cfg, resume=args.resume,
                   local_files_only=args.local_files_only, progress=not args.quiet, runtime=_runtime(args)).train()
    if not args.quiet:
        print(f"keyframe decoder ({len(images)} images) -> {out}")
    return 0


SUBCOMMANDS = {"keyframe-encoder": encoder_main, "keyframe-decoder": decoder_main}


def main(argv: Sequence[str]) -> int:
    return dispatch("train", _USAGE, SUBCOMMANDS, argv)
