"""Generative clip reconstruction with image(+last image)+text video diffusion (paper II-D).

The decoded keyframe F_i (and, in interpolation mode, the next decoded keyframe F_{i+1}) and the
clip description D_i^C condition a diffusers video pipeline. A model generates windows of its own
frame count and size; this module maps them onto the clip:

* Time: the clip's frame ``i`` sits at ``t = i / length``; the next keyframe at ``t = 1``. A window
  covers ``cover`` clip frame intervals (all of them unless the clip is longer than the model's
  window, see below) and is generated with ``N >= cover + 1`` frames. The clip frame ``i`` of the
  window is read at generated position ``i * end / cover`` where ``end`` is the generated frame
  that corresponds to the window's end: ``cover`` when the model can put a condition on any frame
  (LTX) or in prediction, ``N - 1`` when the end condition sits on the last generated frame
  (Wan's ``last_image``). Fractional positions blend the two neighbouring generated frames.
* Space: the keyframes are resized to the model's generation size and the generated frames are
  resized back to the clip size with OpenCV.
* Long clips: split into chained windows of at most ``max_frames``; each window starts from the
  last generated frame of the previous one, and only the last window of an interpolated clip is
  conditioned on the next keyframe.
* Frame 0 is always the keyframe itself (bit-exact).

Pipelines are loaded lazily on the first clip with ``from_pretrained`` (hub id, HF cache or a local
folder written by ``save_pretrained``) and cached in the reconstructor. Every setting that changes
the output (mode, model id, steps, guidance, seed, sizes, dtype, ...) is in :meth:`params`, so the
decoder rebuilds the same reconstructor from the stream; given the same device it regenerates the
same frames (noise comes from a CPU ``torch.Generator`` seeded per window).

Extension point (a model that is not in diffusers, as SEINE in :mod:`m3cvc.reconstruct.seine`):
subclass :class:`VideoDiffusionReconstructor`, set ``name`` and ``options_class`` (a frozen
dataclass with at least ``model``, ``steps``, ``guidance``, ``negative_prompt``), and implement

* ``load_pipeline(model, dtype)``: build the model and return an object that
  :meth:`VideoDiffusionReconstructor._prepare_pipeline` may call ``.to(device)`` on;
* ``frame_multiple(pipe)`` and ``size_multiple(pipe)`` (frame counts ``k * multiple + 1``, sizes
  multiples of ``size_multiple``), or override ``window_frames`` / ``max_cover`` /
  ``generation_size`` for a model of one fixed shape, and ``end_position(frames, cover, has_end)``
  (where the next keyframe goes);
* ``generate(pipe, window)`` returning the :class:`Window` as a float array (frames, height,
  width, 3) in [0, 1];

then register it: ``RECONSTRUCTORS.register("name", "your.module:YourReconstructor")``.
"""

from __future__ import annotations

import dataclasses
import math
from abc import abstractmethod
from typing import Any, ClassVar, Iterator, Mapping, Optional

import cv2
import numpy as np

from ..config import ReconstructConfig, VideoDiffusionOptions
from ..errors import BackendError, BitstreamError, ConfigError, InputError
from .base import ClipReconstructor, read_params

from ..devices import DTYPES  # noqa: E402  (re-exported)

MAX_SEED = 2**62  # window k is seeded with seed + k: a torch.Generator seed must fit 64 bits
# what a config or a crafted stream header may ask of any backend (the decoder must not run away):
# above the published models' own settings (LTX 161 frames at 768x512, Wan 81 at 1280x720, 50 steps)
MAX_STEPS = 1000
MAX_WINDOW_FRAMES = 257
MAX_SIDE = 2048
MAX_AREA = 1280 * 720
MAX_TEXT_TOKENS = 1024  # the models' T5 contexts are 226..512 tokens


