"""Orchestration: ``Encoder.encode(video) -> bytes`` and ``Decoder.decode(bytes) -> frames``.

Both stream. The encoder holds the current frame, the last keyframe and (only when a describer
looks at clips) the frames of the current clip; the decoder holds two decoded keyframes.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterator, Mapping, Optional, Union

import numpy as np

from .bitstream import DecodeLimits, Keyframe, SequenceHeader, StageInfo, Stream, read_stream, write_stream
from .config import M3Config
from .cpus import default_workers
from .describe import Describer, Descriptions, ManualDescriber, NoneDescriber, build_describer
from .errors import BitstreamError, ConfigError, InputError
from .keyframe_codec import build_keyframe_codec, keyframe_codec_from_params
from .keyframes import TRIGGERS, build_selector
from .reconstruct import build_reconstructor, reconstructor_from_params
from .reconstruct.detail import AUTO, DetailMeter, luma
from .reconstruct.motion import ClipMotion, decode_clip_motion, encode_clip_motion
from .video import PreprocessedVideo, VideoSource, open_video, preprocess

PARALLEL_CLIP_BYTES = 64 << 20  # the decoder holds at most this many bytes of frames in clips reconstructed ahead

PathLike = Union[str, "os.PathLike[str]"]


def _progress(total: Optional[int], desc: str, enabled: bool, unit: str = "frame") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False, dynamic_ncols=True)


@dataclass(frozen=True)
class EncodeResult:
    data: bytes
    stream: Stream
    seconds: float
    rate_plan: Optional[Any] = None  # m3cvc.ratecontrol.RatePlan when a target rate was set

    @property
    def frames(self) -> int:
        return self.stream.header.frames

    def sidecar_notes(self, cfg: M3Config) -> list[str]:
        """What the encoder chose where ``cfg`` (the config it was given) left the choice to it, as comment
        lines for the config sidecar (``encode`` and ``batch encode`` write the same)."""
        notes = []
        chosen_sharpen = self.stream.header.reconstructor.params.get("sharpen")
        if cfg.reconstruct.backend == "flow" and cfg.reconstruct.flow.sharpen == AUTO and chosen_sharpen is not None:
            notes.append(f"the encoder chose reconstruct.flow.sharpen {chosen_sharpen} (strength {chosen_sharpen / 10:g}, by GMSD of "
                         "its decoded keyframes); the file keeps -1, which chooses the same")  # fmt: skip
        if self.rate_plan is not None:
            c, key = self.rate_plan.chosen, self.rate_plan.spacing_key
            notes += [f"rate control chose keyframes.{key} {c.interval} and keyframe_codec.hevc.qp {c.qp} for the target;",
                      "the file keeps the target (rate.*), so encoding with it runs rate control again, which chooses the same"]  # fmt: skip
        return notes

    @property
    def keyframe_indices(self) -> tuple[int, ...]:
        return tuple(k.index for k in self.stream.keyframes)

    @property
    def bpp(self) -> float:
        h = self.stream.header
        return 8.0 * len(self.data) / (h.frames * h.width * h.height)


class Encoder:
    """Encodes a video with one config. Stateless between calls; deterministic."""

    def __init__(self, config: M3Config, describer: Optional[Describer] = None) -> None:
        self.config = config
        self._describer = describer

    def _open(self, video: Union[VideoSource, PathLike], open_kwargs: dict[str, Any]) -> tuple[VideoSource, bool]:
        if isinstance(video, VideoSource):
            return video, False
        return open_video(video, **open_kwargs), True

    def encode(
        self,
        video: Union[VideoSource, PathLike],
        *,
        descriptions: Optional[Descriptions] = None,
        progress: bool = False,
        **open_kwargs: Any,
    ) -> EncodeResult:
        """Encode ``video`` (a path or an opened source). ``descriptions`` overrides the describer.

        With a target rate (``rate.target_bpp`` / ``rate.target_kbps``) one analysis pass chooses keyframe
        spacing and QP first (:mod:`m3cvc.ratecontrol`) and, without a describer, has already assembled
        the stream; with one, the video is read a second time, so an opened source must be re-iterable (a
        path always is)."""
        cfg = self.config
        start = time.perf_counter()
        plan = None
        if cfg.rate.target_bpp or cfg.rate.target_kbps:
            cfg, plan = self._plan_rate(video, open_kwargs, progress)
            if plan.data is not None and descriptions is None and self._describer is None and cfg.describe.backend == "none":
                # the analysis ran this very encode (no texts): its stream is the output, byte for byte
                return EncodeResult(plan.data, plan.stream, time.perf_counter() - start, plan)
        selector = build_selector(cfg.keyframes)
        codec = build_keyframe_codec(cfg.keyframe_codec)
        reconstructor = build_reconstructor(cfg.reconstruct)
        if descriptions is not None:
            describer: Describer = ManualDescriber(descriptions)
        else:
            describer = self._describer or build_describer(cfg.describe)
        keep_clip_frames = not isinstance(describer, (NoneDescriber, ManualDescriber))
        detail = DetailCollector(codec) if getattr(reconstructor, "sharpen", None) == AUTO else None
        source, owned = self._open(video, open_kwargs)
        try:
            frames = preprocess(source, cfg.preprocess)
            hints = _HintCollector(reconstructor.motion_estimator(), cfg.reconstruct.mode == "interpolation",
                                   reconstructor.hint_trial())
            keyframes, kf_texts, clip_texts, count = self._run(
                frames, selector, codec, describer, keep_clip_frames, progress, hints, config=cfg, detail=detail
            )
            if detail is not None:
                reconstructor.sharpen = detail.choice()
        finally:
            if owned:
                source.close()
            if describer is not self._describer:
                describer.close()
        if descriptions is not None:
            try:
                descriptions.check_counts(len(keyframes), len(keyframes))
            except InputError as exc:
                if plan is None:
                    raise
                c = plan.chosen  # the user could not know the count: say where it came from
                raise InputError(f"{exc} (rate control chose {plan.spacing_key} {c.interval} and QP {c.qp} for the "
                                 f"target; `m3cvc encode` without --descriptions shows the keyframes)") from None  # fmt: skip
        stream, data = assemble(
            cfg, frames.width, frames.height, Fraction(frames.fps), count, codec, reconstructor,
            keyframes, kf_texts, clip_texts, hints.payload(),
        )  # fmt: skip
        return EncodeResult(data, stream, time.perf_counter() - start, plan)

    def _plan_rate(self, video: Union[VideoSource, PathLike], open_kwargs: dict[str, Any], progress: bool) -> tuple[M3Config, Any]:
        from . import ratecontrol

        source, owned = self._open(video, open_kwargs)
        try:
            frames = preprocess(source, self.config.preprocess)
            target = ratecontrol.target_bpp(self.config, frames.width, frames.height, Fraction(frames.fps))
            with _progress(frames.frame_count, "rate analysis", progress) as bar:
                # a second bar moves the cursor to redraw the first: only on a terminal (not in logs)
                nested = progress and sys.stderr.isatty()
                with _progress(None, "rate search", nested, unit="keyframe") as search:

                    def searched(n: int) -> None:  # the search's clock starts with its first keyframe
                        if search.n == 0 and n:
                            search.reset()
                        search.update(n)

                    plan = ratecontrol.plan(
                        self.config, frames, frames.width, frames.height, Fraction(frames.fps), target, bar.update,
                        search_progress=searched,
                    )
        finally:
            if owned:
                source.close()
        return ratecontrol.apply(self.config, plan), plan

    def segment(
        self,
        video: Union[VideoSource, PathLike],
        describer: Describer,
        *,
        progress: bool = False,
        **open_kwargs: Any,
    ) -> "Segmentation":
        """Keyframe selection and descriptions only, exactly as :meth:`encode` does them, with no
        keyframe coding (what ``m3cvc describe`` runs)."""
        source, owned = self._open(video, open_kwargs)
        try:
            frames = preprocess(source, self.config.preprocess)
            keyframes, kf_texts, clip_texts, count = self._run(
                frames, build_selector(self.config.keyframes), _NullCodec(), describer, True, progress,
                _HintCollector(None, False), label="describe",
            )
        finally:
            if owned:
                source.close()
        return Segmentation(
            tuple(k.index for k in keyframes), tuple(kf_texts), tuple(clip_texts), count,
            frames.width, frames.height, Fraction(frames.fps), tuple(TRIGGERS[k.trigger] for k in keyframes),
        )

    def _run(
        self,
        frames: PreprocessedVideo,
        selector: Any,
        codec: Any,
        describer: Describer,
        keep_clip_frames: bool,
        progress: bool,
        hints: "_HintCollector",
        label: str = "encode",
        config: Optional[M3Config] = None,
        detail: Optional["DetailCollector"] = None,
    ) -> tuple[list[Keyframe], list[str], list[str], int]:
        track = _Track(config or self.config, selector, codec, describer, keep_clip_frames, hints, detail)
        with _progress(frames.frame_count, label, progress) as bar:
            for index, frame in enumerate(frames):
                track.feed(index, frame)
                bar.update(1)
        return track.finish()


def assemble(
    config: M3Config, width: int, height: int, fps: Fraction, count: int, codec: Any, reconstructor: Any,
    keyframes: list[Keyframe], kf_texts: list[str], clip_texts: list[str], motion: Optional[bytes],
) -> tuple[Stream, bytes]:
    """The stream and its bytes, exactly as :meth:`Encoder.encode` writes them (rate control sizes its
    candidates with this too)."""
    header = SequenceHeader(
        width=width, height=height, fps=fps, frames=count, num_keyframes=len(keyframes), profile=config.profile,
        keyframe_codec=StageInfo(codec.name, codec.params()),
        reconstructor=StageInfo(reconstructor.name, reconstructor.params()), max_clip=longest_clip(config.keyframes),
    )  # fmt: skip
    stream = Stream(header, tuple(keyframes), tuple(kf_texts), tuple(clip_texts), motion)
    return stream, write_stream(stream, config.text.codec)


def longest_clip(keyframes: Any) -> int:
    """The most frames a clip can have under a keyframe config (the selector forces a keyframe then)."""
    return keyframes.interval if keyframes.selector == "fixed" else keyframes.max_interval


class _Track:
    """One keyframe decision sequence fed frame by frame: selection, scene cuts, descriptions, keyframe
    coding and motion hints. :meth:`Encoder.encode` runs one; rate control runs several over one pass."""

    def __init__(
        self, config: M3Config, selector: Any, codec: Any, describer: Describer, keep_clip_frames: bool,
        hints: "_HintCollector", detail: Optional["DetailCollector"] = None,
    ) -> None:  # fmt: skip
        from .keyframes.cuts import SceneCutDetector

        self.config, self.selector, self.codec, self.describer = config, selector, codec, describer
        self.keep_clip_frames, self.hints, self.detail = keep_clip_frames, hints, detail
        self.cuts = SceneCutDetector(config.keyframes.cut_threshold)
        self.keyframes: list[Keyframe] = []
        self.kf_texts: list[str] = []
        self.clip_texts: list[str] = []
        self.clip: list[np.ndarray] = []
        self.last_kf: Optional[np.ndarray] = None
        self.last: Optional[np.ndarray] = None
        self.count = 0
        selector.reset()

    def _trigger(self, index: int) -> int:
        """What made frame ``index`` a keyframe (an index into TRIGGERS; the selector's last score)."""
        score = self.selector.last_score
        if score is None or score.index != index or not score.keyframe:
            return 0
        return TRIGGERS.index(score.trigger)

    def _add_keyframe(self, index: int, frame: np.ndarray) -> None:
        self.hints.keyframe(frame)
        if self.keyframes:
            self.clip_texts.append(self.describer.describe_clip(len(self.clip_texts), self.clip, self.kf_texts[-1]))
        text = self.describer.describe_keyframe(len(self.keyframes), frame, self.last_kf)
        # a keyframe after a scene cut is coded as a fresh intra picture (inter keyframe codecs)
        trigger = self._trigger(index)
        unit = self.codec.compress(frame, text, intra=self.cuts.take())
        if self.detail is not None:
            self.detail.keyframe(luma(frame), unit)
        self.keyframes.append(Keyframe(index, unit, trigger))
        self.kf_texts.append(text)
        self.last_kf, self.clip = frame, [frame]

    def feed(self, index: int, frame: np.ndarray) -> None:
        self.cuts.update(frame)
        if self.selector.is_keyframe(index, frame) or index == 0:
            self._add_keyframe(index, frame)
        else:
            self.hints.frame(frame)
            if self.keep_clip_frames:
                self.clip.append(frame)
        self.last, self.count = frame, index + 1

    def finish(self) -> tuple[list[Keyframe], list[str], list[str], int]:
        count, last = self.count, self.last
        if count == 0 or last is None:
            raise InputError("the input video has no frames")
        tail = (
            self.config.reconstruct.mode == "interpolation"
            and self.config.keyframes.tail_keyframe
            and self.keyframes[-1].index != count - 1
        )
        if tail:
            if self.keep_clip_frames and self.clip and self.clip[-1] is last:
                self.clip.pop()  # the last frame becomes the next keyframe, not part of this clip
            self.hints.drop_last_frame()  # ... and is measured again as the next keyframe
            self._add_keyframe(count - 1, last)
        self.clip_texts.append(self.describer.describe_clip(len(self.clip_texts), self.clip, self.kf_texts[-1]))
        return self.keyframes, self.kf_texts, self.clip_texts, count


@dataclass(frozen=True)
class Segmentation:
    """Where the keyframes are and what the describer said (no coded data)."""

    keyframes: tuple[int, ...]
    keyframe_texts: tuple[str, ...]
    clip_texts: tuple[str, ...]
    frames: int
    width: int
    height: int
    fps: Fraction
    triggers: tuple[str, ...] = ()  # what made each keyframe (m3cvc.keyframes.TRIGGERS)


class _NullCodec:
    """Keyframe "codec" for :meth:`Encoder.segment`: nothing is compressed."""

    name = "none"

    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False) -> bytes:
        return b""


