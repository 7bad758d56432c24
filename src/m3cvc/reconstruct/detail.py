"""Detail restoration: a decoder-side unsharp mask whose strength the encoder chooses per video.

At ultra-low rates the keyframe codec removes fine detail, and every frame of a clip inherits the keyframes'
blur. An unsharp mask (``out = frame + a * (frame - blur(frame))``, Gaussian ``SIGMA`` px) restores edge
contrast, but whether it helps depends on the content: on crisp animation (bigbuckbunny, 40 frames, keyframe
QP 43-47) LPIPS fell from 0.282 / 0.415 / 0.431 to 0.251 / 0.376 / 0.395 at the best strength, while on
natural footage (carphone, bikes) every strength made it worse or gained at most 0.001 (it amplifies coding
noise rather than lost edges). So the encoder, which has the source, chooses the strength: ``a`` in 0, 0.2, ..., 2.0, the one whose
sharpened decoded keyframes have the lowest mean GMSD (gradient magnitude similarity deviation, Xue et al.
2014, a full-reference perceptual measure) against the source keyframes, on the luma plane. On those clips
GMSD's choice was 0 wherever LPIPS' best was 0 or within 0.001 of it, and 0.4-1.4 on bigbuckbunny where
LPIPS' best was 1.2-2.0 (``benchmarks/detail.py``). The strength travels in the header as the ``sharpen``
parameter of the flow reconstructor, in tenths (one byte), and the decoder applies it to every frame.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

SIGMA = 1.0  # px, the unsharp mask's Gaussian
STEPS = tuple(range(0, 21, 2))  # candidate strengths in tenths: 0, 0.2, ..., 2.0
MAX_TENTHS = 30
AUTO = -1  # config value: the encoder chooses (never stored in a stream)
_C = 170.0  # GMSD's stability constant for 8-bit images with Prewitt gradients (Xue et al. 2014)


def unsharp(frame: np.ndarray, tenths: int) -> np.ndarray:
    """``frame`` (uint8, any channels) sharpened by strength ``tenths / 10``; the frame itself at 0."""
    import cv2

    if tenths <= 0:
        return frame
    amount = tenths / 10.0
    blur = cv2.GaussianBlur(frame, (0, 0), SIGMA)
    return cv2.addWeighted(frame, 1.0 + amount, blur, -amount, 0.0)


def _gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prewitt gradients (GMSD's), float32."""
    import cv2

    kx = np.array([[1, 0, -1]] * 3, np.float32) / 3.0
    return cv2.filter2D(image, cv2.CV_32F, kx), cv2.filter2D(image, cv2.CV_32F, kx.T)


def gmsd(source: np.ndarray, decoded: np.ndarray) -> float:
    """GMSD (Xue et al. 2014) of two luma planes (uint8, same shape ``(H, W)``): the standard deviation of the
    gradient magnitude similarity map, Prewitt gradients at the planes' own resolution (see
    :meth:`DetailMeter.add`); 0 for identical planes, larger is worse (about 0.35 at most)."""
    return gmsd_of(gradient_energy(source), gradient_energy(decoded))


def gradient_energy(plane: np.ndarray) -> np.ndarray:
    """Squared Prewitt gradient magnitude of a luma plane (float32), GMSD's per-image part."""
    gx, gy = _gradients(plane.astype(np.float32))
    return gx * gx + gy * gy


def gmsd_of(s2: np.ndarray, d2: np.ndarray) -> float:
    """GMSD from the two planes' :func:`gradient_energy` (for comparing one plane with many)."""
    return float(((2.0 * np.sqrt(s2 * d2) + _C) / (s2 + d2 + _C)).std())


class DetailMeter:
    """Accumulates, keyframe by keyframe, the GMSD of each candidate strength (memory flat in video length);
    :meth:`choice` is the strength (tenths) with the lowest mean, the weakest on ties."""

    def __init__(self) -> None:
        self._sums = np.zeros(len(STEPS), np.float64)
        self._count = 0

    def add(self, source: np.ndarray, decoded: np.ndarray) -> None:
        """One keyframe: its source and decoded luma planes (uint8, same shape); see :meth:`measure`."""
        self.add_measured(self.measure(source, decoded))

    def add_measured(self, values: np.ndarray) -> None:
        """One keyframe's :meth:`measure` (keyframes may be measured on other threads and added in order)."""
        self._sums += values
        self._count += 1

    @staticmethod
    def measure(source: np.ndarray, decoded: np.ndarray) -> np.ndarray:
        """GMSD of each candidate strength (float64, one per ``STEPS``) for one keyframe: its source and decoded
        luma planes (uint8, same shape). GMSD with Prewitt gradients at
        the frame's own resolution (GMSD's 2x downsampling is meant for large images seen from afar; at
        512x320 it hides the very detail the mask restores: it chose 0 on bigbuckbunny). The mask's detail
        layer ``h = decoded - blur`` is linear, so the sharpened gradients are ``grad(d) + a grad(h)``."""
        import cv2

        d = decoded.astype(np.float32)
        h = d - cv2.GaussianBlur(d, (0, 0), SIGMA)
        sx, sy = _gradients(source.astype(np.float32))
        s2 = sx * sx + sy * sy
        dx, dy = _gradients(d)
        hx, hy = _gradients(h)
        s_mag2 = 2.0 * np.sqrt(s2)
        # per strength: GMS = (2 |grad s| |grad d'| + C) / (|grad s|^2 + |grad d'|^2 + C), computed in place
        # (the same float32 operations in the same order as the plain expression, a third of its time)
        gx, gy, mag, num = (np.empty_like(dx) for _ in range(4))
        values = np.zeros(len(STEPS), np.float64)
        for k, tenths in enumerate(STEPS):  # gradients are linear: grad(d + a h) = grad(d) + a grad(h)
            a = np.float32(tenths / 10.0)
            np.multiply(a, hx, out=gx)
            gx += dx
            np.multiply(a, hy, out=gy)
            gy += dy
            np.multiply(gx, gx, out=gx)
            np.multiply(gy, gy, out=gy)
            gx += gy
            np.sqrt(gx, out=mag)  # |grad d'|
            np.multiply(s_mag2, mag, out=num)
            num += _C
            np.multiply(mag, mag, out=mag)
            np.add(s2, mag, out=mag)
            mag += _C
            num /= mag
            values[k] = float(num.std())
        return values

    def choice(self) -> int:
        if not self._count:
            return 0
        return STEPS[int(np.argmin(np.round(self._sums / self._count, 9)))]


def luma(frame: np.ndarray) -> np.ndarray:
    """The BT.601 limited-range luma plane the keyframe codecs code (that of
    :func:`~m3cvc.video.color.rgb_to_yuv420`), uint8 (H, W)."""
    from ..video.color import rgb_to_yuv444

    return rgb_to_yuv444(frame, full_range=False)[0]


def check_tenths(value: int, allow_auto: bool) -> Optional[str]:
    """Why ``value`` is not a valid ``sharpen`` setting, or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"sharpen must be an integer (tenths of the unsharp-mask strength), got {value!r}"
    if allow_auto and not AUTO <= value <= MAX_TENTHS:
        return f"sharpen must be in -1..{MAX_TENTHS} (tenths of the strength; -1: the encoder chooses), got {value}"
    if not allow_auto and not 0 <= value <= MAX_TENTHS:
        return f"sharpen must be in 0..{MAX_TENTHS} (tenths of the strength), got {value}"
    return None
