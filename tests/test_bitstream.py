from __future__ import annotations

import random
from fractions import Fraction

import pytest

from m3cvc.bitstream import (
    FORMAT_VERSION, MAGIC, Keyframe, SequenceHeader, StageInfo, Stream, parse_units, read_stream,
    section_sizes, write_stream,
)
from m3cvc.errors import BitstreamError
from m3cvc.varint import read_uvarint, write_uvarint


def make_stream(texts: bool = True, motion: bool = False) -> Stream:
    params = {"mode": "interpolation", "occlusion": True, "scale": 0.5, "neg": -3}
    header = SequenceHeader(
        width=64, height=48, fps=Fraction(8), frames=20, num_keyframes=3, profile="lite",
        keyframe_codec=StageInfo("avif", {"quality": 30}),
        reconstructor=StageInfo("flow", {**params, "motion_hints": True} if motion else params),
    )
    kfs = (Keyframe(0, b"\x01\x02\x03" * 10), Keyframe(9, b"abc"), Keyframe(19, bytes(range(50))))
    kt = ("a red car on a road", "", "the car turns left") if texts else ("", "", "")
    ct = ("camera pans right", "zoom in ünïcødé ✓", "") if texts else ("", "", "")
    return Stream(header, kfs, kt, ct, bytes(range(200, 230)) if motion else None)


def test_round_trip_and_sections():
    stream = make_stream()
    data = write_stream(stream)
    assert data.startswith(MAGIC) and data[len(MAGIC)] == FORMAT_VERSION
    back = read_stream(data)
    assert back == stream
    sizes = section_sizes(data)
    assert sum(sizes.values()) == len(data)
    assert set(sizes) == {"header", "keyframe_images", "clip_motion", "keyframe_texts", "clip_texts"}
    assert sizes["clip_motion"] == 0
    # the keyframe section holds at least the image bytes
    assert sizes["keyframe_images"] >= sum(len(k.data) for k in stream.keyframes)
    assert write_stream(back) == data  # deterministic


@pytest.mark.parametrize("codec", ["raw", "lzw", "auto"])
def test_text_codecs_in_stream(codec):
    stream = make_stream()
    assert read_stream(write_stream(stream, codec)) == stream


def test_empty_texts_cost_nothing_in_version_4_and_ten_bytes_per_unit_before():
    from dataclasses import replace

    empty = make_stream(texts=False)
    data = write_stream(empty)
    sizes = section_sizes(data)
    assert sizes["keyframe_texts"] == sizes["clip_texts"] == 0
    assert [u.type for u in parse_units(data)] == [1, 2, 2, 2]
    assert read_stream(data) == empty and write_stream(read_stream(data)) == data
    # version 3: unit framing (type + length + CRC = 6 bytes), codec id, one zero length per text
    v3 = write_stream(replace(empty, version=3))
    assert section_sizes(v3)["keyframe_texts"] == section_sizes(v3)["clip_texts"] == 6 + 1 + 3
    # one text is enough for both units to be written, and the header's flag says so
    one = replace(empty, clip_texts=("", "x", ""))
    assert [u.type for u in parse_units(write_stream(one))] == [1, 2, 2, 2, 3, 4]
    assert read_stream(write_stream(one)) == one


def test_version_4_texts_flag_is_parsed_strictly():
    import struct
    import zlib

    def unit(kind: int, payload: bytes) -> bytes:
        head = bytes([kind]) + write_uvarint(len(payload))
        return head + payload + struct.pack(">I", zlib.crc32(head + payload))

    with_texts, without = write_stream(make_stream()), write_stream(make_stream(texts=False))
    t_units, e_units = parse_units(with_texts), parse_units(without)
    # the header of the textless stream (flag 0) followed by text units: they are not this stream's
    with pytest.raises(BitstreamError, match="after its last unit"):
        read_stream(without + with_texts[t_units[-2].offset :])
    # the flag set, the text units missing: truncated
    flagged = bytearray(e_units[0].payload)
    pos = 0
    for _ in range(7):
        _, pos = read_uvarint(bytes(flagged), pos)
    assert flagged[pos] == 0
    flagged[pos] = 1
    rebuilt = MAGIC + bytes([FORMAT_VERSION]) + unit(1, bytes(flagged)) + without[e_units[1].offset :]
    with pytest.raises(BitstreamError, match="truncated"):
        read_stream(rebuilt)
    # ... or present with every text empty (the writer would have left them out)
    from m3cvc.text import encode_texts

    empty_units = unit(3, encode_texts(["", "", ""], "raw")) + unit(4, encode_texts(["", "", ""], "raw"))
    with pytest.raises(BitstreamError, match="all empty"):
        read_stream(rebuilt + empty_units)
    flagged[pos] = 2
    with pytest.raises(BitstreamError, match="unknown flags"):
        read_stream(MAGIC + bytes([FORMAT_VERSION]) + unit(1, bytes(flagged)) + without[e_units[1].offset :])


