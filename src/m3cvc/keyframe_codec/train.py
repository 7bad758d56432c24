"""Training of the generative keyframe codec (paper III-A).

``EncoderTrainer``: post-encoder + codebook + post-decoder with a latent reconstruction term and
the commit loss, codebook seeded by k-means on encoder outputs, EMA codebook updates, dead-code
restarts; then the causal-neighbour prior (cross-entropy in bits per index) on the frozen
encoder's index maps. ``DecoderTrainer`` (in :mod:`.latent_diffusion`) fine-tunes the UNet.

Both trainers write a checkpoint folder (safetensors + JSON config), a ``training_state.pt``
(optimizer, step, RNG) for ``resume``, and a ``loss_log.jsonl`` with one line per logged step.

Scale: training runs through Hugging Face ``accelerate`` (:class:`TrainRuntime`: device, mixed
precision, gradient accumulation); ``accelerate launch -m m3cvc train ...`` spreads it over several
GPUs (each process draws its own batches, gradients are averaged, the EMA codebook statistics are
summed over processes, the main process writes checkpoints and logs). Training data is read from disk
as it is drawn: images lazily (:class:`~m3cvc.keyframe_codec.dataset.KeyframeImages`), VAE latents
once into a memory-mapped file (:class:`LatentStore`) that later runs and resumes reuse.
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

from ..errors import BackendError, ConfigError, InputError
from .vae import LatentVAE
from .vq_model import VQKeyframeModel, VQModelConfig

STATE_NAME = "training_state.pt"
LOG_NAME = "loss_log.jsonl"
LATENTS_NAME = "latents.npy"  # the VAE latents of the training images (LatentStore), beside the checkpoint
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


@dataclass(frozen=True)
class TrainRuntime:
    """Where and how a training run executes (not part of the checkpoint; may change on resume)."""

    device: str = "auto"  # auto (cuda when available, else cpu) | cpu | cuda | cuda:N (several GPUs: accelerate launch)
    mixed_precision: str = "auto"  # auto (bf16 where the GPU supports it, fp16 on older GPUs, no on cpu) | no | bf16 | fp16
    grad_accum: int = 1  # micro-batches per optimizer step (the effective batch is batch_size x grad_accum x processes)


def check_runtime(rt: TrainRuntime) -> tuple[str, str]:
    """``(device, mixed precision)`` that ``rt`` resolves to here, or a one-line ConfigError / BackendError."""
    from ..devices import auto_dtype_name, check_device, resolve_device

    if rt.mixed_precision not in MIXED_PRECISION:
        raise ConfigError(f"--mixed-precision must be one of {', '.join(MIXED_PRECISION)}, got {rt.mixed_precision!r}")
    if isinstance(rt.grad_accum, bool) or not 1 <= rt.grad_accum <= 4096:
        raise ConfigError(f"--grad-accum must be in 1..4096, got {rt.grad_accum}")
    check_device(rt.device, "--device")
    device = resolve_device(rt.device)
    kind = device.partition(":")[0]
    if kind not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N for training, got {rt.device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"--device {rt.device} requested but CUDA is not available")
    mp = rt.mixed_precision
    if mp == "auto":
        mp = {"bfloat16": "bf16", "float16": "fp16"}.get(auto_dtype_name(device), "no")
    if mp == "fp16" and kind == "cpu":
        raise ConfigError("fp16 mixed precision needs a GPU; use bf16 or no on the CPU")
    return device, mp


def launched() -> bool:
    """Whether this process is one of several started by ``accelerate launch`` / ``torchrun``."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def make_accelerator(rt: TrainRuntime) -> Any:
    """An ``accelerate.Accelerator`` for ``rt``. In a single process its global state is reset first, so
    several runs with other settings can follow each other (tests, notebooks)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState, PartialState

    device, mp = check_runtime(rt)
    kind, _, index = device.partition(":")
    if index:
        torch.cuda.set_device(int(index))
    if launched():
        PartialState(cpu=kind == "cpu")  # join the launcher's process group (gloo on CPUs, nccl on GPUs)
    elif PartialState._shared_state:
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
    return Accelerator(cpu=kind == "cpu", mixed_precision=mp, gradient_accumulation_steps=rt.grad_accum)


def check_train_config(cfg: Any) -> None:
    """One-line ConfigErrors for training settings that cannot work (steps, batch, rates, crop, dropout)."""
    for name in ("steps", "prior_steps", "save_every"):
        if getattr(cfg, name, 0) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if cfg.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    if cfg.log_every < 1:
        raise ConfigError(f"log_every must be >= 1, got {cfg.log_every}")
    for name in ("lr", "prior_lr"):
        value = getattr(cfg, name, 1.0)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
    crop = getattr(cfg, "crop", 0)
    if crop < 0 or 0 < crop < 8:
        raise ConfigError(f"--crop must be 0 (whole latents) or at least 8, got {crop}")
    dropout = getattr(cfg, "text_dropout", 0.0)
    if not 0 <= dropout <= 1:
        raise ConfigError(f"--text-dropout must be in [0, 1], got {dropout}")


def images_key(images: Sequence[np.ndarray]) -> str:
    """What identifies a training set for the latent cache: the sequence's own ``key`` (a dataset's
    manifest) or a hash of the pixels of an in-memory list."""
    import hashlib

    key = getattr(images, "key", None)
    if key:
        return str(key)

    digest = hashlib.sha256()
    for image in images:
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:16]


class LatentStore:
    """VAE latents of a training set in one ``.npy`` file, memory-mapped: a run reads the samples it
    draws, not the whole set, so memory stays flat in the dataset size.

    Indexing (an int, a slice, a list or a tensor of indices) gives float32 tensors; ``shape`` is
    ``(N, C, h, w)``. :meth:`build` writes the file batch by batch and resumes where an interrupted build
    stopped (the count done is kept beside it)."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self.array = np.load(self.path, mmap_mode="r")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __getitem__(self, index: Any) -> torch.Tensor:
        if torch.is_tensor(index):
            index = index.tolist()
        if isinstance(index, list):
            return torch.from_numpy(np.stack([self.array[i] for i in index]).astype(np.float32))
        return torch.from_numpy(np.array(self.array[index], dtype=np.float32))

    @classmethod
    def build(cls, path: Union[str, Path], images: Sequence[np.ndarray], vae: LatentVAE, batch_size: int = 8,
              progress: bool = True, key: str = "") -> "LatentStore":  # fmt: skip
        """Encode ``images`` (a lazy sequence: read as needed) with ``vae`` into ``path``; ``key`` names
        the VAE and the images, so a file made from others is rebuilt rather than reused."""
        path = Path(path)
        meta_path = path.with_name(path.name + ".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() and path.is_file() else {}
        if meta.get("key") != key or meta.get("count") != len(images):
            meta = {"key": key, "count": len(images), "done": 0}
        if meta["done"] >= len(images):
            return cls(path)
        if len(images) == 0:
            raise InputError("no training images")
        resume = meta["done"] > 0 and path.is_file()
        array = np.load(path, mmap_mode="r+") if resume else None
        meta["done"] = meta["done"] if resume else 0
        bar = tqdm(total=len(images), initial=meta["done"], desc="VAE encode", unit="image", disable=not progress)
        for start in range(meta["done"], len(images), batch_size):
            stop = min(start + batch_size, len(images))
            batch = [images[i] for i in range(start, stop)]
            latents = vae.encode(images_to_tensor(batch)).float().cpu().numpy().astype(np.float16)
            if array is None:  # a fresh file, sized by the first batch's latents
                array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(len(images), *latents.shape[1:]))
            array[start:stop] = latents
            array.flush()
            meta["done"] = stop
            meta_path.write_text(json.dumps(meta), encoding="utf-8")
            bar.update(stop - start)
        bar.close()
        del array
        return cls(path)


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
    """Run ``step_fn`` (one optimizer step) from ``trainer.step`` to ``stop`` with a progress bar, the loss
    log and periodic checkpoints (``trainer`` has ``step``, ``config.log_every/save_every``, ``log``,
    ``progress``, ``is_main`` and ``save()``; only the main process logs and shows progress)."""
    cfg = trainer.config
    main = getattr(trainer, "is_main", True)
    bar = tqdm(total=stop - start, initial=max(0, trainer.step - start), desc=f"train {phase}", unit="step",
               disable=not (trainer.progress and main))
    while trainer.step < stop:
        metrics = step_fn()
        trainer.step += 1
        bar.update(1)
        if main and (trainer.step % cfg.log_every == 0 or trainer.step == stop):
            trainer.log.write({"phase": phase, "step": trainer.step, **metrics})
            bar.set_postfix({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})
        if cfg.save_every and trainer.step % cfg.save_every == 0:
            trainer.save()
    bar.close()


