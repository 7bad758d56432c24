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
from .train import LossLog, LOG_NAME, encode_latents, load_training_state, save_training_state, train_loop
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
    ) -> None:
        if not images or len(images) != len(texts):
            raise InputError("the keyframe decoder needs training images, each with a text")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.config, self.base, self.vq_checkpoint, self.progress = config, base, vq_checkpoint, progress
        self.log = LossLog(self.out_dir / LOG_NAME)
        torch.manual_seed(config.seed)
        vq = VQKeyframeModel.from_pretrained(vq_checkpoint)
        vae = load_vae(vq.config.vae, vq.config.vae_kind, local_files_only=local_files_only)
        self.latents = encode_latents(vae, list(images), desc="VAE encode")
        self.z_hat = vq.decode_indices(vq.encode_indices(self.latents))
        tokenizer, text_encoder = load_text_encoder(base, local_files_only)
        self.text_emb = embed_texts(tokenizer, text_encoder, list(texts))
        self.null_emb = embed_texts(tokenizer, text_encoder, [""])
        self.scheduler = load_scheduler(base, "ddpm", local_files_only)
        self.state = load_training_state(self.out_dir) if resume else None
        if self.state is not None:
            self.unet = load_unet(str(self.out_dir))
        else:
            self.unet = expand_conv_in(load_unet(base, "unet", local_files_only), int(self.z_hat.shape[1]))
        self.unet.requires_grad_(False)
        params = trainable_parameters(self.unet)
        for p in params:
            p.requires_grad_(True)
        self.opt = torch.optim.AdamW(params, lr=config.lr)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.step = 0
        if self.state is not None:
            self.opt.load_state_dict(self.state["opt"])
            self.gen.set_state(self.state["gen"])
            self.step = int(self.state["step"])

    def train_step(self) -> dict[str, float]:
        cfg, g = self.config, self.gen
        self.unet.train()
        pick = torch.randint(0, self.latents.shape[0], (cfg.batch_size,), generator=g)
        z, z_hat, emb = self.latents[pick], self.z_hat[pick], self.text_emb[pick].clone()
        drop = torch.rand(cfg.batch_size, generator=g) < cfg.text_dropout
        emb[drop] = self.null_emb
        noise = torch.randn(z.shape, generator=g)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=g)
        noisy = self.scheduler.add_noise(z, noise, t)
        pred = self.unet(torch.cat([noisy, z_hat], dim=1), t, encoder_hidden_states=emb).sample
        loss = nn.functional.mse_loss(pred, noise)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def eval_loss(self, seed: int = 0) -> float:
        """Epsilon loss on every training sample with fixed noise and timesteps (comparable across steps)."""
        g = torch.Generator().manual_seed(seed)
        n = self.latents.shape[0]
        noise = torch.randn(self.latents.shape, generator=g)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (n,), generator=g)
        noisy = self.scheduler.add_noise(self.latents, noise, t)
        self.unet.eval()
        pred = self.unet(torch.cat([noisy, self.z_hat], dim=1), t, encoder_hidden_states=self.text_emb).sample
        return float(nn.functional.mse_loss(pred, noise))

    def save(self) -> Path:
        self.unet.save_pretrained(str(self.out_dir))
        meta = {"base": self.base, "vq_checkpoint": self.vq_checkpoint, "train_config": asdict(self.config)}
        (self.out_dir / DECODER_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        save_training_state(self.out_dir, {"step": self.step, "opt": self.opt.state_dict(), "gen": self.gen.get_state()})
        return self.out_dir

    def train(self) -> Path:
        train_loop(self, "decoder", 0, self.config.steps, self.train_step)
        self.unet.eval()
        return self.save()


def read_decoder_meta(folder: Union[str, Path]) -> Optional[dict[str, Any]]:
    path = Path(folder) / DECODER_META
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
