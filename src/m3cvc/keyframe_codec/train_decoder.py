"""Fine-tuning of the z_hat-conditioned diffusion decoder (paper III-A, second stage).

The base Stable Diffusion UNet gets ``conv_in`` widened by the latent channels of z_hat (new
weights zero-initialised), then its linear layers (attention projections, feed-forwards, time
embedding) and ``conv_in`` are trained with the epsilon-prediction loss
``||eps - eps_theta(z_t, t, z_hat, D^F)||^2`` while the VAE, the VQ keyframe model and the text
encoder stay frozen. Texts are dropped (replaced by "") with probability ``text_dropout`` so
classifier-free guidance works at decode time.

The output folder is a diffusers UNet folder (``config.json`` + ``diffusion_pytorch_model.safetensors``,
load with ``from_pretrained(dir)``) plus ``m3cvc_decoder.json`` (base model, VQ checkpoint),
``training_state.pt`` (resume) and ``loss_log.jsonl``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .latent_diffusion import embed_texts, expand_conv_in, load_scheduler, load_text_encoder, load_unet
from .train import (
    LATENTS_NAME,
    LOG_NAME,
    LatentStore,
    LossLog,
    TrainRuntime,
    accumulate_step,
    check_train_config,
    gather_states,
    images_key,
    load_training_state,
    make_accelerator,
    save_training_state,
    train_loop,
)
from .vae import load_vae
from .vq_model import VQKeyframeModel

DECODER_META = "m3cvc_decoder.json"


@dataclass(frozen=True)
class DecoderTrainConfig:
    steps: int = 2000
    batch_size: int = 4
    lr: float = 1e-5
    text_dropout: float = 0.1
    log_every: int = 10
    save_every: int = 500
    seed: int = 0


def trainable_parameters(unet: nn.Module) -> list[nn.Parameter]:
    """Parameters of every nn.Linear in the UNet, plus conv_in (which holds the new z_hat weights)."""
    params: list[nn.Parameter] = list(unet.conv_in.parameters())
    for module in unet.modules():
        if isinstance(module, nn.Linear):
            params += list(module.parameters())
    return params


class DecoderTrainer:
    """Fine-tunes the decoder UNet on ``images`` (a list or a lazy sequence such as
    :class:`~m3cvc.keyframe_codec.dataset.KeyframeImages`) and their ``texts``. VAE latents go to a
    :class:`~m3cvc.keyframe_codec.train.LatentStore` in ``out_dir`` (built once, reused on resume); z_hat
    and the text embeddings are computed per batch by the frozen VQ model and text encoder."""

    def __init__(
        self,
        images: Sequence[np.ndarray],
        texts: Sequence[str],
        out_dir: Union[str, Path],
        vq_checkpoint: str,
        base: str,
        config: DecoderTrainConfig = DecoderTrainConfig(),
        resume: bool = False,
        local_files_only: bool = False,
        progress: bool = True,
        runtime: TrainRuntime = TrainRuntime(device="cpu", mixed_precision="no"),
    ) -> None:
        if not len(images) or len(images) != len(texts):
            raise InputError("the keyframe decoder needs training images, each with a text")
        check_train_config(config)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        from ..hub import resolve_model, stored_model_path

        base, vq_checkpoint = stored_model_path(base), stored_model_path(vq_checkpoint)
        resolve_model(base, "--base", local_files_only)  # a missing folder or unreachable model: one line, now
        self.config, self.base, self.vq_checkpoint, self.progress = config, base, vq_checkpoint, progress
        self.runtime = runtime
        self.accel = make_accelerator(runtime)
        self.device = self.accel.device
        self.is_main = self.accel.is_main_process
        self.log = LossLog(self.out_dir / LOG_NAME)
        torch.manual_seed(config.seed)
        self.vq = VQKeyframeModel.from_pretrained(vq_checkpoint, device=str(self.device)).eval()
        vae = load_vae(self.vq.config.vae, self.vq.config.vae_kind, device=str(self.device), dtype="float32",
                       local_files_only=local_files_only)  # fmt: skip
        key = f"{self.vq.config.vae_kind}:{self.vq.config.vae}:{images_key(images)}"
        with self.accel.main_process_first():  # one process encodes, the others read its file
            self.latents = LatentStore.build(self.out_dir / LATENTS_NAME, images, vae, progress=progress and self.is_main,
                                             key=key)  # fmt: skip
        del vae
        self.texts = list(texts)
        self.tokenizer, self.text_encoder = load_text_encoder(base, local_files_only)
        self.text_encoder.to(self.device)
        self.null_emb = embed_texts(self.tokenizer, self.text_encoder, [""])
        self.scheduler = load_scheduler(base, "ddpm", local_files_only)
        self.state = load_training_state(self.out_dir) if resume else None
        if self.state is not None:
            meta = read_decoder_meta(self.out_dir) or {}
            if (meta.get("vq_checkpoint"), meta.get("base")) != (vq_checkpoint, base):
                raise InputError(f"{self.out_dir} was trained with --encoder {meta.get('vq_checkpoint')} and --base "
                                 f"{meta.get('base')}; resume it with those")  # fmt: skip
            self.unet = load_unet(str(self.out_dir))
        else:
            self.unet = expand_conv_in(load_unet(base, "unet", local_files_only), int(self.vq.config.latent_channels))
        self.unet.requires_grad_(False)
        params = trainable_parameters(self.unet)
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=config.lr)
        self.gen = torch.Generator().manual_seed(config.seed + self.accel.process_index)
        self.step = 0
        if self.state is not None:
            opt.load_state_dict(self.state["opt"])
            gens = self.state.get("gens") or [self.state["gen"]]
            self.gen.set_state(gens[min(self.accel.process_index, len(gens) - 1)])
            self.step = int(self.state["step"])
        self.unet.to(self.device)
        self.model, self.opt = self.accel.prepare(self.unet, opt)

    @torch.no_grad()
    def _conditions(self, pick: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latents, z_hat and text embeddings of the samples ``pick``, on the device."""
        z = self.latents[pick].to(self.device)
        z_hat = self.vq.decode_indices(self.vq.encode_indices(z))
        emb = embed_texts(self.tokenizer, self.text_encoder, [self.texts[i] for i in pick])
        return z, z_hat, emb

    def train_step(self) -> dict[str, float]:
        cfg, g = self.config, self.gen
        self.model.train()

        def micro() -> tuple[torch.Tensor, dict[str, float]]:
            pick = torch.randint(0, len(self.latents), (cfg.batch_size,), generator=g).tolist()
            z, z_hat, emb = self._conditions(pick)
            drop = torch.rand(cfg.batch_size, generator=g) < cfg.text_dropout
            emb[drop.to(emb.device)] = self.null_emb
            noise = torch.randn(z.shape, generator=g).to(self.device)
            t = torch.randint(0, self.scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=g).to(self.device)
            noisy = self.scheduler.add_noise(z, noise, t)
            pred = self.model(torch.cat([noisy, z_hat], dim=1), t, encoder_hidden_states=emb).sample
            loss = nn.functional.mse_loss(pred.float(), noise)
            return loss, {"loss": float(loss.detach())}

        return accumulate_step(self.accel, self.model, self.opt, micro)

    @torch.no_grad()
    def eval_loss(self, seed: int = 0) -> float:
        """Epsilon loss on every training sample with fixed noise and timesteps (comparable across steps)."""
        g = torch.Generator().manual_seed(seed)
        self.unet.eval()
        total, n = 0.0, len(self.latents)
        for start in range(0, n, 8):
            pick = list(range(start, min(start + 8, n)))
            z, z_hat, emb = self._conditions(pick)
            noise = torch.randn(z.shape, generator=g).to(self.device)
            t = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(pick),), generator=g).to(self.device)
            pred = self.unet(torch.cat([self.scheduler.add_noise(z, noise, t), z_hat], dim=1), t,
                             encoder_hidden_states=emb).sample  # fmt: skip
            total += float(nn.functional.mse_loss(pred.float(), noise)) * len(pick)
        return total / n

    def save(self) -> Path:
        gens = gather_states(self.accel, self.gen)
        if self.is_main:
            self.accel.unwrap_model(self.model).save_pretrained(str(self.out_dir))
            meta = {"base": self.base, "vq_checkpoint": self.vq_checkpoint, "train_config": asdict(self.config)}
            (self.out_dir / DECODER_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            save_training_state(self.out_dir, {
                "step": self.step, "opt": self.opt.state_dict(), "gen": self.gen.get_state(), "gens": gens,
                "runtime": {**asdict(self.runtime), "processes": self.accel.num_processes,
                            "mixed_precision_used": self.accel.mixed_precision},
            })  # fmt: skip
        self.accel.wait_for_everyone()
        return self.out_dir

    def train(self) -> Path:
        train_loop(self, "decoder", 0, self.config.steps, self.train_step)
        self.unet.eval()
        return self.save()


def read_decoder_meta(folder: Union[str, Path]) -> Optional[dict[str, Any]]:
    path = Path(folder) / DECODER_META
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
