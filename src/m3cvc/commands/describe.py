"""``m3cvc describe IN -o transcript.json``: keyframe selection + the description dialogue, no coding.

The transcript holds every turn of every dialogue (prompt, answer, seconds) and the final
D^F / D^C. Keyframes are chosen exactly as ``m3cvc encode`` chooses them with the same options,
so the transcript can be edited and passed back with ``encode --descriptions transcript.json``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ..describe import Describer, build_describer
from ..describe.dialogue import STRATEGIES
from ..errors import InputError
from ..fileio import write_text_atomic
from .codec import (
    _parser,
    add_config_options,
    add_keyframe_options,
    add_output_options,
    add_preprocess_options,
    check_new_output,
    config_from_args,
    open_kwargs,
)

if TYPE_CHECKING:
    from ..pipeline import Segmentation


class _Reporting(Describer):
    """Forwards to a describer and prints one line per described keyframe / clip."""

    def __init__(self, inner: Describer, enabled: bool) -> None:
        self.inner = inner
        self.enabled = enabled

    def _report(self, what: str, index: int, start: float, text: str) -> None:
        if self.enabled:
            from tqdm import tqdm

            tqdm.write(f"{what} {index}: {time.perf_counter() - start:.1f} s, {len(text)} chars", file=sys.stderr)

    def describe_keyframe(self, index: int, frame: np.ndarray, previous: Optional[np.ndarray]) -> str:
        start = time.perf_counter()
        text = self.inner.describe_keyframe(index, frame, previous)
        self._report("keyframe", index, start, text)
        return text

    def describe_clip(self, index: int, frames: Sequence[np.ndarray], keyframe_text: str) -> str:
        start = time.perf_counter()
        text = self.inner.describe_clip(index, frames, keyframe_text)
        self._report("clip", index, start, text)
        return text


def main(argv: Sequence[str]) -> int:
    p = _parser("describe", "Select keyframes and run the description dialogue; write a JSON transcript.")
    p.add_argument("input", metavar="IN", help="input video")
    add_output_options(p)
    add_config_options(p)
    add_preprocess_options(p)
    add_keyframe_options(p)
    p.add_argument("--describer", metavar="NAME", help="qwen-vl | openai | manual (default: the config's)")
    p.add_argument("--prompts", metavar="FILE", help="YAML prompts overriding the shipped ones")
    p.add_argument("--strategy", choices=STRATEGIES, help="multi-round dialogue (default) or one prompt")
    p.add_argument("--descriptions", metavar="FILE", help="texts for the manual describer")
    args = p.parse_args(argv)
    from ..config import with_overrides
    from ..pipeline import Encoder

    out = check_new_output(args.output, [args.input], args.overwrite)
    cfg = config_from_args(args)
    if args.descriptions:
        cfg = with_overrides(cfg, describe={"descriptions": args.descriptions, "backend": args.describer or "manual"})
    if cfg.describe.backend == "none":
        raise InputError("describe needs a describer: pass --describer qwen-vl, openai or manual (or set describe.backend)")
    describer = build_describer(cfg.describe)
    start = time.perf_counter()
    try:
        # the encoder's own keyframe / clip segmentation, without coding anything
        seg = Encoder(cfg).segment(
            args.input, _Reporting(describer, not args.quiet), progress=not args.quiet, **open_kwargs(args)
        )
    finally:
        describer.close()
    transcript = _transcript(args.input, cfg, describer, seg)
    transcript["descriptions"] = {"keyframes": list(seg.keyframe_texts), "clips": list(seg.clip_texts)}
    transcript["seconds"] = round(time.perf_counter() - start, 3)
    write_text_atomic(out, json.dumps(transcript, indent=2, ensure_ascii=False) + "\n", [args.input])
    if not args.quiet:
        print(f"{out}: {len(seg.keyframes)} keyframes and clips described by {cfg.describe.backend} "
              f"in {transcript['seconds']:.1f} s")
    return 0


def _transcript(path: str, cfg: Any, describer: Describer, seg: "Segmentation") -> dict:
    indices, count = list(seg.keyframes), seg.frames
    # clip i is frames [start, stop): its keyframe up to (not including) the next keyframe
    clips = [{"start": s, "stop": e} for s, e in zip(indices, [*indices[1:], count])]
    dialogue = describer.transcript() if hasattr(describer, "transcript") else {}
    return {
        "kind": "m3cvc-transcript",
        "version": 1,
        "input": str(path),
        "width": seg.width,
        "height": seg.height,
        "fps": float(seg.fps),
        "frames": count,
        "keyframe_frames": indices,
        "keyframe_triggers": list(seg.triggers),
        "clip_frames": clips,
        "backend": cfg.describe.backend,
        "model": dialogue.get("model", ""),
        "strategy": cfg.describe.strategy,
        "prompts": cfg.describe.prompts or "default",
        "turns": {"keyframes": dialogue.get("keyframes", []), "clips": dialogue.get("clips", [])},
    }