def test_version_4_names_and_short_decimals():
    from dataclasses import replace

    from m3cvc.bitstream import NAMES

    stream = make_stream()
    v4, v3 = write_stream(stream), write_stream(replace(stream, version=3))
    # "lite", "avif", "flow": one byte each instead of five; 0.5 in 3 bytes instead of 9; one byte of flags
    assert section_sizes(v3)["header"] - section_sizes(v4)["header"] == 3 * 4 + 6 - 1
    for value in (0.0025, 0.05, -0.25, 1e-7, 123.5, 0.0, 0.1 + 0.2, 1e300, -0.0, 2.0**60, 5e-324):
        for name in ("lite", "some-new-backend"):
            other = replace(stream, header=replace(stream.header, profile=name,
                                                   reconstructor=StageInfo("novel", {"x": value})))
            back = read_stream(write_stream(other))
            assert back == other and repr(back.header.reconstructor.params["x"]) == repr(value)
    assert set(NAMES) >= {"lite", "full", "paper", "hevc", "avif", "flow", "seine", "hevc+img2img"}


@pytest.mark.parametrize("value, message", [
    (b"\x06\x64\x03", "shortest decimal"),  # 50 x 10^-3, which is 5 x 10^-2
    (b"\x06\x02\x1f", "out-of-range"),  # exponent 31
    (b"\x01" + __import__("struct").pack(">d", 0.5), "full length"),  # 0.5 as binary64 where 5e-1 fits
])
def test_version_4_decimals_are_parsed_strictly(value, message):
    import struct
    import zlib

    payload = (b"".join(write_uvarint(v) for v in (64, 48, 8, 1, 20, 3, 20, 0)) + bytes([0, 4, 0, 8])
               + b"\x01\x0a\x01x" + value)  # lite, avif (no settings), flow: one explicit setting "x"
    head = bytes([1]) + write_uvarint(len(payload))
    with pytest.raises(BitstreamError, match=message):
        read_stream(MAGIC + b"\x04" + head + payload + struct.pack(">I", zlib.crc32(head + payload)))


def test_version_4_spelled_out_table_names_are_refused():
    import struct
    import zlib

    from m3cvc.bitstream import NAMES

    spelled = write_uvarint(len(NAMES) + 4) + b"lite"
    payload = b"".join(write_uvarint(v) for v in (64, 48, 8, 1, 20, 3, 20, 0)) + spelled + bytes([4, 0, 8, 0])
    head = bytes([1]) + write_uvarint(len(payload))
    with pytest.raises(BitstreamError, match="spelled out"):
        read_stream(MAGIC + b"\x04" + head + payload + struct.pack(">I", zlib.crc32(head + payload)))


def test_varint_round_trip():
    for value in [0, 1, 127, 128, 300, 2**31, 2**63 - 1]:
        enc = write_uvarint(value)
        assert read_uvarint(enc, 0) == (value, len(enc))
    with pytest.raises(BitstreamError):
        read_uvarint(b"\x80\x80", 0)
    with pytest.raises(BitstreamError):
        read_uvarint(b"\xff" * 11, 0)


@pytest.mark.parametrize("motion", [False, True])
def test_every_truncation_is_an_error(motion):
    data = write_stream(make_stream(motion=motion))
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            read_stream(data[:cut])


