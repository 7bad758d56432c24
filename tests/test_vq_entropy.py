"""VQ index maps through the learned causal prior + constriction ANS coder (torch only, fast)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("constriction")

from m3cvc.errors import BitstreamError  # noqa: E402
from m3cvc.keyframe_codec.prior import UNIFORM_MIX, CausalPrior, IndexCoder, context_indices  # noqa: E402
from m3cvc.keyframe_codec.vq import VectorQuantizer, kmeans, nearest  # noqa: E402


def _skewed_maps(rng: np.random.Generator, n: int, shape: tuple[int, int]) -> np.ndarray:
    """Index maps with spatial structure: smooth blobs of few codes plus noise."""
    maps = []
    for _ in range(n):
        base = rng.integers(0, 16, size=(shape[0] // 4 + 1, shape[1] // 4 + 1))
        m = np.kron(base, np.ones((4, 4), dtype=np.int64))[: shape[0], : shape[1]]
        noise = rng.random(shape) < 0.1
        m[noise] = rng.integers(0, 256, size=int(noise.sum()))
        maps.append(m)
    return np.stack(maps)


@pytest.fixture(scope="module")
def trained_prior() -> CausalPrior:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    maps = torch.from_numpy(_skewed_maps(rng, 32, (16, 24)))
    prior = CausalPrior(256, embed=32, hidden=64)
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    with torch.no_grad():
        first = float(prior.loss(maps))
    for _ in range(60):
        loss = prior.loss(maps)
        opt.zero_grad()
        loss.backward()
        opt.step()
    prior.eval()
    with torch.no_grad():
        prior.first_bits, prior.last_bits = first, float(prior.loss(maps))  # type: ignore[attr-defined]
    return prior


def test_prior_training_lowers_bits(trained_prior):
    assert trained_prior.last_bits < trained_prior.first_bits - 1.0  # bits per index
    assert trained_prior.first_bits > 7.0  # untrained: close to uniform (8 bits)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (20, 32), (40, 64), (7, 2)])
def test_index_maps_round_trip_exactly(trained_prior, shape):
    coder = IndexCoder(trained_prior.numpy_model())
    rng = np.random.default_rng(sum(shape))
    indices = _skewed_maps(rng, 1, shape)[0]
    data = coder.encode(indices)
    assert isinstance(data, bytes) and data
    assert np.array_equal(coder.decode(data, shape), indices)
    assert coder.encode(indices) == data  # deterministic


def test_coded_size_close_to_ideal(trained_prior):
    coder = IndexCoder(trained_prior.numpy_model())
    indices = _skewed_maps(np.random.default_rng(5), 1, (40, 64))[0]
    ideal_bytes = coder.ideal_bits(indices) / 8
    coded = len(coder.encode(indices))
    assert ideal_bytes < 8 * 40 * 64 / 8  # the prior beats 8 bits per index
    assert ideal_bytes <= coded <= ideal_bytes * 1.01 + 2  # + the one-byte prior mode


def test_uniform_mix_bounds_the_cost_of_surprising_maps(trained_prior):
    coder = IndexCoder(trained_prior.numpy_model())
    noise = np.random.default_rng(9).integers(0, 256, size=(16, 24))  # nothing like the training maps
    data = coder.encode(noise)
    assert data[0] == len(UNIFORM_MIX) - 1  # the encoder falls back to the uniform model
    assert len(data) <= 16 * 24 + 6  # ~8 bits per index, not more
    assert np.array_equal(coder.decode(data, noise.shape), noise)
    structured = _skewed_maps(np.random.default_rng(3), 1, (16, 24))[0]
    assert coder.encode(structured)[0] < len(UNIFORM_MIX) - 1  # ... but uses the prior where it helps


def test_extreme_codes_round_trip(trained_prior):
    coder = IndexCoder(trained_prior.numpy_model())
    for value in (0, 255):
        indices = np.full((6, 9), value)
        assert np.array_equal(coder.decode(coder.encode(indices), indices.shape), indices)


def test_corrupt_payloads_raise_bitstream_error(trained_prior):
    coder = IndexCoder(trained_prior.numpy_model())
    indices = _skewed_maps(np.random.default_rng(1), 1, (20, 32))[0]
    data = coder.encode(indices)
    rng = np.random.default_rng(2)
    bad = [b"", bytes([200]) + data[1:], data[:-4], data[4:], data[: len(data) // 2], data + b"\x01\x02\x03\x04", b"\0" * len(data),
           bytes(rng.integers(0, 256, len(data), dtype=np.uint8))]
    for payload in bad:
        with pytest.raises(BitstreamError):
            coder.decode(payload, (20, 32))
    with pytest.raises(BitstreamError):  # right bytes, wrong grid
        coder.decode(data, (21, 32))


def test_context_uses_only_causal_neighbours():
    idx = torch.arange(12).view(1, 3, 4)
    ctx = context_indices(idx, 256)[0]
    # (1, 1): left (1,0)=4, left2 outside, up-left (0,0)=0, up (0,1)=1, up-right (0,2)=2, up2 outside
    assert ctx[1, 1].tolist() == [4, 256, 0, 1, 2, 256]
    assert ctx[0, 0].tolist() == [256] * 6


def test_vector_quantizer_nearest_and_kmeans():
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2) for c in centres])
    found = kmeans(points, 3, seed=0)
    # every true centre has a k-means centre next to it
    assert torch.cdist(centres, found).min(1).values.max() < 0.5
    vq = VectorQuantizer(size=3, dim=2)
    vq.codebook.copy_(centres)
    h = torch.tensor([[[[9.0]], [[1.0]]]])  # one vector (9, 1) as (N, D, H, W)
    assert vq.quantize(h).item() == 1
    assert nearest(torch.tensor([[0.2, 9.0]]), centres).item() == 2


def test_dead_code_restart_reseeds_unused_codes():
    vq = VectorQuantizer(size=8, dim=4)
    vq.usage.zero_()
    vq.usage[:2] = 5.0
    h = torch.randn(2, 4, 3, 3)
    assert vq.restart_dead_codes(h) == 6
    flat = h.permute(0, 2, 3, 1).reshape(-1, 4)
    for row in vq.codebook[2:]:
        assert torch.isclose(flat, row).all(1).any()
