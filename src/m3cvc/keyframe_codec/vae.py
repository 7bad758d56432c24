"""Pretrained image autoencoders behind one small interface (images in [-1, 1], scaled latents).

Backends (``vae_kind``):

- ``autoencoderkl``: diffusers ``AutoencoderKL`` (Stable Diffusion's VAE; default id
  ``stable-diffusion-v1-5/stable-diffusion-v1-5``, subfolder ``vae``). The latent is the posterior
  mode times ``scaling_factor`` (the space SD's UNet works in).
- ``autoencodertiny``: diffusers ``AutoencoderTiny`` (TAESD in diffusers format).
- ``taef2``: the TAESD-style FLUX.2 tiny autoencoder from a local folder (``taef2:<folder>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from ..errors import BackendError, first_line

VAE_KINDS = ("autoencoderkl", "autoencodertiny", "taef2")


def torch_dtype(name: str, device: Any = "cpu") -> torch.dtype:
    """A dtype setting (``auto`` included, see :mod:`m3cvc.devices`) on ``device`` as a torch dtype."""
    from ..devices import resolve_dtype
    from ..errors import ConfigError

    try:
        return resolve_dtype(name, device)
    except ConfigError as exc:
        raise BackendError(str(exc)) from None


def resolve_vae_kind(vae: str, vae_kind: str) -> tuple[str, str]:
    """``("taef2", folder)`` for a ``taef2:<folder>`` spec, else ``(vae_kind, vae)``."""
    if vae.startswith("taef2:"):
        return "taef2", vae.split(":", 1)[1]
    if vae_kind not in VAE_KINDS:
        raise BackendError(f"unknown vae_kind {vae_kind!r}; choose one of: {', '.join(VAE_KINDS)}")
    return vae_kind, vae


def _diffusers_subfolder(source: str, subfolder: str) -> Optional[str]:
    """Use ``subfolder`` for hub ids and for local pipeline folders that have it."""
    path = Path(source)
    if path.is_dir():
        return subfolder if subfolder and (path / subfolder).is_dir() else None
    return subfolder or None


@dataclass
class LatentVAE:
    """A frozen autoencoder: ``encode`` [-1, 1] images -> scaled latents, ``decode`` back."""

    kind: str
    model: Any
    latent_channels: int
    downscale: int = 8
    scaling_factor: float = 1.0
    shift_factor: float = 0.0

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, self.dtype)
        if self.kind == "taef2":
            z = self.model.encode((images + 1) / 2)
        elif self.kind == "autoencodertiny":
            z = self.model.encode(images).latents
        else:
            z = self.model.encode(images).latent_dist.mode()
        return ((z.float() - self.shift_factor) * self.scaling_factor)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = (latents / self.scaling_factor + self.shift_factor).to(self.device, self.dtype)
        if self.kind == "taef2":
            out = self.model.decode(z) * 2 - 1
        else:
            out = self.model.decode(z).sample
        return out.float().clamp(-1, 1)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype


def load_vae(
    vae: str,
    vae_kind: str = "autoencoderkl",
    subfolder: str = "vae",
    device: str = "cpu",
    dtype: str = "auto",
    local_files_only: bool = False,
    key: str = "keyframe_codec.vq_diffusion.vae",
) -> LatentVAE:
    """Load a frozen autoencoder by id / folder (see the module doc for the kinds)."""
    kind, source = resolve_vae_kind(vae, vae_kind)
    if kind == "taef2":
        from .taef2 import TAEF2

        model = TAEF2.from_folder(source)
        wrapped = LatentVAE(kind, model, TAEF2.latent_channels, TAEF2.downscale)
    else:
        import diffusers

        from ..hub import resolve_model

        cls = diffusers.AutoencoderKL if kind == "autoencoderkl" else diffusers.AutoencoderTiny
        source, local_files_only = resolve_model(source, key, local_files_only)
        try:
            model = cls.from_pretrained(source, subfolder=_diffusers_subfolder(source, subfolder),
                                        torch_dtype=torch_dtype(dtype, device), local_files_only=local_files_only)
        except (OSError, ValueError, RuntimeError, NotImplementedError) as exc:  # the last two: weights of another kind
            first = first_line(exc)
            raise BackendError(f"cannot load the {kind} VAE {source!r} (is it a {kind}?): {first}") from None
        if any(t.is_meta for t in model.parameters()):  # weights that did not fit the class were left unloaded
            raise BackendError(f"cannot load the {kind} VAE {source!r}: its weights do not fit a {kind} (check the VAE kind)")
        cfg = model.config
        downscale = 2 ** (len(cfg.block_out_channels) - 1) if kind == "autoencoderkl" else 8
        shift = getattr(cfg, "shift_factor", None) or 0.0
        scale = 1.0 if kind == "autoencodertiny" else float(cfg.scaling_factor)
        wrapped = LatentVAE(kind, model, int(cfg.latent_channels), downscale, scale, float(shift))
    if kind == "taef2":
        wrapped.model.to(dtype=torch_dtype(dtype, device))
    wrapped.model.to(device=device).eval().requires_grad_(False)
    return wrapped
