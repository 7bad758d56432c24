"""``thumbnail``: a weight-free global frame descriptor for the semantic term of paper II-A.

The descriptor concatenates two unit-norm parts, weighted so that the cosine of two descriptors
is ``(1 - w) * colour + w * layout``:

* colour: a 2x2 grid of HSV colour histograms (8x8x8 bins per cell, on a 64x40 thumbnail),
  square-rooted (Hellinger), so the cosine is the mean Bhattacharyya coefficient of the cells.
  Histograms ignore where things are inside a cell, so camera motion barely changes them while
  a scene cut (new colours) drops them sharply;
* layout: a mean-removed 16x10 luminance thumbnail (the correlation of coarse structure), which
  separates cuts between shots of similar colours.

About 0.3 ms per 512x320 frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ConfigError
from .base import SemanticBackend


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-9 else vector


class ThumbnailSemantic(SemanticBackend):
    """Grid colour histograms (Hellinger) + mean-removed luminance thumbnail."""

    def __init__(
        self,
        grid: int = 2,
        bins: int = 8,
        size: tuple[int, int] = (64, 40),
        layout_size: tuple[int, int] = (16, 10),
        layout_weight: float = 0.1,
    ) -> None:
        if grid < 1 or bins < 1 or min(size) < grid or min(layout_size) < 1:
            raise ConfigError("thumbnail: grid, bins and sizes must be positive (size >= grid)")
        if not 0.0 <= layout_weight <= 1.0:
            raise ConfigError(f"thumbnail: layout_weight must be in [0, 1], got {layout_weight}")
        self.grid = grid
        self.bins = bins
        self.size = (int(size[0]), int(size[1]))
        self.layout_size = (int(layout_size[0]), int(layout_size[1]))
        self.layout_weight = float(layout_weight)

    def _colour(self, hsv: np.ndarray) -> np.ndarray:
        height, width = hsv.shape[:2]
        g = self.grid
        cells = []
        for row in range(g):
            for col in range(g):
                cell = hsv[row * height // g:(row + 1) * height // g, col * width // g:(col + 1) * width // g]
                hist = cv2.calcHist([cell], [0, 1, 2], None, [self.bins] * 3, [0, 256] * 3).ravel()
                cells.append(np.sqrt(hist / max(float(hist.sum()), 1.0)))
        return np.concatenate(cells) / g  # each cell has unit norm -> the whole has unit norm

    def _layout(self, small: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        thumb = cv2.resize(grey, self.layout_size, interpolation=cv2.INTER_AREA).astype(np.float64)
        return _unit(thumb.ravel() - thumb.mean())

    def embed(self, frame: np.ndarray) -> np.ndarray:
        small = cv2.resize(np.ascontiguousarray(frame), self.size, interpolation=cv2.INTER_AREA)
        colour = self._colour(cv2.cvtColor(small, cv2.COLOR_RGB2HSV_FULL))
        layout = self._layout(small)
        w = self.layout_weight
        return np.concatenate([np.sqrt(1.0 - w) * colour, np.sqrt(w) * layout])
