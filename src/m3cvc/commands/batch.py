"""``m3cvc batch encode | decode``: every file of a folder, on any executor, with a manifest; and the
executor options every batch command shares (eval, ablate, batch, dataset build)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .codec import (
    _parser,
    add_codec_options,
    add_config_options,
    add_decode_machine_options,
    add_keyframe_options,
    add_preprocess_options,
    config_from_args,
    decode_overrides,
    open_kwargs,
)
from .subcommands import dispatch

_USAGE = "usage: m3cvc batch encode IN_DIR -o OUT_DIR [options] | m3cvc batch decode IN_DIR -o OUT_DIR [options]"


def add_executor_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scale-out (see README: Running at scale)")
    g.add_argument("--executor", default="local", choices=("local", "process", "ray"),
                   help="local: here, one task at a time (default); process: a pool of worker processes; ray: a Ray cluster")
    g.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (process) or CPUs of the local Ray m3cvc starts (ray without --ray-address); default: all CPUs")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (HOST:6379, or auto: the one `ray start` runs here) instead of starting one")
    g.add_argument("--gpus-per-task", type=float, metavar="G",
                   help="ray: GPUs each task asks for (fractions share a GPU; default: 1 where a model stage runs on CUDA, else 0)")
    g.add_argument("--retries", type=int, default=1, metavar="R", help="retries of a task that failed unexpectedly (default 1)")


def executor_from_args(args: argparse.Namespace) -> Any:
    from ..errors import ConfigError
    from ..executors import create_executor

    if args.retries < 0:
        raise ConfigError(f"--retries must be >= 0, got {args.retries}")
    if args.gpus_per_task is not None and args.executor != "ray":
        raise ConfigError("--gpus-per-task needs --executor ray (a process pool gives each worker one GPU of its own)")
    return create_executor(args.executor, args.workers, args.ray_address)


def report_failures(failed: Sequence[tuple[str, str]], what: str, recorded: str = "") -> int:
    """Print each failed task on one line (in task-name order); exit status 1 if any failed, else 0."""
    for key, error in sorted(failed):
        print(f"failed: {key}: {error}", file=sys.stderr)
    if failed:
        noun = what if len(failed) != 1 else what.rstrip("s")
        where = f" (listed above{', and in ' + recorded if recorded else ''})"
        print(f"{len(failed)} {noun} failed{where}; the rest are done. Running the same command again retries "
              "them (a bad input fails again until it is fixed).", file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


def _summary(result: Any, executor: Any, quiet: bool) -> None:
    if quiet:
        return
    s = result.summary
    print(f"{result.manifest}: {s['ok']} of {s['files']} files ok, {s['failed']} failed; ran {result.ran}, "
          f"skipped {result.skipped} done before; {s['wall_seconds']:.1f} s on {executor.describe()}")


def encode_main(argv: Sequence[str]) -> int:
    p = _parser("batch encode", "Encode every video under IN_DIR into OUT_DIR/<same path>.m3c, with a manifest.json.")
    p.add_argument("input", metavar="IN_DIR", help="folder of videos (searched recursively)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder (created)")
    add_config_options(p)
    add_preprocess_options(p)
    add_keyframe_options(p)
    add_codec_options(p)
    p.add_argument("--force", action="store_true", help="redo files already coded by an earlier run")
    p.add_argument("--no-config-out", action="store_true",
                   help="do not write OUT_DIR/<path>.m3c.yaml, the config that re-creates each stream")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_executor_options(p)
    args = p.parse_args(argv)
    from ..batch import batch_encode

    cfg = config_from_args(args)
    with executor_from_args(args) as executor:
        protect = (Path(args.config).resolve(),) if args.config else ()
        result = batch_encode(Path(args.input), Path(args.output), cfg, executor, args.force, args.retries,
                              not args.quiet, args.gpus_per_task, not args.no_config_out, protect, open_kwargs(args),
                              log=lambda line: print(line, file=sys.stderr))  # fmt: skip
        _summary(result, executor, args.quiet)
    return report_failures(result.failed, "files", "the manifest")


def decode_main(argv: Sequence[str]) -> int:
    p = _parser("batch decode", "Decode every .m3c under IN_DIR into OUT_DIR/<same path>.<format>, with a manifest.json.")
    p.add_argument("input", metavar="IN_DIR", help="folder of .m3c streams (searched recursively)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder (created)")
    p.add_argument("--format", default="y4m", choices=("y4m", "mp4", "mkv"),
                   help="y4m: exact decoded frames (default); mp4 / mkv: H.264 for viewing")
    p.add_argument("--force", action="store_true", help="redo files already decoded by an earlier run")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_decode_machine_options(p)
    add_executor_options(p)
    args = p.parse_args(argv)
    from ..batch import batch_decode

    overrides = decode_overrides(args)
    with executor_from_args(args) as executor:
        result = batch_decode(Path(args.input), Path(args.output), args.format, executor, args.force, args.retries,
                              not args.quiet, args.gpus_per_task, overrides)  # fmt: skip
        _summary(result, executor, args.quiet)
    return report_failures(result.failed, "files", "the manifest")


SUBCOMMANDS = {"encode": encode_main, "decode": decode_main}


def main(argv: Sequence[str]) -> int:
    return dispatch("batch", _USAGE, SUBCOMMANDS, argv)
