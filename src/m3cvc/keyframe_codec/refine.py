"""Decoder-side refinement of decoded keyframes by a public text-to-image model (training-free).

The ``full`` profile codes its keyframes with lite's keyframe coder (the HEVC keyframe chain, or AVIF)
and, on decode, passes each decoded keyframe through a diffusers image-to-image pipeline
(``AutoPipelineForImage2Image``: Stable Diffusion 1.5 by default; any model diffusers maps to an
image-to-image pipeline works) with the keyframe's text D^F as the prompt. The decoded keyframe is
re-noised to ``strength`` of the schedule and denoised in ``int(steps * strength)`` steps, so a low
strength keeps the picture's layout and colours (what the bits carry) and lets the model restore
texture the coarse coding lost (what the text and the model's prior carry). Nothing is trained:
this is the paper's keyframe decoder idea (II-C, a text-conditioned diffusion decoder fed by a
compact keyframe representation) with a public model, where the ``paper`` profile needs a trained VQ
checkpoint (:mod:`.vq_diffusion`).

Refinement sits outside the keyframe codec's prediction loop: the HEVC chain predicts each keyframe
from the previous *unrefined* decoded keyframe, exactly what the encoder coded against, and only the
refined picture goes on to clip reconstruction. The encoder never runs the model.

In the stream the keyframe codec is named ``<inner>+img2img`` (``hevc+img2img``, ``avif+img2img``), so
a decoder without this stage refuses the stream instead of silently skipping the refinement; its
params are the inner codec's plus every setting of :class:`~m3cvc.config.RefineOptions` but
``backend`` (``device``, ``dtype``, ``cpu_offload`` and ``local_files_only`` describe the decoding
machine and may be overridden there; ``m3cvc decode --device/--dtype``). The same stream, seed,
device and dtype give the same pixels.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Mapping, Optional

import numpy as np

from ..config import RefineOptions
from ..errors import BitstreamError, ConfigError
from .base import KeyframeCodec

REFINERS = ("none", "img2img")
MAX_STEPS = 500  # a crafted stream cannot ask for more (the decoder must not run away); below the 1000 train steps
DEFAULT_MULTIPLE = 64  # Stable Diffusion: VAE /8, then three UNet downsamplings


def check_sampler(key: str, steps: int, strength: float, guidance: float) -> None:
    """The ranges every diffusion decoder's stored sampler settings must keep (a crafted stream cannot
    make the decoder run away): ConfigError naming ``key`` and the setting."""
    if isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"{key}.steps must be in 1..{MAX_STEPS}, got {steps}")
    if not (math.isfinite(strength) and 0 < strength <= 1):
        raise ConfigError(f"{key}.strength must be in (0, 1], got {strength}")
    if not (math.isfinite(guidance) and 0 <= guidance <= 100):
        raise ConfigError(f"{key}.guidance must be in 0..100, got {guidance}")


def check_refine_options(o: RefineOptions, key: str = "keyframe_codec.refine") -> None:
    """ConfigError naming the key of the first invalid setting."""
    from ..devices import check_device, check_dtype

    if o.backend not in REFINERS:
        raise ConfigError(f"{key}.backend must be one of {', '.join(REFINERS)}, got {o.backend!r}")
    check_sampler(key, o.steps, o.strength, o.guidance)
    if int(o.steps * o.strength) < 1:
        raise ConfigError(f"{key}: steps x strength must leave at least one denoising step "
                          f"({o.steps} x {o.strength} = {o.steps * o.strength:g})")  # fmt: skip
    if not 0 <= o.seed < 2**63:
        raise ConfigError(f"{key}.seed must be in 0..2^63-1, got {o.seed}")
    check_dtype(o.dtype, f"{key}.dtype")
    check_device(o.device, f"{key}.device")
    if not o.model:
        raise ConfigError(f"{key}.model is empty: set it to a hub id or a local folder")


class Img2ImgRefiner:
    """A diffusers image-to-image pipeline that refines RGB uint8 keyframes; loaded on first use."""

    KEY = "keyframe_codec.refine.model"

    def __init__(self, options: RefineOptions, progress: bool = True) -> None:
        check_refine_options(options)
        self.options = options
        self.progress = progress
        self._pipe: Any = None
        self._device: Optional[str] = None

    def use_pipeline(self, pipe: Any) -> None:
        """Use ``pipe`` (an image-to-image pipeline built in memory) instead of loading ``options.model``;
        device and offload settings are applied to it as to a loaded one."""
        from ..devices import resolve_device
        from ..hub import place_pipeline

        self._device = resolve_device(self.options.device)
        place_pipeline(pipe, self._device, self.options.cpu_offload, "keyframe refine", self.progress)
        self._pipe = pipe

    def pipeline(self) -> Any:
        if self._pipe is None:
            from diffusers import AutoPipelineForImage2Image

            from ..devices import resolve_dtype, torch_device
            from ..hub import load_pipeline

            device = torch_device(self.options.device, "keyframe_codec.refine.device")
            dtype = resolve_dtype(self.options.dtype, device, "keyframe_codec.refine.dtype")
            # a codec's decoder must return what it decoded: no safety checker blacking out pictures
            pipe = load_pipeline(AutoPipelineForImage2Image, self.options.model, dtype, self.options.local_files_only,
                                 self.KEY, safety_checker=None, requires_safety_checker=False)  # fmt: skip
            self.use_pipeline(pipe)
        return self._pipe

    @staticmethod
    def size_multiple(pipe: Any) -> int:
        """Picture sizes the pipeline takes without resizing: the VAE's factor times the UNet's
        downsamplings (or 2 for latent-packing transformers such as FLUX)."""
        vae = int(getattr(pipe, "vae_scale_factor", 8) or 8)
        unet = getattr(pipe, "unet", None)
        if unet is not None:
            return vae * 2 ** (len(unet.config.block_out_channels) - 1)
        return vae * 2 if getattr(pipe, "transformer", None) is not None else DEFAULT_MULTIPLE

    def refine(self, frame: np.ndarray, text: str) -> np.ndarray:
        """RGB uint8 ``(H, W, 3)`` + the keyframe text -> the refined RGB uint8 ``(H, W, 3)``.

        The picture is padded by edge replication to the pipeline's size multiple and cropped back, so
        the model sees it at its own resolution (no resampling)."""
        import torch
        from PIL import Image

        pipe = self.pipeline()
        o = self.options
        h, w = frame.shape[:2]
        m = self.size_multiple(pipe)
        padded = np.pad(frame, ((0, -h % m), (0, -w % m), (0, 0)), mode="edge")
        kwargs: dict[str, Any] = {}
        if o.guidance > 1 and o.negative_prompt:
            kwargs["negative_prompt"] = o.negative_prompt
        with torch.inference_mode():
            out = pipe(
                prompt=text, image=Image.fromarray(padded), strength=o.strength, num_inference_steps=o.steps,
                guidance_scale=o.guidance, generator=torch.Generator("cpu").manual_seed(o.seed), output_type="np",
                **kwargs,
            )  # fmt: skip
        image = np.asarray(out.images[0], dtype=np.float32)
        if image.shape[:2] != padded.shape[:2]:
            raise RuntimeError(f"the refiner returned {image.shape[1]}x{image.shape[0]} for {padded.shape[1]}x{padded.shape[0]}")
        return np.clip(np.rint(image[:h, :w] * 255.0), 0, 255).astype(np.uint8)


def refine_params(o: RefineOptions) -> dict[str, Any]:
    """What goes into the stream header (every setting but ``backend``; a local model folder as an
    absolute path)."""
    from ..hub import stored_model_path

    out = dataclasses.asdict(o)
    out.pop("backend")
    out["model"] = stored_model_path(o.model)
    return out


class RefinedKeyframeCodec(KeyframeCodec):
    """An hevc/avif keyframe codec whose decoded keyframes are refined by :class:`Img2ImgRefiner`.

    Encoding is the inner codec's alone; ``decompress`` decodes with the inner codec (in stream order,
    so its references stay unrefined) and then refines."""

    inner_name: ClassVar[str] = ""

    def __init__(self, inner: KeyframeCodec, options: RefineOptions, progress: bool = True) -> None:
        if options.backend != "img2img":
            raise ConfigError(f"keyframe_codec.refine.backend must be img2img here, got {options.backend!r}")
        self.inner = inner
        self.options = options
        self.refiner = Img2ImgRefiner(options, progress)

    def params(self) -> dict[str, Any]:
        out = dict(self.inner.params())
        out.update(refine_params(self.options))
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "RefinedKeyframeCodec":
        from ..registry import read_params
        from . import KEYFRAME_CODECS

        defaults = refine_params(RefineOptions())
        inner_params = {k: v for k, v in params.items() if k not in defaults}
        values = read_params(f"{cls.name} keyframe codec", {k: v for k, v in params.items() if k in defaults}, defaults)
        options = RefineOptions(backend="img2img", **values)
        try:
            check_refine_options(options)
        except ConfigError as exc:
            raise BitstreamError(f"{cls.name} keyframe codec: invalid parameters in the stream header ({exc})") from None
        inner = KEYFRAME_CODECS.resolve(cls.inner_name).from_params(inner_params)  # type: ignore[attr-defined]
        return cls(inner, options)

    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False) -> bytes:
        return self.inner.compress(frame, text, intra=intra)

    def decompress(self, data: bytes, shape: tuple[int, int], text: str = "") -> np.ndarray:
        return self.refiner.refine(self.inner.decompress(data, shape, text), text)


class HevcImg2ImgCodec(RefinedKeyframeCodec):
    name = "hevc+img2img"
    inner_name = "hevc"


class AvifImg2ImgCodec(RefinedKeyframeCodec):
    name = "avif+img2img"
    inner_name = "avif"


REFINED = {"hevc": HevcImg2ImgCodec, "avif": AvifImg2ImgCodec}
