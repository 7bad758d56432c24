"""The metric registry, the weights resolver, LPIPS / DISTS / VMAF with real weights, CLIP-sim plumbing.

Real weights: the ImageNet backbones in ``../shared/weights/lpips`` (or ``$M3CVC_WEIGHTS``); the tests that
need them skip cleanly where they are absent. Calibration images: pyiqa's ``ResultsCalibra`` pairs, which
``make test`` fetches into ``.venv/calibration`` (tests/fetch_calibration.py); under CI their absence is a
failure, not a skip. Tests marked "plumbing" use random networks only to exercise loading code: those
numbers are not metrics and are never written anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SHARED
from m3cvc.eval.metrics import MetricOptions, MetricSuite, parse_metrics
from m3cvc.eval.metrics.weights import WeightsUnavailable, resolve_backbone
from m3cvc.errors import ConfigError

WEIGHTS = Path(os.environ.get("M3CVC_WEIGHTS") or SHARED / "weights" / "lpips")
HAVE_WEIGHTS = (WEIGHTS / "alexnet-features.pth").is_file() and (WEIGHTS / "vgg16-features.pth").is_file()
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason=f"real LPIPS/DISTS backbones not present ({WEIGHTS})")
CALIBRATION = Path(os.environ.get("M3CVC_CALIBRATION") or REPO / ".venv" / "calibration" / "ResultsCalibra")

# pyiqa's published values for its ResultsCalibra pairs (LPIPS-alex v0.1 and DISTS), as listed in
# ../shared/weights/lpips/README.md. pyiqa rounds them (I08's LPIPS is published as 0.052), so a value
# matches when it is within one unit of the 4th decimal.
PAIRS = ("I03", "I04", "I06", "I08", "I19")
PUBLISHED = {
    "lpips": (0.7237, 0.2572, 0.0508, 0.0520, 0.4253),
    "dists": (0.4742, 0.1424, 0.0683, 0.0287, 0.3123),
}


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """No $M3CVC_WEIGHTS and an empty torch cache."""
    monkeypatch.delenv("M3CVC_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


@pytest.fixture
def real_weights(monkeypatch):
    monkeypatch.setenv("M3CVC_WEIGHTS", str(WEIGHTS))


def _calibration_pairs() -> tuple[list[np.ndarray], list[np.ndarray]]:
    from PIL import Image

    if not (CALIBRATION / "ref_dir" / "I19.bmp").is_file():
        msg = f"calibration images missing at {CALIBRATION} (make test fetches them: tests/fetch_calibration.py)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    load = lambda d, n: np.asarray(Image.open(CALIBRATION / d / f"{n}.bmp").convert("RGB"))  # noqa: E731
    return [load("ref_dir", n) for n in PAIRS], [load("dist_dir", n) for n in PAIRS]


# ----------------------------------------------------------------------------------------- registry
def test_parse_metrics_and_unknown_names():
    assert parse_metrics("all") == ["psnr", "ms_ssim", "lpips", "dists", "vmaf", "vmaf_neg", "clip_sim"]
    assert parse_metrics("lpips, vmaf,lpips") == ["lpips", "vmaf"]
    with pytest.raises(ConfigError, match="ssim"):
        parse_metrics("psnr,ssim")
    with pytest.raises(ConfigError):
        MetricSuite(["nope"])


def test_vmaf_and_vmaf_neg_share_one_engine():
    suite = MetricSuite(["psnr", "vmaf", "vmaf_neg", "ms_ssim"])
    assert [e.names for e in suite.engines] == [("psnr", "ms_ssim"), ("vmaf", "vmaf_neg")]


# ----------------------------------------------------------------------------------------- resolver
def test_resolver_order_option_then_env_then_torch_cache(monkeypatch, tmp_path, no_weights):
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "alexnet-owt-7be5be79.pth").write_bytes(b"cache")
    assert resolve_backbone("alex").source == "torch cache"
    env = tmp_path / "env"
    env.mkdir()
    (env / "alexnet-features.pth").write_bytes(b"env")
    monkeypatch.setenv("M3CVC_WEIGHTS", str(env))
    found = resolve_backbone("alex")
    assert (found.source, found.path) == ("$M3CVC_WEIGHTS", env / "alexnet-features.pth")
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"x")
    assert resolve_backbone("alex", str(explicit)).source == "option"
    # an explicit path that does not exist is an error, never replaced by the env / cache file
    with pytest.raises(WeightsUnavailable, match="--lpips-backbone .*absent.pth is not a file"):
        resolve_backbone("alex", str(tmp_path / "absent.pth"))
    # the env folder without the file falls through to the cache; nowhere -> both places named
    (cache / "vgg16-397923af.pth").write_bytes(b"cache")
    assert resolve_backbone("vgg").source == "torch cache"
    (cache / "vgg16-397923af.pth").unlink()
    with pytest.raises(WeightsUnavailable, match="env/vgg16-features.pth; .*vgg16-397923af.pth"):
        resolve_backbone("vgg")


def test_learned_metrics_unavailable_without_weights_say_why_in_one_line(no_weights):
    pytest.importorskip("lpips")
    suite = MetricSuite(["psnr", "lpips", "dists"])
    reasons = suite.unavailable()
    assert set(reasons) == {"lpips", "dists"}
    for reason in reasons.values():
        assert "\n" not in reason and "M3CVC_WEIGHTS" in reason
    rng = np.random.default_rng(0)
    a = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(2)]
    values, per_frame = suite.measure(a, a)
    assert values["lpips"] is None and values["dists"] is None and values["psnr"] == float("inf")
    assert set(per_frame) == {"psnr"}


def test_clip_sim_unavailable_names_the_option_that_sets_its_model(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty HF cache
    reason = MetricSuite(["clip_sim"], MetricOptions(clip_model="org/absent-clip")).unavailable()["clip_sim"]
    assert "(--clip-model)" in reason and "set --clip-model to a local folder" in reason and "keyframes." not in reason
    assert "metrics never download models" in reason and "local_files_only" not in reason
    missing = MetricSuite(["clip_sim"], MetricOptions(clip_model=str(tmp_path / "none"))).unavailable()["clip_sim"]
    assert missing.startswith("--clip-model: the local folder") and "\n" not in missing


# ----------------------------------------------------------------------------------- calibration
@needs_weights
def test_lpips_alex_reproduces_published_calibration(real_weights):
    refs, decs = _calibration_pairs()
    suite = MetricSuite(["lpips"], MetricOptions(lpips_net="alex"))
    assert not suite.unavailable(), suite.unavailable()
    _, per_frame = suite.measure(refs, decs)
    assert np.allclose(per_frame["lpips"], PUBLISHED["lpips"], atol=1e-4), per_frame["lpips"]
    info = suite.info()["lpips"]
    assert info["found_by"] == "$M3CVC_WEIGHTS" and info["sha256"] == "32f45cf71e6147af"


@needs_weights
def test_dists_reproduces_published_calibration(real_weights):
    refs, decs = _calibration_pairs()
    suite = MetricSuite(["dists"])
    assert not suite.unavailable(), suite.unavailable()
    _, per_frame = suite.measure(refs, decs)
    assert np.allclose(per_frame["dists"], PUBLISHED["dists"], atol=1e-4), per_frame["dists"]


@needs_weights
def test_lpips_vgg_runs_from_the_vgg_backbone_and_ranks_like_alex(real_weights):
    refs, decs = _calibration_pairs()
    _, alex = MetricSuite(["lpips"]).measure(refs, decs)
    _, vgg = MetricSuite(["lpips"], MetricOptions(lpips_net="vgg")).measure(refs, decs)
    # two calibrated networks agree on which pairs are far apart (I03 most, I08/I06 least)
    assert np.argmax(vgg["lpips"]) == np.argmax(alex["lpips"]) == 0
    assert set(np.argsort(vgg["lpips"])[:2]) == set(np.argsort(alex["lpips"])[:2]) == {2, 3}


# ---------------------------------------------------------------------------------------- plumbing
def test_lpips_plumbing_with_random_backbone_not_a_metric(tmp_path, no_weights):
    torch = pytest.importorskip("torch")
    pytest.importorskip("lpips")
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    path = tmp_path / "alexnet_random.pth"
    torch.save(tv.models.alexnet(weights=None).state_dict(), path)  # random: plumbing only
    suite = MetricSuite(["lpips"], MetricOptions(lpips_backbone=str(path)))
    rng = np.random.default_rng(0)
    a = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    b = [255 - f for f in a]
    assert not suite.unavailable()
    assert suite.measure(a, a)[0]["lpips"] == pytest.approx(0.0, abs=1e-6)
    values, per_frame = suite.measure(a, b)
    assert len(per_frame["lpips"]) == 3 and values["lpips"] == pytest.approx(np.mean(per_frame["lpips"]))
    # a state dict of another network is refused with a reason, not loaded partially
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    wrong = MetricSuite(["lpips"], MetricOptions(lpips_backbone=str(tmp_path / "wrong.pth")))
    assert "features.0.weight of shape" in wrong.unavailable()["lpips"]
    for name, content in (("junk.pth", b"not a checkpoint"), ("empty.pth", b"")):
        (tmp_path / name).write_bytes(content)
        junk = MetricSuite(["lpips"], MetricOptions(lpips_backbone=str(tmp_path / name)))
        assert "cannot read" in junk.unavailable()["lpips"] and "\n" not in junk.unavailable()["lpips"]


def test_clip_sim_plumbing_with_tiny_random_clip_not_a_metric(tmp_path):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        projection_dim=8,
    )  # fmt: skip
    folder = tmp_path / "tiny_clip_random"
    transformers.CLIPModel(cfg).save_pretrained(folder)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    suite = MetricSuite(["clip_sim"], MetricOptions(clip_model=str(folder)))
    rng = np.random.default_rng(0)
    a = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    assert not suite.unavailable()
    assert suite.measure(a, a)[0]["clip_sim"] == pytest.approx(1.0, abs=1e-6)
    missing = MetricSuite(["clip_sim"], MetricOptions(clip_model=str(tmp_path / "no_such_model")))
    assert missing.unavailable()["clip_sim"]


# --------------------------------------------------------------------------------------------- VMAF
@pytest.fixture(scope="module")
def real_frames(bikes_path) -> list[np.ndarray]:
    import itertools

    from m3cvc.config import PreprocessConfig
    from m3cvc.video import open_video, preprocess

    with open_video(bikes_path) as src:
        return list(itertools.islice(iter(preprocess(src, PreprocessConfig(width=256, height=160))), 8))


def test_vmaf_identical_is_about_100_and_blur_scores_clearly_lower(real_frames):
    import cv2

    suite = MetricSuite(["vmaf", "vmaf_neg"])
    assert not suite.unavailable(), suite.unavailable()
    same, per_frame = suite.measure(real_frames, real_frames)
    assert same["vmaf"] > 99.0 and same["vmaf_neg"] > 99.0
    assert len(per_frame["vmaf"]) == len(real_frames) and same["vmaf_hmean"] <= same["vmaf"] + 1e-9
    blurred = [cv2.GaussianBlur(f, (0, 0), 2.0) for f in real_frames]
    blur, _ = suite.measure(real_frames, blurred)
    assert blur["vmaf"] < 80.0 and blur["vmaf_neg"] <= blur["vmaf"] + 0.5
    # pairing is exact: shifting the decoded frames by one is worse than the blurred copy of each frame
    shifted, _ = suite.measure(real_frames, real_frames[1:] + real_frames[:1])
    assert shifted["vmaf"] < same["vmaf"] - 5
    info = suite.info()["vmaf"]
    assert info["model"] == "vmaf_v0.6.1" and info["libvmaf"] not in ("", "unknown")


def test_vmaf_never_scores_more_bits_lower(real_frames, tmp_path):
    from fractions import Fraction

    from m3cvc.eval.codecs import Clip, build_codec

    clip = Clip("bikes", real_frames, Fraction(8), tmp_path / "work")
    codec = build_codec("x264", [45, 37, 29, 21])
    suite = MetricSuite(["vmaf"])
    scores, sizes = [], []
    for point in codec.rate_points():
        coded = codec.run(clip, point)
        sizes.append(coded.nbytes)
        scores.append(suite.measure(clip.frames, coded.frames)[0]["vmaf"])
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    assert scores == sorted(scores), scores
