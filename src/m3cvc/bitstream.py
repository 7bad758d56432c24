"""The ``.m3c`` container: pure functions from a :class:`Stream` to bytes and back.

Layout (all integers are unsigned LEB128 varints unless noted)::

    magic "M3CV" | format version (1 byte) | unit* (in this order, nothing after the last):
        SEQUENCE_HEADER (1)   once
        KEYFRAME (2)          once per keyframe, in display order
        CLIP_MOTION (5)       once, only when the reconstructor params hold motion_hints = true
        KEYFRAME_TEXTS (3)    once: the descriptions D_i^F of all keyframes  } version 4: only when the
        CLIP_TEXTS (4)        once: the descriptions D_i^C of all clips      } header's texts flag is set

    unit = type (1 byte) | payload length | payload | CRC-32 of type+length+payload (4 bytes, BE)

    SEQUENCE_HEADER payload = width | height | fps numerator | fps denominator | frame count |
        keyframe count | longest clip (version >= 2) | flags (version >= 4) | profile (name) |
        keyframe codec (stage) | clip reconstructor (stage)
    flags  = bit 0: the text units are present (version 4 leaves them out when every text is empty,
             as without a describer: 20 bytes); other bits 0
    stage  = name | params
    name   = string (versions 1-3); version 4: varint ``c``, ``c`` < len(NAMES) names ``NAMES[c]``, else
             a string of ``c - len(NAMES)`` UTF-8 bytes follows
    params (version 3) = count | (slot | type byte | value)*: only what differs from the backend's
             row of ``PARAM_DEFAULTS`` (part of the format: a change needs a new version). ``slot`` <
             the row's length names the row's key; ``slot`` = the row's length is followed by the key
             (string) of a setting the row does not have. Slots increase, explicit keys are sorted;
             type 5 (no value) removes a row key from the settings. A stage whose settings are all
             its row's defaults costs one byte.
    params (versions 1, 2) = count | (key (string) | type byte | value)*, keys sorted
             types: 0 signed int (zig-zag varint), 1 float (IEEE-754 binary64, BE), 2 string,
             3 false, 4 true; version 4 adds 6, a float that is a short decimal ``m x 10^-e``
             (zig-zag varint ``m``, ``|m|`` < 2^53, then varint ``e`` <= 30): 0.0025 in 3 bytes, not 9
    string = byte length | UTF-8
    KEYFRAME payload = (frame index minus previous keyframe's index (the first is 0)) x 4 + trigger
        (version 2; version 1: the difference alone) | the keyframe codec's bytes (an HEVC access unit
        of the keyframe chain, an AVIF image, VQ indices). trigger: what made the keyframe, 0 interval
        (the first frame, max_interval, a fixed period, the tail), 1 the semantic term, 2 the motion
        term, 3 reserved for a keyframe forced by a scene cut (m3cvc.keyframes.TRIGGERS). Version 4
        stores the HEVC chain's access units (keyframe codecs ``hevc``, ``hevc+...``) without start
        codes and with the usual parameter sets as one-byte table indices
        (m3cvc.keyframe_codec.hevc.pack_access_unit): at the defaults an IDR keyframe spends 4 bytes
        instead of 86 on parameter sets and start codes, a P keyframe 1 instead of 4. :class:`Keyframe`
        always holds the Annex B access unit.
    CLIP_MOTION payload = the encoder's motion hints of every clip, a bit string whose layout
        (fixed-point corner displacements, Exp-Golomb coded; version 3 chooses the predictor per
        clip) is in m3cvc.reconstruct.motion; it is interpreted (and checked) by the decoder,
        which knows the clip lengths
    *_TEXTS payload  = text codec id (1 byte) | coded texts (see m3cvc.text)

Every byte of the file is counted in bpp; :func:`section_sizes` splits it into header,
keyframe images, clip motion (0 without hints), keyframe texts and clip texts (each unit's
framing counted with its section).
Parsing is strict: any truncation, corruption (CRC), unknown version or unit, inconsistent
count or trailing byte raises :class:`BitstreamError`.

Bounds (no stream, however crafted, makes the decoder run away): the *longest clip* is the most
frames the encoder's keyframe selector lets a clip have (``keyframes.max_interval``, or the fixed
selector's interval), at most ``MAX_CLIP``; every clip of the stream (keyframe index deltas, and the
frames after the last keyframe) must fit in it, so a stream's frame count is at most its keyframe
count times that. Version 1 streams (no such field) are read with ``MAX_CLIP``. Decoding adds the
user's limits on top (:class:`DecodeLimits`).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator, Mapping, Optional, Sequence

from .errors import BitstreamError, count
from .text import decode_texts, encode_texts, text_codec_name
from .varint import read_uvarint, write_uvarint

__all__ = [
    "BitstreamError", "DecodeLimits", "FORMAT_VERSION", "MAGIC", "MAX_CLIP", "Keyframe", "SequenceHeader", "StageInfo", "Stream",
    "Unit", "UnitType", "motion_hints", "parse_units", "read_stream", "section_sizes", "write_stream",
]

MAGIC = b"M3CV"
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
MAX_DIMENSION = 1 << 16
MAX_FRAMES = 1 << 31
MIN_FPS, MAX_FPS = Fraction(1, 100), Fraction(1000)  # the preprocessor's range (m3cvc.video.preprocess)
MAX_CLIP = 4096  # frames between two keyframes, at most (keyframes.max_interval is checked against it)


class UnitType:
    SEQUENCE_HEADER = 1
    KEYFRAME = 2
    KEYFRAME_TEXTS = 3
    CLIP_TEXTS = 4
    CLIP_MOTION = 5
    NAMES = {1: "header", 2: "keyframe_images", 5: "clip_motion", 3: "keyframe_texts", 4: "clip_texts"}


@dataclass(frozen=True)
class StageInfo:
    """A backend name and the scalar settings the decoder needs."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SequenceHeader:
    width: int
    height: int
    fps: Fraction
    frames: int
    num_keyframes: int
    profile: str
    keyframe_codec: StageInfo
    reconstructor: StageInfo
    max_clip: int = MAX_CLIP  # the longest clip the encoder could produce (module doc, "Bounds")


