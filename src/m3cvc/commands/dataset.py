"""``m3cvc dataset build VIDEOS_DIR -o DATASET_DIR``: keyframe image + text pairs for training."""

from __future__ import annotations

from typing import Any, Sequence

from ..config import with_overrides
from .codec import _parser, add_config_options, add_preprocess_options, config_from_args
from .batch import add_executor_options, executor_from_args, report_failures
from .subcommands import dispatch

_USAGE = "usage: m3cvc dataset build VIDEOS_DIR -o DATASET_DIR [options]"


def build_main(argv: Sequence[str]) -> int:
    p = _parser("dataset build", "Preprocess every video of a folder, pick semantic keyframes (lambda2 = 0), "
                "describe each, and write image + text pairs with a manifest.jsonl.")
    p.add_argument("videos", metavar="VIDEOS_DIR", help="folder of videos (searched recursively)")
    p.add_argument("-o", "--output", required=True, metavar="DATASET_DIR", help="dataset folder (created)")
    add_config_options(p)
    add_preprocess_options(p)
    p.add_argument("--describer", metavar="NAME", help="describer backend (none, manual, qwen-vl, openai)")
    p.add_argument("--descriptions", metavar="FILE", help="texts for the manual describer")
    p.add_argument("--threshold", type=float, help="semantic keyframe threshold (default: the config's)")
    p.add_argument("--force", action="store_true", help="redo videos an earlier run already did (default: resume)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_executor_options(p)
    args = p.parse_args(argv)
    from ..keyframe_codec.dataset import build_dataset

    cfg = config_from_args(args)
    describe: dict[str, Any] = {"descriptions": args.descriptions} if args.descriptions else {}
    if args.descriptions and not args.describer:
        describe["backend"] = "manual"
    kf = {"threshold": args.threshold} if args.threshold is not None else {}
    cfg = with_overrides(cfg, describe=describe, keyframes=kf)
    with executor_from_args(args) as executor:
        result = build_dataset(args.videos, args.output, cfg, not args.quiet, executor, args.retries,
                               args.gpus_per_task, args.force)  # fmt: skip
    if not args.quiet:
        videos = len({s.video for s in result.samples})
        done = f" ({result.skipped} done by an earlier run)" if result.skipped else ""
        print(f"{len(result.samples)} keyframes from {videos} videos -> {args.output}{done}")
    return report_failures(result.failed, "videos", "")


SUBCOMMANDS = {"build": build_main}


def main(argv: Sequence[str]) -> int:
    return dispatch("dataset", _USAGE, SUBCOMMANDS, argv)
