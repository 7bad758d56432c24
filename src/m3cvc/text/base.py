"""Lossless text coders for the description channel.

Every coder has a stable one-byte ``codec_id`` written in front of its payload, so the decoder
never guesses. A list of descriptions is serialised as varint(len(utf8)) + utf8 for each text
(the count comes from the sequence header) and coded as one blob, so coders share context across
the descriptions of a video.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from ..errors import BitstreamError, ConfigError
from ..varint import read_uvarint, write_uvarint


class TextCoder(ABC):
    codec_id: int = -1
    name: str = ""

    @abstractmethod
    def encode(self, data: bytes) -> bytes:
        """Lossless bytes -> bytes."""

    @abstractmethod
    def decode(self, data: bytes) -> bytes:
        """Inverse of :meth:`encode`; raises BitstreamError on malformed input."""


_BY_ID: dict[int, TextCoder] = {}
_BY_NAME: dict[str, TextCoder] = {}


def register_text_coder(coder: TextCoder) -> TextCoder:
    if not 0 <= coder.codec_id <= 255 or coder.codec_id in _BY_ID or coder.name in _BY_NAME:
        raise ValueError(f"bad or duplicate text coder id/name: {coder.codec_id} {coder.name}")
    _BY_ID[coder.codec_id] = coder
    _BY_NAME[coder.name] = coder
    return coder


def text_coder_names() -> list[str]:
    return sorted(_BY_NAME)


def get_text_coder(name: str) -> TextCoder:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown text codec {name!r}; available: auto, {', '.join(text_coder_names())}") from None


def serialise_texts(texts: Sequence[str]) -> bytes:
    out = bytearray()
    for text in texts:
        raw = text.encode("utf-8")
        out += write_uvarint(len(raw))
        out += raw
    return bytes(out)


def parse_texts(data: bytes, count: int) -> list[str]:
    texts, pos = [], 0
    for _ in range(count):
        length, pos = read_uvarint(data, pos)
        if pos + length > len(data):
            raise BitstreamError("text unit is truncated")
        try:
            texts.append(data[pos : pos + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise BitstreamError("text unit holds invalid UTF-8") from None
        pos += length
    if pos != len(data):
        raise BitstreamError("text unit has trailing bytes")
    return texts


def encode_texts(texts: Sequence[str], codec: str = "auto") -> bytes:
    """codec id byte + coded payload; ``auto`` keeps the smallest of every registered coder."""
    blob = serialise_texts(texts)
    coders = list(_BY_NAME.values()) if codec == "auto" else [get_text_coder(codec)]
    best: bytes | None = None
    for coder in sorted(coders, key=lambda c: c.codec_id):
        candidate = bytes([coder.codec_id]) + coder.encode(blob)
        if best is None or len(candidate) < len(best):
            best = candidate
    assert best is not None
    return best


def decode_texts(data: bytes, count: int) -> list[str]:
    if not data:
        raise BitstreamError("text unit is empty (no codec id)")
    coder = _BY_ID.get(data[0])
    if coder is None:
        raise BitstreamError(f"text unit uses unknown text codec id {data[0]}")
    return parse_texts(coder.decode(data[1:]), count)


def text_codec_name(data: bytes) -> str:
    coder = _BY_ID.get(data[0]) if data else None
    return coder.name if coder else "unknown"