@dataclass(frozen=True)
class DecodeLimits:
    """What a decoder agrees to make: at most ``max_frames`` frames of at most ``max_pixels`` pixels
    (width x height). The defaults cover 35 hours at 8 fps and 8K video; ``m3cvc decode --max-frames /
    --max-pixels`` change them."""

    max_frames: int = 1_000_000
    max_pixels: int = 7680 * 4320

    def check(self, header: "SequenceHeader") -> None:
        """Raise :class:`BitstreamError` (one line, before any frame is made) for a stream past the limits."""
        if header.frames > self.max_frames:
            raise BitstreamError(f"stream has {header.frames} frames, more than the limit of {self.max_frames} "
                                 "(raise it with --max-frames if the stream is trusted)")  # fmt: skip
        if header.width * header.height > self.max_pixels:
            raise BitstreamError(f"stream frames are {header.width}x{header.height} = {header.width * header.height} "
                                 f"pixels, more than the limit of {self.max_pixels} (--max-pixels)")  # fmt: skip


@dataclass(frozen=True)
class Keyframe:
    index: int  # frame index in the (preprocessed) video
    data: bytes  # the keyframe codec's bytes
    trigger: int = 0  # what made it a keyframe: an index into m3cvc.keyframes.TRIGGERS (0..3)


@dataclass(frozen=True)
class Stream:
    header: SequenceHeader
    keyframes: tuple[Keyframe, ...]
    keyframe_texts: tuple[str, ...]
    clip_texts: tuple[str, ...]
    clip_motion: Optional[bytes] = None  # CLIP_MOTION payload, present iff motion_hints(header)
    version: int = FORMAT_VERSION  # its format version: what it was read from, what write_stream writes


def motion_hints(header: SequenceHeader) -> bool:
    """Whether the stream carries a CLIP_MOTION unit (the reconstructor's ``motion_hints`` param)."""
    return header.reconstructor.params.get("motion_hints") is True


@dataclass(frozen=True)
class Unit:
    type: int
    offset: int  # of the unit's first byte in the file
    size: int  # whole unit: type, length, payload and CRC
    payload: bytes


# --------------------------------------------------------------------------------------------
# primitives
def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return write_uvarint(len(raw)) + raw


def _name(text: str, version: int) -> bytes:
    if version < 4:
        return _string(text)
    if text in NAMES:
        return write_uvarint(NAMES.index(text))
    raw = text.encode("utf-8")
    return write_uvarint(len(NAMES) + len(raw)) + raw


