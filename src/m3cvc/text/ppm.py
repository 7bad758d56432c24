"""``ppm``: an interpolated PPM-style context model, primed with a caption corpus, + arithmetic coding.

The model predicts the next UTF-8 byte (or the end of a description) from the previous 0..N bytes.
Each order's counts are the corpus counts (fixed, from the shipped corpus of the model version)
plus the counts of the stream coded so far (weighted, so that names and phrases repeated across
the keyframes and clips of one video become cheap). Orders are blended from low to high with
absolute discounting (interpolated Kneser-Ney style):

    P_o(x) = (max(c_o(x) - d, 0) + d * u_o * P_{o-1}(x)) / n_o,    P_{-1} = uniform

where ``n_o`` is the context's total count and ``u_o`` its number of distinct successors. Counts
are integers times per-context scalars and the blend uses only element-wise IEEE operations (no
floating-point reductions), so encoder and decoder compute bit-identical frequencies everywhere.

Payload layout (after the text channel's codec id byte)::

    u8      model version (which corpus and parameters)
    varint  2 * count + mode    mode 1: ``count`` descriptions (the text channel's records),
                                        each coded as its bytes then an end-of-text symbol;
                                mode 0: ``count`` arbitrary bytes (anything else)
    ...     arithmetic-coded symbols (see :mod:`.arith`)

A payload must be exactly the canonical encoding of what it decodes to; anything else raises
:class:`BitstreamError`. Decoding work is bounded by the payload size: every symbol costs at
least ``1/MIN_COST_INV`` bits because no symbol gets more than 1 - 1/64 of the probability.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Iterator, Optional

import numpy as np

from ..errors import BitstreamError
from ..varint import read_uvarint, write_uvarint
from .arith import MAX_TOTAL, ArithmeticDecoder, ArithmeticEncoder
from .base import TextCoder

EOT = 256  # end of a description
ALPHABET = 257
START = 0x0A  # context byte before a description starts (and after it ends)
INF = float("inf")
MIN_COST_INV = 45  # symbols per bit at most: 1 / -log2(1 - 1/64) = 44.0


@dataclass(frozen=True)
class ModelSpec:
    """A versioned model: the corpus file (checked by SHA-256) and the blending parameters."""

    version: int
    corpus: str
    sha256: str
    max_order: int = 4
    # per order, a context's corpus counts are scaled down to total at most this (the corpus is
    # trusted for spelling, less for long phrases)
    prior_caps: tuple[float, ...] = (INF, INF, 64.0, 16.0, 16.0)
    adapt_weight: int = 4  # counts of the stream coded so far are multiplied by this
    discount: float = 2.0  # absolute discount, in units of a corpus count


MODELS: dict[int, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.version in MODELS or not 1 <= spec.version <= 255:
        raise ValueError(f"bad or duplicate ppm model version {spec.version}")
    MODELS[spec.version] = spec
    return spec


class CorpusCounts:
    """Per order, the sorted (context * 257 + symbol) keys of the corpus and their counts."""

    def __init__(self, lines: list[bytes], max_order: int) -> None:
        # each line (no newline inside) is preceded by ``max_order`` START bytes and ends with one
        pad = bytes([START]) * max_order
        arr = np.frombuffer(b"".join(pad + line + b"\n" for line in lines), dtype=np.uint8).astype(np.int64)
        prev = np.concatenate(([START], arr[:-1]))
        pos = np.nonzero((arr != START) | (prev != START))[0]  # line bytes and each line's end
        sym = np.where(arr[pos] == START, EOT, arr[pos])
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        ctx = np.zeros(len(pos), dtype=np.int64)
        for order in range(max_order + 1):
            if order:
                ctx = ctx | (arr[pos - order] << (8 * (order - 1)))
            keys, counts = np.unique(ctx * ALPHABET + sym, return_counts=True)
            self.keys.append(keys)
            self.counts.append(counts.astype(np.int64))

    def lookup(self, order: int, context: int) -> tuple[np.ndarray, np.ndarray]:
        keys = self.keys[order]
        base = context * ALPHABET
        lo, hi = np.searchsorted(keys, (base, base + ALPHABET))
        return keys[lo:hi] - base, self.counts[order][lo:hi]


_CACHE: dict[int, CorpusCounts] = {}
_LOCK = threading.Lock()


def load_corpus_lines(spec: ModelSpec) -> list[bytes]:
    try:
        data = gzip.decompress(resources.files("m3cvc.text").joinpath("data", spec.corpus).read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise BitstreamError(f"ppm model {spec.version}: corpus {spec.corpus} is missing or damaged ({exc})") from None
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise BitstreamError(f"ppm model {spec.version}: corpus {spec.corpus} does not match its checksum")
    return [line for line in data.split(b"\n") if line]


def corpus_counts(spec: ModelSpec) -> CorpusCounts:
    with _LOCK:
        counts = _CACHE.get(spec.version)
        if counts is None:
            counts = _CACHE[spec.version] = CorpusCounts(load_corpus_lines(spec), spec.max_order)
        return counts


class ContextModel:
    """Adaptive blended model; encoder and decoder drive identical instances."""

    def __init__(self, spec: ModelSpec, prior: Optional[CorpusCounts]) -> None:
        self.spec = spec
        self.prior = prior
        self.history = bytearray([START]) * spec.max_order
        self.seen: list[dict[int, dict[int, int]]] = [{} for _ in range(spec.max_order + 1)]
        self._scale = float(MAX_TOTAL - 2 * ALPHABET)

    def _contexts(self) -> Iterator[tuple[int, int]]:
        h = self.history
        for order in range(self.spec.max_order + 1):
            yield order, int.from_bytes(h[len(h) - order :], "big") if order else 0

    def frequencies(self) -> np.ndarray:
        """Integer frequencies (each >= 1, sum <= MAX_TOTAL) of the 257 symbols."""
        spec = self.spec
        p = np.full(ALPHABET, 1.0 / ALPHABET)
        for order, ctx in self._contexts():
            c = np.zeros(ALPHABET)
            total = 0.0
            if self.prior is not None:
                syms, counts = self.prior.lookup(order, ctx)
                if len(syms):
                    n = int(counts.sum())
                    scale = min(1.0, spec.prior_caps[order] / n)
                    c[syms] = counts * scale
                    total = n * scale
            seen = self.seen[order].get(ctx)
            if seen:
                for sym, n in seen.items():
                    c[sym] += n * spec.adapt_weight
                    total += n * spec.adapt_weight
            if total == 0:
                continue
            distinct = int(np.count_nonzero(c))
            d = spec.discount
            p = (np.maximum(c - d, 0.0) + (d * distinct) * p) / total
        # p need not sum to one (escape weights d * u_o); normalise through an exact integer sum
        q = np.floor(p * 2.0**32)
        freq = np.floor(q * (self._scale / int(q.astype(np.int64).sum()))).astype(np.int64) + 1
        # no symbol gets more than 63/64 of the total, so every symbol costs >= 1/MIN_COST_INV bits
        top = int(freq.argmax())
        others = int(freq.sum()) - int(freq[top])
        if freq[top] > 63 * others:
            freq[top] = 63 * others
        return freq

    def update(self, symbol: int) -> None:
        for order, ctx in self._contexts():
            table = self.seen[order].setdefault(ctx, {})
            table[symbol] = table.get(symbol, 0) + 1
        if symbol == EOT:  # the next description starts from the same context as every corpus line
            self.history.extend(bytes([START]) * self.spec.max_order)
        else:
            self.history.append(symbol)
        if len(self.history) > 64:
            del self.history[: len(self.history) - self.spec.max_order]


def _records(blob: bytes) -> Optional[list[bytes]]:
    """Split the text channel's serialisation (varint length + bytes, repeated) if ``blob`` is one."""
    out, pos = [], 0
    try:
        while pos < len(blob):
            length, pos = read_uvarint(blob, pos)
            if pos + length > len(blob):
                return None
            out.append(blob[pos : pos + length])
            pos += length
    except BitstreamError:
        return None
    return out