# --------------------------------------------------------------------------------------------
# frame-count / size arithmetic (pure, unit-tested)
def split_windows(length: int, max_cover: int) -> list[int]:
    """Split ``length`` frame intervals into near-equal chained windows of at most ``max_cover``."""
    if max_cover < 1:
        raise ConfigError(f"a generated window must cover at least one frame interval (got {max_cover})")
    count = max(1, math.ceil(length / max_cover))
    base, extra = divmod(length, count)
    return [base + (1 if k < extra else 0) for k in range(count)]


def frames_for(cover: int, multiple: int) -> int:
    """The smallest ``k * multiple + 1`` frame count (k >= 1) holding ``cover + 1`` frames."""
    return max(math.ceil(cover / multiple), 1) * multiple + 1


def fit_size(width: int, height: int, multiple: int, max_area: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down to at most ``max_area`` pixels, rounded to ``multiple``."""
    scale = min(1.0, math.sqrt(max_area / float(width * height))) if max_area > 0 else 1.0
    return (
        max(multiple, int(round(width * scale / multiple)) * multiple),
        max(multiple, int(round(height * scale / multiple)) * multiple),
    )


def bounded_size(width: int, height: int, multiple: int, max_area: int, max_side: int) -> tuple[int, int]:
    """``width`` x ``height`` (multiples of ``multiple``) shrunk so that no side exceeds ``max_side`` and the
    area ``max_area`` (extreme aspect ratios, where :func:`fit_size` keeps the short side at ``multiple``)."""
    width = min(width, max(multiple, max_side // multiple * multiple))
    height = min(height, max(multiple, max_side // multiple * multiple))
    if max_area > 0 and width * height > max_area:
        if width >= height:
            width = max(multiple, max_area // height // multiple * multiple)
        else:
            height = max(multiple, max_area // width // multiple * multiple)
    return width, height


def sample_window(generated: np.ndarray, cover: int, end: int) -> list[np.ndarray]:
    """The ``cover + 1`` frames at positions ``i * end / cover`` (linear blend between neighbours)."""
    if not 0 <= end < len(generated):
        raise BackendError(f"window end {end} outside the {len(generated)} generated frames")
    out = []
    for i in range(cover + 1):
        pos = i * end / cover if cover else 0.0
        lo = int(math.floor(pos))
        frac = pos - lo
        if frac < 1e-6 or lo + 1 >= len(generated):
            out.append(generated[lo])
        else:
            out.append((1.0 - frac) * generated[lo] + frac * generated[lo + 1])
    return out


def resize_rgb(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` resized to ``width`` x ``height`` (area filter when shrinking, else cubic)."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    shrink = width < frame.shape[1] and height < frame.shape[0]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def to_uint8(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A float [0, 1] RGB frame resized to ``width`` x ``height`` as uint8."""
    frame = resize_rgb(np.asarray(frame, dtype=np.float32), width, height)
    return np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# torch helpers (imported lazily)
def resolve_device(device: str) -> str:
    """The device name to run on (``auto`` resolved); a one-line BackendError when it is not usable here."""
    from ..devices import torch_device

    return str(torch_device(device, "reconstruct.diffusion.device"))


def resolve_dtype(dtype: str, device: str) -> Any:
    from ..devices import resolve_dtype as resolve

    return resolve(dtype, device, "reconstruct.diffusion.dtype")


def load_pretrained(pipeline_class: Any, model: str, dtype: Any, local_files_only: bool, key: str = "reconstruct.model") -> Any:
    """``pipeline_class.from_pretrained`` through :func:`m3cvc.hub.load_pipeline` (one-line errors, fast
    offline failure)."""
    from ..hub import load_pipeline

    return load_pipeline(pipeline_class, model, dtype, local_files_only, key)


# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Window:
    """One generation request: ``first`` (and ``last``, to be put at generated frame ``end``) are
    uint8 RGB images at the generation size ``width`` x ``height``."""

    first: np.ndarray
    last: Optional[np.ndarray]
    end: int
    text: str
    frames: int
    width: int
    height: int
    generator: Any


class VideoDiffusionReconstructor(ClipReconstructor):
    """Shared windowing, resampling, loading and caching; subclasses wrap one diffusers pipeline."""

    options_class: ClassVar[type]
    supports_interpolation: ClassVar[bool] = True

    def __init__(
        self,
        mode: str = "interpolation",
        options: Any = None,
        runtime: Optional[VideoDiffusionOptions] = None,
    ) -> None:
        super().__init__(mode)
        if mode == "interpolation" and not self.supports_interpolation:
            raise ConfigError(
                f"reconstruct backend {self.name!r} only predicts from the first keyframe; "
                "set reconstruct.mode to 'prediction' or choose ltx or wan for interpolation"
            )
        self.options = options if options is not None else self.options_class()
        self.runtime = runtime if runtime is not None else VideoDiffusionOptions()
        from ..devices import check_device

        check_device(self.runtime.device, "reconstruct.diffusion.device")
        if self.runtime.dtype not in DTYPES:
            raise ConfigError(f"reconstruct.diffusion.dtype: unknown dtype {self.runtime.dtype!r}; "
                              f"choose one of: {', '.join(DTYPES)}")
        if not 0 <= self.runtime.seed <= MAX_SEED:
            raise ConfigError(f"reconstruct.diffusion.seed must be in 0..{MAX_SEED} (got {self.runtime.seed})")
        self._check_bounds()
        self.check_options()
        self._pipe: Any = None

    def _check_bounds(self) -> None:
        """The limits every backend shares (module constants); one-line :class:`ConfigError`."""
        o, key = self.options, f"reconstruct.{self.name}"
        if not 1 <= o.steps <= MAX_STEPS:
            raise ConfigError(f"{key}.steps must be in 1..{MAX_STEPS} (got {o.steps})")
        if not (math.isfinite(o.guidance) and 0.0 <= o.guidance <= 100.0):
            raise ConfigError(f"{key}.guidance must be in 0..100 (got {o.guidance})")
        for name in ("num_frames", "max_frames"):
            value = getattr(o, name, 0)
            if not 0 <= value <= MAX_WINDOW_FRAMES:
                raise ConfigError(f"{key}.{name} must be in 0..{MAX_WINDOW_FRAMES} (got {value})")
        width, height = getattr(o, "width", 0), getattr(o, "height", 0)
        if not (0 <= width <= MAX_SIDE and 0 <= height <= MAX_SIDE and width * height <= MAX_AREA):
            raise ConfigError(f"{key}.width/height must be in 0..{MAX_SIDE} with at most {MAX_AREA} pixels "
                              f"(got {width}x{height})")
        if not 0 <= getattr(o, "max_area", 0) <= MAX_AREA:
            raise ConfigError(f"{key}.max_area must be in 0..{MAX_AREA} pixels (got {o.max_area})")
        if getattr(o, "max_frames", 2) < 2:
            raise ConfigError(f"{key}.max_frames must be at least 2 (got {o.max_frames})")
        if not 0 <= self.runtime.max_sequence_length <= MAX_TEXT_TOKENS:
            raise ConfigError(f"reconstruct.diffusion.max_sequence_length must be in 0..{MAX_TEXT_TOKENS} "
                              f"(got {self.runtime.max_sequence_length})")

    def check_options(self) -> None:
        """Backend-specific checks of ``self.options`` (raise :class:`ConfigError`); none by default."""

    # ---------------------------------------------------------------- config / params
    @classmethod
    def from_config(cls, cfg: ReconstructConfig) -> "VideoDiffusionReconstructor":
        return cls(cfg.mode, getattr(cfg, cls.name), cfg.diffusion)

    @property
    def model(self) -> str:
        return self.options.model

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode}
        out.update(dataclasses.asdict(self.options))
        out["model"] = self.model
        out.update(dataclasses.asdict(self.runtime))
        return out

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], runtime: Optional[VideoDiffusionOptions] = None
    ) -> "VideoDiffusionReconstructor":
        """Rebuild from header params; ``runtime`` overrides the stored device/memory settings.

        Unknown, wrongly typed or invalid stored settings raise :class:`BitstreamError`.
        """
        option_defaults = dataclasses.asdict(cls.options_class())
        runtime_defaults = dataclasses.asdict(VideoDiffusionOptions())
        values = read_params(cls.name, params, {"mode": "interpolation", **option_defaults, **runtime_defaults})
        options = cls.options_class(**{k: values[k] for k in option_defaults})
        stored = VideoDiffusionOptions(**{k: values[k] for k in runtime_defaults})
        try:
            return cls(values["mode"], cls._stored_options(options, params), runtime or stored)
        except ConfigError as exc:
            raise BitstreamError(f"{cls.name} reconstructor: invalid parameters in the stream header ({exc})") from None

    @classmethod
    def _stored_options(cls, options: Any, params: Mapping[str, Any]) -> Any:
        return options

    # ---------------------------------------------------------------- loading
    @abstractmethod
    def load_pipeline(self, model: str, dtype: Any) -> Any:
        """Load the diffusers pipeline (``load_pretrained(SomePipeline, model, ...)``)."""

    def pipeline(self) -> Any:
        """The cached pipeline, loaded on first use and placed on the device."""
        if self._pipe is None:
            device = resolve_device(self.runtime.device)
            self.use_pipeline(self.load_pipeline(self.model, resolve_dtype(self.runtime.dtype, device)))
        return self._pipe

    def use_pipeline(self, pipe: Any) -> None:
        """Use ``pipe`` (a pipeline of this backend's class, e.g. assembled in memory or with
        custom components) instead of loading ``model``; the runtime's device, offload and VAE
        settings are applied to it as to a loaded one."""
        self._pipe = self._prepare_pipeline(pipe, resolve_device(self.runtime.device))

    def _prepare_pipeline(self, pipe: Any, device: str) -> Any:
        from ..hub import place_pipeline

        rt = self.runtime
        place_pipeline(pipe, device, rt.cpu_offload, f"{self.name} steps")
        vae = getattr(pipe, "vae", None)
        if rt.vae_tiling and vae is not None:
            vae.enable_tiling()
        if rt.vae_slicing and vae is not None:
            vae.enable_slicing()
        return pipe

    # ---------------------------------------------------------------- model geometry
    def frame_multiple(self, pipe: Any) -> int:
        """Generated frame counts are ``k * frame_multiple + 1`` (the VAE's temporal factor)."""
        raise NotImplementedError

    def size_multiple(self, pipe: Any) -> int:
        """Generation width and height are multiples of this."""
        raise NotImplementedError

    def window_frames(self, pipe: Any, cover: int) -> int:
        """Frames to generate for a window covering ``cover`` clip intervals."""
        if self.options.num_frames > 0:
            return self.options.num_frames
        return frames_for(cover, self.frame_multiple(pipe))

    def max_cover(self, pipe: Any) -> int:
        """The most clip frame intervals one window may cover."""
        multiple = self.frame_multiple(pipe)
        fixed = self.options.num_frames
        if fixed > 0:
            if (fixed - 1) % multiple:
                raise ConfigError(f"reconstruct.{self.name}.num_frames must be k*{multiple}+1 (got {fixed})")
            return fixed - 1
        cover = (self.options.max_frames - 1) // multiple * multiple
        if cover < 1:
            raise ConfigError(f"reconstruct.{self.name}.max_frames must be at least {multiple + 1} for this model "
                              f"(got {self.options.max_frames})")
        return cover

    def generation_size(self, pipe: Any, width: int, height: int) -> tuple[int, int]:
        """The model's generation size for a clip of ``width`` x ``height``."""
        multiple = self.size_multiple(pipe)
        opts = self.options
        if opts.width > 0 or opts.height > 0:
            if opts.width <= 0 or opts.height <= 0 or opts.width % multiple or opts.height % multiple:
                raise ConfigError(
                    f"reconstruct.{self.name}.width/height must both be positive multiples of {multiple} "
                    f"(got {opts.width}x{opts.height}); 0x0 picks the size automatically"
                )
            return opts.width, opts.height
        return bounded_size(*fit_size(width, height, multiple, opts.max_area), multiple, opts.max_area, MAX_SIDE)

    def end_position(self, frames: int, cover: int, has_end: bool) -> int:
        """Generated index of the window's end (``t`` of the next window / keyframe)."""
        return cover

    def max_sequence_length(self, pipe: Any) -> dict[str, Any]:
        n = self.runtime.max_sequence_length
        return {"max_sequence_length": n} if n > 0 else {}

    @abstractmethod
    def generate(self, pipe: Any, window: Window) -> np.ndarray:
        """One window: float array (frames, height, width, 3) in [0, 1] (see :class:`Window`)."""

    def call_pipeline(self, pipe: Any, window: Window, **inputs: Any) -> np.ndarray:
        """``pipe(**inputs)`` with the prompt, size, frame count, steps, guidance and generator."""
        opts = self.options
        out = pipe(
            prompt=window.text,
            negative_prompt=opts.negative_prompt,
            height=window.height,
            width=window.width,
            num_frames=window.frames,
            num_inference_steps=opts.steps,
            guidance_scale=opts.guidance,
            generator=window.generator,
            output_type="np",
            **self.max_sequence_length(pipe),
            **inputs,
        )
        return out.frames[0]

    # ---------------------------------------------------------------- reconstruction
    def reconstruct(
        self, first: np.ndarray, following: Optional[np.ndarray], length: int, text: str = "", motion: Any = None
    ) -> Iterator[np.ndarray]:
        if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
            raise InputError(f"keyframe must be an RGB uint8 image, got {first.dtype} {first.shape}")
        if length < 1:
            return
        yield first
        if length == 1:
            return
        import torch

        pipe = self.pipeline()
        height, width = first.shape[:2]
        gen_w, gen_h = self.generation_size(pipe, width, height)
        end_frame = following if self.mode == "interpolation" else None
        if end_frame is not None and end_frame.shape != first.shape:
            raise InputError(f"next keyframe is {end_frame.shape}, the clip's keyframe {first.shape}")
        covers = split_windows(length, self.max_cover(pipe))
        start = resize_rgb(first, gen_w, gen_h)
        for k, cover in enumerate(covers):
            last_window = k == len(covers) - 1
            last = resize_rgb(end_frame, gen_w, gen_h) if (last_window and end_frame is not None) else None
            frames = self.window_frames(pipe, cover)
            generator = torch.Generator("cpu").manual_seed(self.runtime.seed + k)
            end = self.end_position(frames, cover, last is not None)
            window = Window(start, last, end, text, frames, gen_w, gen_h, generator)
            video = np.asarray(self.generate(pipe, window))
            if video.ndim != 4 or video.shape[0] != frames:
                raise BackendError(f"{self.name} pipeline returned {video.shape}, expected {frames} frames")
            if not np.isfinite(video).all():
                raise BackendError(f"{self.name} generated non-finite values (NaN / inf): broken weights, or a dtype "
                                   "too narrow for this model (try --dtype float32)")
            clip = sample_window(video, cover, end)
            # clip[0] is the start image the previous window already yielded (or the keyframe)
            for frame in clip[1:cover if last_window else cover + 1]:
                yield to_uint8(frame, width, height)
            if not last_window:
                start = np.clip(np.rint(clip[cover] * 255.0), 0, 255).astype(np.uint8)

    def close(self) -> None:
        """Drop the cached pipeline."""
        self._pipe = None
