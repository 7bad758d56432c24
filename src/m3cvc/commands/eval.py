"""``m3cvc eval | bdrate | ablate``: the evaluation harness (paper III)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import BackendError, InputError
from ..fileio import ensure_folder
from .codec import _parser

DEFAULT_CODECS = "m3cvc:lite,x264,x265,vvc"


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="quick | uvg | mcl-jcv | hevc-b | hevc-c | DEFINITION.yaml | FOLDER of videos")
    p.add_argument("--out", required=True, type=Path, help="results folder (one subfolder per dataset)")
    p.add_argument("--data-root", help="folder holding the dataset folders named in definitions ($M3CVC_DATA_ROOT)")
    p.add_argument("--size", default="512x320", metavar="WxH", help="preprocessed frame size (default 512x320)")
    p.add_argument("--fps", type=float, default=8.0, help="preprocessed frame rate (default 8)")
    p.add_argument("--max-frames", type=int, default=96, help="frame limit per sequence after resampling (default 96; 0 = all)")
    p.add_argument("--metrics", default="all",
                   help="comma-separated subset of psnr, ms_ssim, lpips, dists, vmaf, vmaf_neg, clip_sim (default all: "
                        "every metric that can run here; `m3cvc metrics` lists them)")  # fmt: skip
    p.add_argument("--points", action="append", default=[], metavar="CODEC=V1,V2,...",
                   help="rate points of a codec: QPs for x264/x265/vvc, values of --sweep for m3cvc (repeatable)")  # fmt: skip
    p.add_argument("--sweep", default=None,
                   help="m3cvc config key its rate points set (default: rate.target_bpp for the lite HEVC chain, "
                        "keyframe_codec.avif.quality for AVIF, keyframes.max_interval otherwise)")  # fmt: skip
    p.add_argument("--x-preset", default="veryslow", help="x264/x265 preset (default veryslow)")
    p.add_argument("--vvc-preset", default="medium", choices=("faster", "fast", "medium", "slow", "slower"),
                   help="libvvenc preset (default medium)")  # fmt: skip
    _add_metric_options(p)
    p.add_argument("--cache-dir", help="where the quick dataset's synthetic clips are generated ($M3CVC_CACHE)")
    p.add_argument("--skip-missing", action="store_true", help="run the sequences that exist, skip missing files")
    p.add_argument("--force", action="store_true", help="recompute points that are already in --out")
    p.add_argument("--keep-streams", action="store_true", help="keep the coded streams under OUT/<dataset>/_work")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    from .batch import add_executor_options

    add_executor_options(p)


def _run_eval(dataset: Any, codecs: list, opts: Any, args: argparse.Namespace) -> tuple[Path, list]:
    """The eval tasks on the executor the options name: ``(CSV path, failures)``."""
    from ..eval.runner import EvalRun
    from .batch import executor_from_args

    with executor_from_args(args) as executor:
        run = EvalRun(dataset, codecs, opts, executor=executor, retries=args.retries, gpus_per_task=args.gpus_per_task)
        return run.run(), run.failures


def _add_metric_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lpips-net", default="alex", choices=("alex", "vgg", "squeeze"), help="LPIPS backbone (default alex)")
    p.add_argument("--lpips-backbone", metavar="PATH",
                   help="torchvision state dict of the LPIPS backbone (else $M3CVC_WEIGHTS, then torch's cache)")  # fmt: skip
    p.add_argument("--dists-backbone", metavar="PATH",
                   help="torchvision VGG16 state dict for DISTS (else $M3CVC_WEIGHTS/vgg16-features.pth, then torch's cache)")  # fmt: skip
    p.add_argument("--clip-model", default="openai/clip-vit-base-patch32", help="CLIP hub id (HF cache) or local folder")
    p.add_argument("--device", default="cpu", help="torch device of LPIPS / DISTS / CLIP (default cpu)")


def metric_options(args: argparse.Namespace) -> Any:
    from ..eval.metrics import MetricOptions

    return MetricOptions(
        lpips_net=args.lpips_net, lpips_backbone=args.lpips_backbone, dists_backbone=args.dists_backbone,
        clip_model=args.clip_model, device=args.device,
    )  # fmt: skip


def _point_overrides(items: Sequence[str]) -> dict[str, list[float]]:
    from ..eval.codecs import parse_values

    out = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name:
            raise InputError(f"--points expects CODEC=V1,V2,..., got {item!r}")
        out[name.strip()] = parse_values(values)
    return out


def _options(args: argparse.Namespace) -> Any:
    from ..config import PreprocessConfig
    from ..eval.metrics import parse_metrics
    from ..eval.runner import EvalOptions
    from ..video import parse_size

    metrics = parse_metrics(args.metrics)
    if args.max_frames < 0:
        raise InputError("--max-frames must be >= 0")
    width, height = parse_size(args.size)
    return EvalOptions(
        out=args.out,
        preprocess=PreprocessConfig(width=width, height=height, fps=args.fps),
        max_frames=args.max_frames or None,
        metrics=metrics,
        force=args.force,
        skip_missing=args.skip_missing,
        keep_streams=args.keep_streams,
        progress=not args.quiet,
        metric_options=metric_options(args),
    )


def _codec_kwargs(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Constructor options of one codec from the command line."""
    base = name.partition(":")[0]
    if base == "m3cvc":
        return {"sweep": args.sweep} if args.sweep else {}
    if base == "vvc":
        return {"preset": args.vvc_preset}
    return {"preset": args.x_preset} if base in ("x264", "x265") else {}