def gather_states(accel: Any, gen: torch.Generator) -> list[torch.Tensor]:
    """Every process's batch-sampler RNG state, in process order (saved so that each resumes its own)."""
    if accel.num_processes == 1:
        return [gen.get_state()]
    from accelerate.utils import gather_object

    return list(gather_object([gen.get_state()]))


def accumulate_step(accel: Any, module: Any, optimizer: Any, micro: Callable[[], tuple[torch.Tensor, dict[str, float]]]) -> dict[str, float]:
    """One optimizer step over ``accel.gradient_accumulation_steps`` micro-batches: ``micro()`` returns a
    loss and its metrics; gradients are synchronised across processes on the last micro-batch only.
    Returns the metrics averaged over the micro-batches."""
    sums: dict[str, float] = {}
    k = accel.gradient_accumulation_steps
    for _ in range(k):
        with accel.accumulate(module):
            loss, metrics = micro()
            accel.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value)
    return {key: value / k for key, value in sums.items()}


class _VQLoss(torch.nn.Module):
    """The VQ phase's objective as a module (what ``accelerate`` wraps for multi-process training)."""

    def __init__(self, model: VQKeyframeModel) -> None:
        super().__init__()
        self.post_encoder, self.quantizer, self.post_decoder = model.post_encoder, model.quantizer, model.post_decoder
        self.model = [model]  # a plain list: not a submodule (the prior is trained in its own phase)

    def forward(self, latents: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model[0](latents)


class _PriorLoss(torch.nn.Module):
    def __init__(self, prior: torch.nn.Module) -> None:
        super().__init__()
        self.prior = prior

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.prior.loss(indices)


LatentSource = Union[torch.Tensor, LatentStore]


class EncoderTrainer:
    """Trains a :class:`VQKeyframeModel` on VAE latents (an in-memory tensor or a :class:`LatentStore`);
    checkpoints into ``out_dir``. ``runtime`` chooses device, mixed precision and gradient accumulation."""

    def __init__(
        self,
        latents: LatentSource,
        out_dir: Union[str, Path],
        model_config: VQModelConfig,
        config: EncoderTrainConfig = EncoderTrainConfig(),
        resume: bool = False,
        progress: bool = True,
        runtime: TrainRuntime = TrainRuntime(device="cpu", mixed_precision="no"),
    ) -> None:
        if len(latents.shape) != 4 or latents.shape[0] == 0:
            raise InputError("the keyframe encoder needs at least one training image")
        check_train_config(config)
        self.latents = latents if isinstance(latents, LatentStore) else latents.float()
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.progress = progress
        self.runtime = runtime
        self.accel = make_accelerator(runtime)
        self.device = self.accel.device
        self.is_main = self.accel.is_main_process
        self.log = LossLog(self.out_dir / LOG_NAME)
        torch.manual_seed(config.seed)
        self.model = VQKeyframeModel(replace(model_config, latent_channels=int(latents.shape[1]))).to(self.device)
        # each process draws its own batches
        self.gen = torch.Generator().manual_seed(config.seed + self.accel.process_index)
        self.step = 0
        vq_opt = torch.optim.Adam(self._vq_params(), lr=config.lr)
        prior_opt = torch.optim.Adam(self.model.prior.parameters(), lr=config.prior_lr)
        if resume:
            self._resume(vq_opt, prior_opt)
        self.vq_loss, self.vq_opt = self.accel.prepare(_VQLoss(self.model), vq_opt)
        self.prior_loss, self.prior_opt = self.accel.prepare(_PriorLoss(self.model.prior), prior_opt)

    def _vq_params(self) -> list[torch.nn.Parameter]:
        return list(self.model.post_encoder.parameters()) + list(self.model.post_decoder.parameters())

    def _resume(self, vq_opt: torch.optim.Optimizer, prior_opt: torch.optim.Optimizer) -> None:
        state = load_training_state(self.out_dir)
        if state is None:
            return
        loaded = VQKeyframeModel.from_pretrained(self.out_dir)
        differ = [k for k, v in asdict(loaded.config).items() if getattr(self.model.config, k) != v]
        if differ:
            raise InputError(f"{self.out_dir} holds a model with other settings ({', '.join(differ)}); resume it with its "
                             "own settings or train into another folder")  # fmt: skip
        trained_steps = int(state.get("train_config", {}).get("steps", self.config.steps))
        if int(state["step"]) > trained_steps and trained_steps != self.config.steps:
            raise InputError(f"{self.out_dir} finished its {trained_steps} VQ steps and went on to the prior; --steps cannot "
                             "change now (train into another folder to run more VQ steps)")  # fmt: skip
        self.model.load_state_dict(loaded.state_dict())
        vq_opt.load_state_dict(state["vq_opt"])
        prior_opt.load_state_dict(state["prior_opt"])
        gens = state.get("gens") or [state["gen"]]
        self.gen.set_state(gens[min(self.accel.process_index, len(gens) - 1)])
        self.step = int(state["step"])

    def save(self) -> Path:
        gens = gather_states(self.accel, self.gen)
        if self.is_main:
            self.model.save_pretrained(self.out_dir)
            save_training_state(
                self.out_dir,
                {
                    "step": self.step,
                    "vq_opt": self.vq_opt.state_dict(),
                    "prior_opt": self.prior_opt.state_dict(),
                    "gen": self.gen.get_state(),
                    "gens": gens,
                    "train_config": asdict(self.config),
                    "runtime": {**asdict(self.runtime), "processes": self.accel.num_processes,
                                "mixed_precision_used": self.accel.mixed_precision},
                },
            )
        self.accel.wait_for_everyone()
        return self.out_dir

    def _batch(self) -> torch.Tensor:
        cfg = self.config
        crops = random_crops(self.latents, cfg.batch_size, cfg.crop, 2 * self.model.config.factor, self.gen, cfg.flip)
        return crops.to(self.device)

    def _kmeans_init(self) -> None:
        with torch.no_grad():
            sample = torch.cat([self._batch() for _ in range(4)])
            self.model.quantizer.kmeans_init(self.model.post_encoder(sample), seed=self.config.seed)

    def vq_step(self) -> dict[str, float]:
        self.vq_loss.train()
        set_lr(self.vq_opt, cosine_lr(self.config.lr, self.step, self.config.steps))
        last: dict[str, Any] = {}

        def micro() -> tuple[torch.Tensor, dict[str, float]]:
            out = self.vq_loss(self._batch())
            last["out"] = out
            loss = out["recon"].float() + self.config.beta * out["commit"].float()
            return loss, {"loss": float(loss.detach()), "recon": float(out["recon"].detach()),
                          "commit": float(out["commit"].detach())}  # fmt: skip

        metrics = accumulate_step(self.accel, self.vq_loss, self.vq_opt, micro)
        out = last["out"]
        restarted = 0
        every = self.config.restart_every
        if every and (self.step + 1) % every == 0:
            restarted = self.model.quantizer.restart_dead_codes(out["h"].detach().float(), seed=self.step)
        return {**metrics, "codes_used": int(torch.unique(out["indices"]).numel()), "restarted": restarted}

    def prior_step(self, indices: torch.Tensor) -> dict[str, float]:
        self.prior_loss.train()
        cfg = self.config
        set_lr(self.prior_opt, cosine_lr(cfg.prior_lr, self.step - cfg.steps, cfg.prior_steps))

        def micro() -> tuple[torch.Tensor, dict[str, float]]:
            pick = torch.randint(0, indices.shape[0], (cfg.batch_size,), generator=self.gen)
            loss = self.prior_loss(indices[pick].to(self.device)).float()  # no flips: a code is not its own mirror image
            return loss, {"prior_bits": float(loss.detach())}

        return accumulate_step(self.accel, self.prior_loss, self.prior_opt, micro)

    def _whole(self, multiple: int) -> Iterable[torch.Tensor]:
        """Every training latent, cropped to ``multiple``, in chunks of 8 on the device."""
        h, w = self.latents.shape[-2:]
        for start in range(0, self.latents.shape[0], 8):
            chunk = self.latents[start : start + 8]
            yield chunk[..., : h - h % multiple, : w - w % multiple].float().to(self.device)

    @torch.no_grad()
    def dataset_indices(self) -> torch.Tensor:
        """Index maps of every training latent (whole latents, cropped to the grid alignment), on the CPU."""
        self.model.eval()
        return torch.cat([self.model.encode_indices(c).cpu() for c in self._whole(self.model.config.factor)])

    @torch.no_grad()
    def eval_loss(self) -> float:
        """The VQ training loss (recon + beta * commit) over every training latent, without updates."""
        self.model.eval()
        total, count = 0.0, 0
        for chunk in self._whole(2 * self.model.config.factor):
            out = self.model(chunk)
            total += float(out["recon"] + self.config.beta * out["commit"]) * chunk.shape[0]
            count += chunk.shape[0]
        return total / count

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
