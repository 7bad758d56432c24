"""TAEF2: the tiny autoencoder of the FLUX.2 latent space (madebyollin's TAESD family, MIT).

The checkpoints are the original TAESD-style ``nn.Sequential`` state dicts
(``taef2_encoder.pth`` / ``taef2_decoder.pth``, or ``.safetensors`` with the same keys): 32
latent channels, 8x downsampling, and a GroupNorm "pool" branch in the three blocks nearest the
latent. This module rebuilds exactly that layer layout so the state dicts load strictly.

Images are in [0, 1] on both ends (TAESD's convention).
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
from torch import nn

from ..errors import BackendError

LATENT_CHANNELS = 32
WIDTH = 64


def _conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """Soft clamp of the decoder input to (-3, 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class TAEBlock(nn.Module):
    """Three 3x3 convs with a residual path; optionally a GroupNorm 1x1 "pool" branch first."""

    def __init__(self, n_in: int, n_out: int, midblock_gn: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n_in, n_out), nn.ReLU(), _conv(n_out, n_out), nn.ReLU(), _conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = None
        if midblock_gn:
            n_gn = n_in * 4
            self.pool = nn.Sequential(
                nn.Conv2d(n_in, n_gn, 1, bias=False),
                nn.GroupNorm(4, n_gn),
                nn.ReLU(),
                nn.Conv2d(n_gn, n_in, 1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def build_encoder(latent_channels: int = LATENT_CHANNELS, midblock_gn: bool = True) -> nn.Sequential:
    """RGB [0, 1] (N, 3, H, W) -> latent (N, C, H/8, W/8)."""
    c = WIDTH
    layers: list[nn.Module] = [_conv(3, c), TAEBlock(c, c)]
    for level in range(3):
        gn = midblock_gn and level == 2
        layers += [_conv(c, c, stride=2, bias=False)] + [TAEBlock(c, c, gn) for _ in range(3)]
    layers.append(_conv(c, latent_channels))
    return nn.Sequential(*layers)


def build_decoder(latent_channels: int = LATENT_CHANNELS, midblock_gn: bool = True) -> nn.Sequential:
    """Latent (N, C, h, w) -> RGB (N, 3, 8h, 8w), nominally in [0, 1] (not clamped)."""
    c = WIDTH
    layers: list[nn.Module] = [Clamp(), _conv(latent_channels, c), nn.ReLU()]
    for level in range(3):
        gn = midblock_gn and level == 0
        layers += [TAEBlock(c, c, gn) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), _conv(c, c, bias=False)]
    layers += [TAEBlock(c, c), _conv(c, 3)]
    return nn.Sequential(*layers)


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(str(path), map_location="cpu", weights_only=True)


def _find(folder: Path, part: str) -> Path:
    for suffix in (".safetensors", ".pth"):
        candidate = folder / f"taef2_{part}{suffix}"
        if candidate.is_file():
            return candidate
    raise BackendError(f"TAEF2 {part} weights not found in {folder} (expected taef2_{part}.pth or .safetensors)")


class TAEF2(nn.Module):
    """Encoder + decoder pair; ``from_folder`` loads the published checkpoints strictly."""

    latent_channels = LATENT_CHANNELS
    downscale = 8

    def __init__(self) -> None:
        super().__init__()
        self.encoder = build_encoder()
        self.decoder = build_decoder()

    @classmethod
    def from_folder(cls, folder: Union[str, Path]) -> "TAEF2":
        folder = Path(folder)
        if not folder.is_dir():
            raise BackendError(f"TAEF2 weights folder {folder} does not exist")
        model = cls()
        for part, module in (("encoder", model.encoder), ("decoder", model.decoder)):
            state = {k: v.float() for k, v in _load_state_dict(_find(folder, part)).items()}
            try:
                module.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise BackendError(f"TAEF2 {part} weights do not match the architecture: {exc}") from None
        return model.eval()

    def encode(self, images01: torch.Tensor) -> torch.Tensor:
        return self.encoder(images01)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents)