def _read_name(data: bytes, pos: int, what: str, version: int) -> tuple[str, int]:
    if version < 4:
        return _read_string(data, pos, what)
    code, pos = read_uvarint(data, pos)
    if code < len(NAMES):
        return NAMES[code], pos
    text, end = _utf8(data, pos, code - len(NAMES), what)
    if text in NAMES:
        raise BitstreamError(f"{what} {text!r} is spelled out where the format has an index for it")
    return text, end


def _read_string(data: bytes, pos: int, what: str) -> tuple[str, int]:
    length, pos = read_uvarint(data, pos)
    return _utf8(data, pos, length, what)


def _utf8(data: bytes, pos: int, length: int, what: str) -> tuple[str, int]:
    """The ``length`` bytes at ``pos`` as UTF-8 text, and the position after them."""
    if pos + length > len(data):
        raise BitstreamError(f"bitstream is truncated (inside {what})")
    try:
        return data[pos : pos + length].decode("utf-8"), pos + length
    except UnicodeDecodeError:
        raise BitstreamError(f"{what} is not valid UTF-8") from None


def _zigzag(value: int) -> int:
    return (value << 1) if value >= 0 else ((-value << 1) - 1)


def _unzigzag(value: int) -> int:
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)


# Format version 3 codes a stage's settings as their difference from its backend's row here (the
# lite profile's values; None: absent unless coded). Part of the format: never edit a row, add a
# format version instead. Backends without a row write every setting with its key.
PARAM_DEFAULTS: Mapping[str, tuple[tuple[str, Any], ...]] = {
    "hevc": (("qp", 42), ("preset", "medium"), ("target_bpp", None)),
    "avif": (("quality", 30),),
    "flow": (
        ("mode", "interpolation"), ("preset", "medium"), ("working_width", 512), ("variational_iterations", 0),
        ("occlusion", True), ("cut_threshold", 0.05), ("fallback", 0.5), ("motion_hints", True), ("residual", True),
        ("sharpen", None),  # always coded: rate control sizes streams before it resolves the strength
    ),
}
_ABSENT = 5  # type byte of a v3 entry that removes a row key
_DECIMAL = 6  # type byte of a v4 float coded as a short decimal
MAX_DECIMAL_EXPONENT = 30
# Version 4 codes these profile and backend names as their index (one byte). Part of the format:
# append only, never edit or reorder.
NAMES = (
    "lite", "full", "paper",
    "hevc", "avif", "vq-diffusion", "hevc+img2img", "avif+img2img",
    "flow", "blend", "ltx", "wan", "cogvideox", "seine",
)  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    """Equal value and type (1 == 1.0 == True in Python, not in a stream)."""
    return type(a) is type(b) and a == b and (not isinstance(a, float) or struct.pack(">d", a) == struct.pack(">d", b))


def _params_v3(name: str, params: Mapping[str, Any], version: int = 3) -> bytes:
    row = PARAM_DEFAULTS.get(name, ())
    keys = [key for key, _ in row]
    entries = bytearray()
    count = 0
    for slot, (key, default) in enumerate(row):
        if key not in params:
            if default is not None:
                entries += write_uvarint(slot) + bytes([_ABSENT])
                count += 1
        elif default is None or not _same(params[key], default):
            entries += write_uvarint(slot) + _value(key, params[key], version)
            count += 1
    for key in sorted(k for k in params if k not in keys):
        entries += write_uvarint(len(row)) + _string(key) + _value(key, params[key], version)
        count += 1
    return write_uvarint(count) + bytes(entries)


def _read_params_v3(name: str, data: bytes, pos: int, version: int = 3) -> tuple[dict[str, Any], int]:
    row = PARAM_DEFAULTS.get(name, ())
    params = {key: default for key, default in row if default is not None}
    count, pos = read_uvarint(data, pos)
    if count > len(data):
        raise BitstreamError("sequence header holds an impossible parameter count")
    last_slot, last_key = -1, None
    for _ in range(count):
        slot, pos = read_uvarint(data, pos)
        if slot > len(row) or slot < last_slot or (slot == last_slot and slot < len(row)):
            raise BitstreamError("sequence header parameters are not in order / unique")
        last_slot = slot
        if slot < len(row):
            key, default = row[slot]
        else:
            key, pos = _read_string(data, pos, "a parameter name")
            if (last_key is not None and key <= last_key) or any(key == k for k, _ in row):
                raise BitstreamError("sequence header parameters are not in order / unique")
            last_key, default = key, None
        if pos < len(data) and data[pos] == _ABSENT:
            if default is None:
                raise BitstreamError(f"sequence header removes parameter {key!r}, which has no default")
            del params[key]
            pos += 1
            continue
        value, pos = _read_value(key, data, pos, version)
        if default is not None and _same(value, default):
            raise BitstreamError(f"sequence header codes parameter {key!r} at its default")
        params[key] = value
    return dict(sorted(params.items())), pos