def _prepare(args: argparse.Namespace) -> tuple[Any, Any]:
    from ..eval.datasets import load_dataset

    opts = _options(args)
    ensure_folder(args.out)
    return load_dataset(args.dataset, args.data_root, args.cache_dir), opts


def missing_tools() -> dict[str, str]:
    """Reports that cannot be made with this install: ``{"plots": reason, "bdrate": reason}``."""
    import importlib.util

    out = {}
    if importlib.util.find_spec("matplotlib") is None:
        out["plots"] = "R-D plots need matplotlib: pip install 'm3cvc[eval]'"
    if importlib.util.find_spec("bjontegaard") is None:
        out["bdrate"] = "BD-rates need the bjontegaard package: pip install 'm3cvc[eval]'"
    return out


def announce_missing_tools() -> dict[str, str]:
    """Say, before any work, which reports this install cannot make (the run still writes JSON + CSV)."""
    missing = missing_tools()
    for reason in missing.values():
        print(f"note: {reason}; results JSON and CSV are still written", file=sys.stderr)
    return missing


def _finish(csv_path: Path, missing: dict[str, str]) -> Path:
    """Plots and the R-D table of the dataset folder just written."""
    from ..eval.metrics import METRIC_NAMES
    from ..eval.report import format_rd_table
    from ..eval.results import group_by_dataset

    folder = csv_path.parent
    grouped = group_by_dataset(folder)
    print(format_rd_table(grouped))
    if "plots" in missing:
        print(f"results: {folder} (CSV {csv_path.name}; no plots: {missing['plots']})")
    else:
        from ..eval.plots import plot_all

        plots = plot_all(grouped, METRIC_NAMES, folder / "plots")
        print(f"results: {folder} (CSV {csv_path.name}, {len(plots)} plot files in plots/)")
    return folder


def eval_main(argv: Sequence[str]) -> int:
    p = _parser("eval", "Run codecs at their rate points over a dataset; write results JSON per codec + CSV + plots.")
    p.add_argument("--codecs", default=DEFAULT_CODECS, help=f"comma-separated (default {DEFAULT_CODECS}); m3cvc:PROFILE or m3cvc:CONFIG.yaml")
    _add_run_options(p)
    args = p.parse_args(argv)
    from ..eval.codecs import build_codec

    dataset, opts = _prepare(args)
    points = _point_overrides(args.points)
    names = [c.strip() for c in args.codecs.split(",") if c.strip()]
    unknown_points = set(points) - set(names)
    if unknown_points:
        raise InputError(f"--points names codec(s) not in --codecs: {', '.join(sorted(unknown_points))}")
    codecs = [build_codec(n, points.get(n), **_codec_kwargs(n, args)) for n in names]
    missing = announce_missing_tools()
    csv_path, failures = _run_eval(dataset, codecs, opts, args)
    from ..eval.results import iter_results
    from .batch import report_failures

    if failures and next(iter_results(csv_path.parent), None) is None:  # nothing to tabulate or plot
        raise InputError(f"every point failed ({len(failures)}): nothing was measured (the first error: {sorted(failures)[0][1]})")
    _finish(csv_path, missing)
    return report_failures(failures, "points", "")


