"""Video diffusion clip reconstructors (ltx, wan, cogvideox) on tiny random diffusers pipelines.

Every pipeline is built offline from configs, saved with ``save_pretrained`` into a temp folder and
loaded back through the reconstructors' own ``from_pretrained`` code (model = that folder).
Random weights: the tests check geometry, conditioning plumbing and reproducibility, not quality.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import TEST_DEVICE
from tiny_models import save_pipeline, tiny_cogvideox, tiny_ltx, tiny_wan
from m3cvc.config import (
    CogVideoXOptions,
    LtxOptions,
    ReconstructConfig,
    VideoDiffusionOptions,
)
from m3cvc.errors import BackendError, BitstreamError, ConfigError
from m3cvc.reconstruct.video_diffusion import fit_size, frames_for, sample_window, split_windows

RUNTIME = VideoDiffusionOptions(device=TEST_DEVICE, dtype="float32", max_sequence_length=16, local_files_only=True)
STEPS = 2


# ------------------------------------------------------------------ pure arithmetic
def test_split_windows_covers_the_clip_in_near_equal_chained_windows():
    assert split_windows(16, 160) == [16]
    assert split_windows(16, 8) == [8, 8]
    assert split_windows(17, 8) == [6, 6, 5]
    assert all(sum(split_windows(n, m)) == n and max(split_windows(n, m)) <= m for n in range(1, 40) for m in (1, 4, 7))
    with pytest.raises(ConfigError):
        split_windows(5, 0)


def test_frames_for_picks_the_smallest_valid_count():
    assert frames_for(16, 8) == 17  # LTX 8k+1
    assert frames_for(10, 8) == 17
    assert frames_for(3, 8) == 9
    assert frames_for(16, 4) == 17  # Wan 4k+1
    assert frames_for(17, 4) == 21


def test_fit_size_keeps_aspect_within_area_on_the_multiple():
    assert fit_size(512, 320, 32, 768 * 512) == (512, 320)  # small clip: its own size
    w, h = fit_size(1920, 1080, 16, 832 * 480)
    assert w % 16 == 0 and h % 16 == 0 and w * h <= 832 * 480 * 1.05 and abs(w / h - 16 / 9) < 0.05
    assert fit_size(70, 50, 32, 0) == (64, 64)


def test_sample_window_stretches_and_blends():
    gen = np.arange(9, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 2, 3), np.float32)
    same = sample_window(gen, 8, 8)  # 1:1
    assert [float(f[0, 0, 0]) for f in same] == list(range(9))
    stretched = sample_window(gen, 6, 8)  # clip frame i at generated 8 i / 6
    assert [round(float(f[0, 0, 0]), 4) for f in stretched] == [round(8 * i / 6, 4) for i in range(7)]
    with pytest.raises(BackendError):
        sample_window(gen, 8, 9)


# ------------------------------------------------------------------ tiny pipelines (offline)
BUILDERS = {
    "ltx": tiny_ltx,
    "wan": lambda: tiny_wan(False),
    "wan_flf_clip": lambda: tiny_wan(True),
    "cogvideox": tiny_cogvideox,
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """name -> folder of a saved tiny pipeline (built once per module, on first use)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    pytest.importorskip("ftfy")  # Wan's prompt cleaning
    root = tmp_path_factory.mktemp("tiny_video_models")
    folders: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in folders:
            torch.manual_seed(0)
            folders[name] = str(save_pipeline(BUILDERS[name](), root / name))
        return folders[name]

    return get


def _reconstructor(backend: str, folder: str, mode: str, runtime=RUNTIME, **overrides):
    from m3cvc.reconstruct.cogvideox import CogVideoXReconstructor
    from m3cvc.reconstruct.ltx import LtxReconstructor
    from m3cvc.reconstruct.wan import WanReconstructor

    cls = {"ltx": LtxReconstructor, "wan": WanReconstructor, "cogvideox": CogVideoXReconstructor}[backend]
    fields = dict(model=folder, steps=STEPS, **overrides)
    if backend == "wan":
        fields["prediction_model"] = folder
    return cls(mode, cls.options_class(**fields), runtime)


def _frames(width=64, height=64, seed=0):
    rng = np.random.RandomState(seed)
    base = rng.randint(0, 256, (height, width, 3)).astype(np.uint8)
    return base, np.roll(base, 5, axis=1)


CASES = [  # backend, tiny model, mode, clip length
    ("ltx", "ltx", "interpolation", 8),
    ("ltx", "ltx", "prediction", 6),
    ("wan", "wan", "interpolation", 6),  # 9 frames stretched over 6 intervals
    ("wan", "wan", "prediction", 8),
    ("wan", "wan_flf_clip", "interpolation", 8),
    ("cogvideox", "cogvideox", "prediction", 5),
]