class DetailCollector:
    """Encoder side of the detail restoration (:mod:`m3cvc.reconstruct.detail`): each keyframe unit is decoded
    as the decoder will (the keyframe codec's units in order) and compared with its source luma."""

    def __init__(self, codec: Any) -> None:
        self.decoder = keyframe_codec_from_params(codec.name, codec.params())
        self.meter = DetailMeter()

    def keyframe(self, source: np.ndarray, unit: bytes) -> None:
        """``source``: the keyframe's luma plane (:func:`~m3cvc.reconstruct.detail.luma`); ``unit``: its bytes."""
        self.meter.add(source, self.decoded(unit, source.shape[:2]))

    def decoded(self, unit: bytes, shape: tuple[int, int]) -> np.ndarray:
        """The next keyframe unit decoded as the decoder will, as a luma plane of ``shape`` (units in order)."""
        return luma(self.decoder.decompress(unit, shape))

    def choice(self) -> int:
        return self.meter.choice()


class _HintCollector:
    """Encoder side of the motion hints: one :class:`ClipMotion` per clip (nothing without an estimator).

    With a trial (the hint check and timing search of :class:`~m3cvc.reconstruct.flow.HintTrial`), each clip
    is tried when it ends, from its frames at the trial size held in memory (one clip of them). ``keep`` /
    ``load`` defer the trials to :meth:`payload`: ``keep(small)`` stores a frame at the trial size elsewhere
    and returns a handle, ``load(handle)`` gives it back. Rate control defers them, so that the spacings
    whose chains it never codes are never tried; the payload is the same either way."""

    def __init__(
        self, estimator: Any, link: bool, trial: Any = None,
        keep: Optional[Callable[[np.ndarray], Any]] = None, load: Optional[Callable[[Any], np.ndarray]] = None,
    ) -> None:  # fmt: skip
        self.estimator = estimator
        self.link = link  # interpolation: measure each next keyframe against the previous one
        self.trial = trial if estimator is not None and link else None  # FlowReconstructor.hint_trial()
        self.keep, self.load = (keep, load) if keep is not None and load is not None else (None, None)
        # the clips so far; a deferred one is (its untried hints, its frames' handles, the next keyframe's)
        self.clips: list[Union[ClipMotion, tuple[ClipMotion, list[Any], Any]]] = []
        self._vectors: list[np.ndarray] = []
        self._small: list[Any] = []  # with a trial: the clip's keyframe and frames at the trial size (or handles)
        self._started = False
        self._ended = False  # the last clip is closed (the video has ended)

    def _small_of(self, frame: np.ndarray) -> Any:
        small = self.trial.small(frame)
        return small if self.keep is None else self.keep(small)

    def keyframe(self, frame: np.ndarray) -> None:
        if self.estimator is None:
            return
        small = self._small_of(frame) if self.trial is not None else None
        if self._started:  # the previous clip ends here
            linked = False
            if self.link and self._vectors:  # a clip of one frame draws nothing between its keyframes: no link
                vector, linked = self.estimator.measure(frame)
                if linked:
                    self._vectors.append(vector)
            self._close(linked, small)
        self._started = True
        self.estimator.start(frame)
        if small is not None:
            self._small = [small]

    def frame(self, frame: np.ndarray) -> None:
        if self.estimator is not None:
            self._vectors.append(self.estimator.measure(frame)[0])
            if self.trial is not None:
                self._small.append(self._small_of(frame))

    def drop_last_frame(self) -> None:
        if self.estimator is not None:
            self._vectors.pop()
            if self.trial is not None:
                self._small.pop()

    def _close(self, linked: bool, following: Any = None) -> None:
        """End the clip; ``following``: the next keyframe at the trial size (with a trial; a handle when deferred)."""
        vectors = np.array(self._vectors, np.int64).reshape(-1, 8)
        clip = ClipMotion(vectors, linked)
        if self.trial is not None and following is not None and len(self._small) > 1:
            if self.keep is None:
                self.clips.append(self.trial.tried(self._small[0], following, self._small[1:], clip))
            else:
                self.clips.append((clip, self._small, following))
        else:
            self.clips.append(clip)
        self._vectors, self._small = [], []

    def _resolved(self, clip: Union[ClipMotion, tuple[ClipMotion, list[Any], Any]]) -> ClipMotion:
        if isinstance(clip, ClipMotion):
            return clip
        hints, handles, following = clip
        load = self.load
        return self.trial.tried(load(handles[0]), load(following), [load(h) for h in handles[1:]], hints)

    def try_clips(self, abandon: Optional[Callable[[], bool]] = None) -> bool:
        """Run the deferred trials, one clip at a time (its frames in memory only while it is tried); with
        ``abandon``, asked before each clip, stop early when it is true (rate control: every chain of the
        round was cut short, so the hints are not needed yet). Tried clips stay tried: a later call goes on
        where this one stopped. True when every clip is tried. The video must have ended."""
        if self.estimator is None:
            return True
        if not self._ended:
            self._close(False)
            self._ended = True
        for i, clip in enumerate(self.clips):
            if not isinstance(clip, ClipMotion):
                if abandon is not None and abandon():
                    return False
                self.clips[i] = self._resolved(clip)
        return True

    def payload(self) -> Optional[bytes]:
        """The motion-hint payload of every clip (the deferred trials run first): the stream's clip-motion unit."""
        if self.estimator is None:
            return None
        self.try_clips()
        return encode_clip_motion(self.clips)


