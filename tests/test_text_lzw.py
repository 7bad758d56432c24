from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m3cvc.errors import BitstreamError
from m3cvc.text import decode_texts, encode_texts, lzw_decode, lzw_encode
from m3cvc.text.lzw import MAX_CODES, _width


@given(st.binary(max_size=3000))
@settings(max_examples=150, deadline=None)
def test_lzw_round_trips_bytes(data):
    assert lzw_decode(lzw_encode(data)) == data


@given(st.lists(st.text(max_size=200), max_size=6))
@settings(max_examples=100, deadline=None)
def test_text_lists_round_trip(texts):
    for codec in ("auto", "lzw", "raw"):
        assert decode_texts(encode_texts(texts, codec), len(texts)) == texts


def test_lzw_compresses_english_and_widths_grow():
    text = ("A man in a red jacket rides a bicycle along a dirt road. The camera follows him. " * 20).encode()
    coded = lzw_encode(text)
    assert len(coded) < len(text) / 3
    assert _width(0) == 9 and _width(256) == 9 and _width(257) == 10 and _width(10**6) == 16
    assert MAX_CODES == 65536


def test_lzw_fills_and_freezes_its_dictionary():
    import random

    rng = random.Random(0)
    data = bytes(rng.randrange(256) for _ in range(200_000))  # > 65,536 codes
    assert lzw_decode(lzw_encode(data)) == data


def test_lzw_rejects_garbage():
    with pytest.raises(BitstreamError):
        lzw_decode(b"\xff\xff\xff")  # code 511 before the dictionary has it
    with pytest.raises(BitstreamError):
        decode_texts(b"\x63abc", 1)  # unknown coder id
    with pytest.raises(BitstreamError):
        decode_texts(b"\x00\x05ab", 1)  # raw text shorter than its length
