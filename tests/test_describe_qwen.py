"""The ``qwen-vl`` backend on tiny random Qwen2-VL / Qwen2.5-VL / Qwen3-VL models saved to and loaded from a folder."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import TEST_DEVICE  # noqa: E402
from describe_helpers import build_tiny_qwen  # noqa: E402

from m3cvc.config import DescribeConfig, QwenVLOptions  # noqa: E402
from m3cvc.describe import build_describer  # noqa: E402
from m3cvc.errors import BackendError  # noqa: E402

pytestmark = pytest.mark.models


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def tiny_model(request, tmp_path_factory):
    return build_tiny_qwen(tmp_path_factory.mktemp(request.param), request.param)


def _config(folder, **kw) -> DescribeConfig:
    opts = QwenVLOptions(model=str(folder), local_files_only=True, device=TEST_DEVICE, max_pixels=56 * 84)
    return DescribeConfig(backend="qwen-vl", max_new_tokens=3, max_summary_tokens=4, clip_frames=3, qwen_vl=opts, **kw)


def _frames(n):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(n)]


def test_dialogue_runs_through_the_real_backend(tiny_model):
    describer = build_describer(_config(tiny_model))
    seen = []
    generate = describer.backend.net.generate

    def spy(**inputs):
        seen.append({k: tuple(v.shape) for k, v in inputs.items() if hasattr(v, "shape")})
        return generate(**inputs)

    describer.backend.net.generate = spy
    frames = _frames(6)
    d0 = describer.describe_keyframe(0, frames[0], None)
    c0 = describer.describe_clip(0, frames[:5], d0)
    d1 = describer.describe_keyframe(1, frames[5], frames[0])
    assert all(isinstance(t, str) for t in (d0, c0, d1))
    # images reach the model: one in every keyframe turn (history), two more in the comparison turn
    assert [s["image_grid_thw"][0] for s in seen[:3]] == [1, 1, 1]
    assert "pixel_values_videos" in seen[3] and seen[3]["video_grid_thw"] == (1, 3)
    assert seen[6]["image_grid_thw"][0] == 3  # objects turn image + previous + current
    t = describer.transcript()
    assert [len(e["turns"]) for e in t["keyframes"]] == [3, 4] and len(t["clips"][0]["turns"]) == 2
    assert t["backend"] == "qwen-vl" and t["model"] == str(tiny_model)
    # greedy decoding: a fresh run gives the same texts
    again = build_describer(_config(tiny_model))
    assert again.describe_keyframe(0, frames[0], None) == d0
    describer.close()


def test_single_strategy_and_one_frame_clip(tiny_model):
    describer = build_describer(_config(tiny_model, strategy="single"))
    frames = _frames(1)
    text = describer.describe_keyframe(0, frames[0], None)
    describer.describe_clip(0, frames, text)  # a one-frame clip is padded to a frame pair
    assert [len(e.turns) for e in describer.exchanges] == [1, 1]


def test_missing_model_is_a_backend_error(tmp_path):
    cfg = DescribeConfig(backend="qwen-vl", qwen_vl=QwenVLOptions(model=str(tmp_path / "nope"), local_files_only=True))
    with pytest.raises(BackendError, match=r"describe.qwen_vl.model: the local folder .*nope does not exist"):
        build_describer(cfg)
    (tmp_path / "empty").mkdir()  # a folder without the model's files
    cfg = DescribeConfig(backend="qwen-vl", qwen_vl=QwenVLOptions(model=str(tmp_path / "empty")))
    with pytest.raises(BackendError, match="cannot load the Qwen-VL model"):
        build_describer(cfg)


def test_describe_and_encode_commands_with_qwen_vl(small_video, tmp_path, tmp_path_factory, capsys):
    import json

    from m3cvc.bitstream import read_stream
    from m3cvc.cli import main

    folder = build_tiny_qwen(tmp_path_factory.mktemp("cli_qwen"), "qwen2_vl")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "describe:\n  backend: qwen-vl\n  max_new_tokens: 2\n  max_summary_tokens: 3\n  clip_frames: 2\n"
        f"  qwen_vl:\n    model: {folder}\n    local_files_only: true\n    device: {TEST_DEVICE}\n"
    )
    common = [str(small_video), "--config", str(cfg), "--size", "56x28", "--interval", "19", "-q"]
    transcript = tmp_path / "t.json"
    assert main(["describe", *common, "-o", str(transcript)]) == 0
    t = json.loads(transcript.read_text())
    assert t["backend"] == "qwen-vl" and t["model"] == str(folder) and t["keyframe_frames"] == [0, 19]
    m3c = tmp_path / "a.m3c"
    assert main(["encode", *common, "-o", str(m3c)]) == 0
    stream = read_stream(m3c.read_bytes())
    # greedy decoding: the encoder's describer writes exactly the transcript's texts
    assert list(stream.keyframe_texts) == t["descriptions"]["keyframes"]
    assert list(stream.clip_texts) == t["descriptions"]["clips"]
