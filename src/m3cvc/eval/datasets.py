"""Test-set definitions: which files make up a dataset and how to read them.

``--dataset`` accepts
- a shipped name: ``quick`` (built in, generated on first use), ``uvg``, ``mcl-jcv``, ``hevc-b``, ``hevc-c``;
- a YAML definition file (same format as the shipped ones in ``m3cvc/eval/datasets/``);
- a plain folder: every video file in it (sorted by name) is one sequence.

A YAML definition::

    name: UVG
    root: UVG                # folder of the files; relative roots resolve against --data-root,
                             # $M3CVC_DATA_ROOT, or else the YAML file's own folder (the current
                             # folder for the shipped definitions)
    format: yuv              # yuv (raw planar, needs width/height/fps/pix_fmt) or video (any container)
    sequences:
      - {name: Beauty, file: Beauty_1920x1080_120fps_420_8bit_YUV.yuv, width: 1920, height: 1080,
         fps: 120, frames: 600, pix_fmt: yuv420p}

The shipped public-dataset definitions only name files: nothing is downloaded or faked. Missing files
are listed by :meth:`Dataset.missing` and the run refuses to start (or skips them with
``--skip-missing``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ..errors import ConfigError, InputError
from ..video.files import VIDEO_SUFFIXES

PathLike = Union[str, "os.PathLike[str]"]

SHIPPED = ("uvg", "mcl-jcv", "hevc-b", "hevc-c")


@dataclass(frozen=True)
class Sequence:
    """One test sequence: a file plus what is needed to read it (raw YUV needs size/fps/format)."""

    name: str
    path: Path
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    frames: Optional[int] = None
    pix_fmt: Optional[str] = None  # set for raw .yuv files

    def open_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`m3cvc.video.open_video`."""
        from ..video.sources import RAW_SUFFIXES

        if self.path.suffix.lower() not in RAW_SUFFIXES:
            return {}
        if not (self.width and self.height and self.fps):
            raise ConfigError(f"sequence {self.name}: raw video needs width, height and fps in the dataset definition")
        return {"raw_size": (self.width, self.height), "raw_fps": self.fps, "raw_pix_fmt": self.pix_fmt or "yuv420p"}


@dataclass(frozen=True)
class Dataset:
    name: str
    sequences: tuple[Sequence, ...]
    source: str  # where the definition came from (file, folder or built-in name)

    def missing(self) -> list[Sequence]:
        return [s for s in self.sequences if not s.path.is_file()]

    def present(self) -> "Dataset":
        return Dataset(self.name, tuple(s for s in self.sequences if s.path.is_file()), self.source)


def shipped_definition(name: str) -> Path:
    """Path of a shipped YAML definition (``uvg``, ``mcl-jcv``, ``hevc-b``, ``hevc-c``)."""
    res = resources.files("m3cvc.eval") / "datasets" / f"{name}.yaml"
    return Path(str(res))


def _resolve_root(root: str, data_root: Optional[PathLike], yaml_dir: Optional[Path]) -> Path:
    p = Path(os.path.expanduser(os.path.expandvars(root)))
    if p.is_absolute():
        return p
    for base in (data_root, os.environ.get("M3CVC_DATA_ROOT")):
        if base:
            return Path(base) / p
    return (yaml_dir or Path(".")) / p


def _check_keys(entry: dict[str, Any], where: str) -> None:
    allowed = {"name", "file", "width", "height", "fps", "frames", "pix_fmt"}
    unknown = set(entry) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}; valid: {', '.join(sorted(allowed))}")
    if "file" not in entry:
        raise ConfigError(f"{where}: a sequence needs a 'file'")


def parse_definition(
    data: Any, source: str, data_root: Optional[PathLike] = None, yaml_dir: Optional[Path] = None
) -> Dataset:
    """Build a :class:`Dataset` from a loaded YAML mapping."""
    if not isinstance(data, dict) or not isinstance(data.get("sequences"), list) or not data["sequences"]:
        raise ConfigError(f"dataset {source}: expected a mapping with a non-empty 'sequences' list")
    root = _resolve_root(str(data.get("root", ".")), data_root, yaml_dir)
    fmt = data.get("format", "video")
    if fmt not in ("yuv", "video"):
        raise ConfigError(f"dataset {source}: format must be 'yuv' or 'video', got {fmt!r}")
    seqs = []
    for i, entry in enumerate(data["sequences"]):
        where = f"dataset {source}, sequence {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping")
        _check_keys(entry, where)
        path = root / str(entry["file"])
        name = str(entry.get("name") or Path(str(entry["file"])).stem)
        for key in ("width", "height", "frames"):  # typed here, before any work (a string '160' was a TypeError later)
            value = entry.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
        fps = entry.get("fps")
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < float("inf")):
            raise ConfigError(f"{where}: fps must be a positive number, got {fps!r}")
        seqs.append(
            Sequence(
                name=name,
                path=path,
                width=entry.get("width"),
                height=entry.get("height"),
                fps=float(fps) if fps is not None else None,
                frames=entry.get("frames"),
                pix_fmt=entry.get("pix_fmt", "yuv420p" if fmt == "yuv" else None),
            )
        )
    names = [s.name for s in seqs]
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset {source}: sequence names must be unique")
    return Dataset(str(data.get("name") or Path(source).stem), tuple(seqs), source)


def load_definition(path: PathLike, data_root: Optional[PathLike] = None, shipped: bool = False) -> Dataset:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read dataset definition {p}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"dataset definition {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_definition(data, p.stem if shipped else str(p), data_root, Path.cwd() if shipped else p.parent)


def folder_dataset(folder: PathLike) -> Dataset:
    """Every video file directly inside ``folder`` is a sequence (name = file stem)."""
    d = Path(folder)
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise InputError(f"folder {d} has no video files ({', '.join(VIDEO_SUFFIXES)})")
    stems = [p.stem for p in files]
    names = [p.stem if stems.count(p.stem) == 1 else p.name for p in files]
    return Dataset(d.resolve().name or "videos", tuple(Sequence(n, p) for n, p in zip(names, files)), str(d))


def load_dataset(spec: str, data_root: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None) -> Dataset:
    """Resolve ``--dataset``: a shipped name, ``quick``, a YAML file or a folder of videos."""
    if spec == "quick":
        from .quick import quick_dataset

        return quick_dataset(cache_dir)
    if spec.lower() in SHIPPED:
        return load_definition(shipped_definition(spec.lower()), data_root, shipped=True)
    p = Path(spec)
    if p.is_dir():
        return folder_dataset(p)
    if p.is_file() and p.suffix.lower() in (".yaml", ".yml"):
        return load_definition(p, data_root)
    if p.is_file():
        raise InputError(f"dataset {spec}: expected a .yaml definition or a folder of videos")
    names = ", ".join(("quick",) + SHIPPED)
    raise InputError(f"dataset {spec!r} is not a file, a folder or a known dataset ({names})")
