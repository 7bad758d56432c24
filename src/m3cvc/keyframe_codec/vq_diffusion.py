"""The ``vq-diffusion`` keyframe codec (paper II-C), full profile.

Encoder: RGB -> VAE encoder -> post-encoder -> nearest of 256 codebook vectors -> index map K*
-> ANS-coded with the learned causal-neighbour prior (the payload is just those bytes; the grid
follows from the frame size). Decoder: K* -> codebook -> post-decoder (upsampling to the latent
grid, z_hat) -> ``decoder`` mode:

- ``finetuned``: text-conditioned latent diffusion with z_hat as extra UNet input channels;
- ``img2img``: training-free, the stock SD UNet denoises z_hat re-noised to ``strength``;
- ``vae``: no diffusion, z_hat straight into the VAE decoder (what the benchmark measures);

then the VAE decoder. Models load lazily on first use; all settings travel in :meth:`params`.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Mapping, Optional

import numpy as np

from ..config import KeyframeCodecConfig, VQDiffusionOptions
from ..errors import BackendError, ConfigError, InputError
from .base import KeyframeCodec

DECODERS = ("finetuned", "img2img", "vae")
_OPTION_FIELDS = [f.name for f in fields(VQDiffusionOptions)]


def _validate(opts: VQDiffusionOptions) -> None:
    if not opts.checkpoint:
        raise ConfigError("keyframe_codec.vq_diffusion.checkpoint is not set: train one with "
                          "`m3cvc train keyframe-encoder` and point the option at its folder")
    if opts.decoder not in DECODERS:
        raise ConfigError(f"keyframe_codec.vq_diffusion.decoder must be one of {', '.join(DECODERS)}, got {opts.decoder!r}")
    if opts.scheduler not in ("ddim", "ddpm"):
        raise ConfigError(f"keyframe_codec.vq_diffusion.scheduler must be ddim or ddpm, got {opts.scheduler!r}")
    if opts.grid not in (None, "half", "full"):
        raise ConfigError(f"keyframe_codec.vq_diffusion.grid must be half or full, got {opts.grid!r}")
    from ..devices import check_device, check_dtype
    from .refine import check_sampler

    check_sampler("keyframe_codec.vq_diffusion", opts.steps, opts.strength, opts.guidance)
    check_device(opts.device, "keyframe_codec.vq_diffusion.device")
    check_dtype(opts.dtype, "keyframe_codec.vq_diffusion.dtype")


def _pad_to(frame: np.ndarray, multiple: int) -> np.ndarray:
    h, w = frame.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    return np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else frame


class VQDiffusionCodec(KeyframeCodec):
    name = "vq-diffusion"

    def __init__(self, options: VQDiffusionOptions, progress: bool = True) -> None:
        _validate(options)
        self.options = options
        self.progress = progress
        self._vq: Any = None
        self._vae: Any = None
        self._diffusion: Any = None

    # ---- construction / header params
    @classmethod
    def from_config(cls, cfg: KeyframeCodecConfig) -> "VQDiffusionCodec":
        return cls(cfg.vq_diffusion)

    def params(self) -> dict[str, Any]:
        # None is stored as "" (header values are scalars); the grid is resolved from the checkpoint
        from ..hub import stored_model_path

        values = {name: getattr(self.options, name) for name in _OPTION_FIELDS}
        values["grid"] = self.grid
        for name in ("checkpoint", "unet", "diffusion", "vae"):  # local folders as absolute paths
            if isinstance(values.get(name), str):
                values[name] = stored_model_path(values[name])
        return {k: ("" if v is None else v) for k, v in values.items()}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "VQDiffusionCodec":
        from ..config import from_dict

        data = {k: (None if v == "" else v) for k, v in params.items() if k in _OPTION_FIELDS}
        try:
            return cls(from_dict(VQDiffusionOptions, data, "vq-diffusion params"))
        except ConfigError as exc:
            raise BackendError(f"stream header: {exc}") from None

    @property
    def device(self) -> str:
        """Where the models run: ``options.device`` with ``auto`` resolved here (the header keeps ``auto``)."""
        from ..devices import torch_device

        return str(torch_device(self.options.device, "keyframe_codec.vq_diffusion.device"))

    # ---- lazily loaded models
    @property
    def vq(self) -> Any:
        if self._vq is None:
            from .vq_model import VQKeyframeModel

            model = VQKeyframeModel.from_pretrained(self.options.checkpoint, device=self.device)
            if self.options.grid and self.options.grid != model.config.grid:
                raise ConfigError(f"keyframe_codec.vq_diffusion.grid is {self.options.grid!r} but the checkpoint "
                                  f"{self.options.checkpoint} was trained for grid {model.config.grid!r}")
            self._vq = model
        return self._vq

    @property
    def grid(self) -> str:
        return self.vq.config.grid

    @property
    def vae(self) -> Any:
        if self._vae is None:
            from .vae import load_vae

            o, c = self.options, self.vq.config
            self._vae = load_vae(o.vae or c.vae, o.vae_kind or c.vae_kind, device=self.device, dtype=o.dtype,
                                 local_files_only=o.local_files_only)
            if self._vae.latent_channels != c.latent_channels:
                raise BackendError(f"the VAE has {self._vae.latent_channels} latent channels, the checkpoint "
                                   f"expects {c.latent_channels}")
        return self._vae

    @property
    def diffusion(self) -> Any:
        if self._diffusion is None:
            from .latent_diffusion import LatentDiffusionDecoder

            o = self.options
            self._diffusion = LatentDiffusionDecoder.from_pretrained(
                o.diffusion, o.decoder, o.unet, o.scheduler, self.device, o.dtype, o.local_files_only)
            self._diffusion.progress = self.progress
        return self._diffusion

    @property
    def multiple(self) -> int:
        """Pixels per index-map cell."""
        return self.vae.downscale * self.vq.config.factor

    def index_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        return math.ceil(shape[0] / self.multiple), math.ceil(shape[1] / self.multiple)

    # ---- coding
    def encode_indices(self, frame: np.ndarray) -> np.ndarray:
        """RGB uint8 frame -> index map K* (the part before entropy coding)."""
        from .train import images_to_tensor

        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 or min(frame.shape[:2]) < 1:
            raise InputError(f"keyframe must be RGB uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        latents = self.vae.encode(images_to_tensor([_pad_to(frame, self.multiple)]))
        return self.vq.encode_indices(latents.to(self.device))[0].cpu().numpy()

    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False) -> bytes:
        return self.vq.index_coder().encode(self.encode_indices(frame))

    def decode_latent(self, indices: np.ndarray, text: str = "") -> Any:
        """Index map -> z_hat, then the configured diffusion decoder (or none) -> latent."""
        import torch
        from torch.nn import functional as F

        z_hat = self.vq.decode_indices(torch.from_numpy(indices)[None].to(self.device))
        if self.options.decoder == "vae":
            return z_hat
        from .latent_diffusion import SamplerSettings, unet_multiple

        o = self.options
        m = unet_multiple(self.diffusion.unet)
        h, w = z_hat.shape[-2:]
        padded = F.pad(z_hat, (0, -w % m, 0, -h % m), mode="replicate")
        settings = SamplerSettings(steps=o.steps, guidance=o.guidance, seed=o.seed, strength=o.strength)
        return self.diffusion(padded, text, settings)[..., :h, :w]

    def decompress(self, data: bytes, shape: tuple[int, int], text: str = "") -> np.ndarray:
        indices = self.vq.index_coder().decode(data, self.index_shape(shape))
        rgb = self.vae.decode(self.decode_latent(indices, text))[0]
        out = ((rgb.permute(1, 2, 0).cpu().numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(out[: shape[0], : shape[1]])

    def ideal_bits(self, frame: np.ndarray) -> float:
        """The prior's ideal code length of this frame's index map (to compare with len(compress()))."""
        return self.vq.index_coder().ideal_bits(self.encode_indices(frame))


def codec_for(checkpoint: str, decoder: str = "vae", **overrides: Optional[Any]) -> VQDiffusionCodec:
    """Convenience constructor (benchmarks, tests): a codec over ``checkpoint`` with option overrides."""
    from dataclasses import replace

    return VQDiffusionCodec(replace(VQDiffusionOptions(checkpoint=checkpoint, decoder=decoder), **overrides))
