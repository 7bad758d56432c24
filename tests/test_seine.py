"""SEINE, the paper's clip reconstruction model: our UNet against the official one, the strict
checkpoint loader, both masked modes, windows, and an Encoder -> Decoder run.

The official source is not shipped; ``scripts/seine_reference.py`` ran it once to write
``tests/data/seine_sd14_keys.txt`` (the released checkpoint's key layout) and
``tests/data/seine_tiny_reference.npz`` (official outputs for seeded tiny weights and inputs).
Everything else runs on tiny random models saved as the official checkpoint is and loaded back
through the backend's own loader. Random weights: geometry, conditioning and reproducibility are
checked, never quality.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TEST_DEVICE, synthetic_frames, write_video
from m3cvc.config import ReconstructConfig, SeineOptions, VideoDiffusionOptions
from m3cvc.errors import BackendError, BitstreamError, ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
import seine_reference as ref  # noqa: E402  (the fixtures' recipe: configs, seeded weights and inputs)

RUNTIME = VideoDiffusionOptions(device=TEST_DEVICE, dtype="float32", local_files_only=True)
STEPS = 2


# ------------------------------------------------------------------ the UNet against the official code
def test_seine_unet_has_the_official_checkpoint_key_layout_for_sd14():
    from m3cvc.reconstruct.seine_unet import SeineUNet3D

    with torch.device("meta"):
        unet = SeineUNet3D.from_sd_config(ref.SD14_UNET)
    ours = [f"{k} {'x'.join(map(str, v.shape))}" for k, v in unet.state_dict().items()]
    official = (DATA / "seine_sd14_keys.txt").read_text(encoding="utf-8").splitlines()
    assert len(official) == 830
    assert ours == official  # same names, shapes and order: seine.pt's 'ema' loads with no renaming
    assert "conv_in.weight 320x9x3x3" in ours  # noisy latent + mask + masked latents
    assert sum("attn_temp.rotary_emb.freqs 16" in line for line in ours) == 16  # one per transformer block


def test_seine_unet_forward_equals_the_official_forward():
    from m3cvc.reconstruct.seine_unet import SeineUNet3D

    unet = SeineUNet3D.from_sd_config(ref.TINY_UNET).double().eval()
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    unet.load_state_dict({k: torch.from_numpy(v) for k, v in ref.tiny_weights(shapes).items()})
    inputs = ref.tiny_inputs()
    with torch.no_grad():
        out = unet(torch.from_numpy(inputs["sample"]), torch.from_numpy(inputs["timesteps"]),
                   torch.from_numpy(inputs["context"])).sample.numpy()
    expected = np.load(DATA / "seine_tiny_reference.npz")["output"]
    assert out.shape == expected.shape == (2, 4, 5, 7, 10)  # odd latent height: forwarded upsample size
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9)


def test_seine_sampler_equals_the_official_ddpm_loop():
    from m3cvc.reconstruct.seine_pipeline import denoise, seine_scheduler, spaced_timesteps

    reference = np.load(DATA / "seine_tiny_reference.npz")
    assert spaced_timesteps(250) == reference["timesteps_250"].tolist()
    assert spaced_timesteps(250)[:2] == [999, 995] and spaced_timesteps(250)[-1] == 0
    s = {k: torch.from_numpy(v) for k, v in ref.sampler_inputs().items()}
    seen = []

    def eps(x, t):
        seen.append(x.shape[1])
        return ref.sampler_eps(x, t)

    out = denoise(eps, s["noise"], s["mask"], s["masked"], seine_scheduler(), ref.SAMPLER_STEPS,
                  torch.Generator().manual_seed(ref.SAMPLER_SEED))
    assert seen == [9] * ref.SAMPLER_STEPS  # [latent, mask, masked latents] at every step
    np.testing.assert_allclose(out.numpy(), reference["sampled"], rtol=1e-5, atol=1e-3)
    ddim = denoise(ref.sampler_eps, s["noise"], s["mask"], s["masked"], seine_scheduler(), ref.SAMPLER_STEPS,
                   torch.Generator().manual_seed(99), sampler="ddim")  # eta 0: the generator is not used
    np.testing.assert_allclose(ddim.numpy(), reference["ddim"], rtol=1e-5, atol=1e-4)
    assert np.abs(ddim.numpy() - out.numpy()).max() > 1.0  # a different sampler, not the same loop
    with pytest.raises(BackendError):
        spaced_timesteps(1001)
    with pytest.raises(BackendError, match="sampler"):
        denoise(ref.sampler_eps, s["noise"], s["mask"], s["masked"], seine_scheduler(), 2, None, sampler="euler")


# ------------------------------------------------------------------ checkpoint loading
@pytest.fixture(scope="module")
def tiny_seine(tmp_path_factory):
    """``(seine.pt, base folder)`` of a tiny random SEINE saved as the official checkpoint is."""
    from tiny_models import build_tiny_seine

    return build_tiny_seine(tmp_path_factory.mktemp("tiny_seine"))


def _unet_config(base: Path) -> dict:
    from m3cvc.reconstruct.seine_unet import SeineUNet3D

    return dict(SeineUNet3D.load_config(str(base), subfolder="unet"))


def test_seine_checkpoint_loads_strictly_and_bad_ones_are_one_line_errors(tiny_seine, tmp_path):
    from m3cvc.reconstruct.seine_pipeline import load_unet, resolve_checkpoint

    ckpt, base = tiny_seine
    config = _unet_config(base)
    state = torch.load(ckpt, weights_only=True)["ema"]
    unet = load_unet(ckpt, config, "k")
    assert all(torch.equal(unet.state_dict()[k], v) for k, v in state.items())
    assert resolve_checkpoint(str(ckpt.parent), "k", True) == ckpt  # a folder holding seine.pt
    # other containers of the same weights: a plain state dict, 'model', DDP's 'module.' prefix
    for name, obj in {"plain": state, "model": {"model": state}, "ddp": {"ema": {"module." + k: v for k, v in state.items()}}}.items():
        torch.save(obj, tmp_path / f"{name}.pt")
        assert torch.equal(load_unet(tmp_path / f"{name}.pt", config, "k").conv_in.weight, state["conv_in.weight"])

    def fails(obj, match):
        path = tmp_path / "bad.pt"
        torch.save(obj, path)
        with pytest.raises(BackendError, match=match) as info:
            load_unet(path, config, "reconstruct.seine.model")
        assert "\n" not in str(info.value)

    missing = dict(state)
    del missing["mid_block.attentions.0.transformer_blocks.0.attn_temp.to_q.weight"]
    fails({"ema": missing}, "1 missing key.*attn_temp.to_q.weight")
    fails({"ema": {**state, "extra.weight": torch.zeros(1)}}, "1 unexpected key.*extra.weight")
    fails({"ema": {**state, "conv_in.weight": torch.zeros(32, 4, 3, 3)}}, r"shape mismatch.*conv_in.weight \(32, 4, 3, 3\)")
    fails({"epoch": 3}, "not a SEINE checkpoint")
    fails({"ema": {**state, "conv_in.bias": state["conv_in.bias"].long()}}, "not dense real floating point: conv_in.bias int64")
    fails({"ema": {**state, "conv_in.bias": state["conv_in.bias"].to(torch.complex64)}}, "not dense real floating point")
    fails({"ema": {**state, "conv_in.weight": state["conv_in.weight"].to_sparse()}}, "conv_in.weight float32 sparse_coo")
    fails({"ema": state, "args": argparse.Namespace(lr=1e-4)}, "Python objects besides tensors")  # code-bearing pickle
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(BackendError, match="not a readable torch checkpoint"):
        load_unet(tmp_path / "text.pt", config, "k")
    (tmp_path / "lfs.pt").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
    with pytest.raises(BackendError, match="Git LFS pointer"):
        load_unet(tmp_path / "lfs.pt", config, "k")
    with pytest.raises(BackendError, match="is a URL"):
        resolve_checkpoint("https://example.org/seine.pt", "k", True)
    with pytest.raises(BackendError, match="no seine.pt"):
        resolve_checkpoint(str(tmp_path / "empty"), "reconstruct.seine.model", True)
    # a base whose UNet has heads too narrow for the 32 rotary features
    with pytest.raises(BackendError, match="at least 32 features"):
        load_unet(ckpt, {**config, "attention_head_dim": 4}, "k")


# ------------------------------------------------------------------ the reconstructor
def _recon(tiny_seine, mode, runtime=RUNTIME, **options):
    from m3cvc.reconstruct import build_reconstructor

    ckpt, base = tiny_seine
    seine = SeineOptions(**{"model": str(ckpt.parent), "base": str(base), "steps": STEPS, **options})
    return build_reconstructor(ReconstructConfig(backend="seine", mode=mode, seine=seine, diffusion=runtime))


def _keyframes(width=64, height=48):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (height, width, 3), dtype=np.uint8), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


class _UNetSpy:
    """Records the 9-channel UNet inputs of every step."""

    def __init__(self, pipe):
        self.inputs = []
        self.hook = pipe.unet.register_forward_pre_hook(lambda module, args: self.inputs.append(args[0].detach().clone()))

    def close(self):
        self.hook.remove()


@pytest.mark.models
@pytest.mark.parametrize("mode", ["prediction", "interpolation"])
def test_seine_modes_give_exact_frames_sizes_keyframe_and_reproducible_output(tiny_seine, mode):
    first, nxt = _keyframes()
    recon = _recon(tiny_seine, mode)
    frames = list(recon.reconstruct(first, nxt, 6, "a cat and a dog"))
    assert len(frames) == 6
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert np.array_equal(frames[0], first)  # frame 0 is the keyframe, bit-exact
    again = list(_recon(tiny_seine, mode).reconstruct(first, nxt, 6, "a cat and a dog"))
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))  # same seed, same device: same frames
    other = list(_recon(tiny_seine, mode, dataclasses.replace(RUNTIME, seed=5)).reconstruct(first, nxt, 6, "a cat and a dog"))
    assert any(not np.array_equal(a, b) for a, b in zip(frames[1:], other[1:]))


@pytest.mark.models
def test_seine_ddim_sampler_runs_and_differs_from_ddpm(tiny_seine):
    first, nxt = _keyframes()
    ddpm = list(_recon(tiny_seine, "interpolation").reconstruct(first, nxt, 4, "x"))
    ddim = list(_recon(tiny_seine, "interpolation", sampler="ddim").reconstruct(first, nxt, 4, "x"))
    again = list(_recon(tiny_seine, "interpolation", sampler="ddim").reconstruct(first, nxt, 4, "x"))
    assert len(ddim) == 4 and np.array_equal(ddim[0], first)
    assert all(np.array_equal(a, b) for a, b in zip(ddim, again))
    assert any(not np.array_equal(a, b) for a, b in zip(ddpm[1:], ddim[1:]))


@pytest.mark.models
@pytest.mark.parametrize("mode", ["prediction", "interpolation"])
def test_seine_masks_follow_the_official_first1_and_onelast1_layouts(tiny_seine, mode):
    first, nxt = _keyframes()
    recon = _recon(tiny_seine, mode, guidance=1.0)  # no guidance: one UNet pass per step
    spy = _UNetSpy(recon.pipeline())
    try:
        list(recon.reconstruct(first, nxt, 6, "x"))
    finally:
        spy.close()
    assert len(spy.inputs) == STEPS
    x = spy.inputs[0]
    assert x.shape == (1, 9, 16, 6, 8)  # 16 frames, 64x48 / 8
    mask = x[0, 4, :, 0, 0]
    expected = torch.ones(16)
    expected[0] = 0
    if mode == "interpolation":
        expected[-1] = 0  # onelast1
    assert torch.equal(mask, expected) and torch.equal(x[0, 4].amin((1, 2)), x[0, 4].amax((1, 2)))
    masked = x[0, 5:9]
    assert torch.equal(spy.inputs[0][0, 4:], spy.inputs[-1][0, 4:])  # the condition is the same at every step
    # generated frames are conditioned on VAE latents of grey (one value per frame position and pixel)
    assert not torch.allclose(masked[:, 0], masked[:, 1])
    if mode == "interpolation":
        assert not torch.allclose(masked[:, -1], masked[:, 1])


@pytest.mark.models
def test_seine_guidance_batches_prompt_and_negative_prompt(tiny_seine):
    first, nxt = _keyframes()
    recon = _recon(tiny_seine, "interpolation")
    pipe = recon.pipeline()
    contexts = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: contexts.append(args[2].shape[0]))
    try:
        list(recon.reconstruct(first, nxt, 3, "x"))
    finally:
        hook.remove()
    assert contexts == [2] * STEPS  # [prompt, negative prompt] per step (guidance 8)


@pytest.mark.models
@pytest.mark.parametrize("mode", ["prediction", "interpolation"])
def test_seine_long_clips_are_chained_windows_and_only_the_last_sees_the_next_keyframe(tiny_seine, mode):
    first, nxt = _keyframes()
    recon = _recon(tiny_seine, mode, num_frames=4)  # windows of 3 frame intervals
    pipe = recon.pipeline()
    calls = []
    original = type(pipe).__call__

    def spy(self, **kwargs):
        calls.append(kwargs)
        return original(self, **kwargs)

    type(pipe).__call__ = spy
    try:
        frames = list(recon.reconstruct(first, nxt, 8, "x"))
    finally:
        type(pipe).__call__ = original
    assert len(frames) == 8 and np.array_equal(frames[0], first)
    assert [c["num_frames"] for c in calls] == [4, 4, 4]  # 8 intervals -> 3 + 3 + 2
    lasts = [c["last_image"] is not None for c in calls]
    assert lasts == ([False, False, True] if mode == "interpolation" else [False, False, False])
    assert all(c["image"].shape == (48, 64, 3) for c in calls)
    assert not np.array_equal(calls[1]["image"], first)  # a later window starts from the generated frame


@pytest.mark.models
def test_seine_generation_size_resamples_to_the_clip(tiny_seine):
    first, nxt = _keyframes(width=72, height=40)
    recon = _recon(tiny_seine, "interpolation", width=48, height=32)
    spy = _UNetSpy(recon.pipeline())
    try:
        frames = list(recon.reconstruct(first, nxt, 4, "x"))
    finally:
        spy.close()
    assert spy.inputs[0].shape[-2:] == (4, 6)  # generated at 48x32
    assert len(frames) == 4 and all(f.shape == (40, 72, 3) for f in frames)
    auto = _recon(tiny_seine, "interpolation")
    assert auto.generation_size(auto.pipeline(), 512, 320) == (512, 320)  # SEINE's training size
    assert auto.generation_size(auto.pipeline(), 1920, 1080) == (680, 384)  # within 512x512, multiple of 8
    for width, height in ((4096, 64), (65536, 8), (8, 65536)):  # automatic sizes of extreme shapes stay bounded
        w, h = auto.generation_size(auto.pipeline(), width, height)
        assert w <= 1024 and h <= 1024 and w * h <= 512 * 512 and w % 8 == 0 and h % 8 == 0


# ------------------------------------------------------------------ settings and stream header
def test_seine_defaults_are_the_official_ones_and_the_paper_profile_uses_it():
    from m3cvc.config import profile_config

    o = SeineOptions()
    assert (o.model, o.base) == ("xinyuanc91/SEINE", "CompVis/stable-diffusion-v1-4")
    assert (o.steps, o.guidance, o.num_frames, o.negative_prompt) == (250, 8.0, 16, "")
    assert profile_config("paper").reconstruct.backend == "seine"
    assert profile_config("paper").keyframes.max_interval == 15  # a clip is one 16-frame SEINE window
    assert profile_config("full").reconstruct.backend == "ltx"


def test_seine_settings_are_checked_and_crafted_headers_refused(tiny_seine):
    from m3cvc.reconstruct import reconstructor_from_params

    for bad in (dict(steps=0), dict(steps=5000), dict(num_frames=1), dict(num_frames=33), dict(guidance=float("nan")),
                dict(width=10**6, height=8), dict(width=64), dict(width=60, height=48), dict(width=1024, height=512),
                dict(max_area=0), dict(max_area=512 * 513), dict(base=""), dict(model=""), dict(sampler="euler"),
                dict(model="https://example.org/seine.pt"), dict(base="https://example.org/sd")):
        with pytest.raises(ConfigError):
            _recon(tiny_seine, "interpolation", **bad)
    with pytest.raises(ConfigError, match="seed"):  # window k is seeded seed + k: it must fit a torch seed
        _recon(tiny_seine, "interpolation", dataclasses.replace(RUNTIME, seed=2**64 - 1))
    params = _recon(tiny_seine, "prediction").params()
    assert params["model"] == str(tiny_seine[0].parent) and params["base"] == str(tiny_seine[1])
    assert params["mode"] == "prediction" and params["steps"] == STEPS and params["num_frames"] == 16
    rebuilt = reconstructor_from_params("seine", params)
    assert rebuilt.params() == params
    for key, value in (("steps", 10**9), ("num_frames", 10**6), ("width", 10**6), ("max_area", 10**7), ("guidance", -1.0),
                       ("sampler", "x"), ("seed", 2**64), ("frobnicate", 1)):
        with pytest.raises(BitstreamError):
            reconstructor_from_params("seine", {**params, key: value})


def test_seine_missing_files_are_one_line_backend_errors(tiny_seine, tmp_path):
    import shutil

    first, nxt = _keyframes()
    ckpt, base = tiny_seine
    from m3cvc.reconstruct import build_reconstructor

    no_tokenizer = shutil.copytree(base, tmp_path / "sd-no-tokenizer")
    shutil.rmtree(no_tokenizer / "tokenizer")
    no_config = shutil.copytree(base, tmp_path / "sd-no-unet-config")
    (no_config / "unet" / "config.json").unlink()
    for seine, match in ((SeineOptions(model=str(tmp_path / "nowhere"), base=str(base)), "no seine.pt"),
                         (SeineOptions(model=str(ckpt), base=str(tmp_path / "no-sd")), "does not exist"),
                         (SeineOptions(model="nobody/no-such-seine", base=str(base)), "not in the HF cache"),
                         (SeineOptions(model=str(ckpt), base="nobody/no-such-sd"),
                          'hf download nobody/no-such-sd --include "vae/\\*" .*--include "unet/config.json"'),
                         (SeineOptions(model=str(ckpt), base=str(no_tokenizer)), "has no tokenizer"),
                         (SeineOptions(model=str(ckpt), base=str(no_config)), "has no unet/config.json")):
        recon = build_reconstructor(ReconstructConfig(backend="seine", seine=seine, diffusion=RUNTIME))
        with pytest.raises(BackendError, match=match) as info:
            list(recon.reconstruct(first, nxt, 3, "x"))
        assert "\n" not in str(info.value)


@pytest.mark.models
def test_seine_non_finite_weights_or_output_stop_with_one_line(tiny_seine, tmp_path):
    import shutil

    from diffusers import AutoencoderKL

    ckpt, base = tiny_seine
    state = torch.load(ckpt, weights_only=True)["ema"]
    (tmp_path / "nan").mkdir()
    torch.save({"ema": {**state, "conv_out.bias": torch.full_like(state["conv_out.bias"], float("nan"))}},
               tmp_path / "nan" / "seine.pt")
    first, nxt = _keyframes()
    recon = _recon((tmp_path / "nan" / "seine.pt", base), "interpolation")
    with pytest.raises(BackendError, match="1 tensor.* with NaN or inf values: conv_out.bias"):  # at load, before any step
        list(recon.reconstruct(first, nxt, 3, "x"))
    nan_vae = shutil.copytree(base, tmp_path / "sd-nan-vae")
    vae = AutoencoderKL.from_pretrained(str(base), subfolder="vae")
    with torch.no_grad():
        vae.decoder.conv_out.bias.fill_(float("nan"))
    vae.save_pretrained(str(nan_vae / "vae"))
    recon = _recon((ckpt, nan_vae), "interpolation")
    with pytest.raises(BackendError, match="non-finite") as info:
        list(recon.reconstruct(first, nxt, 3, "x"))
    assert "\n" not in str(info.value)


def test_seine_cuda_requested_without_a_gpu_is_one_line(tiny_seine):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    first, nxt = _keyframes()
    recon = _recon(tiny_seine, "interpolation", dataclasses.replace(RUNTIME, device="cuda"))
    with pytest.raises(BackendError, match="CUDA is not available"):
        list(recon.reconstruct(first, nxt, 3, "x"))


@pytest.mark.models
def test_seine_encoder_to_decoder_run(tiny_seine, tmp_path):
    from m3cvc.config import M3Config, with_overrides
    from m3cvc.pipeline import Decoder, Encoder

    ckpt, base = tiny_seine
    src = write_video(tmp_path / "in.y4m", synthetic_frames(9, width=64, height=48))
    config = with_overrides(
        M3Config(),
        preprocess={"width": 64, "height": 48, "keep_fps": True},
        keyframes={"selector": "fixed", "interval": 4},
        reconstruct={"backend": "seine", "mode": "interpolation",
                     "seine": {"model": str(ckpt), "base": str(base), "steps": STEPS},
                     "diffusion": dataclasses.asdict(RUNTIME)},
    )
    result = Encoder(config).encode(src)
    assert result.keyframe_indices == (0, 4, 8)
    header = result.stream.header.reconstructor
    assert header.name == "seine" and header.params["model"] == str(ckpt) and header.params["steps"] == STEPS
    assert Encoder(config).encode(src).data == result.data  # byte-identical stream
    decoded = list(Decoder().decode(result.data))
    again = list(Decoder().decode(result.data))
    assert len(decoded) == 9 == result.frames
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in decoded)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, again))
