"""Unsigned LEB128 varints (7 bits per byte, low group first), at most 10 bytes."""

from __future__ import annotations

from .errors import BitstreamError

MAX_VARINT_BYTES = 10


def write_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varint must be >= 0")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """Return (value, new position); BitstreamError if truncated or over-long."""
    value = shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise BitstreamError("bitstream is truncated (inside a varint)")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise BitstreamError("bitstream holds an over-long varint")
