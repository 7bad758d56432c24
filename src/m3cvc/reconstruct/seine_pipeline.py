"""SEINE's masked video diffusion: loading (checkpoint + Stable Diffusion v1.4 parts) and sampling.

Follows the official ``sample_scripts/with_mask_sample.py`` (https://github.com/Vchitect/SEINE,
Apache-2.0):

* Condition: a 16-frame video holding the first keyframe at frame 0 (prediction, mask type
  ``first1``) or also the next keyframe at the last frame (interpolation, ``onelast1``); the other
  frames are 0 in [-1, 1] (mid grey). The VAE encodes every frame (a latent *sample*, x 0.18215);
  the mask (1 = generate) is resized to the latents; the UNet sees ``[noisy latent, mask, masked
  latents]`` (9 channels) at every step.
* Sampler: the guided-diffusion DDPM SEINE was trained with: 1000 steps of the linear beta schedule
  1e-4 .. 0.02 (not SD's scaled-linear one), epsilon prediction, "fixed large" variance, no
  clipping, respaced to ``steps`` evenly spaced timesteps (250 in the official scripts); run with
  diffusers' ``DDPMScheduler`` on those custom timesteps (:func:`seine_scheduler`,
  :func:`spaced_timesteps`). The official ``ddim`` option (eta 0, same timesteps) is ``sampler="ddim"``. Classifier-free guidance with the negative prompt (``""``) and scale
  8 as there.
* Text: SD v1.4's CLIP tokenizer + text encoder, padded to 77 tokens, last hidden state.

Differences: noise comes from a seeded ``torch.Generator`` (the official script seeds torch's
global generator); frames are resized with OpenCV by the caller instead of torchvision.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from ..config import SEINE_SAMPLERS as SAMPLERS
from ..errors import BackendError, first_line
from .seine_unet import SeineUNet3D, checkpoint_state_dict, load_seine_state_dict

TRAIN_STEPS = 1000
CHECKPOINT_FILE = "seine.pt"
BASE_PARTS = ("vae", "text_encoder", "tokenizer", "unet/config.json")  # what SEINE reads of Stable Diffusion v1.4
NATIVE_FRAMES = 16


def spaced_timesteps(steps: int, train_steps: int = TRAIN_STEPS) -> list[int]:
    """guided-diffusion's ``space_timesteps(train_steps, [steps])``, descending: ``round(i * (T-1) / (n-1))``."""
    if not 1 <= steps <= train_steps:
        raise BackendError(f"SEINE sampling steps must be in 1..{train_steps} (got {steps})")
    stride = (train_steps - 1) / (steps - 1) if steps > 1 else 1
    taken, position = [], 0.0
    for _ in range(steps):
        taken.append(round(position))
        position += stride
    return sorted(set(taken), reverse=True)


def seine_scheduler() -> DDPMScheduler:
    """The DDPM process SEINE was trained with (``create_diffusion``: linear betas, fixed-large variance)."""
    return DDPMScheduler(num_train_timesteps=TRAIN_STEPS, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                         variance_type="fixed_large", clip_sample=False, prediction_type="epsilon")


