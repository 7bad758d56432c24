"""Learned causal-neighbour prior of VQ index maps and its entropy coder (constriction ANS).

p(k(i, j) | context) is a categorical over the codebook predicted by a small MLP from the
embeddings of six already-coded neighbours: (i, j-1), (i, j-2), (i-1, j-1), (i-1, j), (i-1, j+1),
(i-2, j); positions outside the map use an extra "outside" token. Every neighbour of (i, j) lies
on an earlier anti-diagonal wave ``t = 2i + j``, so the decoder evaluates the prior one wave at a
time (``2h + w`` batched steps instead of ``h * w`` single ones).

Bit-exactness: encoder and decoder run the prior in float64 numpy on exactly the same wave
batches, and the logits are rounded to multiples of 1/256 before the softmax, so both sides
derive the same probabilities (constriction then quantises them to fixed point the same way).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import BitstreamError

# (di, dj) offsets of the causal neighbours
NEIGHBOURS = ((0, -1), (0, -2), (-1, -1), (-1, 0), (-1, 1), (-2, 0))
LOGIT_STEP = 1.0 / 256.0


def context_indices(indices: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) index maps -> (N, H, W, 6) neighbour indices, ``size`` where outside the map."""
    n, h, w = indices.shape
    pad = torch.full((n, h + 2, w + 4), size, dtype=indices.dtype, device=indices.device)
    pad[:, 2:, 2:-2] = indices
    cols = [pad[:, 2 + di : 2 + di + h, 2 + dj : 2 + dj + w] for di, dj in NEIGHBOURS]
    return torch.stack(cols, dim=-1)


