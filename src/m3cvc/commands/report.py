"""``m3cvc report``: an HTML page of a stream (``STREAM.m3c [--reference VIDEO]``) or of an eval
results folder (``RESULTS/``), self-contained and openable from the file system."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .codec import _parser, add_input_options, open_kwargs
from .eval import _add_metric_options, metric_options


def report_main(argv: Sequence[str]) -> int:
    p = _parser("report", "Write an HTML report of an .m3c stream or of an eval results folder (works offline).")
    p.add_argument("input", metavar="IN", help=".m3c stream, or a results folder written by `m3cvc eval --out`")
    p.add_argument("-o", "--output", required=True, metavar="OUT.html",
                   help="the page (a folder: FOLDER/index.html); its videos and figures go beside it in OUT_files/ "
                        "(an earlier report there is replaced)")  # fmt: skip
    p.add_argument("-y", "--overwrite", action="store_true",
                   help="replace OUT.html and OUT_files/ even if m3cvc report did not write them")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    g = p.add_argument_group("stream pages")
    g.add_argument("--reference", metavar="VIDEO",
                   help="the video the stream was encoded from: side-by-side, wipe and difference views, per-frame curves")
    g.add_argument("--metrics", help="per-frame metrics with --reference (default lpips,psnr,vmaf)")
    add_input_options(g)  # how to read the reference (a raw .yuv file's layout, its stream N)
    _add_metric_options(g)
    e = p.add_argument_group("eval pages")
    e.add_argument("--anchor", default="vvc", help="BD-rate anchor codec (default vvc)")
    e.add_argument("--no-stream-pages", action="store_true", help="do not build pages of the streams an eval run kept")
    args = p.parse_args(argv)
    source = Path(args.input)
    reading = [f"--{k.replace('_', '-')}" for k in ("input_size", "input_fps", "input_pix_fmt", "stream") if getattr(args, k) is not None]
    if source.is_dir():
        if args.reference or args.metrics or reading:
            raise InputError("--reference, --metrics and the options that read it are for a stream's page; an eval "
                             "folder's pages use the run's sources and per-frame values")  # fmt: skip
        from ..report.evaluation import write_eval_report

        out = write_eval_report(str(source), args.output, args.anchor, args.overwrite, not args.no_stream_pages,
                                progress=not args.quiet)  # fmt: skip
    else:
        from ..eval.metrics import parse_metrics
        from ..report import DEFAULT_METRICS, write_stream_report

        if args.metrics and not args.reference:
            raise InputError("--metrics needs --reference: per-frame quality compares the decoded frames with the original")
        if reading and not args.reference:
            raise InputError(f"{reading[0]} says how to read --reference, which is not given")
        args.metrics = args.metrics or ",".join(DEFAULT_METRICS)
        out = write_stream_report(
            args.input, args.output, args.reference, args.overwrite, parse_metrics(args.metrics), metric_options(args),
            progress=not args.quiet, open_kwargs=open_kwargs(args),
        )  # fmt: skip
    if not args.quiet:
        print(f"report: {out} (open it in a browser; its files are in {out.parent / (out.stem + '_files')})")
    return 0