def bdrate_main(argv: Sequence[str]) -> int:
    p = _parser("bdrate", "BD-rate / BD-quality of every codec against an anchor, from results folders.")
    p.add_argument("results", type=Path, help="results folder (searched recursively) or one results JSON")
    p.add_argument("--anchor", default="vvc", help="anchor codec name (default vvc)")
    p.add_argument("--metrics", default="all", help="comma-separated metrics (default all that have values)")
    p.add_argument("--json", type=Path, help="write the report here (default RESULTS/bdrate_<anchor>.json)")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--plots", action="store_true", help="also write R-D plots to RESULTS/plots/")
    p.add_argument("--table", action="store_true", help="also print every codec's dataset-mean R-D points")
    p.add_argument("--import", dest="imports", action="append", default=[], type=Path, metavar="CSV",
                   help="extra curves (e.g. VTM, DCVC) from a CSV with codec,sequence,bpp,<metrics> columns (repeatable)")  # fmt: skip
    args = p.parse_args(argv)
    from ..eval.plots import plot_all
    from ..eval.report import bd_report, format_bd, format_rd_table, write_report
    from ..eval.results import group_by_dataset, import_csv, iter_results
    from ..fileio import check_output_path

    folder = args.results if args.results.is_dir() else args.results.parent
    out_path = args.json or folder / f"bdrate_{args.anchor.replace(':', '-')}.json"
    # what this reads (the results files, the imports) and eval's CSV beside them are never written over
    read = [path for path, _ in iter_results(args.results)] + list(args.imports)
    read += sorted(folder.rglob("results.csv")) if folder.is_dir() else []
    check_output_path(out_path, read)
    if args.json is not None and args.json.exists() and not args.overwrite:
        raise InputError(f"--json {args.json} exists; pass --overwrite (-y) to replace it")

    from ..eval.metrics import parse_metrics

    metrics = parse_metrics(args.metrics)
    grouped = group_by_dataset(args.results)
    for path in args.imports:
        for dataset, docs in import_csv(path, next(iter(grouped)) if len(grouped) == 1 else None).items():
            clash = sorted(set(docs) & set(grouped.get(dataset, {})))
            if clash:  # it would silently replace measured results
                raise InputError(f"--import {path}: codec {clash[0]!r} already has results in dataset {dataset}; "
                                 "name the imported curve differently")
            grouped.setdefault(dataset, {}).update(docs)
    report = bd_report(grouped, args.anchor, metrics)
    if args.table:
        print(format_rd_table(grouped))
    print(format_bd(report))
    out = write_report(report, out_path)
    print(f"report: {out}")
    if args.plots:
        print(f"plots: {len(plot_all(grouped, metrics, folder / 'plots'))} files in {folder / 'plots'}")
    return 0


