"""Encoder/Decoder API: frame counts, determinism, robustness of decoding real streams."""

from __future__ import annotations

import random

import numpy as np
import pytest

from m3cvc.config import load_config, with_overrides
from m3cvc.bitstream import read_stream
from m3cvc.errors import BitstreamError, ConfigError
from m3cvc.pipeline import DecodeOverrides, Decoder, Encoder

from conftest import synthetic_frames, write_video


@pytest.fixture(scope="module", params=[("hevc", True), ("hevc", False), ("avif", True)],
                ids=["hevc-hints", "hevc-no-hints", "avif-hints"])  # fmt: skip
def small_stream(tmp_path_factory, request):
    backend, hinted = request.param
    path = write_video(tmp_path_factory.mktemp("v") / "s.y4m", synthetic_frames(12, cut_at=7))
    cfg = with_overrides(load_config(profile="lite"), preprocess={"width": 48, "height": 32},
                         keyframe_codec={"backend": backend, "avif": {"quality": 10}},
                         reconstruct={"flow": {"motion_hints": hinted}})
    data = Encoder(cfg).encode(path).data
    assert (read_stream(data).clip_motion is not None) == hinted
    return data


def test_decoder_output_matches_header(small_stream):
    decoded = Decoder().open(small_stream)
    frames = list(decoded)
    assert len(frames) == decoded.header.frames == 12
    assert all(f.shape == (32, 48, 3) and f.dtype == np.uint8 for f in frames)


def _decode_all(data: bytes) -> int:
    return sum(1 for _ in Decoder().decode(data))


def test_every_truncation_raises_bitstream_error(small_stream):
    for cut in range(len(small_stream)):
        with pytest.raises(BitstreamError):
            _decode_all(small_stream[:cut])