@pytest.mark.models
@pytest.mark.parametrize("backend,model,mode,length", CASES)
def test_clip_has_exact_length_size_keyframe_and_is_reproducible(tiny_model, backend, model, mode, length):
    folder = tiny_model(model)
    first, following = _frames()
    recon = _reconstructor(backend, folder, mode)
    frames = list(recon.reconstruct(first, following, length, "a cat walks"))
    assert len(frames) == length
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert np.array_equal(frames[0], first)
    assert not np.array_equal(frames[1], first)  # generated, not copied

    params = recon.params()
    for key in ("mode", "model", "steps", "guidance", "seed", "num_frames", "width", "height", "dtype"):
        assert key in params
    assert params["mode"] == mode and params["model"] == folder
    assert all(isinstance(v, (bool, int, float, str)) for v in params.values())
    again = type(recon).from_params(params)  # a fresh instance: reloads the pipeline from the folder
    assert again.params() == params
    frames2 = list(again.reconstruct(first, following, length, "a cat walks"))
    assert all(np.array_equal(a, b) for a, b in zip(frames, frames2))


@pytest.mark.models
def test_seed_changes_the_frames_and_the_pipeline_is_cached(tiny_model):
    folder = tiny_model("wan")
    first, following = _frames()
    recon = _reconstructor("wan", folder, "interpolation")
    a = list(recon.reconstruct(first, following, 4, "a dog"))
    pipe = recon.pipeline()
    b = list(recon.reconstruct(first, following, 4, "a dog"))
    assert recon.pipeline() is pipe
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    other = _reconstructor("wan", folder, "interpolation", dataclasses.replace(RUNTIME, seed=7))
    c = list(other.reconstruct(first, following, 4, "a dog"))
    assert not np.array_equal(a[2], c[2])


@pytest.mark.models
@pytest.mark.parametrize("backend,model,mode", [("ltx", "ltx", "interpolation"), ("cogvideox", "cogvideox", "prediction")])
def test_long_clip_is_chained_and_resized_back_to_the_clip_size(tiny_model, backend, model, mode):
    folder = tiny_model(model)
    first, following = _frames(width=80, height=48)
    extra = {"max_frames": 5} if backend == "ltx" else {}
    recon = _reconstructor(backend, folder, mode, **extra)
    pipe = recon.pipeline()
    assert recon.max_cover(pipe) in (4, 8)  # ltx: max_frames 5 -> 4 intervals; cogvideox: 9 frames
    length = 3 * recon.max_cover(pipe) + 1  # four windows
    calls = []
    generate = recon.generate
    recon.generate = lambda pipe, window: calls.append(window.frames) or generate(pipe, window)
    frames = list(recon.reconstruct(first, following, length, "a car"))
    assert len(calls) == 4
    assert len(frames) == length
    assert all(f.shape == (48, 80, 3) for f in frames)
    assert np.array_equal(frames[0], first)


@pytest.mark.models
def test_memory_options_and_vae_tiling_keep_working(tiny_model):
    folder = tiny_model("ltx")
    first, following = _frames()
    runtime = dataclasses.replace(RUNTIME, vae_tiling=True, vae_slicing=True, cpu_offload=True)
    frames = list(_reconstructor("ltx", folder, "interpolation", runtime).reconstruct(first, following, 4))
    assert len(frames) == 4


def test_cogvideox_refuses_interpolation():
    from m3cvc.reconstruct.cogvideox import CogVideoXReconstructor

    with pytest.raises(ConfigError, match="prediction"):
        CogVideoXReconstructor("interpolation")
    with pytest.raises(ConfigError, match="prediction"):
        CogVideoXReconstructor.from_config(ReconstructConfig(backend="cogvideox", mode="interpolation"))


def test_bad_settings_are_config_errors():
    from m3cvc.reconstruct.ltx import LtxReconstructor

    with pytest.raises(ConfigError, match="dtype"):
        LtxReconstructor("prediction", runtime=VideoDiffusionOptions(dtype="float8"))
    with pytest.raises(ConfigError, match="steps"):
        LtxReconstructor("prediction", LtxOptions(steps=0))
    with pytest.raises(BitstreamError, match="unknown"):  # a damaged / foreign stream header
        LtxReconstructor.from_params({"mode": "prediction", "bogus": 1})
    with pytest.raises(BitstreamError, match="steps"):
        LtxReconstructor.from_params({"mode": "prediction", "steps": "many"})
    with pytest.raises(BitstreamError, match="mode"):
        LtxReconstructor.from_params({"mode": "sideways"})


