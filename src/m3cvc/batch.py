"""Batch coding of folders: ``m3cvc batch encode IN_DIR -o OUT_DIR`` (one ``.m3c`` per video, same
relative paths) and ``m3cvc batch decode IN_DIR -o OUT_DIR`` (one video per ``.m3c``), one task per
file on any executor, with a manifest.

``OUT_DIR/manifest.json`` (rewritten atomically as each file finishes)::

    {"kind": "m3cvc-batch", "operation": "encode", "settings": {...}, "settings_key": "3f2a...",
     "files": {"a/clip.mp4": {"output": "a/clip.m3c", "status": "ok", "input": {"size": 1048576, "mtime_ns": ...},
                              "bytes": 16547, "bpp": 0.0101, "frames": 80, "output_bytes": 16547,
                              "seconds": 1.2, "attempts": 1, "error": null}, ...},
     "summary": {"files": 2, "ok": 1, "failed": 1, "bytes": 16547, "seconds": 1.2}}

A file that fails is recorded with its one-line error and skipped; the others go on. Re-running the
same command resumes: a file is skipped when it was coded with the same settings from an input of the
same size and modification time, and its output is still there with the size written; everything
else (failed, changed, new, output deleted or altered) is coded again; ``--force`` redoes everything.
Inputs whose outputs would share a name (``a.mp4``, ``a.mkv``) keep their suffix (``a.mp4.m3c``). Outputs are written
atomically, so an interrupted run never leaves a partial ``.m3c``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .config import M3Config, to_dict
from .errors import InputError
from .fileio import atomic_path, file_stamp, folder_lock, write_text_atomic
from .video.files import find_files, find_videos

MANIFEST = "manifest.json"
DECODE_FORMATS = ("y4m", "mp4", "mkv")


@dataclass(frozen=True)
class EncodeJob:
    source: Path
    output: Path
    config: M3Config
    config_out: bool = True  # write OUTPUT.yaml, the config that re-creates OUTPUT
    protect: tuple[Path, ...] = ()  # files the sidecar must never replace (the run's --config)
    open_kwargs: tuple[tuple[str, Any], ...] = ()  # how to read the source (m3cvc.video.open_video's keywords)


@dataclass(frozen=True)
class DecodeJob:
    source: Path
    output: Path
    overrides: Any = None  # the decoding machine's DecodeOverrides (device, dtype, offload, model paths)


def encode_file(job: EncodeJob) -> dict[str, Any]:
    """Encode one video into ``job.output`` (atomically). The worker keeps one encoder per config."""
    from .executors import worker_cache
    from .pipeline import Encoder

    encoder = worker_cache(("encoder", json.dumps(to_dict(job.config), sort_keys=True)), lambda: Encoder(job.config))
    job.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(job.output, [job.source]) as tmp:
        result = encoder.encode(job.source, progress=False, **dict(job.open_kwargs))
        tmp.write_bytes(result.data)
    if job.config_out:
        from .config import reading_args, sidecar_path, sidecar_yaml
        from .fileio import write_text_atomic

        words = reading_args(dict(job.open_kwargs))
        write_text_atomic(sidecar_path(job.output), sidecar_yaml(job.config, job.source, job.output, words,
                                                                 result.sidecar_notes(job.config)),
                          [job.source, *job.protect])  # fmt: skip
    entry = {"bytes": len(result.data), "bpp": result.bpp, "frames": result.frames,
             "keyframes": len(result.keyframe_indices)}  # fmt: skip
    if result.rate_plan is not None:  # what rate control chose, as encode --json shows it
        from .ratecontrol import summary

        entry["rate_control"] = summary(result.rate_plan, len(result.data))
    return entry


def decode_file(job: DecodeJob) -> dict[str, Any]:
    """Decode one stream into ``job.output`` (y4m exact frames, or H.264 mp4 / mkv)."""
    from .fileio import check_input_file
    from .pipeline import Decoder
    from .video import open_writer

    data = check_input_file(job.source).read_bytes()
    decoded = Decoder(job.overrides, workers=1).open(data)  # the executor's workers already share the cores
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
        if self.path.exists() and not force:
            try:
                old = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if not (isinstance(old, dict) and old.get("kind") == "m3cvc-batch" and isinstance(old.get("files"), dict)):
                raise InputError(f"{self.path} is not a readable m3cvc batch manifest; move it away, or pass --force "
                                 "to start this folder anew")  # fmt: skip
            if old.get("operation") != operation:
                raise InputError(f"{self.path} records a batch {old.get('operation')}; write the {operation} into "
                                 "another folder")  # fmt: skip
            if old.get("settings_key") != self.key:
                raise InputError(f"{self.path} records a batch made with other settings; use another output "
                                 "folder or --force to redo it")  # fmt: skip
            self.data["files"] = dict(old["files"])

    def done(self, rel: str, source: Path, output: Path, reading: Optional[dict[str, Any]] = None) -> bool:
        """Coded before from this very input (same size and time), read the same way (``reading``: how the
        source is read, e.g. a raw file's layout; recorded per file), and the output is still what was
        written (same size and modification time; manifests from before ``output_stamp`` compare the size)."""
        entry = self.data["files"].get(rel)
        if not (isinstance(entry, dict) and entry.get("status") == "ok" and output.is_file()):
            return False
        if entry.get("reading", {}) != (reading or {}):
            return False
        if entry.get("input") != file_stamp(source) or entry.get("output_bytes") != output.stat().st_size:
            return False
        return entry.get("output_stamp", file_stamp(output)) == file_stamp(output)

    def keep_only(self, rels: set[str]) -> None:
        """Forget inputs that are no longer there."""
        self.data["files"] = {k: v for k, v in self.data["files"].items() if k in rels}

    def record(self, rel: str, entry: dict[str, Any]) -> None:
        self.data["files"][rel] = entry
        self.save()

    def summary(self) -> dict[str, Any]:
        files = self.data["files"].values()
        ok = [f for f in files if f["status"] == "ok"]
        return {"files": len(self.data["files"]), "ok": len(ok), "failed": sum(f["status"] == "failed" for f in files),
                "bytes": sum(f.get("bytes", 0) for f in ok), "seconds": round(sum(f.get("seconds", 0) for f in files), 3)}  # fmt: skip

    def save(self) -> None:
        self.data["files"] = dict(sorted(self.data["files"].items()))
        self.data["summary"] = self.summary()
        write_text_atomic(self.path, json.dumps(self.data, indent=1) + "\n")


def output_paths(sources: list[Path], in_dir: Path, out_dir: Path, suffix: str) -> dict[Path, Path]:
    """Each input's output: the same relative path with ``suffix``; inputs whose outputs would be the
    same file (``a.mp4`` and ``a.mkv``) keep their own suffix in the name (``a.mp4.m3c``, ``a.mkv.m3c``)."""
    plain = {src: out_dir / src.relative_to(in_dir).with_suffix(suffix) for src in sources}
    seen: dict[str, int] = {}
    for out in plain.values():
        seen[str(out).lower()] = seen.get(str(out).lower(), 0) + 1  # case-insensitive file systems too
    return {src: (out if seen[str(out).lower()] == 1 else out_dir / (src.relative_to(in_dir).as_posix() + suffix))
            for src, out in plain.items()}  # fmt: skip


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
    reading_for: Callable[[Path], dict[str, Any]] = lambda src: {},
    beside: Callable[[Path], list[Path]] = lambda out: [],
) -> BatchResult:  # fmt: skip
    from .executors import LocalExecutor, Task

    if out_dir.resolve() == in_dir.resolve() or in_dir.resolve() in out_dir.resolve().parents:
        raise InputError(f"the output folder {out_dir} must not be (inside) the input folder {in_dir}")
    executor = executor or LocalExecutor()
    executor.start()
    made = not out_dir.exists()
    held = contextlib.ExitStack()  # the folder's lock, until the manifest is final
    try:
        held.enter_context(folder_lock(out_dir, f"m3cvc batch {operation}"))  # makes out_dir
        manifest = Manifest(out_dir, operation, settings, force)
        manifest.keep_only({src.relative_to(in_dir).as_posix() for src in sources})
        foreign = [output_for(src) for src in sources
                   if src.relative_to(in_dir).as_posix() not in manifest.data["files"] and output_for(src).exists()]  # fmt: skip
        if foreign and not force:  # files this folder's batches never wrote: replacing them would lose them
            raise InputError(f"{foreign[0]} exists and was not written by a batch {operation} into {out_dir} "
                             f"({len(foreign)} such output(s)); move them away, or pass --force to replace them")
        manifest.save()  # from the start: a second run with other settings is refused even after an early stop
    except BaseException:
        held.close()
        if made:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    with held:
        tasks, skipped = [], 0
        for src in sources:
            rel = src.relative_to(in_dir).as_posix()
            out = output_for(src)
            if manifest.done(rel, src, out, reading_for(src)) and all(p.is_file() for p in beside(out)):
                skipped += 1
                continue
            tasks.append(Task(rel, fn, (job_for(src, out),), resources))
            if rel not in manifest.data["files"]:  # claimed before it runs: an output left by an interrupted run is ours
                manifest.data["files"][rel] = {"output": out.relative_to(out_dir).as_posix(), "status": "pending"}
        manifest.save()
        failed: list[tuple[str, str]] = []

        def store(o: Any) -> None:
            job = o.task.args[0]
            entry = {"output": job.output.relative_to(out_dir).as_posix(), "status": "ok" if o.ok else "failed",
                     "input": file_stamp(job.source), "seconds": round(o.seconds, 3), "attempts": o.attempts,
                     "error": o.error}  # fmt: skip
            if reading_for(job.source):
                entry["reading"] = reading_for(job.source)
            if o.ok:
                entry.update(o.value, output_bytes=job.output.stat().st_size, output_stamp=file_stamp(job.output))
            else:
                failed.append((o.task.key, o.error or ""))
            manifest.record(o.task.key, entry)

        start = time.perf_counter()
        executor.run(tasks, store, retries=retries, desc=f"batch {operation}", progress=progress)
        manifest.save()
        summary = dict(manifest.summary(), wall_seconds=round(time.perf_counter() - start, 3))
        return BatchResult(manifest.path, len(tasks), skipped, failed, summary)


def batch_encode(
    in_dir: Path, out_dir: Path, config: M3Config, executor: Any = None, force: bool = False, retries: int = 1,
    progress: bool = True, gpus_per_task: Optional[float] = None, config_out: bool = True,
    protect: tuple[Path, ...] = (), open_kwargs: Optional[dict[str, Any]] = None, log: Callable[[str], None] = print,
) -> BatchResult:  # fmt: skip
    """Encode every video under ``in_dir`` to ``out_dir/<same relative path>.m3c`` (and, with ``config_out``,
    its config beside it as ``.m3c.yaml``; never onto a file in ``protect``). ``open_kwargs``: how to read
    the sources (:func:`m3cvc.video.open_video`'s ``raw_size``, ``raw_fps``, ``raw_pix_fmt`` for the
    ``.yuv`` / ``.raw`` files, which are encoded only when ``raw_size`` is given; ``stream`` for the
    others); ``log``: where the note on raw files left out goes."""
    from .executors import LocalExecutor, model_devices, task_resources
    from .video.files import raw_files
    from .video.sources import RAW_SUFFIXES

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    given = {k: v for k, v in (open_kwargs or {}).items() if v is not None}
    raw_given = {k: v for k, v in given.items() if k.startswith("raw_")}
    if raw_given and not {"raw_size", "raw_fps"} <= set(raw_given):
        raise InputError("raw video needs both --input-size and --input-fps (and --input-pix-fmt if not yuv420p)")
    raws = raw_files(in_dir) if in_dir.is_dir() else []
    if raw_given and not raws:
        raise InputError(f"--input-size / --input-fps / --input-pix-fmt describe raw video ({' or '.join(RAW_SUFFIXES)} "
                         f"files); {in_dir} has none")  # fmt: skip
    if raws and not raw_given:
        names = ", ".join(str(p.relative_to(in_dir)) for p in raws[:3]) + (", ..." if len(raws) > 3 else "")
        log(f"note: {len(raws)} raw video file(s) ({names}) left out: give --input-size and --input-fps to encode them")
    if raw_given:
        raw_given = {**raw_given, "raw_pix_fmt": raw_given.get("raw_pix_fmt") or "yuv420p"}  # the default, spelt out
    sources = find_videos(in_dir, raw=bool(raw_given))

    def reading(src: Path) -> tuple[tuple[str, Any], ...]:  # raw settings for raw files, the stream for the others
        if src.suffix.lower() in RAW_SUFFIXES:
            return tuple(sorted(raw_given.items()))
        return (("stream", given["stream"]),) if "stream" in given else ()

    def recorded(src: Path) -> dict[str, Any]:  # as the manifest's JSON holds it
        return {k: list(v) if isinstance(v, tuple) else v for k, v in reading(src)}
    executor = executor or LocalExecutor()
    outputs = output_paths(sources, in_dir, out_dir, ".m3c")
    from .config import sidecar_path

    if config_out and protect:
        guarded = {Path(p).resolve() for p in protect}
        for out in outputs.values():
            if sidecar_path(out).resolve() in guarded:
                raise InputError(f"{sidecar_path(out)} is this run's --config and would be replaced by the config "
                                 f"of {out}; move it or pass --no-config-out")  # fmt: skip
    return _run(
        "encode", sources, in_dir, out_dir, outputs.__getitem__,
        encode_file, lambda src, out: EncodeJob(src, out, config, config_out, tuple(protect), reading(src)),
        {"config": to_dict(config)}, task_resources(model_devices(config), executor, gpus_per_task), executor, force,
        retries, progress, recorded, lambda out: [sidecar_path(out)] if config_out else [],
    )  # fmt: skip


def batch_decode(
    in_dir: Path, out_dir: Path, fmt: str = "y4m", executor: Any = None, force: bool = False, retries: int = 1,
    progress: bool = True, gpus_per_task: Optional[float] = None, overrides: Any = None,
) -> BatchResult:  # fmt: skip
    """Decode every ``.m3c`` under ``in_dir`` to ``out_dir/<same relative path>.<fmt>``. Streams carry
    their backends; model-backed ones take ``gpus_per_task`` GPUs (default: none); ``overrides``: the
    decoding machine's :class:`~m3cvc.pipeline.DecodeOverrides`."""
    from .executors import Resources

    if fmt not in DECODE_FORMATS:
        raise InputError(f"unknown --format {fmt!r}; choose one of: {', '.join(DECODE_FORMATS)}")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    sources = find_files(in_dir, (".m3c",), "m3cvc streams")
    outputs = output_paths(sources, in_dir, out_dir, f".{fmt}")
    return _run(
        "decode", sources, in_dir, out_dir, outputs.__getitem__,
        decode_file, lambda src, out: DecodeJob(src, out, overrides), {"format": fmt},
        Resources(1.0, float(gpus_per_task or 0.0)), executor, force,
        retries, progress,
    )  # fmt: skip
