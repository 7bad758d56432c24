"""The results schema shared by every codec, resume bookkeeping, and the CSV export.

One JSON file per codec and dataset, ``OUT/<dataset>/<codec>.json``::

    {"schema": "m3cvc-eval/2",
     "codec": {"name": "vvc", "description": "libvvenc via ffmpeg: ...", "versions": {...},
               "settings": {...}, "settings_key": "3f2a..."},
     "dataset": {"name": "quick", "source": "..."},
     "preprocess": {"width": 512, "height": 320, "fps": 8.0, "max_frames": 24},
     "metrics": ["psnr", "ms_ssim", "lpips", "dists", "vmaf", "vmaf_neg", "clip_sim"],
     "metric_notes": {"clip_sim": "unavailable: ..."},
     "metric_info": {"lpips": {"available": true, "net": "alex", "sha256": "32f45cf71e6147af", ...},
                     "vmaf": {"available": true, "models": {"vmaf": "vmaf_v0.6.1"}, "libvmaf": "86da14d"}, ...},
     "sequences": {"bikes": {"frames": 24, "width": 512, "height": 320, "fps": 8.0, "source": "...",
                             "points": [{"point": "qp63", "params": {"qp": 63}, "bytes": 812,
                                         "bpp": 0.00165, "encode_s": 3.1, "decode_s": 0.05,
                                         "measure_s": {"psnr+ms_ssim": 0.4, "lpips": 0.9, ...},
                                         "metrics": {"psnr": 24.1, "psnr_seq": 23.9, "ms_ssim": 0.81,
                                                     "lpips": 0.41, "dists": 0.29, "vmaf": 31.2,
                                                     "vmaf_hmean": 27.9, "vmaf_neg": 30.8,
                                                     "vmaf_neg_hmean": 27.5, "clip_sim": null},
                                         "per_frame": {"psnr": [...], "lpips": [...], "vmaf": [...], ...},
                                         "info": {...}}]}}}

``metrics`` holds each metric's sequence value (mean over frames; libvmaf's pooled mean for VMAF) and the
derived values (``psnr_seq``, ``*_hmean``); ``per_frame`` one value per frame for every metric that ran.
``null`` marks a metric that could not be computed (missing weights), never a guess. Points are stored
as they finish (atomic rewrite), so an interrupted run resumes where it stopped; a point lacking a
metric that can now be computed is redone. Files of schema ``m3cvc-eval/1`` (no per-frame values) are
still read.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..errors import ConfigError, InputError
from ..fileio import write_text_atomic
from .metrics import DERIVED, METRIC_NAMES

SCHEMA = "m3cvc-eval/2"
READABLE_SCHEMAS = ("m3cvc-eval/1", SCHEMA)
VALUE_COLUMNS = (*METRIC_NAMES, *DERIVED)  # every metric and derived value, in the CSV and imports
CSV_FIELDS = (
    "dataset", "codec", "sequence", "point", "frames", "width", "height", "bytes", "bpp",
    *VALUE_COLUMNS, "encode_s", "decode_s",
)  # fmt: skip
# metric_info fields that say where a file was found, not what was measured
_LOCATION_FIELDS = {"path", "found_by", "ffmpeg"}


# fields that record how long something took: they differ from run to run, nothing else may
# fields read off a clock: run times, and when an output was written (a batch manifest's output_stamp)
TIMING_FIELDS = frozenset({"encode_s", "decode_s", "measure_s", "seconds", "wall_seconds", "output_stamp"})


def without_timings(value: Any) -> Any:
    """A results document (or manifest) without its timing fields: what must be equal between two runs
    of the same job, whatever executor ran it."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


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
    if not isinstance(data, dict) or data.get("schema") not in READABLE_SCHEMAS:
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
            changed = _changed_metrics(data.get("metric_info", {}), header.get("metric_info", {}))
            if changed:
                raise ConfigError(
                    f"{path} holds {', '.join(changed)} values measured with other metric settings or weights; "
                    "use another --out or --force to redo them"
                )
            stored = data.get("metric_info", {})
            data.update({k: v for k, v in header.items() if k != "sequences"})
            # a metric that cannot run this time keeps the provenance of the values already stored (a later run
            # with other weights is then still refused)
            info = dict(data.get("metric_info", {}))
            for name, old_info in stored.items():
                if isinstance(old_info, dict) and old_info.get("available") and not info.get(name, {}).get("available"):
                    info[name] = old_info
            data["metric_info"] = info
            self.data = data
        else:
            self.data = dict(header, sequences={})

    def done(self, sequence: str, label: str, metrics: Sequence[str] = ()) -> bool:
        """Whether the point is stored with a value for every metric of ``metrics``."""
        seq = self.data["sequences"].get(sequence)
        point = next((p for p in seq["points"] if p["point"] == label), None) if seq else None
        return point is not None and all(point["metrics"].get(m) is not None for m in metrics)

    def forget(self, sequence: str) -> None:
        """Drop every stored point of ``sequence`` (its source changed)."""
        if self.data["sequences"].pop(sequence, None) is not None:
            self.save()

    def add(self, sequence: str, meta: dict[str, Any], point: dict[str, Any]) -> None:
        seq = self.data["sequences"].setdefault(sequence, dict(meta, points=[]))
        seq.update(meta)
        seq["points"] = [p for p in seq["points"] if p["point"] != point["point"]] + [point]
        # a fixed order whatever order the points finish in (parallel executors): by rate, then label
        seq["points"].sort(key=lambda p: (p["bpp"], p["point"]))
        self.data["sequences"] = dict(sorted(self.data["sequences"].items()))
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(_clean(self.data), indent=1) + "\n")