def denoise(eps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor, mask: torch.Tensor,
            masked: torch.Tensor, scheduler: DDPMScheduler, steps: int, generator: Any,
            progress: Callable[[Any], Any] = lambda it: it, sampler: str = "ddpm") -> torch.Tensor:
    """The sampling loop: ``eps([latent, mask, masked latents], t)`` -> predicted noise, from ``noise``.

    ``sampler``: ``ddpm`` (the official default: ancestral steps of :func:`seine_scheduler`, noise from
    ``generator``) or ``ddim`` (the official ``ddim`` option: guided-diffusion's DDIM with eta 0, on the
    same respaced timesteps; deterministic after the initial noise). ``noise``, ``masked``:
    (b, 4, f, h, w); ``mask``: (b, 1, f, h, w). Returns the final latents.
    """
    if sampler not in SAMPLERS:
        raise BackendError(f"SEINE sampler must be one of {', '.join(SAMPLERS)} (got {sampler!r})")
    timesteps = spaced_timesteps(steps)
    latents = noise
    if sampler == "ddpm":
        scheduler.set_timesteps(timesteps=timesteps)
        for t in progress(scheduler.timesteps):
            out = eps(torch.cat([latents, mask, masked], dim=1), t)
            latents = scheduler.step(out.to(latents.dtype), t, latents, generator=generator).prev_sample
        return latents
    alphas = scheduler.alphas_cumprod.to(torch.float64)
    for i, t in enumerate(progress(timesteps)):
        out = eps(torch.cat([latents, mask, masked], dim=1), torch.tensor(t)).to(latents.dtype)
        a = float(alphas[t])
        a_prev = float(alphas[timesteps[i + 1]]) if i + 1 < len(timesteps) else 1.0
        x0 = (latents - (1.0 - a) ** 0.5 * out) / a**0.5
        latents = a_prev**0.5 * x0 + (1.0 - a_prev) ** 0.5 * out
    return latents


@dataclasses.dataclass
class SeineOutput:
    frames: np.ndarray  # (batch, frames, height, width, 3) float in [0, 1]