def _symbols_of(blob: bytes) -> tuple[int, int, list[int]]:
    records = _records(blob)
    if records is None or write_records(records) != blob:
        return 0, len(blob), list(blob)
    syms: list[int] = []
    for rec in records:
        syms.extend(rec)
        syms.append(EOT)
    return 1, len(records), syms


def write_records(records: list[bytes]) -> bytes:
    return b"".join(write_uvarint(len(r)) + r for r in records)


class PPMCoder(TextCoder):
    """Corpus-primed context-mixing coder (see the module docstring)."""

    codec_id = 2
    name = "ppm"

    def __init__(self, version: int = 1) -> None:
        self.version = version

    def _model(self, version: int) -> ContextModel:
        spec = MODELS.get(version)
        if spec is None:
            raise BitstreamError(f"ppm text uses unknown model version {version}")
        return ContextModel(spec, corpus_counts(spec))

    def encode(self, data: bytes) -> bytes:
        mode, count, symbols = _symbols_of(data)
        model = self._model(self.version)
        enc = ArithmeticEncoder()
        for sym in symbols:
            freq = model.frequencies()
            cum = int(freq[:sym].sum())
            enc.encode(cum, cum + int(freq[sym]), int(freq.sum()))
            model.update(sym)
        return bytes([self.version]) + write_uvarint(2 * count + mode) + enc.finish()

    def decode(self, data: bytes) -> bytes:
        if not data:
            raise BitstreamError("ppm text unit is empty")
        model = self._model(data[0])
        header, pos = read_uvarint(data, 1)
        mode, count = header & 1, header >> 1
        payload = data[pos:]
        max_symbols = MIN_COST_INV * (8 * len(payload) + 128)
        if count > max_symbols:
            raise BitstreamError("ppm text unit declares more symbols than its payload can hold")
        dec = ArithmeticDecoder(payload)
        records: list[bytearray] = [bytearray()]  # the last one is the record being decoded
        decoded = 0
        while (len(records) <= count) if mode else (len(records[0]) < count):
            if decoded == max_symbols:
                raise BitstreamError("ppm text unit is corrupted (too many symbols)")
            decoded += 1
            freq = model.frequencies()
            cum = np.cumsum(freq)
            total = int(cum[-1])
            sym = int(np.searchsorted(cum, dec.target(total), side="right"))
            dec.consume(int(cum[sym - 1]) if sym else 0, int(cum[sym]), total)
            model.update(sym)
            if sym != EOT:
                records[-1].append(sym)
            elif mode:
                records.append(bytearray())
            else:
                raise BitstreamError("ppm text unit is corrupted (end of text inside a byte stream)")
        blob = write_records([bytes(r) for r in records[:-1]]) if mode else bytes(records[0])
        if PPMCoder(data[0]).encode(blob) != data:  # exactly one valid payload per text
            raise BitstreamError("ppm text unit is corrupted (not a canonical encoding)")
        return blob


# Version 1: the corpus written by ``python -m m3cvc.text.corpus`` (seed 20261125, 2000 paragraphs).
register_model(
    ModelSpec(1, "captions-v1.txt.gz", "9b7bf5d66512f3bb5a670ada1f7d4b480b1af00a8149ba9e51cc15ea75b25cba")
)
