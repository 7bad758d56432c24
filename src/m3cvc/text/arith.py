"""32-bit integer arithmetic coder (Witten, Neal & Cleary, 1987) over cumulative frequencies.

Bits are packed MSB-first; the stream ends with the two disambiguating bits (plus pending bits)
of the classic coder and is zero-padded to a byte. The decoder reads zeros past the end and
reports how far it went, so callers can reject a payload that would need more input than the
encoder can ever produce, and can check that a payload is exactly the canonical encoding.
"""

from __future__ import annotations

from ..errors import BitstreamError

PRECISION = 32
TOP = (1 << PRECISION) - 1
HALF = 1 << (PRECISION - 1)
QUARTER = 1 << (PRECISION - 2)
MAX_TOTAL = 1 << 16  # frequency totals must stay <= this (keeps every interval non-empty)


class ArithmeticEncoder:
    def __init__(self) -> None:
        self.low = 0
        self.high = TOP
        self.pending = 0
        self.bits: list[int] = []

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        if self.pending:
            self.bits.extend([bit ^ 1] * self.pending)
            self.pending = 0

    def encode(self, cum_low: int, cum_high: int, total: int) -> None:
        """Code the symbol whose interval is [cum_low, cum_high) out of ``total``."""
        span = self.high - self.low + 1
        self.high = self.low + span * cum_high // total - 1
        self.low = self.low + span * cum_low // total
        while True:
            if self.high < HALF:
                self._emit(0)
            elif self.low >= HALF:
                self._emit(1)
                self.low -= HALF
                self.high -= HALF
            elif self.low >= QUARTER and self.high < HALF + QUARTER:
                self.pending += 1
                self.low -= QUARTER
                self.high -= QUARTER
            else:
                break
            self.low <<= 1
            self.high = (self.high << 1) | 1

    def finish(self) -> bytes:
        self.pending += 1
        self._emit(0 if self.low < QUARTER else 1)
        bits = self.bits
        out = bytearray((len(bits) + 7) // 8)
        for i, bit in enumerate(bits):
            if bit:
                out[i >> 3] |= 0x80 >> (i & 7)
        return bytes(out)


class ArithmeticDecoder:
    """Mirror of :class:`ArithmeticEncoder`; ``overread_limit`` bits past the end raise."""

    def __init__(self, data: bytes, overread_limit: int = 64) -> None:
        self.data = data
        self.nbits = len(data) * 8
        self.limit = self.nbits + PRECISION + overread_limit
        self.pos = 0
        self.low = 0
        self.high = TOP
        self.value = 0
        for _ in range(PRECISION):
            self.value = (self.value << 1) | self._bit()

    def _bit(self) -> int:
        pos = self.pos
        self.pos = pos + 1
        if pos < self.nbits:
            return (self.data[pos >> 3] >> (7 - (pos & 7))) & 1
        if pos >= self.limit:
            raise BitstreamError("arithmetic-coded text runs past the end of its payload")
        return 0

    def target(self, total: int) -> int:
        """The cumulative frequency the next symbol's interval contains."""
        span = self.high - self.low + 1
        t = ((self.value - self.low + 1) * total - 1) // span
        if not 0 <= t < total:
            raise BitstreamError("arithmetic-coded text is corrupted")
        return t

    def consume(self, cum_low: int, cum_high: int, total: int) -> None:
        span = self.high - self.low + 1
        self.high = self.low + span * cum_high // total - 1
        self.low = self.low + span * cum_low // total
        while True:
            if self.high < HALF:
                pass
            elif self.low >= HALF:
                self.low -= HALF
                self.high -= HALF
                self.value -= HALF
            elif self.low >= QUARTER and self.high < HALF + QUARTER:
                self.low -= QUARTER
                self.high -= QUARTER
                self.value -= QUARTER
            else:
                break
            self.low <<= 1
            self.high = (self.high << 1) | 1
            self.value = (self.value << 1) | self._bit()
