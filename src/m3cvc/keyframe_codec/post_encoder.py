"""ELIC-inspired post-encoder (latent z -> h at the code grid) and its mirror (h_hat -> z_hat).

Building blocks follow ELIC (He et al. 2022): residual bottleneck blocks and the simplified
attention module of Cheng et al. 2020 (a residual trunk gated by a sigmoid mask branch). The
``half`` grid downsamples the latent 2x (the paper's 32x32 option for 512x512 frames), ``full``
keeps the latent grid (64x64).
"""

from __future__ import annotations

import torch
from torch import nn

GRIDS = {"half": 2, "full": 1}


class ResidualBottleneck(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 2
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1),
            nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(mid, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AttentionBlock(nn.Module):
    """Cheng2020 / ELIC simplified attention: x + trunk(x) * sigmoid(mask(x))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*[ResidualBottleneck(channels) for _ in range(3)])
        self.mask = nn.Sequential(*[ResidualBottleneck(channels) for _ in range(3)], nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.trunk(x) * torch.sigmoid(self.mask(x))


def _stage(channels: int, blocks: int) -> list[nn.Module]:
    return [ResidualBottleneck(channels) for _ in range(blocks)] + [AttentionBlock(channels)]


class PostEncoder(nn.Module):
    """z (N, ch_l, h_l, w_l) -> h (N, code_dim, h_l/f, w_l/f) with f = 2 (half) or 1 (full)."""

    def __init__(self, latent_channels: int, channels: int, code_dim: int, grid: str, blocks: int = 3) -> None:
        super().__init__()
        factor = GRIDS[grid]
        head: list[nn.Module] = [nn.Conv2d(latent_channels, channels, 3, padding=1), nn.ReLU()]
        if factor == 2:
            head += [nn.Conv2d(channels, channels, 3, stride=2, padding=1)]
        self.net = nn.Sequential(*head, *_stage(channels, blocks), nn.Conv2d(channels, code_dim, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class PostDecoder(nn.Module):
    """h_hat (N, code_dim, h_p, w_p) -> z_hat (N, ch_l, h_l, w_l): the paper's upsampling step."""

    def __init__(self, latent_channels: int, channels: int, code_dim: int, grid: str, blocks: int = 3) -> None:
        super().__init__()
        factor = GRIDS[grid]
        tail: list[nn.Module] = []
        if factor == 2:
            tail += [nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.ReLU()]
        self.net = nn.Sequential(
            nn.Conv2d(code_dim, channels, 3, padding=1),
            *_stage(channels, blocks),
            *tail,
            nn.Conv2d(channels, latent_channels, 3, padding=1),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
