"""Training of the generative keyframe codec (paper III-A).

``EncoderTrainer``: post-encoder + codebook + post-decoder with a latent reconstruction term and
the commit loss, codebook seeded by k-means on encoder outputs, EMA codebook updates, dead-code
restarts; then the causal-neighbour prior (cross-entropy in bits per index) on the frozen
encoder's index maps. ``DecoderTrainer`` (in :mod:`.latent_diffusion`) fine-tunes the UNet.

Both trainers write a checkpoint folder (safetensors + JSON config), a ``training_state.pt``
(optimizer, step, RNG) for ``resume``, and a ``loss_log.jsonl`` with one line per logged step.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import InputError
from .vae import LatentVAE
from .vq_model import VQKeyframeModel, VQModelConfig

STATE_NAME = "training_state.pt"
LOG_NAME = "loss_log.jsonl"


@dataclass(frozen=True)
class EncoderTrainConfig:
    steps: int = 2000  # VQ (post-encoder / codebook / post-decoder) steps
    prior_steps: int = 1000  # prior steps after the VQ phase
    batch_size: int = 8
    crop: int = 32  # random latent crops of this size (0: whole latents)
    lr: float = 2e-4
    prior_lr: float = 1e-3
    beta: float = 0.25  # weight of the commit loss
    restart_every: int = 100  # dead-code restart period (steps); 0 disables
    flip: bool = False  # h-flip latent crops (latents of mirrored images are only roughly mirrored latents)
    log_every: int = 10
    save_every: int = 500
    seed: int = 0


def images_to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """RGB uint8 (H, W, 3) frames of one size -> (N, 3, H, W) float in [-1, 1]."""
    arr = np.stack([np.asarray(im) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def encode_latents(vae: LatentVAE, images: Sequence[np.ndarray], batch_size: int = 4, desc: str = "VAE encode") -> torch.Tensor:
    """Scaled VAE latents of RGB uint8 frames (batched, with a progress bar)."""
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", leave=False):
        out.append(vae.encode(images_to_tensor(images[start : start + batch_size])).cpu())
    return torch.cat(out)


class LossLog:
    """Append-only JSON-lines loss log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")