def clip_motions(stream: Stream) -> list[Optional[ClipMotion]]:
    """Each clip's motion hints (parsed and checked: BitstreamError), or Nones for a stream without them."""
    kfs = stream.keyframes
    if stream.clip_motion is None:
        return [None] * len(kfs)
    ends = [k.index for k in kfs[1:]] + [stream.header.frames]
    return list(decode_clip_motion(stream.clip_motion, [e - k.index for k, e in zip(kfs, ends)], stream.version))


@dataclass
class DecodedVideo:
    """A parsed stream whose frames are produced lazily by iterating."""

    stream: Stream
    frames: Iterator[np.ndarray]

    @property
    def header(self) -> SequenceHeader:
        return self.stream.header

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames


@dataclass(frozen=True)
class DecodeOverrides:
    """Settings of the decoding machine that the stream header cannot know: where the models run
    (``device``, ``dtype``, ``cpu_offload``: models kept in CPU memory and moved to the GPU while
    they run) and where their files live here (``model_paths``: pairs of a path as
    stored in the header and the local path that replaces it). They are applied to the keyframe
    codec's and the reconstructor's header params before those stages are built; stages without
    such settings (AVIF, flow) are not affected. A different dtype or device can change the
    generated pixels slightly: decoding is reproducible for a given seed, device and dtype."""

    device: Optional[str] = None
    dtype: Optional[str] = None
    model_paths: tuple[tuple[str, str], ...] = ()
    cpu_offload: Optional[bool] = None  # model CPU offload on the GPU (refiner, video diffusion)

    def __post_init__(self) -> None:
        for old, new in self.model_paths:
            if not old or not new:
                raise ConfigError(f"model path mapping needs OLD=NEW with both parts, got {old!r}={new!r}")

    @classmethod
    def parse_model_paths(cls, items: Optional[list[str]]) -> tuple[tuple[str, str], ...]:
        """``["OLD=NEW", ...]`` (command-line form) -> pairs; a malformed item is a ConfigError."""
        pairs = []
        for item in items or ():
            old, sep, new = item.partition("=")
            if not sep or not old or not new:
                raise ConfigError(f"--model-path wants OLD=NEW (a path stored in the stream = a local path), got {item!r}")
            pairs.append((old, new))
        return tuple(pairs)

    def apply(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        for key, value in (("device", self.device), ("dtype", self.dtype), ("cpu_offload", self.cpu_offload)):
            if value is not None and key in out:
                out[key] = value
        for key, value in out.items():
            if isinstance(value, str) and key not in ("device", "dtype", "mode"):
                out[key] = self._remap(value)
        return out

    def _remap(self, value: str) -> str:
        """The first mapping whose OLD is the value, a folder above it, or the value after a
        backend prefix such as ``taef2:``."""
        scheme, sep, rest = value.partition(":")
        prefixed = bool(sep) and scheme.isalnum() and "/" not in scheme and len(scheme) > 1
        head, path = (scheme + sep, rest) if prefixed else ("", value)
        for old, new in self.model_paths:
            base = old.rstrip("/") or old
            if path == old or path == base:
                return head + new
            if path.startswith(base + "/"):
                return head + new.rstrip("/") + path[len(base):]
        return value


class Decoder:
    """Decodes any .m3c stream: every backend and setting comes from the stream header (with the
    decoding machine's :class:`DecodeOverrides`, if any)."""

    def __init__(
        self, overrides: Optional[DecodeOverrides] = None, limits: Optional[DecodeLimits] = None, workers: int = 0
    ) -> None:
        """``workers``: threads that reconstruct clips ahead of the one being read, for reconstructors whose
        clips are independent (``flow``; 0: the CPUs this process may use, at most 8; 1: one clip at a time),
        holding at most ``PARALLEL_CLIP_BYTES`` (64 MiB) of frames ahead. The frames are the same whatever
        the count."""
        self.overrides = overrides or DecodeOverrides()
        self.limits = limits or DecodeLimits()
        if workers < 0:
            raise ConfigError(f"decoder workers must be >= 0 (0 = one per CPU), got {workers}")
        self.workers = workers

    def open(self, data: bytes) -> DecodedVideo:
        """Parse and check the whole stream (structure, bounds, the user's limits, motion hints) before
        any frame is made; frames are made as the returned video is iterated."""
        stream = read_stream(data)
        self.limits.check(stream.header)
        h = stream.header  # the backends the header names, with its settings (BitstreamError if unknown)
        codec = keyframe_codec_from_params(h.keyframe_codec.name, self.overrides.apply(h.keyframe_codec.params))
        recon = reconstructor_from_params(h.reconstructor.name, self.overrides.apply(h.reconstructor.params))
        return DecodedVideo(stream, self._frames(stream, clip_motions(stream), codec, recon))

    def decode(self, data: bytes) -> Iterator[np.ndarray]:
        return iter(self.open(data))

    def _frames(
        self, stream: Stream, motions: list[Optional[ClipMotion]], codec: Any, recon: Any
    ) -> Iterator[np.ndarray]:
        h = stream.header
        recon.set_video_fps(h.fps)
        shape = (h.height, h.width)
        kfs = stream.keyframes

        def decode_keyframe(i: int) -> np.ndarray:
            frame = codec.decompress(kfs[i].data, shape, stream.keyframe_texts[i])
            if frame.shape != (h.height, h.width, 3) or frame.dtype != np.uint8:
                raise BitstreamError(f"keyframe {i} decoded to {frame.shape} {frame.dtype}")
            return frame

        def clip(i: int, current: np.ndarray, following: Optional[np.ndarray], length: int) -> Iterator[np.ndarray]:
            extra = {} if motions[i] is None else {"motion": motions[i]}
            produced = 0
            for frame in recon.reconstruct(current, following, length, stream.clip_texts[i], **extra):
                produced += 1
                yield frame
            if produced != length:
                raise RuntimeError(f"{recon.name} reconstructor gave {produced} frames for a clip of {length}")

        workers = (self.workers or default_workers()) if recon.independent_clips else 1
        # clips reconstructed ahead are held in memory: at most ``workers`` of them and PARALLEL_CLIP_BYTES of
        # frames in all (a larger clip streams frame by frame, in order, as with one worker)
        ahead: deque[tuple[Any, int]] = deque()  # (future of the clip's frames, their bytes)
        held = 0
        pool = ThreadPoolExecutor(workers, thread_name_prefix="m3cvc-clip") if workers > 1 else None
        try:
            following = decode_keyframe(0)
            for i, kf in enumerate(kfs):
                current = following
                last = i + 1 == len(kfs)
                end = h.frames if last else kfs[i + 1].index
                following = None if last else decode_keyframe(i + 1)  # the keyframe chain decodes in order
                length = end - kf.index
                size = length * h.width * h.height * 3
                big = pool is None or size > PARALLEL_CLIP_BYTES
                while ahead and (big or len(ahead) >= workers or held + size > PARALLEL_CLIP_BYTES):
                    future, done = ahead.popleft()
                    held -= done
                    yield from future.result()
                if big:
                    yield from clip(i, current, following, length)
                    continue
                assert pool is not None
                ahead.append((pool.submit(lambda *a: list(clip(*a)), i, current, following, length), size))
                held += size
            while ahead:
                yield from ahead.popleft()[0].result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
