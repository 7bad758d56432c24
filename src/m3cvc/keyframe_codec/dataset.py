"""Keyframe training sets (paper III-A): image + text pairs with a JSON-lines manifest.

``build_dataset`` preprocesses every video of a folder (crop/resize/frame rate as configured),
selects keyframes by semantic difference only (lambda2 = 0), describes each keyframe with the
configured describer, and writes::

    DATASET_DIR/images/<video>_<frame>.png
    DATASET_DIR/manifest.jsonl   {"image": "images/...", "text": "...", "video": "...", "frame": n}

``load_dataset`` reads it back as RGB uint8 arrays and texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from ..config import M3Config
from ..errors import InputError
from ..fileio import write_bytes_atomic, write_text_atomic

MANIFEST = "manifest.jsonl"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".y4m", ".mpg", ".mpeg", ".ts", ".flv")


@dataclass(frozen=True)
class Sample:
    image: str  # path relative to the dataset folder
    text: str
    video: str
    frame: int


def find_videos(folder: Union[str, Path]) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of videos")
    videos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) found in {folder}")
    return videos


def semantic_only(cfg: M3Config) -> M3Config:
    """The paper's training keyframes: semantic difference only (lambda2 = 0, no motion backend)."""
    return replace(cfg, keyframes=replace(cfg.keyframes, selector="composite", motion="none", lambda2=0.0))


def _png(frame: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def video_keyframes(path: Path, cfg: M3Config, selector, describer) -> Iterator[tuple[int, np.ndarray, str]]:
    """(frame index, RGB frame, description) of each keyframe of one video."""
    from ..video import open_video, preprocess

    with open_video(path) as source:
        frames = list(preprocess(source, cfg.preprocess))
    previous: Optional[np.ndarray] = None
    for k, index in enumerate(selector.select(frames)):
        frame = frames[index]
        yield index, frame, describer.describe_keyframe(k, frame, previous)
        previous = frame


def build_dataset(videos_dir: Union[str, Path], out_dir: Union[str, Path], cfg: M3Config, progress: bool = True) -> list[Sample]:
    from tqdm.auto import tqdm

    from ..describe import build_describer
    from ..keyframes import build_selector

    videos = find_videos(videos_dir)
    out = Path(out_dir)
    if out.resolve() == Path(videos_dir).resolve():
        raise InputError("the dataset folder must not be the videos folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    cfg = semantic_only(cfg)
    selector = build_selector(cfg.keyframes)
    describer = build_describer(cfg.describe)
    samples: list[Sample] = []
    try:
        for path in tqdm(videos, desc="dataset", unit="video", disable=not progress):
            name = path.relative_to(videos_dir).with_suffix("").as_posix().replace("/", "_")
            for index, frame, text in video_keyframes(path, cfg, selector, describer):
                rel = f"images/{name}_{index:06d}.png"
                write_bytes_atomic(out / rel, _png(frame))
                samples.append(Sample(rel, text, path.relative_to(videos_dir).as_posix(), index))
    finally:
        describer.close()
    manifest = "".join(json.dumps(s.__dict__, ensure_ascii=False) + "\n" for s in samples)
    write_text_atomic(out / MANIFEST, manifest)
    return samples


def read_manifest(folder: Union[str, Path]) -> list[Sample]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder} is not a keyframe dataset (no {MANIFEST}; build one with `m3cvc dataset build`)")
    samples = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            samples.append(Sample(str(raw["image"]), str(raw.get("text", "")), str(raw.get("video", "")),
                                  int(raw.get("frame", 0))))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise InputError(f"{path}:{n}: not a manifest entry") from None
    if not samples:
        raise InputError(f"{path} lists no images")
    return samples


def load_dataset(folder: Union[str, Path], limit: Optional[int] = None) -> tuple[list[np.ndarray], list[str]]:
    """RGB uint8 images and their texts (all images must share one size)."""
    from PIL import Image

    samples = read_manifest(folder)[:limit]
    images, texts = [], []
    for s in samples:
        try:
            with Image.open(Path(folder) / s.image) as im:
                images.append(np.asarray(im.convert("RGB")))
        except OSError as exc:
            raise InputError(f"cannot read dataset image {s.image}: {exc}") from None
        texts.append(s.text)
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise InputError(f"dataset images differ in size ({', '.join(f'{w}x{h}' for h, w, _ in sorted(sizes))})")
    return images, texts