def test_trailing_bytes_and_bad_version():
    data = write_stream(make_stream())
    with pytest.raises(BitstreamError, match="1 bytes after its last unit"):
        read_stream(data + b"\x00")
    with pytest.raises(BitstreamError, match="another m3cvc stream follows"):
        read_stream(data + data)
    with pytest.raises(BitstreamError, match="truncated"):
        read_stream(data[:-3])
    bad = bytearray(data)
    bad[len(MAGIC)] = FORMAT_VERSION + 1
    with pytest.raises(BitstreamError, match="version"):
        read_stream(bytes(bad))
    with pytest.raises(BitstreamError, match="magic"):
        read_stream(b"RIFF" + data[4:])
    # the version byte is outside every CRC: a relabelled stream's header error names the layout read
    relabelled = bytearray(data)
    relabelled[len(MAGIC)] = 3
    with pytest.raises(BitstreamError, match="header read as format version 3"):
        read_stream(bytes(relabelled))


@pytest.mark.parametrize("motion", [False, True])
def test_random_bit_flips_are_detected(motion):
    data = write_stream(make_stream(motion=motion))
    rng = random.Random(1234)
    for _ in range(2000):
        bad = bytearray(data)
        bit = rng.randrange(len(bad) * 8)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BitstreamError):
            read_stream(bytes(bad))


def test_writer_rejects_inconsistent_streams():
    s = make_stream()
    with pytest.raises(ValueError):
        write_stream(Stream(s.header, s.keyframes[:2], s.keyframe_texts, s.clip_texts))
    with pytest.raises(ValueError):
        write_stream(Stream(s.header, (Keyframe(1, b""),) + s.keyframes[1:], s.keyframe_texts, s.clip_texts))
    with pytest.raises(ValueError):
        write_stream(Stream(s.header, s.keyframes[:2] + (Keyframe(20, b""),), s.keyframe_texts, s.clip_texts))


def test_units_are_listed_in_order():
    units = parse_units(write_stream(make_stream()))
    assert [u.type for u in units] == [1, 2, 2, 2, 3, 4]


def test_clip_motion_unit_round_trip_and_placement():
    stream = make_stream(motion=True)
    data = write_stream(stream)
    assert read_stream(data) == stream
    assert [u.type for u in parse_units(data)] == [1, 2, 2, 2, 5, 3, 4]
    sizes = section_sizes(data)
    assert sizes["clip_motion"] == 6 + 30 and sum(sizes.values()) == len(data)
    plain = make_stream()
    # the unit is there exactly when the header says motion_hints
    with pytest.raises(ValueError):
        write_stream(Stream(plain.header, plain.keyframes, plain.keyframe_texts, plain.clip_texts, b"x"))
    with pytest.raises(ValueError):
        write_stream(Stream(stream.header, stream.keyframes, stream.keyframe_texts, stream.clip_texts))
    # a hinted header without its unit, or a unit without the header flag, does not parse
    units = parse_units(data)
    without = data[: units[4].offset] + data[units[4].offset + units[4].size :]
    with pytest.raises(BitstreamError):
        read_stream(without)
    extra = write_stream(plain)
    cut = parse_units(extra)[4].offset
    with pytest.raises(BitstreamError):
        read_stream(extra[:cut] + data[units[4].offset : units[4].offset + units[4].size] + extra[cut:])


def test_keyframe_triggers_round_trip_and_version_1_streams_still_read():
    from dataclasses import replace

    stream = make_stream()
    triggered = replace(stream, keyframes=tuple(replace(k, trigger=t) for k, t in zip(stream.keyframes, (0, 2, 3))))
    data = write_stream(triggered)
    assert [k.trigger for k in read_stream(data).keyframes] == [0, 2, 3]
    with pytest.raises(ValueError, match="triggers"):
        write_stream(replace(stream, keyframes=(replace(stream.keyframes[0], trigger=4), *stream.keyframes[1:])))
    # the same stream in format version 1: no longest-clip field, plain index deltas, every trigger 0,
    # settings with their keys (as in version 2)
    import struct
    import zlib

    data = write_stream(replace(triggered, version=2))
    assert data[len(MAGIC)] == 2 and read_stream(data) == replace(triggered, version=2)

    def unit(kind: int, payload: bytes) -> bytes:
        head = bytes([kind]) + write_uvarint(len(payload))
        return head + payload + struct.pack(">I", zlib.crc32(head + payload))

    units = parse_units(data)
    header, pos, values = units[0].payload, 0, []
    for _ in range(7):
        v, pos = read_uvarint(header, pos)
        values.append(v)
    v1 = [unit(1, b"".join(write_uvarint(v) for v in values[:6]) + header[pos:])]
    for u in units[1:]:
        if u.type == 2:
            value, p = read_uvarint(u.payload, 0)
            v1.append(unit(2, write_uvarint(value >> 2) + u.payload[p:]))
        else:
            v1.append(unit(u.type, u.payload))
    old = read_stream(MAGIC + b"\x01" + b"".join(v1))
    assert [k.index for k in old.keyframes] == [0, 9, 19] and [k.trigger for k in old.keyframes] == [0, 0, 0]
    assert old.header.max_clip == 4096 and old.keyframe_texts == stream.keyframe_texts


