"""Vector quantiser: a codebook of ``size`` vectors, nearest in Euclidean distance (paper eq. k*).

Training updates the codebook by exponential moving averages of the assigned vectors (the
codebook term of the VQ-VAE loss, in its EMA form), the encoder gets the commit loss
``||h - sg(q)||^2`` through a straight-through estimator. ``kmeans_init`` seeds the codebook
from real encoder outputs and ``restart_dead_codes`` re-seeds codes unused for a while.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class Quantized(NamedTuple):
    q: torch.Tensor  # (N, D, H, W) codebook vectors, straight-through to h when training
    indices: torch.Tensor  # (N, H, W) int64
    commit: torch.Tensor  # scalar commit loss ||h - sg(q)||^2


def _flatten(h: torch.Tensor) -> torch.Tensor:
    return h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])


def nearest(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row for each row of ``vectors`` (ties -> lowest index)."""
    d = (vectors * vectors).sum(1, keepdim=True) - 2 * vectors @ codebook.t() + (codebook * codebook).sum(1)[None]
    return d.argmin(1)


def kmeans_plus_plus(vectors: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability proportional to D(x)^2."""
    centres = [vectors[int(torch.randint(0, vectors.shape[0], (1,), generator=g))]]
    d2 = ((vectors - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        weights = d2 / total if total > 0 else torch.full_like(d2, 1.0 / d2.numel())
        c = vectors[int(torch.multinomial(weights, 1, generator=g))]
        centres.append(c)
        d2 = torch.minimum(d2, ((vectors - c) ** 2).sum(1))
    return torch.stack(centres)


def kmeans(vectors: torch.Tensor, k: int, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """Lloyd k-means with k-means++ seeding (deterministic for a seed)."""
    g = torch.Generator().manual_seed(seed)
    n = vectors.shape[0]
    if n < k:
        reps = vectors[torch.randint(0, n, (k - n,), generator=g)]
        vectors = torch.cat([vectors, reps + 1e-3 * torch.randn(reps.shape, generator=g)])
    centres = kmeans_plus_plus(vectors, k, g)
    for _ in range(iters):
        idx = nearest(vectors, centres)
        sums = torch.zeros_like(centres).index_add_(0, idx, vectors)
        counts = torch.bincount(idx, minlength=k).to(vectors.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


class VectorQuantizer(nn.Module):
    def __init__(self, size: int = 256, dim: int = 32, decay: float = 0.99, eps: float = 1e-5) -> None:
        super().__init__()
        self.size, self.dim, self.decay, self.eps = size, dim, decay, eps
        self.register_buffer("codebook", torch.randn(size, dim) * 0.1)
        self.register_buffer("ema_count", torch.ones(size))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("usage", torch.zeros(size))  # decayed hit counts, for dead-code restarts

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(N, H, W) indices -> (N, D, H, W) codebook vectors."""
        return self.codebook[indices].permute(0, 3, 1, 2).contiguous()

    def quantize(self, h: torch.Tensor) -> torch.Tensor:
        n, _, hh, ww = h.shape
        return nearest(_flatten(h), self.codebook).view(n, hh, ww)

    def forward(self, h: torch.Tensor) -> Quantized:
        # nearest-code search and codebook statistics in float32, also under mixed-precision training
        with torch.autocast(device_type=h.device.type, enabled=False):
            h = h.float()
            indices = self.quantize(h.detach())
            q = self.lookup(indices)
            commit = torch.mean((h - q.detach()) ** 2)
            if self.training:
                self._ema_update(_flatten(h.detach()), indices.flatten())
                q = h + (q - h).detach()
        return Quantized(q, indices, commit)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        counts = torch.bincount(idx, minlength=self.size).to(flat.dtype)
        sums = torch.zeros_like(self.ema_sum).index_add_(0, idx, flat)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # multi-process training: every process applies the statistics of all processes' batches
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (total + self.size * self.eps) * total
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        self.usage.mul_(self.decay).add_(counts)

    @torch.no_grad()
    def kmeans_init(self, h: torch.Tensor, seed: int = 0) -> None:
        centres = kmeans(_flatten(h), self.size, seed=seed)
        self.codebook.copy_(centres)
        self.ema_sum.copy_(centres)
        self.ema_count.fill_(1.0)
        self.usage.fill_(1.0)

    @torch.no_grad()
    def restart_dead_codes(self, h: torch.Tensor, threshold: float = 1e-2, seed: int = 0) -> int:
        """Re-seed codes whose decayed usage fell below ``threshold`` with random vectors of ``h``."""
        dead = (self.usage < threshold).nonzero().flatten()
        if dead.numel() == 0:
            return 0
        flat = _flatten(h)
        g = torch.Generator().manual_seed(seed)
        picks = flat[torch.randint(0, flat.shape[0], (dead.numel(),), generator=g)]
        self.codebook[dead] = picks
        self.ema_sum[dead] = picks
        self.ema_count[dead] = 1.0
        self.usage[dead] = 1.0
        return int(dead.numel())