def _changed_metrics(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Metrics measured in both runs whose settings / weights differ."""

    def key(info: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in info.items() if k not in _LOCATION_FIELDS}

    return [
        m for m in sorted(set(old) & set(new))
        if old[m].get("available") and new[m].get("available") and key(old[m]) != key(new[m])
    ]  # fmt: skip


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
        if isinstance(data, dict) and data.get("schema") in READABLE_SCHEMAS:
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
            row.update({m: p["metrics"].get(m) for m in VALUE_COLUMNS})
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
    and some metric columns (``psnr``, ``ms_ssim``, ``lpips``, ``dists``, ``vmaf``, ...); ``dataset`` and ``point``
    are optional. Same grouping as :func:`group_by_dataset`, so imported curves join BD-rates and plots."""
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))  # -sig: a spreadsheet's BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if not rows or not {"codec", "sequence", "bpp"} <= set(rows[0]):
        raise InputError(f"{path}: expected a CSV with codec, sequence and bpp columns")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for i, row in enumerate(rows, start=2):
        where = f"{path}:{i}"
        if None in row.values() or None in row:  # a short or a long row: DictReader fills None / a None key
            raise InputError(f"{where}: {len(rows[0])} columns expected, the row has another count")
        ds = row.get("dataset") or dataset or path.stem
        codec = row["codec"].strip()
        bpp = _number(row["bpp"], where)
        if not codec or not row["sequence"].strip():
            raise InputError(f"{where}: empty codec or sequence")
        if bpp is None or not (0 < bpp < float("inf")):
            raise InputError(f"{where}: bpp must be a positive number, got {row['bpp']!r}")
        doc = out.setdefault(ds, {}).setdefault(codec, {
            "schema": SCHEMA, "codec": {"name": codec, "description": f"imported from {path.name}"},
            "dataset": {"name": ds, "source": str(path)}, "sequences": {},
        })  # fmt: skip
        seq = doc["sequences"].setdefault(row["sequence"], {"points": []})
        metrics = {m: _number(row.get(m), where) for m in VALUE_COLUMNS if m in row}
        seq["points"].append({"point": row.get("point") or None, "bpp": bpp, "metrics": metrics, "info": {}})
    for docs in out.values():
        for doc in docs.values():
            for seq in doc["sequences"].values():
                seq["points"].sort(key=lambda p: p["bpp"])
                for k, point in enumerate(seq["points"]):  # unnamed points: labelled by rate, not by row order
                    point["point"] = point["point"] or f"p{k}"
    return out