def test_bit_flips_raise_bitstream_error_or_decode(small_stream):
    rng = random.Random(7)
    full = _decode_all(small_stream)
    for _ in range(2000):
        bad = bytearray(small_stream)
        bit = rng.randrange(len(bad) * 8)
        bad[bit // 8] ^= 1 << (bit % 8)
        try:
            assert _decode_all(bytes(bad)) == full
        except BitstreamError:
            pass


def test_encode_accepts_descriptions_and_is_deterministic(tmp_path):
    from m3cvc.describe import Descriptions

    path = write_video(tmp_path / "s.y4m", synthetic_frames(6))
    cfg = with_overrides(load_config(), preprocess={"width": 48, "height": 32})
    d = Descriptions(keyframes=("first",), clips=("moves",))
    a = Encoder(cfg).encode(path, descriptions=d)
    b = Encoder(cfg).encode(path, descriptions=d)
    assert a.data == b.data
    assert a.stream.keyframe_texts[0] == "first" and a.stream.clip_texts[0] == "moves"
    assert a.bpp == pytest.approx(8 * len(a.data) / (6 * 48 * 32))


def test_preprocess_config_is_respected(tmp_path):
    path = write_video(tmp_path / "s.y4m", synthetic_frames(16), fps=16)
    cfg = with_overrides(load_config(), preprocess={"width": 40, "height": 24, "fps": 4.0})
    result = Encoder(cfg).encode(path)
    h = result.stream.header
    assert (h.width, h.height, h.frames, float(h.fps)) == (40, 24, 4, 4.0)


def test_decode_overrides_remap_model_paths_and_runtime_settings():
    o = DecodeOverrides(device="cuda:1", dtype="float16",
                        model_paths=(("/old/ckpt", "/new/ckpt"), ("/old/sd/", "models/sd")))
    stored = {"checkpoint": "/old/ckpt", "unet": "/old/ckpt/unet", "vae": "taef2:/old/sd/taef2",
              "diffusion": "stable-diffusion-v1-5/stable-diffusion-v1-5", "other": "/old/ckptX",
              "device": "cpu", "dtype": "float32", "mode": "/old/ckpt", "steps": 50}
    assert o.apply(stored) == {
        "checkpoint": "/new/ckpt", "unet": "/new/ckpt/unet", "vae": "taef2:models/sd/taef2",
        "diffusion": "stable-diffusion-v1-5/stable-diffusion-v1-5", "other": "/old/ckptX",
        "device": "cuda:1", "dtype": "float16", "mode": "/old/ckpt", "steps": 50,
    }
    assert DecodeOverrides(device="cuda").apply({"quality": 10}) == {"quality": 10}  # no such setting: untouched
    assert DecodeOverrides().apply(stored) == stored
    assert DecodeOverrides.parse_model_paths(["a=b", "c/d=e=f"]) == (("a", "b"), ("c/d", "e=f"))
    for bad in (["ab"], ["=b"], ["a="]):
        with pytest.raises(ConfigError, match="OLD=NEW"):
            DecodeOverrides.parse_model_paths(bad)


def test_decode_overrides_leave_lite_streams_unchanged(small_stream):
    plain = list(Decoder().decode(small_stream))
    moved = list(Decoder(DecodeOverrides(device="cuda", model_paths=(("/x", "/y"),))).decode(small_stream))
    assert all(np.array_equal(a, b) for a, b in zip(plain, moved)) and len(plain) == len(moved)


def test_decoder_tells_the_reconstructor_the_videos_frame_rate(small_stream, monkeypatch):
    from m3cvc.reconstruct.flow import FlowReconstructor

    seen = []
    original = FlowReconstructor.set_video_fps
    monkeypatch.setattr(FlowReconstructor, "set_video_fps", lambda self, fps: (seen.append(fps), original(self, fps)))
    list(Decoder().decode(small_stream))
    assert seen == [read_stream(small_stream).header.fps]


def test_wide_frames_encode_and_decode_and_too_small_ones_are_one_line(tmp_path):
    """OpenCV's DIS crashed (segfault) on flow images under 32 px high: 448x64 frames at the keyframe
    selector's 192 px working width; x265's size limits were raw PyAV errors."""
    from m3cvc.config import M3Config, with_overrides
    from m3cvc.errors import InputError
    from m3cvc.pipeline import Decoder, Encoder

    src = write_video(tmp_path / "wide.y4m", synthetic_frames(12, width=448, height=64))
    cfg = with_overrides(M3Config(), preprocess={"keep_size": True, "keep_fps": True})
    result = Encoder(cfg).encode(src)
    frames = list(Decoder().decode(result.data))
    assert len(frames) == 12 and frames[0].shape == (64, 448, 3)
    tiny = write_video(tmp_path / "tiny.y4m", synthetic_frames(4, width=64, height=8))
    with pytest.raises(InputError, match=r"x265 cannot code 64x\d+ keyframes"):
        Encoder(cfg).encode(tiny)


@pytest.mark.parametrize("mode", ["interpolation", "prediction"])
def test_decoder_reconstructs_clips_ahead_on_threads_with_the_same_frames(tmp_path, monkeypatch, mode):
    """Flow clips depend only on their keyframes and hints: with several workers they are reconstructed
    ahead on threads, with frames identical to one clip at a time; clips too large to hold stream in order
    on the reading thread; a bad worker count is a ConfigError."""
    import threading

    import m3cvc.pipeline as pipeline
    from m3cvc.reconstruct.flow import FlowReconstructor

    path = write_video(tmp_path / "s.y4m", synthetic_frames(40, cut_at=23))
    cfg = with_overrides(load_config(profile="lite"), preprocess={"width": 96, "height": 64},
                         keyframes={"max_interval": 4}, reconstruct={"mode": mode})  # fmt: skip
    data = Encoder(cfg).encode(path).data
    assert len(read_stream(data).keyframes) >= 10
    threads: list[str] = []
    original = FlowReconstructor.reconstruct

    def spy(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FlowReconstructor, "reconstruct", spy)
    one = list(Decoder(workers=1).decode(data))
    assert threads and not any(t.startswith("m3cvc-clip") for t in threads)
    threads.clear()
    many = list(Decoder(workers=3).decode(data))
    assert len(many) == len(one) == 40 and all(np.array_equal(a, b) for a, b in zip(one, many))
    assert sum(t.startswith("m3cvc-clip") for t in threads) == len(threads) == len(read_stream(data).keyframes)
    threads.clear()
    monkeypatch.setattr(pipeline, "PARALLEL_CLIP_BYTES", 2 * 96 * 64 * 3)  # clips of 3+ frames are "too large"
    big = list(Decoder(workers=3).decode(data))
    assert all(np.array_equal(a, b) for a, b in zip(one, big)) and len(big) == 40
    lengths = np.diff([k.index for k in read_stream(data).keyframes] + [40])
    assert [t.startswith("m3cvc-clip") for t in threads] == [n <= 2 for n in lengths]
    with pytest.raises(ConfigError):
        Decoder(workers=-1)
