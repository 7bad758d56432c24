"""Text-conditioned latent diffusion decoder of the keyframe codec (paper II-C, decoder side).

``finetuned`` mode: a Stable Diffusion UNet whose ``conv_in`` takes ``[z_t, z_hat]`` (the new
input weights start at zero, see :func:`expand_conv_in`), cross-attention on the keyframe text;
sampling starts from pure noise z_T ~ N(0, I). ``img2img`` mode (training-free fallback): the
stock UNet denoises z_hat re-noised to ``strength`` of the schedule. DDIM or DDPM, a fixed
step count, classifier-free guidance, and a seed (stored in the stream) make it repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import BackendError
from .vae import _diffusers_subfolder, torch_dtype

SCHEDULERS = ("ddim", "ddpm")
DECODER_MODES = ("finetuned", "img2img")


def expand_conv_in(unet: Any, extra_channels: int) -> Any:
    """Give ``unet.conv_in`` ``extra_channels`` more inputs with zero-initialised weights."""
    old = unet.conv_in
    new = nn.Conv2d(old.in_channels + extra_channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    unet.conv_in = new.to(old.weight.device, old.weight.dtype)
    unet.register_to_config(in_channels=old.in_channels + extra_channels)
    return unet


def _load(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise BackendError(f"cannot load the {what} ({str(exc).splitlines()[0]})") from None


def load_text_encoder(base: str, local_files_only: bool = False) -> tuple[Any, Any]:
    """CLIP tokenizer + text encoder of a Stable Diffusion checkpoint (subfolders tokenizer/, text_encoder/)."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = _load(f"tokenizer of {base!r}", CLIPTokenizer.from_pretrained, base,
                subfolder=_diffusers_subfolder(base, "tokenizer"), local_files_only=local_files_only)
    enc = _load(f"text encoder of {base!r}", CLIPTextModel.from_pretrained, base,
                subfolder=_diffusers_subfolder(base, "text_encoder"), local_files_only=local_files_only)
    return tok, enc.eval().requires_grad_(False)


def load_scheduler(base: str, kind: str = "ddim", local_files_only: bool = False) -> Any:
    from diffusers import DDIMScheduler, DDPMScheduler

    if kind not in SCHEDULERS:
        raise BackendError(f"unknown scheduler {kind!r}; choose one of: {', '.join(SCHEDULERS)}")
    cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
    return _load(f"scheduler of {base!r}", cls.from_pretrained, base,
                 subfolder=_diffusers_subfolder(base, "scheduler"), local_files_only=local_files_only)


def load_unet(source: str, subfolder: Optional[str] = None, local_files_only: bool = False) -> Any:
    from diffusers import UNet2DConditionModel

    sub = _diffusers_subfolder(source, subfolder) if subfolder else None
    return _load(f"UNet {source!r}", UNet2DConditionModel.from_pretrained, source, subfolder=sub,
                 local_files_only=local_files_only).eval()


@torch.no_grad()
def embed_texts(tokenizer: Any, text_encoder: Any, texts: list[str]) -> torch.Tensor:
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0]


@dataclass
class SamplerSettings:
    steps: int = 50
    guidance: float = 5.0
    seed: int = 0
    strength: float = 0.6  # img2img only


class LatentDiffusionDecoder:
    """z_hat + text -> denoised latent z_{d,0} (in the VAE's scaled latent space)."""

    def __init__(self, unet: Any, tokenizer: Any, text_encoder: Any, scheduler: Any, mode: str, progress: bool = True) -> None:
        if mode not in DECODER_MODES:
            raise BackendError(f"unknown diffusion decoder mode {mode!r}; choose one of: {', '.join(DECODER_MODES)}")
        self.unet, self.tokenizer, self.text_encoder, self.scheduler = unet, tokenizer, text_encoder, scheduler
        self.mode = mode
        self.progress = progress

    @classmethod
    def from_pretrained(
        cls,
        base: str,
        mode: str = "finetuned",
        unet: Optional[str] = None,
        scheduler: str = "ddim",
        device: str = "cpu",
        dtype: str = "auto",
        local_files_only: bool = False,
    ) -> "LatentDiffusionDecoder":
        from ..hub import resolve_model

        base, local_base = resolve_model(base, "keyframe_codec.vq_diffusion.diffusion", local_files_only)
        if mode == "finetuned":
            if not unet:
                raise BackendError("decoder=finetuned needs a fine-tuned UNet folder (keyframe_codec.vq_diffusion.unet; "
                                   "train one with `m3cvc train keyframe-decoder`, or use decoder=img2img)")
            unet, local_unet = resolve_model(unet, "keyframe_codec.vq_diffusion.unet", local_files_only)
            net = load_unet(unet, local_files_only=local_unet)
        else:
            net = load_unet(base, "unet", local_files_only=local_base)
        tok, enc = load_text_encoder(base, local_base)
        sched = load_scheduler(base, scheduler, local_base)
        dt = torch_dtype(dtype, device)
        net.to(device=device, dtype=dt).requires_grad_(False)
        enc.to(device=device, dtype=dt)
        return cls(net, tok, enc, sched, mode)

    def _conditioning(self, text: str, guidance: float) -> torch.Tensor:
        texts = ["", text] if guidance > 1 else [text]
        return embed_texts(self.tokenizer, self.text_encoder, texts).to(self.unet.dtype)

    def _check_channels(self, z_hat: torch.Tensor) -> None:
        want = z_hat.shape[1] * (2 if self.mode == "finetuned" else 1)
        if self.unet.config.in_channels != want:
            raise BackendError(f"the UNet takes {self.unet.config.in_channels} input channels, the {self.mode} decoder "
                               f"needs {want} for {z_hat.shape[1]}-channel latents")

    @torch.no_grad()
    def __call__(self, z_hat: torch.Tensor, text: str, settings: SamplerSettings) -> torch.Tensor:
        self._check_channels(z_hat)
        device, dtype = self.unet.device, self.unet.dtype
        z_hat = z_hat.to(device, dtype)
        gen = torch.Generator().manual_seed(settings.seed)
        sched = self.scheduler
        sched.set_timesteps(settings.steps)
        timesteps = sched.timesteps
        noise = torch.randn(z_hat.shape, generator=gen).to(device, dtype)
        if self.mode == "img2img":
            keep = min(settings.steps, max(1, int(round(settings.steps * settings.strength))))
            timesteps = timesteps[settings.steps - keep :]
            x = sched.add_noise(z_hat, noise, timesteps[:1])
        else:
            x = noise * sched.init_noise_sigma
        emb = self._conditioning(text, settings.guidance)
        from ..hub import progress_disabled

        for t in tqdm(timesteps, desc="keyframe diffusion", unit="step", leave=False,
                      disable=progress_disabled(self.progress)):
            inp = sched.scale_model_input(x, t)
            if self.mode == "finetuned":
                inp = torch.cat([inp, z_hat], dim=1)
            inp = inp.expand(emb.shape[0], *inp.shape[1:])
            eps = self.unet(inp, t, encoder_hidden_states=emb).sample
            if emb.shape[0] == 2:
                eps = eps[:1] + settings.guidance * (eps[1:] - eps[:1])
            x = sched.step(eps, t, x, generator=gen).prev_sample
        return x.float()


def unet_multiple(unet: Any) -> int:
    """The latent size multiple the UNet needs (2 per down block)."""
    return 2 ** (len(unet.config.block_out_channels) - 1)