class SeinePipeline(DiffusionPipeline):
    """SEINE on diffusers components: ``unet`` (:class:`SeineUNet3D`), ``vae`` (``AutoencoderKL``),
    ``text_encoder`` / ``tokenizer`` (CLIP) and ``scheduler`` (:func:`seine_scheduler`)."""

    model_cpu_offload_seq = "text_encoder->unet->vae"

    def __init__(self, unet: SeineUNet3D, vae: AutoencoderKL, text_encoder: Any, tokenizer: Any, scheduler: DDPMScheduler) -> None:
        super().__init__()
        self.register_modules(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, checkpoint: str, base: str, dtype: Any, local_files_only: bool = False,
                        keys: tuple[str, str] = ("reconstruct.seine.model", "reconstruct.seine.base")) -> "SeinePipeline":
        """SEINE from its released checkpoint and the Stable Diffusion v1.4 it builds on.

        ``checkpoint``: a ``seine.pt`` file, a folder holding one, or a hub repo id with one
        (``xinyuanc91/SEINE``); ``base``: a diffusers SD folder or hub id (``vae/``, ``text_encoder/``,
        ``tokenizer/`` and ``unet/config.json``; SD's UNet *weights* are not read). The checkpoint's
        ``ema`` state dict is loaded strictly into the UNet built from the base's UNet config; any
        problem is a one-line :class:`BackendError` naming ``keys``.
        """
        from transformers import CLIPTextModel, CLIPTokenizer

        from ..hub import resolve_model

        ckpt_file = resolve_checkpoint(checkpoint, keys[0], local_files_only)
        base_path, base_local = resolve_model(base, keys[1], local_files_only,
                                              download_options=" ".join(f'--include "{p}{"/*" if "." not in p else ""}"'
                                                                        for p in BASE_PARTS))
        kw = dict(local_files_only=base_local)
        if Path(base_path).is_dir():  # a local folder: name a missing part before a library does it vaguely
            for part in BASE_PARTS:
                if not (Path(base_path) / part).exists():
                    raise BackendError(f"{keys[1]}: {base_path} has no {part} (SEINE needs Stable Diffusion v1.4's "
                                       f"{', '.join(BASE_PARTS)})")
        try:
            vae = AutoencoderKL.from_pretrained(base_path, subfolder="vae", torch_dtype=dtype, **kw)
            text_encoder = CLIPTextModel.from_pretrained(base_path, subfolder="text_encoder", dtype=dtype, **kw)
            tokenizer = CLIPTokenizer.from_pretrained(base_path, subfolder="tokenizer", **kw)
            unet_config = dict(SeineUNet3D.load_config(base_path, subfolder="unet", **kw))
        except Exception as exc:  # noqa: BLE001 - OSError, safetensors, config validation...: one line for all
            first = first_line(exc, 200)
            raise BackendError(f"cannot load SEINE's Stable Diffusion parts from {base_path!r} ({first}); set {keys[1]} "
                               "to a Stable Diffusion v1.4 folder (vae/, text_encoder/, tokenizer/, unet/config.json) "
                               "or hub id") from exc
        positions = getattr(text_encoder.config, "max_position_embeddings", 77)
        if not len(tokenizer) or not 0 < tokenizer.model_max_length <= positions:
            raise BackendError(f"{keys[1]}: the tokenizer in {base_path}/tokenizer does not fit the text encoder "
                               f"({len(tokenizer)} tokens, max length {tokenizer.model_max_length} for {positions} "
                               "positions); SD v1.4's: 49408 tokens, 77 and 77")
        unet = load_unet(ckpt_file, unet_config, keys[0], dtype)
        return cls(unet=unet.eval(), vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=tokenizer,
                   scheduler=seine_scheduler())

    # ------------------------------------------------------------------ sampling
    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        ids = tok.input_ids.to(self._execution_device)
        return self.text_encoder(ids).last_hidden_state

    def condition(self, first: np.ndarray, last: Optional[np.ndarray], frames: int, generator: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mask (1, 1, f, h/8, w/8), masked latents (1, 4, f, h/8, w/8))`` for uint8 RGB keyframes."""
        device, dtype = self._execution_device, self.vae.dtype
        height, width = first.shape[:2]
        video = torch.zeros(frames, 3, height, width)
        mask = torch.ones(frames)
        for index, image in ((0, first), (frames - 1, last)):
            if image is not None:
                video[index] = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0
                mask[index] = 0.0
        latents = self.vae.encode(video.to(device, dtype)).latent_dist.sample(generator) * self.vae.config.scaling_factor
        latents = latents.unsqueeze(0).transpose(1, 2)  # (f, 4, h, w) -> (1, 4, f, h, w)
        mask = mask.to(device, latents.dtype)[None, None, :, None, None].expand(1, 1, frames, *latents.shape[-2:])
        return mask, latents

    @torch.no_grad()
    def __call__(self, image: np.ndarray, last_image: Optional[np.ndarray] = None, prompt: str = "",
                 negative_prompt: str = "", num_frames: int = NATIVE_FRAMES, num_inference_steps: int = 250,
                 guidance_scale: float = 8.0, generator: Any = None, output_type: str = "np",
                 sampler: str = "ddpm") -> SeineOutput:
        """``num_frames`` frames at ``image``'s size (uint8 RGB (h, w, 3), h and w multiples of 8):
        frame 0 conditioned on ``image``, and the last on ``last_image`` when given."""
        factor = self.vae_scale_factor
        height, width = image.shape[:2]
        if height % factor or width % factor:
            raise BackendError(f"SEINE generates sizes that are multiples of {factor} (got {width}x{height})")
        if last_image is not None and last_image.shape != image.shape:
            raise BackendError(f"SEINE's last image is {last_image.shape}, the first {image.shape}")
        device = self._execution_device
        guided = guidance_scale != 1.0
        context = self.encode_prompt([prompt, negative_prompt] if guided else [prompt])
        mask, masked = self.condition(image, last_image, num_frames, generator)
        noise = randn_tensor(masked.shape, generator=generator, device=device, dtype=masked.dtype)
        context = context.to(self.unet.dtype)

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            x = x.to(self.unet.dtype)
            if not guided:
                return self.unet(x, t, context).sample[:, :4]
            out = self.unet(torch.cat([x, x]), t, context).sample[:, :4]
            cond, uncond = out.chunk(2)
            return uncond + guidance_scale * (cond - uncond)

        latents = denoise(eps, noise, mask, masked, self.scheduler, num_inference_steps, generator, self.progress_bar,
                          sampler)
        latents = latents[0].transpose(0, 1) / self.vae.config.scaling_factor  # (f, 4, h, w)
        frames = torch.cat([self.vae.decode(chunk.to(self.vae.dtype)).sample for chunk in latents.split(4)])
        frames = (frames.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        self.maybe_free_model_hooks()
        return SeineOutput(frames=frames[None])


# ------------------------------------------------------------------------------------ files
def resolve_checkpoint(checkpoint: str, key: str, local_files_only: bool) -> Path:
    """The ``seine.pt`` file named by ``checkpoint`` (a file, a folder holding one, or a hub repo id)."""
    from ..hub import looks_like_path, resolve_model

    if not checkpoint:
        raise BackendError(f"{key} is empty: set it to seine.pt, a folder holding it, or a hub id")
    if "://" in checkpoint:
        raise BackendError(f"{key}: {checkpoint} is a URL; m3cvc does not download files: fetch {CHECKPOINT_FILE} "
                           "and set the key to its path, or to a hub id in the HF cache")
    if looks_like_path(checkpoint):
        path = Path(checkpoint).expanduser()
        if path.is_file():
            return path
        if (path / CHECKPOINT_FILE).is_file():
            return path / CHECKPOINT_FILE
        raise BackendError(f"{key}: no {CHECKPOINT_FILE} at {path} (download it from the hub repo xinyuanc91/SEINE "
                           "or the official Google Drive folder)")
    repo, local = resolve_model(checkpoint, key, local_files_only)
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, CHECKPOINT_FILE, local_files_only=local))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many classes; one line for all
        first = first_line(exc)
        raise BackendError(f"cannot get {CHECKPOINT_FILE} from {repo} ({key}): {first}") from exc


def load_unet(ckpt_file: Path, unet_config: dict[str, Any], key: str, dtype: Any = None) -> SeineUNet3D:
    """SEINE's UNet for ``unet_config`` with the weights of ``ckpt_file`` (``torch.load`` with
    ``weights_only``: a checkpoint cannot run code) in ``dtype`` (default: the checkpoint's), loaded
    strictly."""
    import pickle
    import warnings

    try:
        with open(ckpt_file, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise BackendError(f"cannot read the SEINE checkpoint {ckpt_file} ({key}): {exc.strerror}") from None
    if head.startswith(b"version https://git-lfs"):
        raise BackendError(f"{ckpt_file} ({key}) is a Git LFS pointer, not the weights: fetch the file itself "
                           "(git lfs pull, or hf download xinyuanc91/SEINE seine.pt)")
    try:
        with warnings.catch_warnings():  # torch's advice on legacy files is not for our users
            warnings.simplefilter("ignore")
            try:
                obj = torch.load(ckpt_file, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:  # a legacy (non-zip) torch file cannot be memory-mapped
                if "mmap" not in str(exc):
                    raise
                obj = torch.load(ckpt_file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not a pickle of Python objects at all (text, random bytes)
            raise BackendError(f"cannot read the SEINE checkpoint {ckpt_file} ({key}): not a readable torch "
                               "checkpoint") from exc
        raise BackendError(f"cannot read the SEINE checkpoint {ckpt_file} ({key}): it holds Python objects besides "
                           "tensors, which are not loaded (they could run code); re-save its 'ema' state dict with "
                           "torch.save") from exc
    except Exception as exc:  # noqa: BLE001 - zip / format / OS errors: one line
        raise BackendError(f"cannot read the SEINE checkpoint {ckpt_file} ({key}): not a readable torch checkpoint "
                           f"({type(exc).__name__})") from exc
    state = checkpoint_state_dict(obj, str(ckpt_file))
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    with torch.device("meta"):
        unet = SeineUNet3D.from_sd_config(unet_config)
    load_seine_state_dict(unet, state, str(ckpt_file))
    return unet