def _decimal(value: float) -> Optional[tuple[int, int]]:
    """``(m, e)`` with ``value == m x 10^-e`` exactly (as the reader computes it), smallest ``e``; None if none."""
    if not math.isfinite(value) or abs(value) >= 2**53 or (value == 0.0 and math.copysign(1.0, value) < 0):
        return None
    for e in range(MAX_DECIMAL_EXPONENT + 1):
        m = round(value * 10**e)
        if abs(m) < 2**53 and _from_decimal(m, e) == value:
            return m, e
    return None


def _from_decimal(m: int, e: int) -> float:
    return float(f"{m}e-{e}")


def _value(key: str, value: Any, version: int = 3) -> bytes:
    """A setting's type byte and value."""
    out = bytearray()
    decimal = _decimal(value) if version >= 4 and isinstance(value, float) else None
    if decimal is not None:
        return bytes([_DECIMAL]) + write_uvarint(_zigzag(decimal[0])) + write_uvarint(decimal[1])
    if isinstance(value, bool):
        out.append(4 if value else 3)
    elif isinstance(value, int):
        out.append(0)
        out += write_uvarint(_zigzag(value))
    elif isinstance(value, float):
        out.append(1)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        out.append(2)
        out += _string(value)
    else:
        raise TypeError(f"stream parameter {key!r} must be int, float, str or bool, not {type(value).__name__}")
    return bytes(out)


def _read_value(key: str, data: bytes, pos: int, version: int = 3) -> tuple[Any, int]:
    """Inverse of :func:`_value`."""
    if pos >= len(data):
        raise BitstreamError("bitstream is truncated (inside the sequence header)")
    kind = data[pos]
    pos += 1
    if kind == _DECIMAL and version >= 4:
        raw, pos = read_uvarint(data, pos)
        e, pos = read_uvarint(data, pos)
        m = _unzigzag(raw)
        if abs(m) >= 2**53 or e > MAX_DECIMAL_EXPONENT:
            raise BitstreamError(f"sequence header parameter {key!r} is an out-of-range decimal")
        value = _from_decimal(m, e)
        if _decimal(value) != (m, e):  # one spelling per value: a rewrite keeps the bytes
            raise BitstreamError(f"sequence header parameter {key!r} is not in its shortest decimal form")
        return value, pos
    if kind == 0:
        raw, pos = read_uvarint(data, pos)
        return _unzigzag(raw), pos
    if kind == 1:
        if pos + 8 > len(data):
            raise BitstreamError("bitstream is truncated (inside the sequence header)")
        value = struct.unpack(">d", data[pos : pos + 8])[0]
        if not math.isfinite(value):
            raise BitstreamError(f"sequence header parameter {key!r} is not finite")
        if version >= 4 and _decimal(value) is not None:
            raise BitstreamError(f"sequence header parameter {key!r} is a short decimal coded at full length")
        return value, pos + 8
    if kind == 2:
        return _read_string(data, pos, "a parameter value")
    if kind in (3, 4):
        return kind == 4, pos
    raise BitstreamError(f"sequence header parameter {key!r} has unknown type {kind}")


def _params(params: Mapping[str, Any]) -> bytes:
    """Versions 1 and 2: every setting with its key."""
    out = bytearray(write_uvarint(len(params)))
    for key in sorted(params):
        out += _string(key) + _value(key, params[key])
    return bytes(out)


