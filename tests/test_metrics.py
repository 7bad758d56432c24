"""PSNR / MS-SSIM: hand-checked values and agreement with an independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from m3cvc.errors import InputError
from m3cvc.eval.metrics import (
    SequenceAccumulator,
    ms_ssim,
    ms_ssim_scales,
    psnr,
    sequence_psnr_ms_ssim,
    ssim,
)


def _pair(h: int, w: int, noise: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) % 64) * 4], -1)
    a = base.astype(np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-noise, noise + 1, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_identical_frames():
    a, _ = _pair(40, 48)
    assert psnr(a, a) == math.inf
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_psnr_hand_computed():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 16  # MSE = 256 / 48
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 * 48 / 256))
    assert psnr(np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)) == pytest.approx(0.0)


def test_ms_ssim_decreases_with_noise():
    a, b1 = _pair(64, 64, noise=5)
    _, b2 = _pair(64, 64, noise=40)
    assert 1.0 > ms_ssim(a, b1) > ms_ssim(a, b2) > 0.0


def test_scale_reduction_for_small_images():
    assert ms_ssim_scales(320, 512) == (5, 11)
    assert ms_ssim_scales(161, 200) == (5, 11)
    assert ms_ssim_scales(160, 200) == (4, 11)
    assert ms_ssim_scales(80, 128) == (3, 11)
    assert ms_ssim_scales(81, 128) == (4, 11)
    assert ms_ssim_scales(11, 11) == (1, 11)
    assert ms_ssim_scales(8, 9) == (1, 7)
    a, b = _pair(8, 9)
    assert 0.0 < ms_ssim(a, b) < 1.0
    a, b = _pair(21, 20)  # one scale == plain SSIM
    assert ms_ssim(a, b) == pytest.approx(max(ssim(a, b), 0.0))


def test_bad_input_is_input_error():
    with pytest.raises(InputError):
        psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(InputError):
        ms_ssim(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.float32))


def test_sequence_helpers():
    a, b = _pair(32, 32, noise=10)
    seq = sequence_psnr_ms_ssim([a, a], [a, b])
    assert seq["psnr"] == math.inf
    assert seq["psnr_seq"] == pytest.approx(psnr(a, b) + 10 * math.log10(2))
    assert seq["ms_ssim"] == pytest.approx((1.0 + ms_ssim(a, b)) / 2)
    acc = SequenceAccumulator(with_ms_ssim=False)
    acc.update(a, b)
    assert acc.frames == 1 and "ms_ssim" not in acc.result()
    with pytest.raises(InputError):
        sequence_psnr_ms_ssim([a], [a, b])


@pytest.mark.parametrize("shape", [(192, 256), (320, 512)])
def test_ms_ssim_matches_pytorch_msssim(shape):
    torch = pytest.importorskip("torch")
    reference = pytest.importorskip("pytorch_msssim")
    a, b = _pair(*shape, noise=25, seed=1)
    to_t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].double()  # noqa: E731
    expected = reference.ms_ssim(to_t(a), to_t(b), data_range=255).item()
    assert ms_ssim(a, b) == pytest.approx(expected, abs=1e-4)
    expected_ssim = reference.ssim(to_t(a), to_t(b), data_range=255).item()
    assert ssim(a, b) == pytest.approx(expected_ssim, abs=1e-4)