def test_defaults_are_the_real_model_ids():
    from m3cvc.config import profile_config
    from m3cvc.reconstruct.wan import WanReconstructor

    assert profile_config("full").reconstruct.backend == "ltx"
    assert LtxOptions().model == "Lightricks/LTX-Video-0.9.5"
    assert CogVideoXOptions().model == "THUDM/CogVideoX-5b-I2V"
    assert WanReconstructor("interpolation").model == "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers"
    pred = WanReconstructor("prediction")
    assert pred.model == "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
    assert "prediction_model" not in pred.params()
    assert WanReconstructor.from_params(pred.params()).model == pred.model


@pytest.mark.models
def test_missing_model_is_a_backend_error(tmp_path):
    pytest.importorskip("diffusers")
    first, following = _frames()
    recon = _reconstructor("ltx", str(tmp_path / "no-such-model"), "interpolation")
    with pytest.raises(BackendError, match=r"reconstruct.ltx.model: the local folder .*no-such-model does not exist"):
        list(recon.reconstruct(first, following, 4))
    (tmp_path / "empty").mkdir()  # a folder without the pipeline's files
    recon = _reconstructor("ltx", str(tmp_path / "empty"), "interpolation")
    with pytest.raises(BackendError, match="cannot load"):
        list(recon.reconstruct(first, following, 4))


class _Spy:
    """Wraps a pipeline: records the keyword arguments of each call and passes them on."""

    def __init__(self, pipe):
        self.pipe, self.calls = pipe, []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.pipe(**kwargs)

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __setattr__(self, name, value):
        if name in ("pipe", "calls"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.pipe, name, value)

    def __delattr__(self, name):
        delattr(self.pipe, name)


def _spied(backend, folder, mode, **overrides):
    recon = _reconstructor(backend, folder, mode, **overrides)
    spy = _Spy(recon.pipeline())
    recon._pipe = spy
    return recon, spy


@pytest.mark.models
def test_ltx_conditions_on_the_keyframes_at_frame_0_and_at_the_clip_length(tiny_model):
    first, following = _frames()
    recon, spy = _spied("ltx", tiny_model("ltx"), "interpolation")
    list(recon.reconstruct(first, following, 6, "a cat"))
    (call,) = spy.calls
    assert call["num_frames"] == 9  # tiny VAE: 4k+1 frames >= 7
    assert [c.frame_index for c in call["conditions"]] == [0, 6]
    assert [np.asarray(c.image).tolist() for c in call["conditions"]] == [first.tolist(), following.tolist()]
    assert call["prompt"] == "a cat" and call["num_inference_steps"] == STEPS

    recon, spy = _spied("ltx", tiny_model("ltx"), "prediction")
    list(recon.reconstruct(first, following, 6))
    assert [c.frame_index for c in spy.calls[0]["conditions"]] == [0]


@pytest.mark.models
def test_ltx_frame_rate_is_the_videos_unless_set(tiny_model):
    from fractions import Fraction

    first, following = _frames()
    recon, spy = _spied("ltx", tiny_model("ltx"), "interpolation")
    list(recon.reconstruct(first, following, 4))
    recon.set_video_fps(Fraction(8))  # what the Decoder does with the stream's fps
    list(recon.reconstruct(first, following, 4))
    fixed, fixed_spy = _spied("ltx", tiny_model("ltx"), "interpolation", frame_rate=24.0)
    fixed.set_video_fps(8)
    list(fixed.reconstruct(first, following, 4))
    assert [c["frame_rate"] for c in spy.calls + fixed_spy.calls] == [25.0, 8.0, 24.0]
    with pytest.raises(ConfigError, match="frame_rate"):
        _reconstructor("ltx", tiny_model("ltx"), "interpolation", frame_rate=-1.0)


@pytest.mark.models
def test_wan_puts_the_next_keyframe_on_the_last_generated_frame(tiny_model):
    first, following = _frames()
    recon, spy = _spied("wan", tiny_model("wan"), "interpolation")
    list(recon.reconstruct(first, following, 6))
    (call,) = spy.calls
    assert call["num_frames"] == 9 and np.array_equal(np.asarray(call["last_image"]), following)
    assert recon.end_position(9, 6, True) == 8  # clip frame i <- generated frame 8 i / 6

    recon, spy = _spied("wan", tiny_model("wan"), "prediction")
    list(recon.reconstruct(first, following, 6))
    assert "last_image" not in spy.calls[0] and "image_embeds" not in spy.calls[0]