def test_version_3_codes_only_the_settings_that_differ_from_the_format_defaults():
    from dataclasses import replace

    from m3cvc.bitstream import PARAM_DEFAULTS

    lite = {key: value for key, value in PARAM_DEFAULTS["flow"] if value is not None}
    stream = replace(make_stream(), version=3, header=replace(  # (dummy keyframe bytes: not x265's, for format 4)
        make_stream().header, keyframe_codec=StageInfo("hevc", {"qp": 42, "preset": "medium"}),
        reconstructor=StageInfo("flow", {**lite, "sharpen": 0}),
    ), clip_motion=b"\x00")
    v3, v2 = write_stream(stream), write_stream(replace(stream, version=2))
    assert read_stream(v3) == stream and read_stream(v2) == replace(stream, version=2)
    # the lite defaults: 174 bytes of keys and values in version 2, the sharpen strength alone in version 3
    assert section_sizes(v2)["header"] - section_sizes(v3)["header"] >= 150
    assert section_sizes(v3)["header"] <= 40
    # any change is kept exactly: values of another type, a row key left out, keys the row lacks, floats
    odd = {**lite, "sharpen": 12, "fallback": 1, "occlusion": 1, "working_width": 512.0, "zeta": "z", "alpha": -0.25}
    del odd["residual"]
    for codec, recon in [
        (StageInfo("hevc", {"qp": 30, "preset": "slow", "target_bpp": 0.004}), StageInfo("flow", odd)),
        (StageInfo("hevc", {"preset": "medium"}), StageInfo("blend", {"mode": "interpolation", "w": 0.5})),
        (StageInfo("vq-diffusion", {}), StageInfo("flow", {})),
    ]:
        other = replace(stream, header=replace(stream.header, keyframe_codec=codec, reconstructor=recon),
                        clip_motion=b"\x00" if recon.params.get("motion_hints") else None)
        back = read_stream(write_stream(other)).header
        assert back == other.header
        assert [(k, type(v)) for k, v in back.reconstructor.params.items()] == [
            (k, type(v)) for k, v in sorted(recon.params.items())]


def _header_with(entries: bytes) -> bytes:
    """A version 3 stream whose flow reconstructor settings are ``entries`` (count included)."""
    payload = b"".join(write_uvarint(v) for v in (64, 48, 8, 1, 20, 3, 20)) + b"\x04lite\x04avif\x00\x04flow" + entries
    import struct
    import zlib

    head = bytes([1]) + write_uvarint(len(payload))
    return MAGIC + b"\x03" + head + payload + struct.pack(">I", zlib.crc32(head + payload))


@pytest.mark.parametrize("entries, message", [
    (b"\x02\x0a\x01b\x00\x00\x0a\x01a\x00\x00", "in order"),  # explicit keys (slot 10, the row's length) sorted
    (b"\x02\x02\x00\x04\x01\x00\x06", "in order"),  # slots must increase
    (b"\x02\x02\x00\x04\x02\x00\x06", "in order"),  # ... and not repeat
    (b"\x01\x0b\x00\x02", "in order"),  # past the row's explicit-key slot
    (b"\x01\x09\x05", "no default"),  # removing sharpen, which is absent unless coded
    (b"\x01\x02\x00\x80\x08", "at its default"),  # working_width 512 coded although it is the default
    (b"\x01\x0a\x04mode\x02\x01x", "in order"),  # a row key given as an explicit key
    (b"\x01\x00\x07", "unknown type"),
])
def test_version_3_settings_are_parsed_strictly(entries, message):
    with pytest.raises(BitstreamError, match=message):
        read_stream(_header_with(entries))
