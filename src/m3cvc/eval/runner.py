"""Run codecs over a dataset: preprocess once, code at every rate point, measure, store, resume."""

from __future__ import annotations

import itertools
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..config import PreprocessConfig
from ..errors import InputError, M3cvcError
from ..fileio import file_stamp
from .codecs import Clip, CodedVideo, EvalCodec, RatePoint, slug, work_name
from .datasets import Dataset
from .metrics import METRIC_NAMES, MetricOptions, MetricSuite
from .results import SCHEMA, ResultsFile, write_csv

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass
class EvalOptions:
    out: Path
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    max_frames: Optional[int] = None
    metrics: Sequence[str] = METRIC_NAMES
    metric_options: MetricOptions = field(default_factory=MetricOptions)
    force: bool = False
    skip_missing: bool = False
    keep_streams: bool = False
    progress: bool = True


def build_suite(opts: EvalOptions, log: Log = _stderr) -> MetricSuite:
    """The requested metrics, loaded once for the whole run; each unavailable one is announced once
    (before any coding starts) and stored as null."""
    suite = MetricSuite(opts.metrics, opts.metric_options)
    for name, reason in suite.unavailable().items():
        log(f"note: {name} unavailable ({reason}); it is reported as null")
    return suite


def load_clip(seq: Any, opts: EvalOptions, workdir: Path) -> Clip:
    """The preprocessed frames of a sequence (512x320, 8 fps by default), cut to ``max_frames``."""
    from ..video import open_video, preprocess

    with open_video(seq.path, **seq.open_kwargs()) as source:
        video = preprocess(source, opts.preprocess)
        frames = list(itertools.islice(iter(video), opts.max_frames))
        fps = video.fps
    if not frames:
        raise InputError(f"{seq.path} has no frames")
    return Clip(seq.name, frames, fps, workdir)


def point_record(
    clip: Clip, point: RatePoint, coded: CodedVideo, metrics: dict[str, Any], per_frame: dict[str, list[float]],
    measure_s: Optional[dict[str, float]] = None,
) -> dict[str, Any]:
    return {
        "point": point.label,
        "params": point.params,
        "bytes": coded.nbytes,
        "bpp": 8.0 * coded.nbytes / clip.pixels,
        "encode_s": round(coded.encode_s, 4),
        "decode_s": round(coded.decode_s, 4),
        "measure_s": measure_s or {},
        "metrics": metrics,
        "per_frame": per_frame,
        "info": coded.info,
    }


@dataclass(frozen=True)
class PointJob:
    """One eval task: a codec at one rate point on one sequence (what travels to a worker)."""

    seq: Any
    codec: EvalCodec
    point: RatePoint
    opts: EvalOptions
    workdir: Path


def suite_key(opts: EvalOptions) -> tuple:
    return ("suite", tuple(opts.metrics), repr(opts.metric_options))


def run_point(job: PointJob) -> tuple[dict[str, Any], dict[str, Any]]:
    """Code, decode and measure one point in a worker: ``(sequence meta, point record)``. The worker
    keeps the metric models and the latest preprocessed clip, so a sequence is read once per worker."""
    from ..executors import worker_cache

    opts = job.opts
    suite = worker_cache(suite_key(opts), lambda: MetricSuite(opts.metrics, opts.metric_options))
    key = (job.seq, opts.preprocess, opts.max_frames, job.workdir)
    clip = worker_cache(key, lambda: load_clip(job.seq, opts, job.workdir), slot="clip")
    coded = job.codec.run(clip, job.point)
    values, per_frame = suite.measure(clip.frames, coded.frames)
    meta = {
        "frames": len(clip.frames), "width": clip.width, "height": clip.height,
        "fps": float(clip.fps), "source": str(job.seq.path.resolve()), "source_stamp": file_stamp(job.seq.path),
    }  # fmt: skip
    return meta, point_record(clip, job.point, coded, values, per_frame, suite.seconds)


