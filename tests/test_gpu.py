"""GPU-only checks of the model-backed stages in reduced precision (tiny random models).

Skipped unless ``M3CVC_TEST_DEVICE`` names a CUDA device that torch can see; with it set, the
other model tests (CLIP, RAFT, Qwen-VL, vq-diffusion, video diffusion) also run on that device
in float32. Run on a GPU machine with::

    M3CVC_TEST_DEVICE=cuda python -m pytest tests/test_gpu.py tests/test_keyframes.py \
        tests/test_describe_qwen.py tests/test_vq_codec.py tests/test_video_diffusion.py
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import TEST_DEVICE

torch = pytest.importorskip("torch")
if not (TEST_DEVICE.startswith("cuda") and torch.cuda.is_available()):
    pytest.skip("set M3CVC_TEST_DEVICE=cuda on a machine with a CUDA GPU", allow_module_level=True)

from m3cvc.config import ClipOptions, DescribeConfig, KeyframeConfig, QwenVLOptions  # noqa: E402
from m3cvc.describe import build_describer  # noqa: E402
from m3cvc.keyframes import build_selector  # noqa: E402

from describe_helpers import build_tiny_qwen  # noqa: E402
from test_keyframes import tiny_clip_dir  # noqa: E402,F401  (fixture)
from test_video_diffusion import RUNTIME, _frames, _reconstructor, tiny_model  # noqa: E402,F401  (fixture)
from test_vq_codec import _codec, _images, tiny  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.models


def test_clip_half_precision_on_gpu(tiny_clip_dir):  # noqa: F811
    options = ClipOptions(model=str(tiny_clip_dir), local_files_only=True, device=TEST_DEVICE, dtype="float16")
    selector = build_selector(KeyframeConfig(semantic="clip", motion="none", threshold=0.5, clip=options))
    backend = selector.semantic
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (40, 64, 3), dtype=np.uint8)
    same = backend.similarity(backend.embed(a), backend.embed(a.copy()))
    other = backend.similarity(backend.embed(a), backend.embed(b))
    assert same == pytest.approx(1.0, abs=1e-3)
    assert np.isfinite(other) and -1.0 <= other <= 1.0 + 1e-3


def test_qwen_bfloat16_dialogue_on_gpu(tmp_path):
    folder = build_tiny_qwen(tmp_path, "qwen2_5_vl")
    opts = QwenVLOptions(model=str(folder), local_files_only=True, device=TEST_DEVICE, dtype="bfloat16", max_pixels=56 * 84)
    cfg = DescribeConfig(backend="qwen-vl", max_new_tokens=3, max_summary_tokens=4, clip_frames=3, qwen_vl=opts)
    describer = build_describer(cfg)
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(4)]
    d0 = describer.describe_keyframe(0, frames[0], None)
    c0 = describer.describe_clip(0, frames[:3], d0)
    d1 = describer.describe_keyframe(1, frames[3], frames[0])
    assert all(isinstance(t, str) for t in (d0, c0, d1))
    assert next(describer.backend.net.parameters()).device.type == torch.device(TEST_DEVICE).type
    assert build_describer(cfg).describe_keyframe(0, frames[0], None) == d0  # greedy: reproducible
    describer.close()


@pytest.mark.parametrize("backend,model,mode", [("ltx", "ltx", "interpolation"), ("wan", "wan", "interpolation"),
                                                 ("cogvideox", "cogvideox", "prediction")])
@pytest.mark.parametrize("offload", [False, True])
def test_video_diffusion_auto_dtype_and_offload_on_gpu(tiny_model, backend, model, mode, offload):  # noqa: F811
    runtime = dataclasses.replace(RUNTIME, dtype="auto", cpu_offload=offload, vae_slicing=True)
    recon = _reconstructor(backend, tiny_model(model), mode, runtime)
    first, following = _frames()
    frames = list(recon.reconstruct(first, following, 5, "a cat walks"))
    assert len(frames) == 5 and all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert recon.params()["dtype"] == "auto"  # resolved on the decoding machine
    expected = torch.bfloat16 if torch.device(TEST_DEVICE).type == "cuda" else torch.float32
    assert recon.pipeline().transformer.dtype == expected
    again = list(recon.reconstruct(first, following, 5, "a cat walks"))
    assert all(np.array_equal(x, y) for x, y in zip(frames, again))  # same seed, same device


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_vq_diffusion_reduced_precision_decode_on_gpu(tiny, dtype):  # noqa: F811
    frame = _images(1, seed=11)[0]
    reference = _codec(tiny)  # float32 on the test device
    data = reference.compress(frame, "a red car")
    codec = _codec(tiny, dtype=dtype)
    out = codec.decompress(data, frame.shape[:2], "a red car")
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(codec.decompress(data, frame.shape[:2], "a red car"), out)


def test_vq_stream_is_the_same_from_cpu_and_gpu(tiny):  # noqa: F811
    """Index maps and coded bytes must not depend on where the encoder ran (float32 on both),
    and a stream coded on the GPU must decode on the CPU to the same indices."""
    gpu = _codec(tiny)
    cpu = _codec(tiny, device="cpu")
    for frame in _images(3, seed=5):
        indices = gpu.encode_indices(frame)
        assert np.array_equal(indices, cpu.encode_indices(frame))
        data = gpu.compress(frame)
        assert data == cpu.compress(frame)
        shape = gpu.index_shape(frame.shape[:2])
        assert np.array_equal(cpu.vq.index_coder().decode(data, shape), indices)
        assert np.array_equal(gpu.vq.index_coder().decode(data, shape), indices)
