"""Full-reference pixel metrics: PSNR and MS-SSIM on RGB uint8 frames.

Both metrics take two frames of identical shape ``(H, W, 3)`` (or ``(H, W)``), dtype uint8, values in
[0, 255], and are computed in float64 so results are deterministic and independent of the codec that made
the frames (ffmpeg's ``psnr`` filter is not used: it misreports 10-bit output).

PSNR
    ``10 * log10(255**2 / MSE)`` with the MSE taken over every pixel *and* channel (RGB PSNR).
    Identical frames give ``inf``.

MS-SSIM (Wang, Simoncelli & Bovik 2003)
    Computed **per RGB channel** on the [0, 255] range and averaged over the channels (the convention of
    pytorch_msssim / CompressAI / the learned-video-coding literature on RGB), not on luma.
    11x11 Gaussian window with sigma 1.5, "valid" filtering (no border padding), K1 = 0.01, K2 = 0.03,
    5 scales with the weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); between scales the image is
    2x2 average-pooled (an odd row/column is replicated first, unlike pytorch_msssim's zero padding).
    Negative contrast-structure / SSIM terms are clipped to 0 as in pytorch_msssim.

    Small images: 5 scales need the coarsest scale to hold one 11x11 window; with the ceil-halving
    above that is a shorter side of at least 161 px (ceil(side / 16) >= 11). For smaller images the number
    of scales is reduced to the largest count whose coarsest scale is still >= 11 px, and the first weights
    are renormalised to sum to 1 (so 81..160 px use 4 scales, 41..80 px 3, 11..21 px is plain SSIM). Images whose shorter side is below 11 px use a single scale with the
    window shrunk to the largest odd size that fits (sigma kept at 1.5). :func:`ms_ssim_scales` reports the
    number of scales used for a given size.

Sequence helpers (:class:`SequenceAccumulator`, :func:`sequence_psnr_ms_ssim`) average per-frame values
and also report the sequence PSNR from the mean MSE over all frames (``psnr_seq``), which stays finite
unless every frame is identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ...errors import InputError
from .suite import MetricEngine, MetricValue, mean_value

MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1 = 0.01
K2 = 0.03
DATA_RANGE = 255.0

__all__ = [
    "MS_SSIM_WEIGHTS",
    "PixelEngine",
    "SequenceAccumulator",
    "ms_ssim",
    "ms_ssim_scales",
    "mse",
    "psnr",
    "psnr_from_mse",
    "sequence_psnr_ms_ssim",
    "ssim",
]


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise InputError(f"frames differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise InputError(f"expected a (H, W) or (H, W, C) frame, got shape {a.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise InputError(f"expected uint8 frames, got {a.dtype} and {b.dtype}")
    return a, b


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel and channel of two uint8 frames."""
    a, b = _check_pair(a, b)
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr_from_mse(value: float, data_range: float = DATA_RANGE) -> float:
    """PSNR in dB for a mean squared error (``inf`` for 0)."""
    if value <= 0.0:
        return math.inf
    return float(10.0 * math.log10(data_range * data_range / value))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """RGB PSNR in dB of two uint8 frames; ``inf`` when they are identical."""
    return psnr_from_mse(mse(a, b))


def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords**2) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D float64 image with a symmetric 1-D window.

    OpenCV filters with a border; cropping the border away leaves exactly the 'valid' part.
    """
    import cv2

    r = win.shape[0] // 2
    out = cv2.sepFilter2D(img, cv2.CV_64F, win, win, borderType=cv2.BORDER_REFLECT)
    return out[r : img.shape[0] - r, r : img.shape[1] - r]


def _ssim_cs(x: np.ndarray, y: np.ndarray, win: np.ndarray) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two 2-D float64 images."""
    c1 = (K1 * DATA_RANGE) ** 2
    c2 = (K2 * DATA_RANGE) ** 2
    mu_x = _filter_valid(x, win)
    mu_y = _filter_valid(y, win)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    sigma_xx = _filter_valid(x * x, win) - mu_xx
    sigma_yy = _filter_valid(y * y, win) - mu_yy
    sigma_xy = _filter_valid(x * y, win) - mu_xy
    cs_map = (2.0 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    ssim_map = ((2.0 * mu_xy + c1) / (mu_xx + mu_yy + c1)) * cs_map
    return float(ssim_map.mean()), float(cs_map.mean())


def _downsample(img: np.ndarray) -> np.ndarray:
    """2x2 average pooling; an odd last row/column is replicated first."""
    h, w = img.shape
    if h % 2:
        img = np.concatenate([img, img[-1:, :]], axis=0)
    if w % 2:
        img = np.concatenate([img, img[:, -1:]], axis=1)
    return 0.25 * (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2])