class EvalRun:
    """One ``m3cvc eval`` invocation: a dataset, codecs, options; its (sequence, codec, rate point)
    tasks run on an executor (default: here, in order) and are stored as each one finishes."""

    def __init__(
        self, dataset: Dataset, codecs: Sequence[EvalCodec], opts: EvalOptions, log: Optional[Log] = None,
        executor: Any = None, retries: int = 1, gpus_per_task: Optional[float] = None,
    ) -> None:  # fmt: skip
        names = [c.name for c in codecs]
        if len(set(names)) != len(names):
            raise InputError(f"codec listed twice: {', '.join(names)}")
        self.dataset, self.codecs, self.opts, self.log = dataset, list(codecs), opts, log or _stderr
        self.executor, self.retries, self.gpus_per_task = executor, retries, gpus_per_task
        self.folder = opts.out / slug(dataset.name)
        self.suite: Optional[MetricSuite] = None
        self.files: dict[str, ResultsFile] = {}
        self.failures: list[tuple[str, str]] = []  # (task key, error) of points that failed for good

    def _header(self, codec: EvalCodec) -> dict[str, Any]:
        pp = self.opts.preprocess
        assert self.suite is not None
        notes = {name: f"unavailable: {reason}" for name, reason in self.suite.unavailable().items()}
        return {
            "schema": SCHEMA,
            "codec": dict(codec.describe(), name=codec.name, settings_key=codec.settings_key()),
            "dataset": {"name": self.dataset.name, "source": self.dataset.source},
            "preprocess": {
                "width": pp.width, "height": pp.height, "fps": pp.fps,
                "keep_size": pp.keep_size, "keep_fps": pp.keep_fps, "max_frames": self.opts.max_frames,
            },  # fmt: skip
            "metrics": list(self.opts.metrics),
            "metric_notes": notes,
            "metric_info": self.suite.info(),
        }

    def _check_dataset(self) -> Dataset:
        missing = self.dataset.missing()
        if missing and not self.opts.skip_missing:
            listed = ", ".join(str(s.path) for s in missing[:2]) + (", ..." if len(missing) > 2 else "")
            raise InputError(
                f"dataset {self.dataset.name}: {len(missing)} of {len(self.dataset.sequences)} files missing "
                f"({listed}); fix the paths (--data-root) or pass --skip-missing"
            )
        for s in missing:
            self.log(f"note: skipping missing {s.name} ({s.path})")
        present = self.dataset.present()
        if not present.sequences:
            raise InputError(f"dataset {self.dataset.name}: no sequence files found")
        from ..video import open_video
        from ..video.sources import RAW_SUFFIXES

        for seq in present.sequences:  # raw files: their definition (size, rate, pixel format) checked before any work
            if seq.path.suffix.lower() in RAW_SUFFIXES:
                try:
                    open_video(seq.path, **seq.open_kwargs()).close()
                except M3cvcError as exc:
                    raise InputError(f"dataset {self.dataset.name}, sequence {seq.name}: {exc}") from None
        return present

    def _forget_if_changed(self, seq: Any) -> None:
        """Points stored from another file than the sequence's now (another path, or the file changed since:
        size and modification time) are dropped, so that they are measured again instead of resumed."""
        now, path = file_stamp(seq.path), str(seq.path.resolve())
        for file in self.files.values():
            stored = file.data["sequences"].get(seq.name)
            if not stored:
                continue
            moved = Path(stored.get("source", path)).is_absolute() and stored.get("source") != path
            if moved or stored.get("source_stamp", now) != now:
                file.forget(seq.name)
                self.log(f"note: {seq.name}: its source {'is another file' if moved else 'changed'} since "
                         f"{file.path.name} was written; its points are measured again")

    def _todo(self, seq_name: str) -> list[tuple[EvalCodec, RatePoint]]:
        assert self.suite is not None
        need = self.suite.available_names()
        return [
            (c, p) for c in self.codecs for p in c.rate_points() if not self.files[c.name].done(seq_name, p.label, need)
        ]

    def _resources(self, codec: EvalCodec, executor: Any) -> Any:
        from ..executors import model_devices, task_resources

        devices = [self.opts.metric_options.device] + (model_devices(codec.config) if hasattr(codec, "config") else [])
        return task_resources(devices, executor, self.gpus_per_task)

    def run(self) -> Path:
        """Code and measure every point not stored yet; the CSV of the results. Another run writing to the
        same folder meanwhile is refused (InputError) rather than interleaved with this one."""
        from ..fileio import folder_lock

        with folder_lock(self.folder, "m3cvc eval"):
            return self._run()

    def _run(self) -> Path:
        from ..executors import LocalExecutor, Task, clear_worker_cache, worker_cache

        dataset = self._check_dataset()
        self.suite = build_suite(self.opts, self.log)
        for codec in self.codecs:
            self.files[codec.name] = ResultsFile(self.folder / f"{slug(codec.name)}.json", self._header(codec), self.opts.force)
        executor = self.executor or LocalExecutor()
        local = isinstance(executor, LocalExecutor)
        if local:  # tasks run in this process: they use the suite loaded above
            worker_cache(suite_key(self.opts), lambda: self.suite)
        tasks, left = [], {}
        for seq in dataset.sequences:
            self._forget_if_changed(seq)
            workdir = self.folder / "_work" / work_name(seq.name)
            todo = self._todo(seq.name)
            left[seq.name] = len(todo)
            for codec, point in todo:
                job = PointJob(seq, codec, point, self.opts, workdir)
                tasks.append(Task(f"{seq.name}/{codec.name}/{point.label}", run_point, (job,), self._resources(codec, executor)))
        if not tasks:
            self.log(f"all {dataset.name} points already done (resume); nothing to run")

        def store(outcome: Any) -> None:
            job = outcome.task.args[0]
            if outcome.ok:
                meta, record = outcome.value
                self.files[job.codec.name].add(job.seq.name, meta, record)
            else:
                self.failures.append((outcome.task.key, outcome.error))
                self.log(f"failed: {outcome.task.key}: {outcome.error}")
            left[job.seq.name] -= 1
            if left[job.seq.name] == 0 and not self.opts.keep_streams:
                shutil.rmtree(job.workdir, ignore_errors=True)

        try:
            executor.run(tasks, store, retries=self.retries, desc=f"eval {dataset.name}", progress=self.opts.progress)
        finally:
            if local:
                clear_worker_cache()  # the clip and models the tasks kept here
        work = self.folder / "_work"
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
        return write_csv(self.folder)
