"""LPIPS / CLIP-sim loading code.

Real weights cannot be downloaded here, so these tests check two things only:
- without weights the metric says why, once, and yields None (null in results), never a number;
- the loading and measuring code runs end to end on tiny *random* networks saved to a temp folder.
  Those numbers are NOT metrics (random weights): the tests only check plumbing and are never
  written into any results file.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from m3cvc.eval.perceptual import ClipSim, Lpips  # noqa: E402


def _frames(n: int = 2, size: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_lpips_without_weights_is_missing_not_a_number(tmp_path):
    pytest.importorskip("lpips")
    metric = Lpips(backbone=str(tmp_path / "absent.pth"))
    a = _frames()
    assert metric.measure(a, a) is None
    assert not metric.available() and "absent.pth" in metric.reason


def test_lpips_plumbing_with_random_backbone_not_a_metric(tmp_path):
    pytest.importorskip("lpips")
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    path = tmp_path / "alexnet_random.pth"
    torch.save(tv.models.alexnet(weights=None).state_dict(), path)  # random: plumbing only
    metric = Lpips(backbone=str(path))
    a, b = _frames(), [255 - f for f in _frames()]
    assert metric.available(), metric.reason
    assert metric.measure(a, a) == pytest.approx(0.0, abs=1e-6)
    not_a_metric = metric.measure(a, b)
    assert np.isfinite(not_a_metric) and not_a_metric > 0
    # a state dict of another network is refused with a reason
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    wrong = Lpips(backbone=str(tmp_path / "wrong.pth"))
    assert wrong.measure(a, a) is None and "expected shape" in wrong.reason


def test_clip_sim_plumbing_with_tiny_random_clip_not_a_metric(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        projection_dim=8,
    )  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path / "tiny_clip_random"
    transformers.CLIPModel(cfg).save_pretrained(folder)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    metric = ClipSim(str(folder))
    a, b = _frames(), [255 - f for f in _frames()]
    assert metric.available(), metric.reason
    assert metric.measure(a, a) == pytest.approx(1.0, abs=1e-6)
    not_a_metric = metric.measure(a, b)
    assert -1.0 <= not_a_metric <= 1.0


def test_clip_sim_without_weights_is_missing(tmp_path):
    pytest.importorskip("transformers")
    metric = ClipSim(str(tmp_path / "no_such_model"))
    a = _frames(1)
    assert metric.measure(a, a) is None and metric.reason
