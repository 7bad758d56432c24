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
from .metrics import SequenceAccumulator
from .perceptual import ClipSim, Lpips, PerceptualMetric
from .results import METRICS, ResultsFile, write_csv

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass
class EvalOptions:
    out: Path
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    max_frames: Optional[int] = None
    metrics: Sequence[str] = METRICS
    force: bool = False
    skip_missing: bool = False
    keep_streams: bool = False
    progress: bool = True
    lpips_net: str = "alex"
    lpips_backbone: Optional[str] = None
    clip_model: str = "openai/clip-vit-base-patch32"
    device: str = "cpu"


def build_perceptual(opts: EvalOptions, log: Log = _stderr) -> list[PerceptualMetric]:
    """The requested learned metrics; each unavailable one is announced once and stays null."""
    metrics: list[PerceptualMetric] = []
    if "lpips" in opts.metrics:
        metrics.append(Lpips(opts.lpips_net, opts.lpips_backbone, opts.device))
    if "clip_sim" in opts.metrics:
        metrics.append(ClipSim(opts.clip_model, opts.device))
    for m in metrics:
        if not m.available():
            log(f"note: {m.name} unavailable ({m.reason}); it is reported as null")
    return metrics


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


def measure(clip: Clip, coded: CodedVideo, perceptual: Sequence[PerceptualMetric], opts: EvalOptions) -> dict[str, Any]:
    acc = SequenceAccumulator(with_ms_ssim="ms_ssim" in opts.metrics)
    for ref, dec in zip(clip.frames, coded.frames):
        acc.update(ref, dec)
    values: dict[str, Any] = acc.result()
    values.pop("mse", None)
    if "psnr" not in opts.metrics:
        values.pop("psnr", None)
        values.pop("psnr_seq", None)
    for m in perceptual:
        values[m.name] = m.measure(clip.frames, coded.frames)
    return values


def point_record(clip: Clip, point: RatePoint, coded: CodedVideo, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "point": point.label,
        "params": point.params,
        "bytes": coded.nbytes,
        "bpp": 8.0 * coded.nbytes / clip.pixels,
        "encode_s": round(coded.encode_s, 4),
        "decode_s": round(coded.decode_s, 4),
        "metrics": metrics,
        "info": coded.info,
    }


class EvalRun:
    """One ``m3cvc eval`` invocation: a dataset, codecs, options."""

    def __init__(self, dataset: Dataset, codecs: Sequence[EvalCodec], opts: EvalOptions, log: Log = _stderr) -> None:
        names = [c.name for c in codecs]
        if len(set(names)) != len(names):
            raise InputError(f"codec listed twice: {', '.join(names)}")
        self.dataset, self.codecs, self.opts, self.log = dataset, list(codecs), opts, log
        self.folder = opts.out / slug(dataset.name)
        self.perceptual: list[PerceptualMetric] = []
        self.files: dict[str, ResultsFile] = {}

    def _header(self, codec: EvalCodec) -> dict[str, Any]:
        pp = self.opts.preprocess
        notes = {m.name: f"unavailable: {m.reason}" for m in self.perceptual if not m.available()}
        return {
            "schema": "m3cvc-eval/1",
            "codec": dict(codec.describe(), name=codec.name, settings_key=codec.settings_key()),
            "dataset": {"name": self.dataset.name, "source": self.dataset.source},
            "preprocess": {
                "width": pp.width, "height": pp.height, "fps": pp.fps,
                "keep_size": pp.keep_size, "keep_fps": pp.keep_fps, "max_frames": self.opts.max_frames,
            },  # fmt: skip
            "metrics": list(self.opts.metrics),
            "metric_notes": notes,
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
        return [
            (c, p) for c in self.codecs for p in c.rate_points() if not self.files[c.name].done(seq_name, p.label)
        ]

    def run(self) -> Path:
        dataset = self._check_dataset()
        self.perceptual = build_perceptual(self.opts, self.log)
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
                values = measure(clip, coded, self.perceptual, self.opts)
                self.files[codec.name].add(seq.name, meta, point_record(clip, point, coded, values))
                bar.update(1)
        finally:
            if not self.opts.keep_streams:
                shutil.rmtree(workdir, ignore_errors=True)

