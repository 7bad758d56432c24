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
from collections.abc import Sequence
from typing import Any, Iterator, Optional, Union

import numpy as np

from ..config import M3Config
from ..errors import InputError
from ..fileio import write_bytes_atomic, write_text_atomic
from ..video.files import find_videos

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class Sample:
    image: str  # path relative to the dataset folder
    text: str
    video: str
    frame: int


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


@dataclass(frozen=True)
class DatasetJob:
    """One dataset-build task: the keyframes of one video (what travels to a worker)."""

    path: Path
    rel: str  # the video's path relative to the videos folder
    out: Path
    config: M3Config


def dataset_video(job: DatasetJob) -> list[dict]:
    """Select, describe and write the keyframes of one video in a worker; the worker keeps one
    selector and describer (their models) per config."""
    from ..config import to_dict
    from ..describe import build_describer
    from ..executors import worker_cache
    from ..keyframes import build_selector

    key = json.dumps(to_dict(job.config), sort_keys=True)
    selector = worker_cache(("selector", key), lambda: build_selector(job.config.keyframes))
    describer = worker_cache(("describer", key), lambda: build_describer(job.config.describe))
    samples = []
    name = image_stem(job.rel)
    for index, frame, text in video_keyframes(job.path, job.config, selector, describer):
        rel = f"images/{name}_{index:06d}.png"
        write_bytes_atomic(job.out / rel, _png(frame))
        samples.append(Sample(rel, text, job.rel, index).__dict__)
    return samples


def image_stem(rel: str) -> str:
    """The images' name stem of a video: its path flattened, plus a hash of the path, so that
    ``a.mp4`` / ``a.mkv`` or ``x/y_z.mp4`` / ``x_y/z.mp4`` never share images."""
    import hashlib

    flat = Path(rel).with_suffix("").as_posix().replace("/", "_")
    return f"{flat}_{hashlib.sha256(rel.encode()).hexdigest()[:8]}"


@dataclass
class BuildResult:
    samples: list[Sample]
    failed: list[tuple[str, str]]  # (video, one-line error)
    skipped: int  # videos done by an earlier run (resume)


