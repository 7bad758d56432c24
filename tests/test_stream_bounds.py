"""No stream, however crafted, makes the decoder run away (issue 12): bounds recorded in the header,
the user's limits, keyframe pictures, text expansion, and a seeded fuzz test over valid-CRC mutations."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest

from conftest import synthetic_frames, write_video
from m3cvc.bitstream import MAGIC, MAX_CLIP, DecodeLimits, UnitType, parse_units, read_stream
from m3cvc.cli import main as cli_main
from m3cvc.config import load_config, with_overrides
from m3cvc.errors import BitstreamError
from m3cvc.pipeline import Decoder, Encoder
from m3cvc.varint import read_uvarint, write_uvarint


def _unit(kind: int, payload: bytes) -> bytes:
    head = bytes([kind]) + write_uvarint(len(payload))
    return head + payload + struct.pack(">I", zlib.crc32(head + payload))


def reframe(data: bytes, payloads: list[tuple[int, bytes]], version: int | None = None) -> bytes:
    """A stream with these (type, payload) units and valid CRCs."""
    head = data[: len(MAGIC) + 1] if version is None else MAGIC + bytes([version])
    return head + b"".join(_unit(k, p) for k, p in payloads)


def units_of(data: bytes) -> list[tuple[int, bytes]]:
    return [(u.type, u.payload) for u in parse_units(data)]


def with_header_values(data: bytes, **changes: int) -> bytes:
    """The stream with some of the header's leading varints replaced (CRCs recomputed)."""
    names = ["width", "height", "fps_num", "fps_den", "frames", "keyframes", "max_clip"]
    units = units_of(data)
    payload, pos, values = units[0][1], 0, []
    for _ in names:
        v, pos = read_uvarint(payload, pos)
        values.append(v)
    values = [changes.get(n, v) for n, v in zip(names, values)]
    units[0] = (UnitType.SEQUENCE_HEADER, b"".join(write_uvarint(v) for v in values) + payload[pos:])
    return reframe(data, units)


@pytest.fixture(scope="module")
def tiny_stream(tmp_path_factory):
    """A lite stream of 12 frames at 48x32 (HEVC keyframes, motion hints)."""
    path = write_video(tmp_path_factory.mktemp("tiny") / "t.y4m", synthetic_frames(12, width=48, height=32, cut_at=7))
    cfg = with_overrides(load_config(profile="lite"), keyframes={"max_interval": 4, "min_interval": 1},
                         preprocess={"keep_size": True, "keep_fps": True})  # fmt: skip
    return Encoder(cfg).encode(path).data


