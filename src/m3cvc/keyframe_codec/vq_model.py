"""The keyframe encoder checkpoint: post-encoder + 256-entry codebook + post-decoder + prior.

Saved as ``model.safetensors`` + ``config.json`` by :meth:`VQKeyframeModel.save_pretrained` and
loaded by :meth:`VQKeyframeModel.from_pretrained(dir)`. The config also names the VAE whose
latent space the model was trained in, so a codec can be rebuilt from the folder alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from ..errors import BackendError
from .post_encoder import GRIDS, PostDecoder, PostEncoder
from .prior import CausalPrior, IndexCoder
from .vq import VectorQuantizer

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class VQModelConfig:
    latent_channels: int = 4
    grid: str = "half"  # half (latent/2, the paper's 32x32) | full (latent/1, 64x64)
    channels: int = 128
    blocks: int = 3
    code_dim: int = 32
    codebook_size: int = 256
    prior_embed: int = 64
    prior_hidden: int = 256
    vae: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # the latent space it was trained in
    vae_kind: str = "autoencoderkl"

    @property
    def factor(self) -> int:
        return GRIDS[self.grid]


def save_safetensors_dir(folder: Union[str, Path], module: nn.Module, config: dict[str, Any]) -> Path:
    """Write ``config.json`` + ``model.safetensors`` atomically (temp name, then rename)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = folder / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(folder / WEIGHTS_NAME)
    tmp = folder / (CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(folder / CONFIG_NAME)
    return folder


def read_config(folder: Union[str, Path]) -> dict[str, Any]:
    path = Path(folder) / CONFIG_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise BackendError(f"no checkpoint at {folder} (missing {CONFIG_NAME})") from None
    except json.JSONDecodeError as exc:
        raise BackendError(f"{path} is not valid JSON: {exc}") from None


class VQKeyframeModel(nn.Module):
    def __init__(self, config: VQModelConfig) -> None:
        super().__init__()
        if config.grid not in GRIDS:
            raise BackendError(f"unknown grid {config.grid!r}; choose one of: {', '.join(GRIDS)}")
        self.config = config
        c = config
        self.post_encoder = PostEncoder(c.latent_channels, c.channels, c.code_dim, c.grid, c.blocks)
        self.post_decoder = PostDecoder(c.latent_channels, c.channels, c.code_dim, c.grid, c.blocks)
        self.quantizer = VectorQuantizer(c.codebook_size, c.code_dim)
        self.prior = CausalPrior(c.codebook_size, c.prior_embed, c.prior_hidden)

    # ---- inference
    @torch.no_grad()
    def encode_indices(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled VAE latents (N, C, h, w) -> index maps K* (N, h/f, w/f)."""
        return self.quantizer.quantize(self.post_encoder(latents))

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Index maps -> z_hat on the latent grid (codebook lookup, then the post-decoder)."""
        return self.post_decoder(self.quantizer.lookup(indices))

    def index_coder(self) -> IndexCoder:
        return IndexCoder(self.prior.numpy_model())

    # ---- training
    def forward(self, latents: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.post_encoder(latents)
        quantized = self.quantizer(h)
        z_hat = self.post_decoder(quantized.q)
        return {
            "h": h,
            "indices": quantized.indices,
            "commit": quantized.commit,
            "recon": torch.mean((z_hat - latents) ** 2),
            "z_hat": z_hat,
        }

    # ---- checkpoints
    def save_pretrained(self, folder: Union[str, Path]) -> Path:
        return save_safetensors_dir(folder, self, {"model_type": "m3cvc-vq-keyframe", **asdict(self.config)})

    @classmethod
    def from_pretrained(cls, folder: Union[str, Path], device: str = "cpu") -> "VQKeyframeModel":
        from safetensors.torch import load_file

        raw = read_config(folder)
        known = {f.name for f in fields(VQModelConfig)}
        model = cls(VQModelConfig(**{k: v for k, v in raw.items() if k in known}))
        try:
            model.load_state_dict(load_file(str(Path(folder) / WEIGHTS_NAME)), strict=True)
        except (OSError, RuntimeError) as exc:
            raise BackendError(f"cannot load the VQ keyframe model from {folder}: {str(exc).splitlines()[0]}") from None
        return model.to(device).eval()