class CausalPrior(nn.Module):
    def __init__(self, size: int = 256, embed: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.size = size
        self.embed = nn.ModuleList(nn.Embedding(size + 1, embed) for _ in NEIGHBOURS)
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(embed, hidden), nn.ReLU(), nn.Linear(hidden, size))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """(..., 6) neighbour indices -> (..., size) logits."""
        x = sum(emb(context[..., k]) for k, emb in enumerate(self.embed))
        return self.mlp(x)

    def loss(self, indices: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in bits per index of ``(N, H, W)`` maps (teacher forcing)."""
        logits = self(context_indices(indices, self.size))
        ce = nn.functional.cross_entropy(logits.reshape(-1, self.size), indices.reshape(-1))
        return ce / np.log(2.0)

    def numpy_model(self) -> "NumpyPrior":
        return NumpyPrior(self)


class NumpyPrior:
    """float64 numpy copy of a :class:`CausalPrior` used for coding (deterministic)."""

    def __init__(self, prior: CausalPrior) -> None:
        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().double().numpy()

        self.size = prior.size
        self.tables = [arr(e.weight) for e in prior.embed]
        lin1, lin2 = prior.mlp[1], prior.mlp[3]
        self.w1, self.b1 = arr(lin1.weight).T.copy(), arr(lin1.bias)
        self.w2, self.b2 = arr(lin2.weight).T.copy(), arr(lin2.bias)

    def probabilities(self, context: np.ndarray) -> np.ndarray:
        """(M, 6) neighbour indices -> (M, size) float64 probabilities (rows sum to 1)."""
        x = sum(table[context[:, k]] for k, table in enumerate(self.tables))
        x = np.maximum(x, 0.0)
        x = np.maximum(x @ self.w1 + self.b1, 0.0)
        logits = np.round((x @ self.w2 + self.b2) / LOGIT_STEP) * LOGIT_STEP
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def _waves(h: int, w: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Positions grouped by anti-diagonal ``t = 2i + j`` in increasing t (rows ascending within)."""
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    t = (2 * ii + jj).ravel()
    order = np.argsort(t, kind="stable")
    bounds = np.flatnonzero(np.diff(t[order])) + 1
    return [(ii.ravel()[g], jj.ravel()[g]) for g in np.split(order, bounds)]


def _wave_context(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.stack([padded[rows + 2 + di, cols + 2 + dj] for di, dj in NEIGHBOURS], axis=1)


# Share of a uniform distribution mixed into the prior, chosen per map by the encoder and sent
# in the payload's first byte. 1.0 (pure uniform, 8 bits per index) bounds the cost on content
# far from the training set, where a learned prior can be confidently wrong.
UNIFORM_MIX = (0.0, 0.125, 0.25, 0.5, 1.0)


def mix_uniform(probs: np.ndarray, mode: int) -> np.ndarray:
    share = UNIFORM_MIX[mode]
    return probs if share == 0.0 else (1.0 - share) * probs + share / probs.shape[1]


class IndexCoder:
    """Entropy codes ``(H, W)`` index maps with a :class:`NumpyPrior` and constriction's ANS coder.

    Payload: one byte (the :data:`UNIFORM_MIX` mode), then the ANS words (little-endian, high zero
    bytes of the last word dropped).
    """

    def __init__(self, prior: NumpyPrior) -> None:
        self.prior = prior

    def _padded(self, h: int, w: int) -> np.ndarray:
        return np.full((h + 2, w + 4), self.prior.size, dtype=np.int64)

    def probabilities(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Symbols and the prior's probability rows in coding order (the decoder's wave order)."""
        h, w = indices.shape
        padded = self._padded(h, w)
        padded[2:, 2:-2] = indices
        symbols, probs = [], []
        for rows, cols in _waves(h, w):
            probs.append(self.prior.probabilities(_wave_context(padded, rows, cols)))
            symbols.append(indices[rows, cols])
        return np.concatenate(symbols).astype(np.int32), np.concatenate(probs)

    def _best_mode(self, symbols: np.ndarray, probs: np.ndarray) -> tuple[int, float]:
        """The uniform-mix mode with the shortest ideal code length, and that length in bits."""
        picked = probs[np.arange(symbols.size), symbols]
        bits = [float(-np.log2((1.0 - a) * picked + a / probs.shape[1]).sum()) for a in UNIFORM_MIX]
        mode = int(np.argmin(bits))
        return mode, bits[mode]

    def ideal_bits(self, indices: np.ndarray) -> float:
        """Ideal code length of ``indices`` in bits under the model ``encode`` picks:
        sum of -log2 p(k | context) (the one-byte mode is not included)."""
        return self._best_mode(*self.probabilities(np.asarray(indices, dtype=np.int64)))[1]

    def encode(self, indices: np.ndarray) -> bytes:
        import constriction

        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 2 or indices.min() < 0 or indices.max() >= self.prior.size:
            raise ValueError("index map must be 2-D with values in [0, codebook size)")
        symbols, probs = self.probabilities(indices)
        mode, _ = self._best_mode(symbols, probs)
        coder = constriction.stream.stack.AnsCoder()
        family = constriction.stream.model.Categorical(perfect=False)
        coder.encode_reverse(symbols, family, mix_uniform(probs, mode).astype(np.float32))
        # the last word (top of the ANS state) is never zero; its high zero bytes carry nothing
        return bytes([mode]) + coder.get_compressed().astype("<u4").tobytes().rstrip(b"\0")

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        import constriction

        h, w = shape
        if not data or data[0] >= len(UNIFORM_MIX):
            raise BitstreamError("corrupt VQ index payload: missing or unknown prior mode")
        mode, body = data[0], data[1:]
        if body and body[-1] == 0:  # an empty body is valid: a perfectly predictable map
            raise BitstreamError("corrupt VQ index payload: ends in a zero byte")
        words = np.frombuffer(body + bytes(-len(body) % 4), dtype="<u4").astype(np.uint32)
        try:
            coder = constriction.stream.stack.AnsCoder(words)
        except Exception as exc:  # constriction raises ValueError / RuntimeError on invalid streams
            raise BitstreamError(f"corrupt VQ index payload: {exc}") from None
        family = constriction.stream.model.Categorical(perfect=False)
        padded = self._padded(h, w)
        try:
            for rows, cols in _waves(h, w):
                probs = mix_uniform(self.prior.probabilities(_wave_context(padded, rows, cols)), mode)
                padded[rows + 2, cols + 2] = coder.decode(family, probs.astype(np.float32))
        except Exception as exc:
            raise BitstreamError(f"corrupt VQ index payload: {exc}") from None
        if not coder.is_empty():
            raise BitstreamError("corrupt VQ index payload: data left over after the last index")
        return padded[2:, 2:-2].copy()
