"""Batch coding of folders: ``m3cvc batch encode IN_DIR -o OUT_DIR`` (one ``.m3c`` per video, same
relative paths) and ``m3cvc batch decode IN_DIR -o OUT_DIR`` (one video per ``.m3c``), one task per
file on any executor, with a manifest.

``OUT_DIR/manifest.json`` (rewritten atomically as each file finishes)::

    {"kind": "m3cvc-batch", "operation": "encode", "settings": {...}, "settings_key": "3f2a...",
     "files": {"a/clip.mp4": {"output": "a/clip.m3c", "status": "ok", "bytes": 16547, "bpp": 0.0101,
                              "frames": 80, "seconds": 1.2, "attempts": 1, "error": null}, ...},
     "summary": {"files": 2, "ok": 1, "failed": 1, "bytes": 16547, "seconds": 1.2}}

A file that fails is recorded with its one-line error and skipped; the others go on. Re-running the
same command resumes: files already coded with the same settings (and whose output is still there)
are skipped, failed ones are tried again; ``--force`` redoes everything. Outputs are written
atomically, so an interrupted run never leaves a partial ``.m3c``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .config import M3Config, to_dict
from .errors import InputError
from .fileio import atomic_path, write_text_atomic
from .video.files import find_files, find_videos

MANIFEST = "manifest.json"
DECODE_FORMATS = ("y4m", "mp4", "mkv")


@dataclass(frozen=True)
class EncodeJob:
    source: Path
    output: Path
    config: M3Config


@dataclass(frozen=True)
class DecodeJob:
    source: Path
    output: Path


def encode_file(job: EncodeJob) -> dict[str, Any]:
    """Encode one video into ``job.output`` (atomically). The worker keeps one encoder per config."""
    from .executors import worker_cache
    from .pipeline import Encoder

    encoder = worker_cache(("encoder", json.dumps(to_dict(job.config), sort_keys=True)), lambda: Encoder(job.config))
    job.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(job.output, [job.source]) as tmp:
        result = encoder.encode(job.source, progress=False)
        tmp.write_bytes(result.data)
    return {"bytes": len(result.data), "bpp": result.bpp, "frames": result.frames,
            "keyframes": len(result.keyframe_indices)}  # fmt: skip


def decode_file(job: DecodeJob) -> dict[str, Any]:
    """Decode one stream into ``job.output`` (y4m exact frames, or H.264 mp4 / mkv)."""
    from .fileio import check_input_file
    from .pipeline import Decoder
    from .video import open_writer

    data = check_input_file(job.source).read_bytes()
    decoded = Decoder().open(data)
    h = decoded.header
    job.output.parent.mkdir(parents=True, exist_ok=True)
    with open_writer(job.output, h.width, h.height, h.fps, [job.source]) as writer:
        for frame in decoded:
            writer.write(frame)
    return {"bytes": len(data), "bpp": 8.0 * len(data) / (h.frames * h.width * h.height), "frames": h.frames}


class Manifest:
    """``OUT_DIR/manifest.json``: per input file its output, status, numbers and error."""

    def __init__(self, folder: Path, operation: str, settings: dict[str, Any], force: bool) -> None:
        self.path = folder / MANIFEST
        self.key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.data: dict[str, Any] = {"kind": "m3cvc-batch", "operation": operation, "settings": settings,
                                     "settings_key": self.key, "files": {}}  # fmt: skip
        if self.path.is_file() and not force:
            try:
                old = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = {}
            if old.get("kind") == "m3cvc-batch" and old.get("operation") == operation:
                if old.get("settings_key") != self.key:
                    raise InputError(f"{self.path} records a batch made with other settings; use another output "
                                     "folder or --force to redo it")  # fmt: skip
                self.data["files"] = dict(old.get("files", {}))

    def done(self, rel: str, output: Path) -> bool:
        entry = self.data["files"].get(rel)
        return bool(entry and entry.get("status") == "ok" and output.is_file())

    def record(self, rel: str, entry: dict[str, Any]) -> None:
        self.data["files"][rel] = entry
        self.save()

    def summary(self) -> dict[str, Any]:
        files = self.data["files"].values()
        ok = [f for f in files if f["status"] == "ok"]
        return {"files": len(self.data["files"]), "ok": len(ok), "failed": len(self.data["files"]) - len(ok),
                "bytes": sum(f.get("bytes", 0) for f in ok), "seconds": round(sum(f.get("seconds", 0) for f in files), 3)}  # fmt: skip

    def save(self) -> None:
        self.data["files"] = dict(sorted(self.data["files"].items()))
        self.data["summary"] = self.summary()
        write_text_atomic(self.path, json.dumps(self.data, indent=1) + "\n")


@dataclass
class BatchResult:
    manifest: Path
    ran: int
    skipped: int
    failed: list[tuple[str, str]]  # (input relative path, error)
    summary: dict[str, Any]


def _run(
    operation: str, sources: list[Path], in_dir: Path, out_dir: Path, output_for: Callable[[Path], Path],
    fn: Callable[[Any], dict[str, Any]], job_for: Callable[[Path, Path], Any], settings: dict[str, Any],
    resources: Any, executor: Any, force: bool, retries: int, progress: bool,
) -> BatchResult:  # fmt: skip
    from .executors import LocalExecutor, Task

    if out_dir.resolve() == in_dir.resolve() or in_dir.resolve() in out_dir.resolve().parents:
        raise InputError(f"the output folder {out_dir} must not be (inside) the input folder {in_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir, operation, settings, force)
    tasks, skipped = [], 0
    for src in sources:
        rel = src.relative_to(in_dir).as_posix()
        out = output_for(src)
        if manifest.done(rel, out):
            skipped += 1
            continue
        tasks.append(Task(rel, fn, (job_for(src, out),), resources))
    failed: list[tuple[str, str]] = []

    def store(o: Any) -> None:
        job = o.task.args[0]
        entry = {"output": job.output.relative_to(out_dir).as_posix(), "status": "ok" if o.ok else "failed",
                 "seconds": round(o.seconds, 3), "attempts": o.attempts, "error": o.error}  # fmt: skip
        if o.ok:
            entry.update(o.value)
        else:
            failed.append((o.task.key, o.error or ""))
        manifest.record(o.task.key, entry)

    start = time.perf_counter()
    (executor or LocalExecutor()).run(tasks, store, retries=retries, desc=f"batch {operation}", progress=progress)
    manifest.save()
    summary = dict(manifest.summary(), wall_seconds=round(time.perf_counter() - start, 3))
    return BatchResult(manifest.path, len(tasks), skipped, failed, summary)


def batch_encode(
    in_dir: Path, out_dir: Path, config: M3Config, executor: Any = None, force: bool = False, retries: int = 1,
    progress: bool = True, gpus_per_task: Optional[float] = None,
) -> BatchResult:  # fmt: skip
    """Encode every video under ``in_dir`` to ``out_dir/<same relative path>.m3c``."""
    from .executors import LocalExecutor, model_devices, task_resources

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    sources = find_videos(in_dir)
    executor = executor or LocalExecutor()
    return _run(
        "encode", sources, in_dir, out_dir, lambda src: out_dir / src.relative_to(in_dir).with_suffix(".m3c"),
        encode_file, lambda src, out: EncodeJob(src, out, config), {"config": to_dict(config)},
        task_resources(model_devices(config), executor, gpus_per_task), executor, force, retries, progress,
    )  # fmt: skip


def batch_decode(
    in_dir: Path, out_dir: Path, fmt: str = "y4m", executor: Any = None, force: bool = False, retries: int = 1,
    progress: bool = True, gpus_per_task: Optional[float] = None,
) -> BatchResult:  # fmt: skip
    """Decode every ``.m3c`` under ``in_dir`` to ``out_dir/<same relative path>.<fmt>``. Streams carry
    their backends; model-backed ones take ``gpus_per_task`` GPUs (default: none)."""
    from .executors import Resources

    if fmt not in DECODE_FORMATS:
        raise InputError(f"unknown --format {fmt!r}; choose one of: {', '.join(DECODE_FORMATS)}")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    sources = find_files(in_dir, (".m3c",), "m3cvc streams")
    return _run(
        "decode", sources, in_dir, out_dir, lambda src: out_dir / src.relative_to(in_dir).with_suffix(f".{fmt}"),
        decode_file, DecodeJob, {"format": fmt}, Resources(1.0, float(gpus_per_task or 0.0)), executor, force,
        retries, progress,
    )  # fmt: skip
