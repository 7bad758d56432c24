"""The report page of an eval results folder (``m3cvc eval --out RESULTS``): R-D plots per metric and
dataset, BD-rate tables against an anchor, each codec's settings, per-sequence tables of every rate
point, and, for m3cvc streams kept with ``--keep-streams``, a stream page of each.

Numbers come from the results JSON files as written (the same the CSV and ``m3cvc bdrate`` use);
BD-rates are computed by :func:`m3cvc.eval.report.bd_report` (the ``bjontegaard`` package).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote

from ..errors import InputError, M3cvcError
from ..eval.codecs import slug, work_name
from ..eval.metrics import LABELS, LOWER_IS_BETTER, METRIC_NAMES, SPECS
from ..eval.results import iter_results
from .site import GENERATOR, Site, environment

Step = Callable[[str], None]


def load_results(root: Path) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], Path]]:
    """``({dataset: {codec: results}}, {(dataset, codec): results file})`` of every results file under
    ``root``; InputError when there is none."""
    grouped: dict[str, dict[str, Any]] = {}
    paths: dict[tuple[str, str], Path] = {}
    for path, data in iter_results(root):
        _check(path, data)
        dataset, codec = data["dataset"]["name"], data["codec"]["name"]
        grouped.setdefault(dataset, {})[codec] = data
        paths[(dataset, codec)] = path
    if not grouped:
        raise InputError(f"no m3cvc results files under {root} (write them with `m3cvc eval --out {root}`)")
    return grouped, paths


def _check(path: Path, data: dict[str, Any]) -> None:
    """The fields a page reads, so that a hand-edited file fails in one line, not deep in a template."""
    try:
        assert isinstance(data["dataset"]["name"], str) and isinstance(data["codec"]["name"], str)
        for seq in data["sequences"].values():
            for point in seq["points"]:
                assert isinstance(point["metrics"], dict) and isinstance(point["point"], str)
                float(point["bpp"]), int(point["bytes"])
    except (AssertionError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"results file {path} lacks what a report needs ({type(exc).__name__}: {exc}); "
                         "was it edited by hand?") from None


def _metrics_with_values(results: dict[str, Any]) -> list[str]:
    return [m for m in METRIC_NAMES if any(
        p["metrics"].get(m) is not None for r in results.values() for s in r["sequences"].values() for p in s["points"]
    )]  # fmt: skip


def _bd_tables(results: dict[str, Any], anchor: str, metrics: list[str]) -> tuple[list[dict[str, Any]], Optional[str]]:
    if importlib.util.find_spec("bjontegaard") is None:
        return [], "BD-rates need the bjontegaard package: pip install 'm3cvc[eval]'"
    if anchor not in results:
        return [], f"no results of the anchor {anchor!r} in this dataset (have: {', '.join(sorted(results))}); choose one with --anchor"
    from ..eval.report import bd_report

    report = bd_report({"_": results}, anchor, metrics)["_"]
    tables = []
    for metric in metrics:
        rows = report.get(metric) or []
        if rows:
            tables.append({"metric": metric, "label": LABELS.get(metric, metric), "digits": SPECS[metric].digits,
                           "better": "lower" if metric in LOWER_IS_BETTER else "higher", "rows": rows})  # fmt: skip
    return tables, None


def kept_streams(grouped: dict[str, dict[str, Any]], paths: dict[tuple[str, str], Path]) -> dict[tuple[str, str, str, str], Path]:
    """``{(dataset, codec, sequence, point): .m3c file}`` of the streams an eval run kept (``--keep-streams``)."""
    out = {}
    for dataset, results in grouped.items():
        for codec, r in results.items():
            for seq_name, seq in r["sequences"].items():
                for point in seq["points"]:
                    name = (point.get("info") or {}).get("stream")
                    path = paths[(dataset, codec)].parent / "_work" / work_name(seq_name) / Path(name).name if name else None
                    if path is not None and path.suffix == ".m3c" and path.is_file():  # anchors keep theirs too
                        out[(dataset, codec, seq_name, point["point"])] = path
    return out


def _reference_frames(results: dict[str, Any], sequence: str, count: int) -> tuple[Optional[list[Any]], str]:
    """The sequence's frames as the eval run preprocessed them, when its source is still there;
    else None and why not."""
    from ..config import PreprocessConfig
    from ..video import open_video, preprocess

    seq = results["sequences"][sequence]
    source = Path(seq.get("source", ""))
    if not source.is_file():
        return None, f"the sequence's source {source} was not found here, so there is no original to compare with"
    pp = results.get("preprocess", {})
    cfg = PreprocessConfig(
        width=pp.get("width", seq["width"]), height=pp.get("height", seq["height"]), fps=pp.get("fps", seq["fps"]),
        keep_size=pp.get("keep_size", False), keep_fps=pp.get("keep_fps", False),
    )  # fmt: skip
    try:
        with open_video(source) as src:
            frames = []
            for frame in preprocess(src, cfg):
                frames.append(frame)
                if len(frames) == count:
                    break
    except InputError as exc:
        return None, f"the sequence's source {source} could not be read ({exc})"
    if len(frames) != count:
        return None, f"the sequence's source {source} now gives {len(frames)} frames, the run coded {count}"
    return frames, ""


def build_eval_page(
    root: Path, site: Site, anchor: str, streams: bool = True, step: Optional[Step] = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> str:  # fmt: skip
    """Write the figures (and kept streams' pages) into ``site.media`` and return the page's HTML."""
    from ..eval.plots import pyplot, rd_figure, save_figure
    from .stream import StreamPageInputs, build_stream_page

    step = step or (lambda _: None)
    grouped, paths = load_results(root)
    kept = kept_streams(grouped, paths) if streams else {}
    references: dict[tuple, tuple[Optional[list[Any]], str]] = {}  # the latest sequence's original frames
    plots_ok = importlib.util.find_spec("matplotlib") is not None
    datasets = []
    for dataset, results in sorted(grouped.items()):
        step(f"{dataset}: plots")
        metrics = _metrics_with_values(results)
        plots = []
        for metric in metrics:
            fig = rd_figure(dataset, results, metric) if plots_ok else None
            if fig is not None:
                name = f"rd_{slug(dataset)}_{metric}.svg"
                save_figure(fig, site.media / name, "svg")
                pyplot().close(fig)
                plots.append({"metric": metric, "label": LABELS.get(metric, metric), "src": site.url(name)})
        tables, bd_note = _bd_tables(results, anchor, metrics)
        if bd_note:
            log(f"note: {dataset}: {bd_note}")
        codecs = [{"name": name, "description": r["codec"].get("description", ""),
                   "settings_key": r["codec"].get("settings_key", ""), "file": str(paths[(dataset, name)]),
                   "notes": r.get("metric_notes", {})} for name, r in sorted(results.items())]  # fmt: skip
        sequences: dict[str, dict[str, Any]] = {}
        for codec, r in sorted(results.items()):
            for seq_name, seq in r["sequences"].items():
                entry = sequences.setdefault(seq_name, {"name": seq_name, "meta": seq, "rows": []})
                for point in sorted(seq["points"], key=lambda p: (p["bpp"], p["point"])):
                    link, problem = None, ""
                    stream = kept.get((dataset, codec, seq_name, point["point"]))
                    if stream is not None:
                        step(f"{dataset}: stream {seq_name} {codec} {point['point']}")
                        sub = f"streams/{work_name(dataset)}/{work_name(seq_name)}/{slug(codec)}_{slug(point['point'])}"
                        folder = site.media / sub
                        folder.mkdir(parents=True)
                        ref_key = (seq.get("source"), json.dumps(r.get("preprocess"), sort_keys=True), seq["frames"])
                        if ref_key not in references:  # the source is read once for all its kept streams
                            references.clear()
                            references[ref_key] = _reference_frames(r, seq_name, seq["frames"])
                            if references[ref_key][1]:
                                log(f"note: {seq_name}: {references[ref_key][1]}")
                        ref, why = references[ref_key]
                        depth = "../" * (sub.count("/") + 2)
                        page = StreamPageInputs(
                            name=f"{seq_name} / {codec} / {point['point']}", data=stream.read_bytes(), reference=ref,
                            reference_label=Path(seq.get("source", "")).name, reference_note=why,
                            per_frame=point.get("per_frame") or None,
                            links=[("back to the eval report", depth + quote(site.output.name))],
                        )  # fmt: skip
                        try:
                            (folder / "index.html").write_text(build_stream_page(page, folder, ""), encoding="utf-8")
                            link = site.url(f"{sub}/index.html")
                        except M3cvcError as exc:  # one stream that does not fit its sequence: say so, go on
                            shutil.rmtree(folder, ignore_errors=True)
                            problem = f"no stream page: {exc}"
                            log(f"note: {seq_name} / {codec} / {point['point']}: {problem}")
                    entry["rows"].append({"codec": codec, "point": point, "link": link, "problem": problem})
        datasets.append({
            "name": dataset, "metrics": metrics, "plots": plots, "bd_tables": tables, "bd_note": bd_note,
            "codecs": codecs, "sequences": list(sequences.values()),
        })  # fmt: skip
    step("page")
    return environment().get_template("eval.html.j2").render(
        generator=GENERATOR,
        title=f"{root.name or root}: m3cvc eval report",
        root=str(root),
        anchor=anchor,
        datasets=datasets,
        labels=LABELS,
        specs=SPECS,
        plots_note=None if plots_ok else "R-D plots need matplotlib: pip install 'm3cvc[eval]'",
        links=[],
    )


def write_eval_report(root: str, output: str, anchor: str = "vvc", overwrite: bool = False, streams: bool = True,
                      progress: bool = True) -> Path:  # fmt: skip
    """``m3cvc report RESULTS/ -o OUT.html``: the page and ``OUT_files/``, in place atomically."""
    from .stream import _Steps

    folder = Path(root)
    grouped, paths = load_results(folder)  # nothing to report: fail before any work
    steps = len(grouped) + 1 + (len(kept_streams(grouped, paths)) if streams else 0)
    with Site(output, [folder], overwrite) as site, _Steps(progress, steps) as step:
        return site.finish(build_eval_page(folder, site, anchor, streams, step))
