"""The report page of one ``.m3c`` stream: what the codec kept, where every bit went, and (with the
video it was encoded from) how close the decoded frames are, frame by frame.

Every number about the stream comes from :func:`m3cvc.info.stream_info` (what ``m3cvc info --json``
prints); the page embeds that object as JSON (``<script id="m3cvc-info">``) next to the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence
from urllib.parse import quote

import numpy as np

from ..errors import InputError
from ..eval.metrics import LABELS, LOWER_IS_BETTER, MetricOptions
from ..info import stream_info
from .charts import budget_chart, per_frame_chart
from .media import DIFF_GAIN, browser_codec, difference_frames, jpeg, write_browser_video
from .site import GENERATOR, Site, environment

# the per-frame curves a stream page draws by default (the paper's metric first)
DEFAULT_METRICS = ("lpips", "psnr", "vmaf")
# a page holds the decoded (and original) frames in memory: refuse streams that would need more
MAX_FRAME_BYTES = 6 << 30

Step = Callable[[str], None]


def _no_step(_: str) -> None:
    pass


@dataclass
class StreamPageInputs:
    """What one stream page is made of. ``reference`` holds the original frames as the encoder saw
    them (preprocessed; same count and size as the stream) or None; ``per_frame`` metric values
    already measured (an eval run's), else they are measured here when there is a reference."""

    name: str
    data: bytes
    reference: Optional[list[np.ndarray]] = None
    reference_label: str = ""
    per_frame: Optional[Mapping[str, Sequence[Optional[float]]]] = None
    metrics: Sequence[str] = DEFAULT_METRICS
    metric_options: MetricOptions = field(default_factory=MetricOptions)
    links: Sequence[tuple[str, str]] = ()  # (text, url) shown at the top, e.g. back to an eval page
    reference_note: str = ""  # why there is no reference, when the caller knows (shown instead of the --reference hint)


def decode_frames(data: bytes) -> list[np.ndarray]:
    """Every decoded frame of the stream (H x W x 3 uint8 RGB), with the decoder's default limits."""
    from ..pipeline import Decoder

    return list(Decoder().open(data))


def read_reference(path: str, info: Mapping[str, Any], **open_kwargs: Any) -> list[np.ndarray]:
    """The frames of the video a stream was encoded from, preprocessed to the stream's size and frame
    rate as the encoder did; InputError when it gives another number of frames than the stream has."""
    from ..config import PreprocessConfig
    from ..video import read_frames

    from ..bitstream import MAGIC
    from ..fileio import check_input_file

    with open(check_input_file(path), "rb") as fh:
        if fh.read(len(MAGIC)) == MAGIC:
            raise InputError(f"reference {path} is an m3cvc stream; give the video the stream was encoded from")
    fps = Fraction(info["fps_fraction"])
    cfg = PreprocessConfig(width=info["width"], height=info["height"], fps=float(fps))
    frames = read_frames(path, cfg, **open_kwargs)
    if len(frames) != info["frames"]:
        raise InputError(
            f"reference {path} gives {len(frames)} frames at {info['width']}x{info['height']} @ {float(fps):g} fps, "
            f"the stream has {info['frames']}: is it the video the stream was encoded from?"
        )
    return frames


def _measure(inputs: StreamPageInputs, decoded: list[np.ndarray]) -> tuple[dict[str, list], dict[str, str]]:
    from ..eval.metrics import MetricSuite

    suite = MetricSuite(inputs.metrics, inputs.metric_options)
    _, per_frame = suite.measure(inputs.reference, decoded)
    return per_frame, suite.unavailable()


def _summary_rows(per_frame: Mapping[str, Sequence[Optional[float]]], keyframes: Sequence[int]) -> list[dict[str, Any]]:
    """Per metric: mean over all frames, over keyframes and over the frames in between."""
    rows = []
    kset = set(keyframes)
    for name, values in per_frame.items():
        vals = [(i, v) for i, v in enumerate(values) if v is not None and np.isfinite(v)]
        if not vals:
            continue

        def mean(sel: list[float]) -> Optional[float]:
            return float(np.mean(sel)) if sel else None

        rows.append({
            "metric": name,
            "label": LABELS.get(name, name),
            "better": "lower" if name in LOWER_IS_BETTER else "higher",
            "all": mean([v for _, v in vals]),
            "keyframes": mean([v for i, v in vals if i in kset]),
            "between": mean([v for i, v in vals if i not in kset]),
        })  # fmt: skip
    return rows


def build_stream_page(inputs: StreamPageInputs, media: Path, media_url: str, step: Step = _no_step) -> str:
    """Write the page's media into ``media`` (referenced as ``media_url/NAME``) and return its HTML."""
    info = stream_info(inputs.data)
    step("decode")
    decoded = decode_frames(inputs.data)
    fps = Fraction(info["fps_fraction"])
    _, _, mime = browser_codec()
    ext = "mp4" if "mp4" in mime else "webm"
    url = (lambda name: quote(f"{media_url}/{name}")) if media_url else quote

    step("videos")
    videos = {"decoded": url(write_browser_video(media / f"decoded.{ext}", decoded, fps).name)}
    if inputs.reference is not None:
        if len(inputs.reference) != len(decoded) or inputs.reference[0].shape != decoded[0].shape:
            raise InputError(f"{inputs.name}: the reference has {len(inputs.reference)} frames of "
                             f"{inputs.reference[0].shape[1]}x{inputs.reference[0].shape[0]}, the stream decodes to "
                             f"{len(decoded)} of {decoded[0].shape[1]}x{decoded[0].shape[0]}")  # fmt: skip
        videos["original"] = url(write_browser_video(media / f"original.{ext}", inputs.reference, fps).name)
        diff = difference_frames(inputs.reference, decoded)
        videos["difference"] = url(write_browser_video(media / f"difference.{ext}", diff, fps, crf=30).name)

    step("keyframes")
    keyframes = []
    for i, index in enumerate(info["keyframes"]):
        thumb = media / f"keyframe_{i:04d}.jpg"
        thumb.write_bytes(jpeg(decoded[index]))
        entry = {
            "number": i,
            "index": index,
            "time": index / float(fps),
            "bytes": info["keyframe_bytes"][i],
            "picture": info["keyframe_pictures"][i],
            "trigger": info["keyframe_triggers"][i],
            "clip_length": info["clip_lengths"][i],
            "keyframe_text": info["keyframe_texts"][i],
            "clip_text": info["clip_texts"][i],
            "thumb": url(thumb.name),
            "original_thumb": None,
        }
        if inputs.reference is not None:
            orig = media / f"original_keyframe_{i:04d}.jpg"
            orig.write_bytes(jpeg(inputs.reference[index]))
            entry["original_thumb"] = url(orig.name)
        keyframes.append(entry)

    per_frame: Mapping[str, Sequence[Optional[float]]] = inputs.per_frame or {}
    unavailable: dict[str, str] = {}
    if inputs.reference is not None and inputs.per_frame is None:
        step("metrics")
        per_frame, unavailable = _measure(inputs, decoded)
    step("charts")
    budget = url(budget_chart(media / "bit_budget.svg", info).name)
    chart = per_frame_chart(media / "per_frame.svg", per_frame, info["keyframes"])

    uses = info["decoder_uses_text"]
    text_note = None
    if uses["keyframes"] is False and uses["clips"] is False:
        text_note = (f"This stream's decoder ignores the texts: its keyframe codec ({info['keyframe_codec']['name']}) "
                     f"and clip reconstructor ({info['reconstructor']['name']}) use only the coded pictures. "
                     "The descriptions are carried (and counted in the bytes) for search and editing.")  # fmt: skip
    elif uses["clips"] is False:
        text_note = f"The clip reconstructor ({info['reconstructor']['name']}) ignores the clip descriptions D^C."
    elif uses["keyframes"] is False:
        text_note = f"The keyframe codec ({info['keyframe_codec']['name']}) ignores the keyframe descriptions D^F."
    has_text = any(info["keyframe_texts"]) or any(info["clip_texts"])

    step("page")
    return environment().get_template("stream.html.j2").render(
        generator=GENERATOR,
        title=f"{inputs.name}: m3cvc stream report",
        name=inputs.name,
        info=info,
        videos=videos,
        mime=mime,
        keyframes=keyframes,
        text_note=text_note,
        has_text=has_text,
        reference_label=inputs.reference_label,
        per_frame_chart=url(chart.name) if chart else None,
        per_frame=dict(per_frame),
        summary=_summary_rows(per_frame, info["keyframes"]),
        unavailable=unavailable,
        budget_chart=budget,
        diff_gain=DIFF_GAIN,
        links=list(inputs.links),
        reference_note=inputs.reference_note,
        page_data={"fps": float(fps), "frames": info["frames"], "keyframes": keyframes, "per_frame": dict(per_frame)},
    )


def write_stream_report(
    stream_path: str, output: str, reference: Optional[str] = None, overwrite: bool = False,
    metrics: Sequence[str] = DEFAULT_METRICS, metric_options: Optional[MetricOptions] = None,
    progress: bool = True, open_kwargs: Optional[Mapping[str, Any]] = None,
) -> Path:  # fmt: skip
    """``m3cvc report STREAM [--reference VIDEO] -o OUT.html``: the page and ``OUT_files/``, in place
    atomically. Errors: InputError for unreadable streams, a reference of other length, bad outputs."""
    from ..fileio import check_input_file

    data = check_input_file(stream_path).read_bytes()
    info = stream_info(data)  # a damaged stream fails here, before any work
    need = info["frames"] * info["width"] * info["height"] * 3 * (2 if reference else 1)
    if need > MAX_FRAME_BYTES:
        raise InputError(f"{stream_path}: {info['frames']} frames of {info['width']}x{info['height']} need "
                         f"{need / 2**30:.1f} GiB in memory for a report page (at most {MAX_FRAME_BYTES >> 30} GiB): "
                         "report a shorter clip")  # fmt: skip
    inputs = [stream_path] + ([reference] if reference else [])
    with Site(output, inputs, overwrite) as site, _Steps(progress, 6 + (reference is not None)) as step:
        ref = None
        if reference:
            step("reference")
            ref = read_reference(reference, info, **dict(open_kwargs or {}))
        page = StreamPageInputs(
            name=Path(stream_path).name, data=data, reference=ref, reference_label=Path(reference).name if reference else "",
            metrics=metrics, metric_options=metric_options or MetricOptions(),
        )  # fmt: skip
        html = build_stream_page(page, site.media, site.media_name, step)
        return site.finish(html)


class _Steps:
    """A progress bar over the report's steps (decode, videos, metrics...), with an ETA."""

    def __init__(self, enabled: bool, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="report", unit="step", disable=not enabled, leave=False)
        self.started = False

    def __call__(self, name: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_postfix_str(name)

    def __enter__(self) -> "_Steps":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()