def ms_ssim_scales(height: int, width: int) -> tuple[int, int]:
    """(number of scales, window size) MS-SSIM uses for an image of this size (see module doc)."""
    side = min(height, width)
    if side < WINDOW_SIZE:
        return 1, side if side % 2 else side - 1
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and math.ceil(side / 2**scales) >= WINDOW_SIZE:
        scales += 1
    return scales, WINDOW_SIZE


def _ms_ssim_channel(x: np.ndarray, y: np.ndarray, scales: int, win: np.ndarray) -> float:
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], dtype=np.float64)
    weights = weights / weights.sum()
    terms = []
    for level in range(scales):
        s, cs = _ssim_cs(x, y, win)
        if level < scales - 1:
            terms.append(max(cs, 0.0))
            x, y = _downsample(x), _downsample(y)
        else:
            terms.append(max(s, 0.0))
    return float(np.prod(np.asarray(terms) ** weights))


def _channels(a: np.ndarray) -> list[np.ndarray]:
    if a.ndim == 2:
        return [a.astype(np.float64)]
    return [a[..., c].astype(np.float64) for c in range(a.shape[2])]


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two uint8 frames, per channel on [0, 255], averaged over channels (1.0 if identical)."""
    a, b = _check_pair(a, b)
    scales, size = ms_ssim_scales(a.shape[0], a.shape[1])
    win = _gaussian_1d(size, WINDOW_SIGMA)
    values = [_ms_ssim_channel(x, y, scales, win) for x, y in zip(_channels(a), _channels(b))]
    return float(np.mean(values))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Single-scale SSIM (same window and constants), per channel, averaged over channels."""
    a, b = _check_pair(a, b)
    size = min(WINDOW_SIZE, ms_ssim_scales(a.shape[0], a.shape[1])[1])
    win = _gaussian_1d(size, WINDOW_SIGMA)
    return float(np.mean([_ssim_cs(x, y, win)[0] for x, y in zip(_channels(a), _channels(b))]))


@dataclass
class SequenceAccumulator:
    """Streams frame pairs and reports sequence-level PSNR / MS-SSIM.

    ``psnr``: mean of per-frame PSNR (``inf`` if any frame is identical to its reference);
    ``psnr_seq``: PSNR of the mean MSE over all frames; ``ms_ssim``: mean of per-frame MS-SSIM.
    """

    with_ms_ssim: bool = True
    mses: list[float] = field(default_factory=list)
    ms_ssims: list[float] = field(default_factory=list)

    def update(self, ref: np.ndarray, dec: np.ndarray) -> None:
        self.mses.append(mse(ref, dec))
        if self.with_ms_ssim:
            self.ms_ssims.append(ms_ssim(ref, dec))

    @property
    def frames(self) -> int:
        return len(self.mses)

    def result(self) -> dict[str, float]:
        if not self.mses:
            raise InputError("no frames to measure")
        out = {
            "psnr": float(np.mean([psnr_from_mse(m) for m in self.mses])),
            "psnr_seq": psnr_from_mse(float(np.mean(self.mses))),
            "mse": float(np.mean(self.mses)),
        }
        if self.with_ms_ssim:
            out["ms_ssim"] = float(np.mean(self.ms_ssims))
        return out


def sequence_psnr_ms_ssim(
    refs: Iterable[np.ndarray], decs: Iterable[np.ndarray], with_ms_ssim: bool = True
) -> dict[str, float]:
    """Sequence metrics of two equally long frame sequences (see :class:`SequenceAccumulator`)."""
    acc = SequenceAccumulator(with_ms_ssim=with_ms_ssim)
    refs, decs = list(refs), list(decs)
    if len(refs) != len(decs):
        raise InputError(f"sequences differ in length: {len(refs)} vs {len(decs)} frames")
    for ref, dec in zip(refs, decs):
        acc.update(ref, dec)
    return acc.result()


class PixelEngine(MetricEngine):
    """``psnr`` (with ``psnr_seq``) and ``ms_ssim`` in float64 NumPy/OpenCV; always available."""

    def load(self) -> None:
        pass

    def info(self, name: str) -> dict[str, Any]:
        return {"implementation": "m3cvc.eval.metrics.pixel (RGB, float64)"}

    def compute(self, refs: Sequence[np.ndarray], decs: Sequence[np.ndarray]) -> dict[str, MetricValue]:
        acc = SequenceAccumulator(with_ms_ssim="ms_ssim" in self.names)
        for ref, dec in zip(refs, decs):
            acc.update(ref, dec)
        out = {}
        if "psnr" in self.names:
            out["psnr"] = mean_value([psnr_from_mse(m) for m in acc.mses], psnr_seq=acc.result()["psnr_seq"])
        if "ms_ssim" in self.names:
            out["ms_ssim"] = mean_value(acc.ms_ssims)
        return out
