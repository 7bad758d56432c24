"""RGB <-> Y'CbCr (BT.601 matrix, full or limited range), the conversion y4m files use."""

from __future__ import annotations

import cv2
import numpy as np

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
# rows: Y, Cb, Cr from R, G, B (full range, chroma centred on 0)
_RGB2YCC = np.array(
    [
        [_KR, _KG, _KB],
        [-0.5 * _KR / (1 - _KB), -0.5 * _KG / (1 - _KB), 0.5],
        [0.5, -0.5 * _KG / (1 - _KR), -0.5 * _KB / (1 - _KR)],
    ],
    dtype=np.float32,
)
_YCC2RGB = np.linalg.inv(_RGB2YCC).astype(np.float32)


def _scales(full_range: bool, bits: int) -> tuple[float, float, float, float]:
    """(luma scale, luma offset, chroma scale, chroma centre) mapping 8-bit full-range Y'CbCr."""
    peak = (1 << bits) - 1
    centre = float(1 << (bits - 1))
    if full_range:
        return peak / 255.0, 0.0, peak / 255.0, centre
    up = float(1 << (bits - 8))
    return up * 219.0 / 255.0, 16.0 * up, up * 224.0 / 255.0, centre


def rgb_to_yuv444(
    rgb: np.ndarray, full_range: bool = True, bits: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB uint8 (H, W, 3) -> Y, Cb, Cr planes (uint8 for 8 bits, else uint16).

    At 10 bits, full range, the round trip back to 8-bit RGB is exact: the inverse matrix grows
    a quantisation error of 1/8 of an 8-bit step to at most 0.35 of one, which rounding removes.
    """
    ycc = rgb.astype(np.float32) @ _RGB2YCC.T
    ys, yo, cs, cc = _scales(full_range, bits)
    planes = (ycc[..., 0] * ys + yo, ycc[..., 1] * cs + cc, ycc[..., 2] * cs + cc)
    dtype = np.uint8 if bits == 8 else np.uint16
    peak = (1 << bits) - 1
    return tuple(np.clip(np.rint(p), 0, peak).astype(dtype) for p in planes)  # type: ignore[return-value]


def yuv_to_rgb(
    y: np.ndarray, cb: np.ndarray, cr: np.ndarray, full_range: bool = True, bits: int = 8
) -> np.ndarray:
    """Y plane (H, W) and chroma planes of any subsampled size -> RGB uint8 (H, W, 3)."""
    h, w = y.shape
    if cb.shape != (h, w):
        cb = cv2.resize(cb, (w, h), interpolation=cv2.INTER_LINEAR)
        cr = cv2.resize(cr, (w, h), interpolation=cv2.INTER_LINEAR)
    ys, yo, cs, cc = _scales(full_range, bits)
    yf = (y.astype(np.float32) - yo) / ys
    cbf = (cb.astype(np.float32) - cc) / cs
    crf = (cr.astype(np.float32) - cc) / cs
    ycc = np.stack([yf, cbf, crf], axis=-1)
    rgb = ycc @ _YCC2RGB.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def rgb_to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB -> limited-range 4:2:0 planes (chroma averaged over 2x2, odd sizes rounded up)."""
    y, cb, cr = rgb_to_yuv444(rgb, full_range=False)
    h, w = y.shape
    cw, ch = (w + 1) // 2, (h + 1) // 2
    cb = cv2.resize(cb, (cw, ch), interpolation=cv2.INTER_AREA)
    cr = cv2.resize(cr, (cw, ch), interpolation=cv2.INTER_AREA)
    return y, cb, cr