def build_dataset(
    videos_dir: Union[str, Path], out_dir: Union[str, Path], cfg: M3Config, progress: bool = True,
    executor: Any = None, retries: int = 1, gpus_per_task: Optional[float] = None, force: bool = False,
) -> BuildResult:  # fmt: skip
    """Keyframes of every video under ``videos_dir`` as image + text pairs in ``out_dir``, one task per
    video on ``executor``. Each video's samples are stored (``out_dir/.parts/``) as it finishes, so a
    rerun resumes; the manifest lists every video's samples in video order. A video that fails is
    reported in ``failed`` and left out; the others go on."""
    import hashlib

    from ..config import to_dict
    from ..executors import LocalExecutor, Task, clear_worker_cache, model_devices, task_resources

    videos_dir = Path(videos_dir)
    videos = find_videos(videos_dir)
    out = Path(out_dir)
    if out.resolve() == videos_dir.resolve() or videos_dir.resolve() in out.resolve().parents:
        raise InputError(f"the dataset folder {out} must not be (inside) the videos folder {videos_dir}")
    cfg = semantic_only(cfg)
    key = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]
    parts = out / ".parts"
    settings = parts / "settings.json"
    if settings.is_file() and not force:
        try:
            old = json.loads(settings.read_text(encoding="utf-8")).get("settings_key")
        except (OSError, ValueError, AttributeError):
            old = None
        if old != key:
            raise InputError(f"{out} holds a dataset built with other settings; use another folder, or --force "
                             "to build it anew (its images are replaced)")  # fmt: skip
    if force and out.is_dir():  # anew: no images of the old settings left behind
        import shutil

        shutil.rmtree(out / "images", ignore_errors=True)
        shutil.rmtree(parts, ignore_errors=True)
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
        parts.mkdir(exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot make the dataset folder {out}: {exc.strerror or exc}") from None
    write_text_atomic(settings, json.dumps({"settings_key": key, "config": to_dict(cfg)}))
    executor = executor or LocalExecutor()
    resources = task_resources(model_devices(cfg), executor, gpus_per_task)

    def part_of(rel: str) -> Path:
        return parts / (hashlib.sha256(rel.encode()).hexdigest()[:20] + ".json")

    def stored(rel: str) -> Optional[list[dict]]:
        try:
            data = json.loads(part_of(rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data["samples"] if data.get("settings_key") == key and data.get("video") == rel else None

    tasks, skipped = [], 0
    for path in videos:
        rel = path.relative_to(videos_dir).as_posix()
        if not force and stored(rel) is not None:
            skipped += 1
            continue
        tasks.append(Task(rel, dataset_video, (DatasetJob(path, rel, out, cfg),), resources))
    failed: list[tuple[str, str]] = []

    def store(o: Any) -> None:
        if o.ok:
            write_text_atomic(part_of(o.task.key), json.dumps({"settings_key": key, "video": o.task.key, "samples": o.value}))
        else:
            failed.append((o.task.key, o.error or ""))

    try:
        executor.run(tasks, store, retries=retries, desc="dataset", progress=progress)
    finally:
        if isinstance(executor, LocalExecutor):
            clear_worker_cache()  # closes this process's describer
    samples = []
    for path in videos:
        for s in stored(path.relative_to(videos_dir).as_posix()) or []:
            samples.append(Sample(**s))
    manifest = "".join(json.dumps(s.__dict__, ensure_ascii=False) + "\n" for s in samples)
    write_text_atomic(out / MANIFEST, manifest)
    return BuildResult(samples, failed, skipped)


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


class KeyframeImages(Sequence):
    """A dataset's images as a lazy sequence: ``images[i]`` reads one PNG (RGB uint8 ``(H, W, 3)``) when it
    is asked for, so training sets far larger than memory can be streamed. ``texts`` holds the manifest's
    texts; ``key`` identifies the set (manifest bytes + limit) for latent caches. Every image must have
    the first image's size (InputError naming the image otherwise)."""

    def __init__(self, folder: Union[str, Path], limit: Optional[int] = None) -> None:
        import hashlib

        if limit is not None and limit < 1:
            raise InputError(f"--limit must be at least 1, got {limit}")
        self.folder = Path(folder)
        self.samples = read_manifest(folder)[:limit]
        self.texts = [s.text for s in self.samples]
        digest = hashlib.sha256((self.folder / MANIFEST).read_bytes())
        for sample in self.samples:  # an image replaced in place changes the key too
            try:
                st = (self.folder / sample.image).stat()
                digest.update(f"{sample.image}:{st.st_size}:{st.st_mtime_ns}".encode())
            except OSError:
                digest.update(f"{sample.image}:missing".encode())
        self.key = f"{digest.hexdigest()[:16]}:{len(self.samples)}"
        self._shape: Optional[tuple[int, ...]] = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        from PIL import Image

        sample = self.samples[index]
        try:
            with Image.open(self.folder / sample.image) as im:
                image = np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise InputError(f"cannot read dataset image {sample.image}: {exc}") from None
        if self._shape is None:
            self._shape = image.shape if index == 0 else self[0].shape
        if image.shape != self._shape:
            raise InputError(f"dataset images differ in size: {sample.image} is {image.shape[1]}x{image.shape[0]}, "
                             f"the first is {self._shape[1]}x{self._shape[0]}")  # fmt: skip
        return image


def load_dataset(folder: Union[str, Path], limit: Optional[int] = None) -> tuple[list[np.ndarray], list[str]]:
    """RGB uint8 images and their texts, all in memory (all images must share one size); training
    streams them with :class:`KeyframeImages` instead."""
    images = KeyframeImages(folder, limit)
    return [images[i] for i in range(len(images))], images.texts