def ablate_main(argv: Sequence[str]) -> int:
    p = _parser("ablate", "Table I ablations (keyframe strategy, dialogue turns, reconstruction mode): BD-rate vs VVC.")
    p.add_argument("--profile", default="lite", help="m3cvc profile the rows modify (default lite)")
    p.add_argument("--metric", default="lpips", help="metric of the BD-rate (default lpips, the paper's Table I metric)")
    p.add_argument("--fixed-interval", type=int, default=8,
                   help="base period of the fixed-interval row; per clip it is replaced by the period whose keyframe "
                        "count equals the composite selector's (default 8)")
    p.epilog = ("With the HEVC keyframe chain the m3cvc rows sweep the keyframe QP (--points m3cvc=QP,...; default "
                "49,45,41,37,33), so that keyframe counts stay equal at every rate point.")
    p.add_argument("--describer", help="LMM describer for the dialogue rows (qwen-vl or openai); without it they are skipped")
    _add_run_options(p)
    args = p.parse_args(argv)
    from ..eval.ablation import ablation_table, build_codecs, format_table, table_rows
    from ..eval.codecs import build_codec
    from ..eval.report import write_report
    from ..eval.results import group_by_dataset

    from ..eval.metrics import MetricSuite, parse_metrics

    metric = args.metric.strip()
    if "," in metric:
        raise InputError("--metric takes one metric")
    parse_metrics(metric)
    why = MetricSuite([metric], metric_options(args)).unavailable().get(metric)
    if why:  # before any work: the table would be empty
        raise BackendError(f"ablate --metric {metric} cannot be measured here: {why}")
    missing = announce_missing_tools()
    if "bdrate" in missing:
        raise BackendError(missing["bdrate"])
    dataset, opts = _prepare(args)
    if metric not in opts.metrics:
        opts.metrics = [*opts.metrics, metric]
    points = _point_overrides(args.points)
    unknown = sorted(set(points) - {"vvc", "m3cvc"})
    if unknown:
        raise InputError(f"--points {unknown[0]}=...: ablate runs vvc and m3cvc only")
    if args.fixed_interval < 1:
        raise InputError(f"--fixed-interval must be >= 1, got {args.fixed_interval}")
    rows = table_rows(args.fixed_interval, args.describer)
    from ..eval.ablation import QP_POINTS, equal_keyframe_counts, equalised_rows
    from ..eval.m3cvc_codec import M3cvcCodec
    from ..eval.runner import load_clip

    sweep, m3_points = args.sweep, points.get("m3cvc")
    plain = M3cvcCodec(args.profile)
    if sweep is None and plain.config.keyframe_codec.backend == "hevc":
        # keyframe decisions must not change with the rate point: sweep the QP, not a rate-control target
        sweep, m3_points = "keyframe_codec.hevc.qp", m3_points or list(QP_POINTS)
    if sweep is not None:  # every rate point must make a valid config, before any work is done
        from ..keyframe_codec import build_keyframe_codec

        probe = M3cvcCodec(args.profile, points=m3_points, sweep=sweep)
        for point in probe.rate_points():
            build_keyframe_codec(probe.point_config(point).keyframe_codec)
    if sweep not in (None, "keyframe_codec.hevc.qp", "keyframe_codec.avif.quality"):
        print(f"note: --sweep {sweep} may change the keyframes per rate point, so the keyframe strategies are "
              "matched at the profile's own settings only; see keyframes_per_clip in ablation.json", file=sys.stderr)
    counts = equal_keyframe_counts(plain.config, [load_clip(seq, opts, opts.out) for seq in dataset.present().sequences])
    rows = equalised_rows(rows, counts)
    for clip, c in counts.items():
        print(f"equal keyframe counts, {clip}: composite {c['composite']}, fixed-interval "
              f"{c['fixed-interval']['keyframes']} (interval {c['fixed-interval']['overrides']['keyframes.interval']}), "
              f"semantic-only {c['lambda1 != 0, lambda2 = 0']['keyframes']} "
              f"(threshold {c['lambda1 != 0, lambda2 = 0']['overrides']['keyframes.threshold']:.3f})")  # fmt: skip
    codecs, names = build_codecs(args.profile, rows, m3_points, sweep)
    anchor = build_codec("vvc", points.get("vvc"), **_codec_kwargs("vvc", args))
    csv_path, failures = _run_eval(dataset, [anchor, *codecs], opts, args)
    if failures:
        from .batch import report_failures

        return report_failures(failures, "points")
    results = group_by_dataset(csv_path.parent)[dataset.name]
    table = ablation_table(rows, names, results, "vvc", metric)
    print(format_table(table, "vvc", metric))
    out = write_report({"dataset": dataset.name, "metric": metric, "anchor": "vvc", "rows": table,
                        "equal_keyframe_counts": counts, "sweep": sweep}, csv_path.parent / "ablation.json")  # fmt: skip
    print(f"ablation: {out}")
    return 0



def metrics_main(argv: Sequence[str]) -> int:
    p = _parser("metrics", "List the quality metrics: which can run here, why not, and the weights each would use.")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_metric_options(p)
    args = p.parse_args(argv)
    import json

    from ..eval.metrics import METRIC_NAMES, SPECS, MetricSuite

    info = MetricSuite(METRIC_NAMES, metric_options(args)).info()
    tools = missing_tools()
    if args.json:
        print(json.dumps({"metrics": info, "reports": {k: tools.get(k, "available") for k in ("plots", "bdrate")}}, indent=1))
        return 0
    for name in METRIC_NAMES:
        entry = info[name]
        if entry["available"]:
            where = entry.get("path") or entry.get("model") or entry.get("implementation")
            print(f"  {name:<9} yes  {SPECS[name].label}: {where}")
        else:
            print(f"  {name:<9} no   {entry['reason']}")
    for what in ("plots", "bdrate"):
        print(f"  {what:<9} {'no   ' + tools[what] if what in tools else 'yes'}")
    return 0
