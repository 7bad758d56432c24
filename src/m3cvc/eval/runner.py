"""Run codecs over a dataset: preprocess once, code at every rate point, measure, store, resume."""

from __future__ import annotations

import itertools
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..config import PreprocessConfig
from ..errors import InputError
from .codecs import Clip, CodedVideo, EvalCodec, RatePoint, slug
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


class EvalRun:
    """One ``m3cvc eval`` invocation: a dataset, codecs, options."""

    def __init__(self, dataset: Dataset, codecs: Sequence[EvalCodec], opts: EvalOptions, log: Optional[Log] = None) -> None:
        names = [c.name for c in codecs]
        if len(set(names)) != len(names):
            raise InputError(f"codec listed twice: {', '.join(names)}")
        self.dataset, self.codecs, self.opts, self.log = dataset, list(codecs), opts, log or _stderr
        self.folder = opts.out / slug(dataset.name)
        self.suite: Optional[MetricSuite] = None
        self.files: dict[str, ResultsFile] = {}

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
        return present

    def _todo(self, seq_name: str) -> list[tuple[EvalCodec, RatePoint]]:
        assert self.suite is not None
        need = self.suite.available_names()
        return [
            (c, p) for c in self.codecs for p in c.rate_points() if not self.files[c.name].done(seq_name, p.label, need)
        ]

    def run(self) -> Path:
        dataset = self._check_dataset()
        self.suite = build_suite(self.opts, self.log)
        for codec in self.codecs:
            self.files[codec.name] = ResultsFile(self.folder / f"{slug(codec.name)}.json", self._header(codec), self.opts.force)
        from tqdm import tqdm

        todo = {s.name: self._todo(s.name) for s in dataset.sequences}
        total = sum(len(v) for v in todo.values())
        if total == 0:
            self.log(f"all {dataset.name} points already done (resume); nothing to run")
        with tqdm(total=total, desc=f"eval {dataset.name}", unit="point", disable=not self.opts.progress) as bar:
            for seq in dataset.sequences:
                if todo[seq.name]:
                    self._run_sequence(seq, todo[seq.name], bar)
        work = self.folder / "_work"
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
        return write_csv(self.folder)

    def _run_sequence(self, seq: Any, todo: list[tuple[EvalCodec, RatePoint]], bar: Any) -> None:
        workdir = self.folder / "_work" / slug(seq.name)
        clip = load_clip(seq, self.opts, workdir)
        meta = {
            "frames": len(clip.frames), "width": clip.width, "height": clip.height,
            "fps": float(clip.fps), "source": str(seq.path),
        }  # fmt: skip
        try:
            for codec, point in todo:
                bar.set_postfix_str(f"{seq.name} {codec.name} {point.label}")
                coded = codec.run(clip, point)
                values, per_frame = self.suite.measure(clip.frames, coded.frames)
                record = point_record(clip, point, coded, values, per_frame, self.suite.seconds)
                self.files[codec.name].add(seq.name, meta, record)
                bar.update(1)
        finally:
            if not self.opts.keep_streams:
                shutil.rmtree(workdir, ignore_errors=True)

