"""The corpus-primed PPM text coder: round trips, compression against LZW, strict decoding."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m3cvc.errors import BitstreamError
from m3cvc.text import decode_texts, encode_texts, text_codec_name
from m3cvc.text import ppm
from m3cvc.text.base import serialise_texts
from m3cvc.text.corpus import generate_corpus
from m3cvc.text.lzw import lzw_encode
from m3cvc.text.ppm import MODELS, PPMCoder

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks" / "data" / "descriptions.json"

DESCRIPTIONS = [
    "The image shows a man in a blue jacket riding a bicycle along a wet street. Parked cars line the "
    "right side of the road, and shop windows are lit in the background.",
    "Compared to the previous keyframe, the cyclist has moved to the center of the frame and a bus has "
    "appeared on the left. The sky is gray and overcast.",
    "The video shows the cyclist riding from left to right while the camera pans to follow him.",
]


@pytest.fixture(scope="module")
def coder() -> PPMCoder:
    return PPMCoder()


def test_round_trips_descriptions_and_beats_lzw(coder):
    blob = serialise_texts(DESCRIPTIONS)
    coded = coder.encode(blob)
    assert coder.decode(coded) == blob
    chars = sum(len(t) for t in DESCRIPTIONS)
    ppm_bpc = 8 * len(coded) / chars
    lzw_bpc = 8 * len(lzw_encode(blob)) / chars
    assert ppm_bpc < 0.65 * lzw_bpc, (ppm_bpc, lzw_bpc)
    unit = encode_texts(DESCRIPTIONS)  # auto keeps the smallest: ppm here
    assert text_codec_name(unit) == "ppm"
    assert decode_texts(unit, len(DESCRIPTIONS)) == DESCRIPTIONS


def test_encoding_is_deterministic(coder):
    blob = serialise_texts(DESCRIPTIONS[:1])
    assert coder.encode(blob) == PPMCoder().encode(blob)


@given(st.lists(st.text(max_size=60), max_size=4))
@settings(max_examples=40, deadline=None)
def test_round_trips_any_unicode_texts(texts):
    unit = encode_texts(texts, "ppm")
    assert decode_texts(unit, len(texts)) == texts


@given(st.binary(max_size=120))
@settings(max_examples=40, deadline=None)
def test_round_trips_any_bytes(data):
    coder = PPMCoder()
    assert coder.decode(coder.encode(data)) == data


def test_empty_inputs_round_trip(coder):
    for blob in (b"", serialise_texts([]), serialise_texts(["", ""])):
        assert coder.decode(coder.encode(blob)) == blob


def _unit() -> bytes:
    return encode_texts(["A dog runs across a green lawn toward the camera."], "ppm")


def test_every_truncation_raises():
    unit = _unit()
    for n in range(len(unit)):
        with pytest.raises(BitstreamError):
            decode_texts(unit[:n], 1)


def test_bit_flips_and_appended_bytes_raise():
    unit = _unit()
    rng = random.Random(1)
    for _ in range(60):
        pos = rng.randrange(1, len(unit))
        bad = bytearray(unit)
        bad[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(BitstreamError):
            decode_texts(bytes(bad), 1)
    for tail in (b"\x00", b"\x80", b"\xff\xff"):
        with pytest.raises(BitstreamError):
            decode_texts(unit + tail, 1)


@given(st.binary(max_size=48))
@settings(max_examples=60, deadline=None)
def test_garbage_payloads_raise_bitstream_error_only(payload):
    try:
        PPMCoder().decode(payload)
    except BitstreamError:
        pass


def test_huge_declared_length_is_rejected_quickly(coder):
    with pytest.raises(BitstreamError, match="more symbols"):
        coder.decode(bytes([1]) + ppm.write_uvarint(2 * 10**9) + b"\x12\x34")


def test_unknown_model_version_raises(coder):
    coded = coder.encode(b"abc")
    with pytest.raises(BitstreamError, match="unknown model version"):
        coder.decode(bytes([77]) + coded[1:])


def test_corpus_checksum_is_verified(monkeypatch):
    spec = replace(MODELS[1], version=200, sha256="0" * 64)
    monkeypatch.setitem(MODELS, 200, spec)
    with pytest.raises(BitstreamError, match="checksum"):
        PPMCoder(200).encode(b"abc")


def test_shipped_corpus_is_the_generator_output_and_excludes_the_benchmark():
    spec = MODELS[1]
    shipped = gzip.decompress((Path(ppm.__file__).parent / "data" / spec.corpus).read_bytes())
    assert hashlib.sha256(shipped).hexdigest() == spec.sha256
    assert shipped.decode("utf-8") == generate_corpus()
    if BENCH.is_file():
        corpus = shipped.decode("utf-8")
        videos = json.loads(BENCH.read_text(encoding="utf-8"))["videos"]
        sentences = {s.strip() for v in videos for t in v["keyframes"] + v["clips"] for s in t.split(". ")}
        assert len(sentences) > 100
        assert not [s for s in sentences if len(s) > 25 and s in corpus]