@pytest.mark.models
def test_wan_flf2v_without_a_next_keyframe_uses_the_start_image_twice_in_the_clip_context(tiny_model):
    first, _ = _frames()
    recon, spy = _spied("wan", tiny_model("wan_flf_clip"), "interpolation")
    clip_batches = []
    hook = spy.pipe.image_encoder.register_forward_pre_hook(
        lambda module, args, kwargs: clip_batches.append(kwargs["pixel_values"].shape[0]), with_kwargs=True)
    try:
        frames = list(recon.reconstruct(first, None, 5))  # the video's last clip: no next keyframe
    finally:
        hook.remove()
    assert len(frames) == 5
    (call,) = spy.calls
    assert "last_image" not in call
    assert clip_batches == [2]  # CLIP context of two images (start twice), as FLF2V expects
    assert "encode_image" not in vars(spy.pipe)  # the wrapper is gone after the call


@pytest.mark.models
def test_full_encode_decode_through_the_pipeline(tiny_model, tmp_path):
    from fractions import Fraction

    from m3cvc.config import M3Config, with_overrides
    from m3cvc.pipeline import Decoder, Encoder
    from m3cvc.video import open_writer

    rng = np.random.RandomState(3)
    scene = rng.randint(0, 256, (64, 96, 3)).astype(np.uint8)
    src = tmp_path / "in.y4m"
    with open_writer(src, 64, 64, Fraction(8)) as writer:
        for i in range(11):
            writer.write(np.ascontiguousarray(scene[:, 2 * i : 2 * i + 64]))
    config = with_overrides(
        M3Config(),
        preprocess={"width": 64, "height": 64, "keep_fps": True},
        keyframes={"selector": "fixed", "interval": 4},
        reconstruct={"backend": "wan", "mode": "interpolation", "wan": {"model": tiny_model("wan"), "steps": STEPS},
                     "diffusion": dataclasses.asdict(RUNTIME)},
    )
    result = Encoder(config).encode(src)
    assert result.keyframe_indices == (0, 4, 8, 10)  # clips of 4, 4, 2 and 1 frames
    assert result.stream.header.reconstructor.name == "wan"
    assert result.stream.header.reconstructor.params["model"] == tiny_model("wan")
    decoded = list(Decoder().decode(result.data))
    assert len(decoded) == 11 == result.frames
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in decoded)


@pytest.mark.models
def test_use_pipeline_takes_an_in_memory_pipeline_instead_of_loading(tiny_model, tmp_path):
    torch = pytest.importorskip("torch")
    from diffusers import LTXConditionPipeline

    pipe = LTXConditionPipeline.from_pretrained(tiny_model("ltx"))
    recon = _reconstructor("ltx", str(tmp_path / "never-loaded"), "interpolation")
    recon.use_pipeline(pipe)
    assert recon.pipeline() is pipe
    assert next(pipe.transformer.parameters()).device.type == torch.device(TEST_DEVICE).type
    first, following = _frames()
    frames = list(recon.reconstruct(first, following, 4, "a cat"))
    loaded = list(_reconstructor("ltx", tiny_model("ltx"), "interpolation").reconstruct(first, following, 4, "a cat"))
    assert len(frames) == 4 and all(np.array_equal(a, b) for a, b in zip(frames, loaded))


@pytest.mark.parametrize("backend", ["ltx", "wan", "cogvideox"])
def test_crafted_headers_cannot_ask_any_backend_for_unbounded_work(backend):
    """Steps, frames and sizes are bounded for every backend: a 1 kB stream must not take hours or GiBs."""
    from m3cvc.reconstruct import RECONSTRUCTORS

    cls = RECONSTRUCTORS.resolve(backend)
    params = cls("prediction", None, RUNTIME).params()
    for key, value in (("steps", 10**6), ("guidance", float("inf")), ("num_frames", 10**5), ("max_frames", 10**5),
                       ("max_frames", 0), ("width", 10**5), ("height", 10**5), ("max_area", 10**9),
                       ("max_sequence_length", 10**5)):
        if key in params:
            with pytest.raises(BitstreamError):
                cls.from_params({**params, key: value})


def test_automatic_generation_sizes_stay_bounded_for_extreme_shapes():
    from m3cvc.reconstruct.video_diffusion import MAX_AREA, MAX_SIDE, bounded_size

    for width, height in ((4096, 64), (65536, 8), (8, 65536), (512, 320)):
        w, h = bounded_size(*fit_size(width, height, 16, 832 * 480), 16, 832 * 480, MAX_SIDE)
        assert w <= MAX_SIDE and h <= MAX_SIDE and w * h <= min(MAX_AREA, 832 * 480) and w % 16 == 0 and h % 16 == 0
    assert bounded_size(512, 320, 16, 832 * 480, MAX_SIDE) == (512, 320)