def test_header_records_the_longest_clip_and_a_huge_frame_count_is_refused(tiny_stream, tmp_path, capsys):
    assert read_stream(tiny_stream).header.max_clip == 4
    crafted = with_header_values(tiny_stream, frames=2**31 - 1)
    with pytest.raises(BitstreamError, match="claims 2147483647 frames"):
        read_stream(crafted)
    # the same claim in a version 1 stream (no longest-clip field): bounded by MAX_CLIP per keyframe
    from m3cvc.bitstream import _header_payload

    units = units_of(tiny_stream)
    payload, pos = _header_payload(read_stream(tiny_stream).header, version=2), 0  # settings with their keys
    values = []
    for _ in range(7):
        v, pos = read_uvarint(payload, pos)
        values.append(v)
    v1 = [(UnitType.SEQUENCE_HEADER, b"".join(write_uvarint(v) for v in [*values[:4], 2**31 - 1, values[5]]) + payload[pos:])]
    with pytest.raises(BitstreamError, match="claims"):
        read_stream(reframe(tiny_stream, v1 + units[1:], version=1))
    # a clip longer than the recorded longest one, and a longest clip beyond MAX_CLIP
    with pytest.raises(BitstreamError, match="longer than the stream's longest clip"):
        read_stream(with_header_values(tiny_stream, max_clip=3))
    with pytest.raises(BitstreamError, match="invalid longest clip"):
        read_stream(with_header_values(tiny_stream, max_clip=MAX_CLIP + 1))
    path, out = tmp_path / "crafted.m3c", tmp_path / "out.y4m"
    path.write_bytes(crafted)
    assert cli_main(["decode", str(path), "-o", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not out.exists()


def test_user_limits_refuse_before_any_frame_is_written(tiny_stream, tmp_path, capsys):
    path, out = tmp_path / "t.m3c", tmp_path / "out.y4m"
    path.write_bytes(tiny_stream)
    for args, message in ((["--max-frames", "11"], "12 frames, more than the limit of 11"),
                          (["--max-pixels", "1000"], "48x32 = 1536 pixels")):  # fmt: skip
        assert cli_main(["decode", str(path), "-o", str(out), *args]) == 2
        assert message in capsys.readouterr().err and not out.exists()
    assert cli_main(["decode", str(path), "-o", str(out), "-q", "--max-frames", "12"]) == 0
    assert cli_main(["decode", str(path), "-o", str(out), "-y", "--max-frames", "0"]) == 2
    assert DecodeLimits().max_frames == 1_000_000


def test_a_keyframe_that_claims_a_larger_picture_is_refused_before_it_is_made(tiny_stream):
    from m3cvc.keyframe_codec.hevc import HevcChainCodec

    big = HevcChainCodec(40).compress(np.zeros((640, 960, 3), np.uint8))
    units = units_of(tiny_stream)
    units[1] = (UnitType.KEYFRAME, b"\x00" + big)
    with pytest.raises(BitstreamError, match="much larger than the header's 48x32"):
        list(Decoder().decode(reframe(tiny_stream, units)))


def test_text_expansion_is_bounded():
    from m3cvc.text.lzw import lzw_decode, lzw_encode

    bomb = lzw_encode(b"a" * 200_000)  # LZW packs a long run into few codes
    assert len(bomb) < 5_000
    with pytest.raises(BitstreamError, match="expands past"):
        lzw_decode(bomb, limit=100_000)
    assert lzw_decode(bomb) == b"a" * 200_000  # within the default bound (64 bytes per coded byte or 1 MiB)


MUTATIONS = 2000
TIME_BOUND_S = 5.0


def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    units = units_of(data)
    op = int(rng.integers(0, 9))
    i = int(rng.integers(0, len(units)))
    kind, payload = units[i]
    b = bytearray(payload)
    if op == 0 and b:  # flip a bit
        j = int(rng.integers(0, len(b)))
        b[j] ^= 1 << int(rng.integers(0, 8))
    elif op == 1 and b:  # a random byte
        b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
    elif op == 2:  # insert bytes
        j = int(rng.integers(0, len(b) + 1))
        b[j:j] = bytes(rng.integers(0, 256, int(rng.integers(1, 4))).astype(np.uint8))
    elif op == 3 and b:  # delete bytes
        j = int(rng.integers(0, len(b)))
        del b[j : j + int(rng.integers(1, 4))]
    elif op == 4:  # a header varint set to a random size (up to 2^40)
        names = ["width", "height", "fps_num", "fps_den", "frames", "keyframes", "max_clip"]
        return with_header_values(data, **{names[int(rng.integers(0, 7))]: int(2 ** rng.uniform(0, 40))})
    elif op == 5:  # drop a unit
        return reframe(data, units[:i] + units[i + 1 :])
    elif op == 6:  # duplicate a unit
        return reframe(data, units[: i + 1] + units[i:])
    elif op == 7 and len(units) > 2:  # swap two units
        j = int(rng.integers(0, len(units)))
        units[i], units[j] = units[j], units[i]
        return reframe(data, units)
    else:  # truncate the file (no CRC fix-up)
        return data[: int(rng.integers(0, len(data)))]
    units[i] = (kind, bytes(b))
    return reframe(data, units)


def test_fuzz_every_mutation_is_a_clean_error_or_a_valid_decode(tiny_stream):
    """Seeded mutations of a valid stream with CRCs recomputed (so they reach every parser): each one
    decodes to frames of the header's size or raises BitstreamError, within a time bound."""
    rng = np.random.default_rng(20261130)
    outcomes = {"error": 0, "decoded": 0}
    slowest = 0.0
    for n in range(MUTATIONS):
        data = _mutate(rng, tiny_stream)
        start = time.perf_counter()
        try:
            video = Decoder().open(data)
            h = video.header
            frames = list(video)
            assert len(frames) == h.frames and all(f.shape == (h.height, h.width, 3) for f in frames), n
            outcomes["decoded"] += 1
        except BitstreamError:
            outcomes["error"] += 1
        slowest = max(slowest, time.perf_counter() - start)
        assert slowest < TIME_BOUND_S, f"mutation {n} took {slowest:.1f} s"
    assert sum(outcomes.values()) == MUTATIONS >= 1000
    print(outcomes, f"slowest {slowest:.3f} s")
    assert outcomes["error"] > 500 and outcomes["decoded"] > 0, outcomes


def test_frame_rates_and_png_patterns_are_checked(tiny_stream, tmp_path, capsys):
    from m3cvc.bitstream import read_stream as parse

    for fps in (2**32 - 1, 0):  # a crafted frame rate (numerator) is refused like any bad header field
        with pytest.raises(BitstreamError, match="frame rate"):
            parse(with_header_values(tiny_stream, fps_num=fps, fps_den=1))
    path = tmp_path / "t.m3c"
    path.write_bytes(tiny_stream)
    clip = write_video(tmp_path / "c.y4m", synthetic_frames(4, width=32, height=16))
    for bad in ("inf", "1e9", "1e-9", "nan", "0"):
        assert cli_main(["preprocess", str(clip), "-o", str(tmp_path / "x.y4m"), "-y", "--fps", bad]) == 2, bad
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    frames = tmp_path / "frames"
    frames.mkdir()
    assert cli_main(["decode", str(path), "-o", str(frames / "bad_%d%d.png")]) == 2
    assert "exactly one frame-number field" in capsys.readouterr().err
    assert cli_main(["decode", str(path), "-o", str(frames / "f_%05d.png"), "-q"]) == 0
    before = (frames / "f_00003.png").read_bytes()
    assert cli_main(["decode", str(path), "-o", str(frames / "f_%05d.png"), "-q"]) == 2  # kept without -y
    assert "pass --overwrite" in capsys.readouterr().err and (frames / "f_00003.png").read_bytes() == before
    assert cli_main(["decode", str(path), "-o", str(frames / "f_%05d.png"), "-q", "-y"]) == 0


@pytest.mark.parametrize("stage", ["keyframe_codec", "reconstructor"])
def test_a_stream_naming_an_unknown_backend_is_a_bitstream_error(tiny_stream, tmp_path, capsys, stage):
    from dataclasses import replace

    from m3cvc.bitstream import StageInfo, write_stream

    stream = read_stream(tiny_stream)
    named = getattr(stream.header, stage)
    crafted = write_stream(replace(stream, header=replace(stream.header, **{stage: StageInfo(named.name + "x", named.params)})))
    with pytest.raises(BitstreamError, match=f"unknown .*'{named.name}x'"):
        list(Decoder().decode(crafted))
    path, out = tmp_path / "foreign.m3c", tmp_path / "out.y4m"
    path.write_bytes(crafted)
    assert cli_main(["decode", str(path), "-o", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not out.exists()