def _read_params(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    count, pos = read_uvarint(data, pos)
    if count > len(data):
        raise BitstreamError("sequence header holds an impossible parameter count")
    params: dict[str, Any] = {}
    previous = None
    for _ in range(count):
        key, pos = _read_string(data, pos, "a parameter name")
        if previous is not None and key <= previous:
            raise BitstreamError("sequence header parameters are not sorted / unique")
        previous = key
        params[key], pos = _read_value(key, data, pos)
    return params, pos


def _unit(kind: int, payload: bytes) -> bytes:
    head = bytes([kind]) + write_uvarint(len(payload))
    return head + payload + struct.pack(">I", zlib.crc32(head + payload))


# --------------------------------------------------------------------------------------------
# writing
def _header_payload(h: SequenceHeader, version: int = FORMAT_VERSION, texts: bool = True) -> bytes:
    fps = Fraction(h.fps)
    out = bytearray()
    for value in (h.width, h.height, fps.numerator, fps.denominator, h.frames, h.num_keyframes, h.max_clip):
        out += write_uvarint(value)
    if version >= 4:
        out += write_uvarint(int(texts))
    out += _name(h.profile, version)
    for stage in (h.keyframe_codec, h.reconstructor):
        out += _name(stage.name, version)
        out += _params_v3(stage.name, stage.params, version) if version >= 3 else _params(stage.params)
    return bytes(out)


def _packs_access_units(header: SequenceHeader, version: int) -> bool:
    """Whether the keyframe units hold format 4's compact HEVC access units."""
    return version >= 4 and header.keyframe_codec.name.split("+")[0] == "hevc"


def has_texts(stream: Stream) -> bool:
    """Whether the stream's text units are written: always before version 4, else when any text is not empty."""
    return stream.version < 4 or any(stream.keyframe_texts) or any(stream.clip_texts)


def _validate(stream: Stream) -> None:
    h = stream.header
    _check_header(h)
    n = len(stream.keyframes)
    if n != h.num_keyframes:
        raise ValueError(f"header says {h.num_keyframes} keyframes, stream has {n}")
    if len(stream.keyframe_texts) != n or len(stream.clip_texts) != n:
        raise ValueError("need exactly one keyframe text and one clip text per keyframe")
    _check_indices([k.index for k in stream.keyframes], h.frames, ValueError, h.max_clip)
    if any(not 0 <= k.trigger <= 3 for k in stream.keyframes):
        raise ValueError("keyframe triggers are 0..3")
    if (stream.clip_motion is not None) != motion_hints(h):
        raise ValueError("clip motion must be present exactly when the reconstructor params say motion_hints")
    if stream.version not in WRITABLE_VERSIONS:
        raise ValueError(f"this m3cvc writes format versions {WRITABLE_VERSIONS}, not {stream.version}")


WRITABLE_VERSIONS = (2, 3, 4)


def write_stream(stream: Stream, text_codec: str = "auto") -> bytes:
    """Serialise a stream in its ``version`` (FORMAT_VERSION unless it was read from an older file:
    a read-and-write round trip keeps the bytes, whose CLIP_MOTION payload is in that version's
    layout). ``text_codec`` is a text coder name or ``auto`` (smallest)."""
    _validate(stream)
    texts = has_texts(stream)
    out = bytearray(MAGIC)
    out.append(stream.version)
    out += _unit(UnitType.SEQUENCE_HEADER, _header_payload(stream.header, stream.version, texts))
    previous = 0
    pack = _packs_access_units(stream.header, stream.version)
    for kf in stream.keyframes:
        data = _pack_access_unit(kf.data) if pack else kf.data
        out += _unit(UnitType.KEYFRAME, write_uvarint(4 * (kf.index - previous) + kf.trigger) + data)
        previous = kf.index
    if stream.clip_motion is not None:
        out += _unit(UnitType.CLIP_MOTION, stream.clip_motion)
    if texts:
        out += _unit(UnitType.KEYFRAME_TEXTS, encode_texts(stream.keyframe_texts, text_codec))
        out += _unit(UnitType.CLIP_TEXTS, encode_texts(stream.clip_texts, text_codec))
    return bytes(out)


def _pack_access_unit(au: bytes) -> bytes:
    from .keyframe_codec.hevc import pack_access_unit

    return pack_access_unit(au)


# --------------------------------------------------------------------------------------------
# reading
def parse_units(data: bytes) -> list[Unit]:
    """Split a file into CRC-checked units (no interpretation beyond magic and version)."""
    return list(_units(data))


def _units(data: bytes) -> Iterator[Unit]:
    """The units of a file, parsed (and CRC-checked) one at a time."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError("bitstream must be bytes")
    data = bytes(data)
    if len(data) < len(MAGIC) + 1:
        raise BitstreamError("not an m3cvc bitstream (file too short)")
    if data[: len(MAGIC)] != MAGIC:
        raise BitstreamError("not an m3cvc bitstream (bad magic; `m3cvc encode` makes one from a video)")
    version = data[len(MAGIC)]
    if version not in READABLE_VERSIONS:
        raise BitstreamError(f"unsupported bitstream format version {version} (this m3cvc reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))})")  # fmt: skip
    pos = len(MAGIC) + 1
    while pos < len(data):
        start = pos
        kind = data[pos]
        length, pos = read_uvarint(data, pos + 1)
        end = pos + length
        if end + 4 > len(data):
            raise BitstreamError(f"bitstream is truncated (unit at byte {start} needs {count(end + 4 - len(data), 'more byte')})")
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(data[start:end]) != crc:
            raise BitstreamError(f"bitstream is corrupted (CRC mismatch in unit at byte {start})")
        if kind not in UnitType.NAMES:
            raise BitstreamError(f"bitstream holds an unknown unit type {kind} at byte {start}")
        yield Unit(kind, start, end + 4 - start, data[pos:end])
        pos = end + 4


def _check_header(h: SequenceHeader) -> None:
    if not (0 < h.width <= MAX_DIMENSION and 0 < h.height <= MAX_DIMENSION):
        raise BitstreamError(f"sequence header has an invalid frame size {h.width}x{h.height}")
    fps = Fraction(h.fps)
    if not MIN_FPS <= fps <= MAX_FPS:
        raise BitstreamError(f"sequence header has a frame rate of {float(fps):g} fps (a stream has {float(MIN_FPS):g}..{float(MAX_FPS):g})")
    if not 0 < h.frames <= MAX_FRAMES:
        raise BitstreamError(f"sequence header has an invalid frame count {h.frames}")
    if not 0 < h.num_keyframes <= h.frames:
        raise BitstreamError(f"sequence header has an invalid keyframe count {h.num_keyframes}")
    if not 0 < h.max_clip <= MAX_CLIP:
        raise BitstreamError(f"sequence header has an invalid longest clip {h.max_clip} (at most {MAX_CLIP})")
    if h.frames > h.num_keyframes * h.max_clip:
        raise BitstreamError(f"sequence header claims {h.frames} frames: more than its {h.num_keyframes} keyframe(s) "
                             f"with clips of at most {h.max_clip} frames can hold")  # fmt: skip


def _check_indices(indices: Sequence[int], frames: int, exc: type[Exception], max_clip: int = MAX_CLIP) -> None:
    if not indices or indices[0] != 0:
        raise exc("the first keyframe must be frame 0")
    if any(b <= a for a, b in zip(indices, indices[1:])):
        raise exc("keyframe indices must increase strictly")
    if indices[-1] >= frames:
        raise exc(f"keyframe index {indices[-1]} is past the last frame ({frames - 1})")
    longest = max(b - a for a, b in zip(indices, [*indices[1:], frames]))
    if longest > max_clip:
        raise exc(f"a clip of {longest} frames is longer than the stream's longest clip ({max_clip})")


def _parse_header(payload: bytes, version: int = FORMAT_VERSION) -> tuple[SequenceHeader, bool]:
    """The header and whether text units follow."""
    pos = 0
    values = []
    for _ in range(6 if version == 1 else 8 if version >= 4 else 7):
        value, pos = read_uvarint(payload, pos)
        values.append(value)
    width, height, num, den, frames, nkf = values[:6]
    max_clip = values[6] if version >= 2 else MAX_CLIP
    flags = values[7] if version >= 4 else 1
    if flags > 1:
        raise BitstreamError(f"sequence header has unknown flags {flags:#x}")
    if den == 0 or num == 0:
        raise BitstreamError("sequence header has an invalid frame rate")
    profile, pos = _read_name(payload, pos, "the profile name", version)
    stages = []
    for what in ("keyframe codec", "reconstructor"):
        name, pos = _read_name(payload, pos, f"the {what} name", version)
        params, pos = _read_params_v3(name, payload, pos, version) if version >= 3 else _read_params(payload, pos)
        stages.append(StageInfo(name, params))
    if pos != len(payload):
        raise BitstreamError("sequence header has trailing bytes")
    header = SequenceHeader(width, height, Fraction(num, den), frames, nkf, profile, stages[0], stages[1], max_clip)
    _check_header(header)
    return header, bool(flags & 1)


def read_stream(data: bytes) -> Stream:
    """Parse and validate a whole stream; raises BitstreamError on any problem."""
    it = _units(data)
    first = next(it, None)
    if first is None or first.type != UnitType.SEQUENCE_HEADER:
        raise BitstreamError("bitstream does not start with a sequence header")
    version = data[len(MAGIC)]
    try:
        header, texts = _parse_header(first.payload, version)
    except BitstreamError as exc:  # the version byte is outside every CRC: say which layout was read
        raise BitstreamError(f"{exc} (header read as format version {version})") from None
    has_motion = motion_hints(header)
    expected = 1 + header.num_keyframes + int(has_motion) + 2 * texts
    units = [first]
    for unit in it:  # exactly the units the header announces; what follows them is not parsed as units
        units.append(unit)
        if len(units) == expected:
            break
    if len(units) != expected:
        raise BitstreamError(f"bitstream is truncated: {len(units)} units, the header announces {expected}")
    end = units[-1].offset + units[-1].size
    if end != len(data):
        if data[end : end + len(MAGIC)] == MAGIC:
            raise BitstreamError(f"another m3cvc stream follows this one at byte {end} (files concatenated?)")
        raise BitstreamError(f"bitstream has {len(data) - end} bytes after its last unit")
    keyframes = []
    index = 0
    unpack = _unpack_access_unit if _packs_access_units(header, version) else bytes
    for unit in units[1 : 1 + header.num_keyframes]:
        if unit.type != UnitType.KEYFRAME:
            raise BitstreamError("keyframe units are missing or out of order")
        value, pos = read_uvarint(unit.payload, 0)
        delta, trigger = (value, 0) if version == 1 else (value >> 2, value & 3)
        if keyframes and delta == 0:
            raise BitstreamError("keyframe indices must increase strictly")
        index += delta
        keyframes.append(Keyframe(index, unpack(unit.payload[pos:]), trigger))
    _check_indices([k.index for k in keyframes], header.frames, BitstreamError, header.max_clip)
    clip_motion = None
    if has_motion:
        unit = units[1 + header.num_keyframes]
        if unit.type != UnitType.CLIP_MOTION:
            raise BitstreamError("the clip motion unit is missing or out of order")
        clip_motion = unit.payload
    if not texts:
        empty = ("",) * header.num_keyframes
        return Stream(header, tuple(keyframes), empty, empty, clip_motion, version)
    decoded = []
    for unit, kind in zip(units[-2:], (UnitType.KEYFRAME_TEXTS, UnitType.CLIP_TEXTS)):
        if unit.type != kind:
            raise BitstreamError("text units are missing or out of order")
        decoded.append(tuple(decode_texts(unit.payload, header.num_keyframes)))
    if version >= 4 and not any(decoded[0]) and not any(decoded[1]):
        raise BitstreamError("bitstream holds text units whose texts are all empty (version 4 leaves them out)")
    return Stream(header, tuple(keyframes), decoded[0], decoded[1], clip_motion, version)


def _unpack_access_unit(payload: bytes) -> bytes:
    from .keyframe_codec.hevc import unpack_access_unit

    return unpack_access_unit(payload)


def section_sizes(data: bytes) -> dict[str, int]:
    """Bytes per section; the values add up to ``len(data)``."""
    sizes = {name: 0 for name in UnitType.NAMES.values()}
    sizes["header"] = len(MAGIC) + 1
    for unit in parse_units(data):
        sizes[UnitType.NAMES[unit.type]] += unit.size
    return sizes


def keyframe_sizes(data: bytes) -> list[int]:
    """Bytes of each keyframe as coded: its unit's payload after the frame index (framing and CRC not counted;
    in version 4 the compact access unit, not the Annex B one :class:`Keyframe` holds)."""
    return [len(u.payload) - read_uvarint(u.payload, 0)[1] for u in parse_units(data) if u.type == UnitType.KEYFRAME]


def text_codecs_used(data: bytes) -> dict[str, str]:
    """Which text coder each text unit chose (for ``m3cvc info``)."""
    out = {}
    for unit in parse_units(data):
        if unit.type in (UnitType.KEYFRAME_TEXTS, UnitType.CLIP_TEXTS):
            out[UnitType.NAMES[unit.type]] = text_codec_name(unit.payload)
    return out