def random_crops(latents: torch.Tensor, batch: int, crop: int, align: int, gen: torch.Generator,
                 flip: bool = False) -> torch.Tensor:
    """A batch of random (grid-aligned) crops, optionally randomly h-flipped, from (N, C, H, W) latents."""
    n, _, h, w = latents.shape
    pick = torch.randint(0, n, (batch,), generator=gen)
    ch, cw = (min(crop, h), min(crop, w)) if crop else (h, w)
    ch, cw = ch - ch % align, cw - cw % align
    out = []
    for i in pick.tolist():
        y = int(torch.randint(0, (h - ch) // align + 1, (1,), generator=gen)) * align
        x = int(torch.randint(0, (w - cw) // align + 1, (1,), generator=gen)) * align
        tile = latents[i, :, y : y + ch, x : x + cw]
        if flip and int(torch.randint(0, 2, (1,), generator=gen)):
            tile = tile.flip(-1)
        out.append(tile)
    return torch.stack(out)


def cosine_lr(base: float, step: int, total: int, floor: float = 0.1) -> float:
    """Cosine decay from ``base`` to ``floor * base`` over ``total`` steps (stateless, so resume-safe)."""
    frac = min(max(step, 0) / max(total, 1), 1.0)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def save_training_state(folder: Path, state: dict[str, Any]) -> None:
    tmp = folder / (STATE_NAME + ".tmp")
    torch.save(state, tmp)
    tmp.replace(folder / STATE_NAME)


def load_training_state(folder: Path) -> Optional[dict[str, Any]]:
    path = folder / STATE_NAME
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def train_loop(trainer: Any, phase: str, start: int, stop: int, step_fn: Callable[[], dict[str, float]]) -> None:
    """Run ``step_fn`` from ``trainer.step`` to ``stop`` with a progress bar, the loss log and
    periodic checkpoints (``trainer`` has ``step``, ``config.log_every/save_every``, ``log``,
    ``progress`` and ``save()``)."""
    cfg = trainer.config
    bar = tqdm(total=stop - start, initial=max(0, trainer.step - start), desc=f"train {phase}", unit="step",
               disable=not trainer.progress)
    while trainer.step < stop:
        metrics = step_fn()
        trainer.step += 1
        bar.update(1)
        if trainer.step % cfg.log_every == 0 or trainer.step == stop:
            trainer.log.write({"phase": phase, "step": trainer.step, **metrics})
            bar.set_postfix({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})
        if cfg.save_every and trainer.step % cfg.save_every == 0:
            trainer.save()
    bar.close()


class EncoderTrainer:
    """Trains a :class:`VQKeyframeModel` on precomputed latents; checkpoints into ``out_dir``."""

    def __init__(
        self,
        latents: torch.Tensor,
        out_dir: Union[str, Path],
        model_config: VQModelConfig,
        config: EncoderTrainConfig = EncoderTrainConfig(),
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        if latents.ndim != 4 or latents.shape[0] == 0:
            raise InputError("the keyframe encoder needs at least one training image")
        self.latents = latents.float()
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.progress = progress
        self.log = LossLog(self.out_dir / LOG_NAME)
        torch.manual_seed(config.seed)
        self.model = VQKeyframeModel(replace(model_config, latent_channels=int(latents.shape[1])))
        self.gen = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.vq_opt = torch.optim.Adam(self._vq_params(), lr=config.lr)
        self.prior_opt = torch.optim.Adam(self.model.prior.parameters(), lr=config.prior_lr)
        if resume:
            self._resume()

    def _vq_params(self) -> list[torch.nn.Parameter]:
        return list(self.model.post_encoder.parameters()) + list(self.model.post_decoder.parameters())

    def _resume(self) -> None:
        state = load_training_state(self.out_dir)
        if state is None:
            return
        loaded = VQKeyframeModel.from_pretrained(self.out_dir)
        self.model.load_state_dict(loaded.state_dict())
        self.vq_opt.load_state_dict(state["vq_opt"])
        self.prior_opt.load_state_dict(state["prior_opt"])
        self.gen.set_state(state["gen"])
        self.step = int(state["step"])

    def save(self) -> Path:
        self.model.save_pretrained(self.out_dir)
        save_training_state(
            self.out_dir,
            {
                "step": self.step,
                "vq_opt": self.vq_opt.state_dict(),
                "prior_opt": self.prior_opt.state_dict(),
                "gen": self.gen.get_state(),
                "train_config": asdict(self.config),
            },
        )
        return self.out_dir

    def _batch(self) -> torch.Tensor:
        cfg = self.config
        return random_crops(self.latents, cfg.batch_size, cfg.crop, 2 * self.model.config.factor, self.gen, cfg.flip)

    def _kmeans_init(self) -> None:
        with torch.no_grad():
            sample = torch.cat([self._batch() for _ in range(4)])
            self.model.quantizer.kmeans_init(self.model.post_encoder(sample), seed=self.config.seed)

    def vq_step(self) -> dict[str, float]:
        self.model.train()
        set_lr(self.vq_opt, cosine_lr(self.config.lr, self.step, self.config.steps))
        out = self.model(self._batch())
        loss = out["recon"] + self.config.beta * out["commit"]
        self.vq_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.vq_opt.step()
        restarted = 0
        every = self.config.restart_every
        if every and (self.step + 1) % every == 0:
            restarted = self.model.quantizer.restart_dead_codes(out["h"].detach(), seed=self.step)
        used = int(torch.unique(out["indices"]).numel())
        return {"loss": float(loss.detach()), "recon": float(out["recon"].detach()), "commit": float(out["commit"].detach()),
                "codes_used": used, "restarted": restarted}

    def prior_step(self, indices: torch.Tensor) -> dict[str, float]:
        self.model.prior.train()
        cfg = self.config
        set_lr(self.prior_opt, cosine_lr(cfg.prior_lr, self.step - cfg.steps, cfg.prior_steps))
        pick = torch.randint(0, indices.shape[0], (self.config.batch_size,), generator=self.gen)
        loss = self.model.prior.loss(indices[pick])  # no flips: a code is not its own mirror image
        self.prior_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.prior_opt.step()
        return {"prior_bits": float(loss.detach())}

    def dataset_indices(self) -> torch.Tensor:
        """Index maps of every training latent (whole latents, cropped to the grid alignment)."""
        f = self.model.config.factor
        h, w = self.latents.shape[-2:]
        latents = self.latents[..., : h - h % f, : w - w % f]
        self.model.eval()
        return torch.cat([self.model.encode_indices(latents[i : i + 8]) for i in range(0, latents.shape[0], 8)])

    @torch.no_grad()
    def eval_loss(self) -> float:
        """The VQ training loss (recon + beta * commit) on every training latent, without updates."""
        self.model.eval()
        f = 2 * self.model.config.factor
        h, w = self.latents.shape[-2:]
        out = self.model(self.latents[..., : h - h % f, : w - w % f])
        return float(out["recon"] + self.config.beta * out["commit"])

    def train(self) -> Path:
        cfg = self.config
        if self.step == 0:
            self._kmeans_init()
        train_loop(self, "vq", 0, cfg.steps, self.vq_step)
        if self.step < cfg.steps + cfg.prior_steps:
            indices = self.dataset_indices()
            train_loop(self, "prior", cfg.steps, cfg.steps + cfg.prior_steps, lambda: self.prior_step(indices))
        self.model.eval()
        return self.save()


def read_loss_log(folder: Union[str, Path]) -> list[dict[str, Any]]:
    path = Path(folder) / LOG_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def mean_of(records: Iterable[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in records if key in r]
    return sum(values) / len(values) if values else math.nan
