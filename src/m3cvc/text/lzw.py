"""LZW (the paper's text coder) with variable code width.

Layout: codes are packed MSB-first. The dictionary starts with the 256 byte values; every code
after the first adds one entry. The k-th code (0-based) is written with
``max(9, bit_length(min(255 + k, MAX_CODES - 1)))`` bits, i.e. just enough for any code the
decoder can already know, growing from 9 to 16 bits. At 65,536 entries the dictionary freezes.
The final byte is zero-padded; padding is shorter than one code, so the decoder stops there.
"""

from __future__ import annotations

from ..errors import BitstreamError
from .base import TextCoder

MAX_BITS = 16
MAX_CODES = 1 << MAX_BITS
MAX_OUTPUT = 1 << 20  # decoded bytes a text unit may always reach (more for large units: 64 per coded byte)


def _width(k: int) -> int:
    return max(9, min(255 + k, MAX_CODES - 1).bit_length())


def lzw_encode(data: bytes) -> bytes:
    if not data:
        return b""
    table: dict[bytes, int] = {bytes([i]): i for i in range(256)}
    next_code = 256
    acc = nbits = 0
    out = bytearray()
    k = 0

    def emit(code: int) -> None:
        nonlocal acc, nbits, k
        width = _width(k)
        acc = (acc << width) | code
        nbits += width
        k += 1
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
        acc &= (1 << nbits) - 1

    w = data[:1]
    for i in range(1, len(data)):
        c = data[i : i + 1]
        wc = w + c
        if wc in table:
            w = wc
            continue
        emit(table[w])
        if next_code < MAX_CODES:
            table[wc] = next_code
            next_code += 1
        w = c
    emit(table[w])
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


def lzw_decode(data: bytes, limit: int = 0) -> bytes:
    """Inverse of :func:`lzw_encode`. Output beyond ``limit`` bytes (0: ``max(MAX_OUTPUT, 64 x input)``)
    is a :class:`BitstreamError`: a crafted stream cannot make it grow quadratically."""
    if not data:
        return b""
    limit = limit or max(MAX_OUTPUT, 64 * len(data))
    entries: list[bytes] = [bytes([i]) for i in range(256)]
    out = bytearray()
    acc = nbits = i = k = 0
    prev: bytes | None = None
    while True:
        width = _width(k)
        while nbits < width and i < len(data):
            acc, nbits, i = (acc << 8) | data[i], nbits + 8, i + 1
        if nbits < width:
            break
        nbits -= width
        code, acc = acc >> nbits, acc & ((1 << nbits) - 1)
        if code < len(entries):
            entry = entries[code]
        elif code == len(entries) and prev is not None:
            entry = prev + prev[:1]
        else:
            raise BitstreamError(f"LZW stream holds an invalid code {code}")
        if prev is not None and len(entries) < MAX_CODES:
            entries.append(prev + entry[:1])
        out += entry
        if len(out) > limit:
            raise BitstreamError(f"LZW text expands past {limit} bytes (a damaged or crafted stream)")
        prev = entry
        k += 1
    if acc:
        raise BitstreamError("LZW stream has non-zero padding")
    if k == 0:
        raise BitstreamError("LZW stream is truncated")
    return bytes(out)


class LZWCoder(TextCoder):
    codec_id = 1
    name = "lzw"

    def encode(self, data: bytes) -> bytes:
        return lzw_encode(data)

    def decode(self, data: bytes) -> bytes:
        return lzw_decode(data)


class RawCoder(TextCoder):
    """UTF-8 as is (wins for empty or very short texts)."""

    codec_id = 0
    name = "raw"

    def encode(self, data: bytes) -> bytes:
        return data

    def decode(self, data: bytes) -> bytes:
        return data
