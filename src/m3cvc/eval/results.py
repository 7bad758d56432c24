"""The results schema shared by every codec, resume bookkeeping, and the CSV export.

One JSON file per codec and dataset, ``OUT/<dataset>/<codec>.json``::

    {"schema": "m3cvc-eval/1",
     "codec": {"name": "vvc", "description": "libvvenc via ffmpeg: ...", "versions": {...},
               "settings": {...}, "settings_key": "3f2a..."},
     "dataset": {"name": "quick", "source": "..."},
     "preprocess": {"width": 512, "height": 320, "fps": 8.0, "max_frames": 24},
     "metrics": ["psnr", "ms_ssim", "lpips", "clip_sim"],
     "metric_notes": {"lpips": "unavailable: ..."},
     "sequences": {"bikes": {"frames": 24, "width": 512, "height": 320, "fps": 8.0, "source": "...",
                             "points": [{"point": "qp63", "params": {"qp": 63}, "bytes": 812,
                                         "bpp": 0.00165, "encode_s": 3.1, "decode_s": 0.05,
                                         "metrics": {"psnr": 24.1, "psnr_seq": 23.9, "ms_ssim": 0.81,
                                                     "lpips": null, "clip_sim": null},
                                         "info": {...}}]}}}

``null`` marks a metric that could not be computed (missing weights), never a guess. Points are stored
as they finish (atomic rewrite), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterator, Optional

from ..errors import ConfigError, InputError
from ..fileio import write_text_atomic

SCHEMA = "m3cvc-eval/1"
METRICS = ("psnr", "ms_ssim", "lpips", "clip_sim")
CSV_FIELDS = (
    "dataset", "codec", "sequence", "point", "frames", "width", "height", "bytes", "bpp",
    "psnr", "psnr_seq", "ms_ssim", "lpips", "clip_sim", "encode_s", "decode_s",
)  # fmt: skip


def _map_leaves(value: Any, fn: Any) -> Any:
    if isinstance(value, dict):
        return {k: _map_leaves(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_leaves(v, fn) for v in value]
    return fn(value)


def _clean(value: Any) -> Any:
    """JSON has no inf/nan: store them as strings that :func:`_restore` turns back into floats."""
    return _map_leaves(value, lambda x: str(x) if isinstance(x, float) and not math.isfinite(x) else x)


def _restore(value: Any) -> Any:
    return _map_leaves(value, lambda x: float(x) if isinstance(x, str) and x in ("inf", "-inf", "nan") else x)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read results {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"{path} is not an m3cvc results file (schema {SCHEMA})")
    return _restore(data)


class ResultsFile:
    """The results of one codec on one dataset, kept in sync with its JSON file."""

    def __init__(self, path: Path, header: dict[str, Any], force: bool = False) -> None:
        self.path = path
        key = header["codec"]["settings_key"]
        if path.is_file() and not force:
            data = read_json(path)
            old = data.get("codec", {}).get("settings_key")
            if old != key or data.get("preprocess") != header["preprocess"]:
                raise ConfigError(
                    f"{path} holds results made with other settings; use another --out or --force to redo them"
                )
            data.update({k: v for k, v in header.items() if k != "sequences"})
            self.data = data
        else:
            self.data = dict(header, sequences={})

    def done(self, sequence: str, label: str) -> bool:
        seq = self.data["sequences"].get(sequence)
        return bool(seq) and any(p["point"] == label for p in seq["points"])

    def add(self, sequence: str, meta: dict[str, Any], point: dict[str, Any]) -> None:
        seq = self.data["sequences"].setdefault(sequence, dict(meta, points=[]))
        seq.update(meta)
        seq["points"] = [p for p in seq["points"] if p["point"] != point["point"]] + [point]
        seq["points"].sort(key=lambda p: p["bpp"])
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(_clean(self.data), indent=1) + "\n")


def iter_results(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every results file under ``root`` (a results folder or one JSON file)."""
    if root.is_file():
        yield root, read_json(root)
        return
    if not root.is_dir():
        raise InputError(f"results folder {root} does not exist")
    for path in sorted(root.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            yield path, _restore(data)


def group_by_dataset(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``{dataset: {codec name: results}}`` of every results file under ``root``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for _, data in iter_results(root):
        out.setdefault(data["dataset"]["name"], {})[data["codec"]["name"]] = data
    if not out:
        raise InputError(f"no m3cvc results files under {root}")
    return out


def csv_rows(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for seq_name, seq in data["sequences"].items():
        for p in seq["points"]:
            row = {
                "dataset": data["dataset"]["name"], "codec": data["codec"]["name"], "sequence": seq_name,
                "point": p["point"], "frames": seq["frames"], "width": seq["width"], "height": seq["height"],
                "bytes": p["bytes"], "bpp": p["bpp"], "encode_s": p["encode_s"], "decode_s": p["decode_s"],
            }  # fmt: skip
            row.update({m: p["metrics"].get(m) for m in ("psnr", "psnr_seq", "ms_ssim", "lpips", "clip_sim")})
            yield row


def write_csv(folder: Path, path: Optional[Path] = None) -> Path:
    """All results files under ``folder`` as one CSV (``folder/results.csv``); empty cells are null."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for _, data in iter_results(folder):
        for row in csv_rows(data):
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    out = path or folder / "results.csv"
    write_text_atomic(out, buf.getvalue())
    return out


def _number(text: str, where: str) -> Optional[float]:
    if text is None or text.strip() in ("", "null", "None", "nan"):
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None


def import_csv(path: Path, dataset: Optional[str] = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Results of other tools (VTM, DCVC, ...) from a CSV with at least ``codec``, ``sequence``, ``bpp``
    and some metric columns (``psnr``, ``ms_ssim``, ``lpips``, ``clip_sim``); ``dataset`` and ``point``
    are optional. Same grouping as :func:`group_by_dataset`, so imported curves join BD-rates and plots."""
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if not rows or not {"codec", "sequence", "bpp"} <= set(rows[0]):
        raise InputError(f"{path}: expected a CSV with codec, sequence and bpp columns")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for i, row in enumerate(rows, start=2):
        where = f"{path}:{i}"
        ds = row.get("dataset") or dataset or path.stem
        codec = row["codec"]
        doc = out.setdefault(ds, {}).setdefault(codec, {
            "schema": SCHEMA, "codec": {"name": codec, "description": f"imported from {path.name}"},
            "dataset": {"name": ds, "source": str(path)}, "sequences": {},
        })  # fmt: skip
        seq = doc["sequences"].setdefault(row["sequence"], {"points": []})
        metrics = {m: _number(row.get(m), where) for m in ("psnr", "psnr_seq", "ms_ssim", "lpips", "clip_sim") if m in row}
        label = row.get("point") or f"p{len(seq['points'])}"
        seq["points"].append({"point": label, "bpp": _number(row["bpp"], where), "metrics": metrics, "info": {}})
    for docs in out.values():
        for doc in docs.values():
            for seq in doc["sequences"].values():
                seq["points"].sort(key=lambda p: p["bpp"])
    return out
