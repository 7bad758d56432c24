"""Regenerate the SEINE reference fixtures of ``tests/test_seine.py`` from the official source.

The fixtures pin m3cvc's own SEINE UNet (``m3cvc.reconstruct.seine_unet``) to the official
implementation without shipping it:

* ``tests/data/seine_sd14_keys.txt``: every state-dict key and shape of the official
  ``UNet3DConditionModel.from_pretrained_2d(..., use_concat=True)`` for Stable Diffusion v1.4's
  UNet config, i.e. the layout of the released ``seine.pt``'s ``ema`` entry;
* ``tests/data/seine_tiny_reference.npz``: the official UNet's output (float64) for a tiny config
  whose weights and inputs come from :func:`tiny_weights` / :func:`tiny_inputs` (numpy's seeded
  PCG64, stable across versions), so the test rebuilds the same numbers in our UNet; and the
  official samplers' results (``p_sample_loop`` and ``ddim_sample_loop`` of ``create_diffusion("25")``
  with the masked conditioning) for :func:`sampler_eps` standing in for the UNet, plus its 250-step
  respacing.

Needs a checkout of https://github.com/Vchitect/SEINE (Apache-2.0) and its imports
``rotary-embedding-torch==0.3.5`` and ``einops`` on ``sys.path`` (they are not m3cvc dependencies)::

    pip download --no-deps rotary-embedding-torch==0.3.5 einops -d /tmp/whl
    (cd /tmp/ref && for w in /tmp/whl/*.whl; do unzip -oq $w; done)
    PYTHONPATH=/tmp/ref python scripts/seine_reference.py /path/to/SEINE tests/data
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

# Stable Diffusion v1.4's unet/config.json (CompVis/stable-diffusion-v1-4), the config SEINE inflates
SD14_UNET = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
# a tiny config: 2 levels, one head of 32 / 64 features (the temporal attention rotates 32 of them)
TINY_UNET = {
    "act_fn": "silu", "attention_head_dim": 1, "block_out_channels": [32, 64], "cross_attention_dim": 16,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "layers_per_block": 1, "norm_num_groups": 8, "in_channels": 4, "out_channels": 4, "sample_size": 8,
}
TINY_SHAPE = (2, 9, 5, 7, 10)  # batch, channels (4 noisy + 1 mask + 4 masked latents), frames, height, width
TINY_TOKENS = 6
TINY_TIMESTEPS = (10, 500)


def tiny_weights(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic float64 weights for every key (sorted), scaled by 1/sqrt(fan-in)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key in sorted(shapes):
        shape = shapes[key]
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        values = rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))
        if key.endswith(("norm1.weight", "norm2.weight", "norm3.weight", "norm_temp.weight", "norm.weight",
                         "conv_norm_out.weight")):
            values = 1.0 + 0.1 * values  # norms near identity, as trained ones are
        out[key] = values
    return out


def tiny_inputs(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "sample": rng.standard_normal(TINY_SHAPE),
        "context": rng.standard_normal((TINY_SHAPE[0], TINY_TOKENS, TINY_UNET["cross_attention_dim"])),
        "timesteps": np.array(TINY_TIMESTEPS, dtype=np.int64),
    }


SAMPLER_STEPS = 25
SAMPLER_SHAPE = (1, 4, 3, 4, 4)  # latents (batch, channels, frames, height, width)
SAMPLER_SEED = 7  # torch seed of the per-step noise


def sampler_inputs(seed: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    b, _, f, h, w = SAMPLER_SHAPE
    mask = np.ones((b, 1, f, h, w))
    mask[:, :, 0] = 0.0
    return {"noise": rng.standard_normal(SAMPLER_SHAPE).astype(np.float32), "mask": mask.astype(np.float32),
            "masked": rng.standard_normal(SAMPLER_SHAPE).astype(np.float32)}


def sampler_eps(x: Any, t: Any) -> Any:
    """A closed-form stand-in for the UNet: a function of the 9 input channels and the timestep."""
    import torch

    scale = 1.0 + t.reshape(-1, 1, 1, 1, 1).to(x.dtype) / 1000.0
    return torch.tanh(0.5 * x[:, :4] - 0.25 * x[:, 4:5] + 0.3 * x[:, 5:9]) * scale


def official_unet(config: dict[str, Any]) -> Any:
    """The official model for ``config`` as ``from_pretrained_2d(use_concat=True)`` builds it."""
    from models.unet import UNet3DConditionModel

    cfg = dict(config)
    cfg["down_block_types"] = [t.replace("2D", "3D") for t in cfg["down_block_types"]]
    cfg["up_block_types"] = [t.replace("2D", "3D") for t in cfg["up_block_types"]]
    cfg["use_first_frame"] = False
    cfg["in_channels"] = 9
    return UNet3DConditionModel.from_config(cfg)


def main(seine_source: Path, out: Path) -> int:
    import torch

    sys.path.insert(0, str(seine_source))
    out.mkdir(parents=True, exist_ok=True)
    with torch.device("meta"):
        full = official_unet(SD14_UNET)
    lines = [f"{k} {'x'.join(map(str, v.shape))}" for k, v in full.state_dict().items()]
    (out / "seine_sd14_keys.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    torch.manual_seed(0)
    tiny = official_unet(TINY_UNET).double().eval()
    shapes = {k: tuple(v.shape) for k, v in tiny.state_dict().items()}
    tiny.load_state_dict({k: torch.from_numpy(v) for k, v in tiny_weights(shapes).items()})
    inputs = tiny_inputs()
    with torch.no_grad():
        result = tiny(torch.from_numpy(inputs["sample"]), torch.from_numpy(inputs["timesteps"]),
                      torch.from_numpy(inputs["context"])).sample
    from diffusion import create_diffusion
    from diffusion.respace import space_timesteps

    diffusion = create_diffusion(str(SAMPLER_STEPS))  # as with_mask_sample.py: DDPM, respaced
    s = {k: torch.from_numpy(v) for k, v in sampler_inputs().items()}
    torch.manual_seed(SAMPLER_SEED)
    sampled = diffusion.p_sample_loop(lambda x, t, **kw: sampler_eps(x, t), SAMPLER_SHAPE, s["noise"],
                                      clip_denoised=False, model_kwargs={}, device="cpu", mask=s["mask"],
                                      x_start=s["masked"], use_concat=True)
    ddim = diffusion.ddim_sample_loop(lambda x, t, **kw: sampler_eps(x, t), SAMPLER_SHAPE, s["noise"],
                                      clip_denoised=False, model_kwargs={}, device="cpu", mask=s["mask"],
                                      x_start=s["masked"], use_concat=True)
    np.savez_compressed(out / "seine_tiny_reference.npz", output=result.numpy(), sampled=sampled.numpy(),
                        ddim=ddim.numpy(),
                        timesteps_250=np.array(sorted(space_timesteps(1000, "250"), reverse=True)))
    print(f"{len(lines)} keys; tiny output {tuple(result.shape)} |mean| {result.abs().mean().item():.4f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: seine_reference.py SEINE_SOURCE OUT_DIR")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
