"""Lite keyframe codec: the chain of keyframes coded as one low-delay HEVC video (x265 through PyAV).

Consecutive keyframes are mostly the same picture, so each keyframe is predicted from the previously
*decoded* keyframe(s) (P pictures, no reordering, no lookahead: one access unit in, one out). A keyframe
that follows a scene cut starts a fresh IDR picture (the encoder is told so by the pipeline), so no
keyframe depends on one across a cut. The first keyframe is always an IDR.

Each keyframe unit of the m3cvc bitstream carries that keyframe's raw HEVC access unit (Annex B NAL
units, no container; VPS/SPS/PPS only in IDR units, x265's version SEI off): frame size, frame rate and
everything else live in our own header. The decoder feeds the units in order to FFmpeg's HEVC decoder
(PyAV); every unit must give exactly one picture of the header's size, else the stream is damaged
(:class:`~m3cvc.errors.BitstreamError`).

Colour: RGB -> BT.601 limited-range 4:2:0 with m3cvc's own conversion (the same as the anchors'), and its
inverse on decode. Odd sizes are padded by edge replication to even and cropped after decoding.

Determinism: x265 runs single-threaded (``pools=none``, ``frame-threads=1``), so the same frames and
settings give byte-identical units on any machine with the same x265 build.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping, Optional

import numpy as np

from ..errors import BitstreamError, ConfigError, InputError
from .base import KeyframeCodec

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# fixed x265 settings: low delay (no B pictures, no lookahead), our own intra decisions, no SEI/AUD
# overhead, single-threaded (deterministic). keyint is a safety bound, never reached by lite streams.
# Motion search "star" instead of the presets' "hex": keyframes are 4-32 frames apart, so their motion is
# large. Measured (benchmarks/x265_presets.py, QP 36..48, 40 frames): LPIPS BD-rate -8.4 % carphone,
# -4.2 % bigbuckbunny, -2.1 % bikes (PSNR +1.7 / -5.0 / -5.4 %) at about the same encode time.
# No weighted prediction: x265's weightp analysis reads uninitialised memory on some small pictures (96x64,
# 128x64), so a chain coded after other encodes in the same process came out different from a fresh
# process's; without it the bytes depend only on the input (tests/test_keyframe_chain.py), and 512x320
# streams measured the same (LPIPS / PSNR BD-rate -0.1 % on carphone, bigbuckbunny, bikes).
X265_FIXED = (
    "keyint=100000:min-keyint=1:scenecut=0:open-gop=0:bframes=0:rc-lookahead=0:info=0:"
    "frame-threads=1:pools=none:log-level=error:aud=0:hrd=0:me=star:weightp=0"
)
START_CODES = (b"\x00\x00\x01", b"\x00\x00\x00\x01")


def _pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def to_picture(frame: np.ndarray) -> Any:
    """An RGB frame as the yuv420p picture the encoder takes."""
    from ..video.color import rgb_to_yuv420

    return picture_from_planes(rgb_to_yuv420(_pad_even(frame)))


def picture_from_planes(planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    """yuv420p planes (Y of an even size ``(H, W)``, Cb and Cr ``(H/2, W/2)``, uint8) as an ``av.VideoFrame``."""
    import av

    h, w = planes[0].shape
    vf = av.VideoFrame(w, h, "yuv420p")
    for plane, data in zip(vf.planes, planes):
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        rows[:, : plane.width] = data
    return vf


def prepare(vf: Any, pts: int, intra: bool) -> None:
    """Set the picture's pts and forced type (only what differs)."""
    import av

    kind = av.video.frame.PictureType.I if intra else av.video.frame.PictureType.NONE
    if vf.pts != pts:
        vf.pts = pts
    if vf.pict_type != kind:
        vf.pict_type = kind


def _to_rgb(vf: Any, shape: tuple[int, int]) -> np.ndarray:
    from ..video.color import yuv_to_rgb

    if vf.format.name != "yuv420p":
        raise BitstreamError(f"keyframe decoded to pixel format {vf.format.name}, expected yuv420p")
    planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in vf.planes]
    rgb = yuv_to_rgb(*planes, full_range=False)
    return np.ascontiguousarray(rgb[: shape[0], : shape[1]])


IDR_NAL_TYPES = (19, 20)  # IDR_W_RADL, IDR_N_LP


def _start_codes(unit: bytes) -> list[int]:
    """Positions of the 3-byte start codes ``00 00 01`` of an Annex B byte string, in order."""
    out, i = [], unit.find(b"\x00\x00\x01")
    while i >= 0:
        out.append(i)
        i = unit.find(b"\x00\x00\x01", i + 3)
    return out


def nal_unit_types(unit: bytes) -> list[int]:
    """HEVC NAL unit types of an Annex B access unit (``(byte >> 1) & 63`` after each start code)."""
    return [(unit[i + 3] >> 1) & 0x3F for i in _start_codes(unit) if i + 3 < len(unit)]


def picture_type(unit: bytes) -> str:
    """``IDR`` (starts a chain: no earlier keyframe needed) or ``P`` (predicted from earlier keyframes)."""
    return "IDR" if any(t in IDR_NAL_TYPES for t in nal_unit_types(unit)) else "P"


# ------------------------------------------------------------------------ bitstream format 4
# The parameter sets (VPS, SPS, PPS NAL units, without start codes) that x265 (PyAV 18.1's build) writes for
# 512x320 keyframes (the default size) at each preset, medium first. Format 4 codes a parameter set equal to
# one of these as its index (one byte) instead of its 6-41 bytes and start code: 80 of the 83 bytes before
# an IDR picture at the defaults. Part of the format: append only, never edit or reorder (a changed x265 that writes
# other parameter sets still round-trips, coded raw; tests/test_keyframe_chain.py says when the default
# stops matching).
PARAMETER_SETS = tuple(bytes.fromhex(h) for h in (
    "40010c01ffff01600000030090000003000003003f928090",  # medium VPS
    "42010101600000030090000003000003003fa0040201416592a4932b9a020000030002000003000210",  # medium SPS
    "4401c1718112",  # medium PPS (also every preset but ultrafast, slower, veryslow)
    "40010c01ffff01600000030090000003000003003fba0240",  # ultrafast .. faster VPS
    "42010101600000030090000003000003003fa00402014165ba4a4c2e68080000030008000003000840",  # ultrafast SPS
    "4401c0718112",  # ultrafast PPS
    "42010101600000030090000003000003003fa00402014165bab930b9a02000000300200000030021",  # superfast SPS
    "42010101600000030090000003000003003fa00402014165ba924cae68080000030008000003000840",  # veryfast, faster SPS
    "40010c01ffff01600000030090000003000003003f968090",  # slow VPS
    "42010101600000030090000003000003003fa0040201416596a4932b9a020000030002000003000210",  # slow SPS
    "40010c01ffff01600000030090000003000003003f9a8090",  # slower, veryslow VPS
    "42010101600000030090000003000003003fa004020141659aa491b6b9a02000000300200000030021",  # slower, veryslow SPS
    "4401c1719112",  # slower, veryslow PPS
))  # fmt: skip
def _join(nals: list[bytes]) -> bytes:
    """Annex B as x265 writes it (and H.265 B.2 asks): a 4-byte start code before the access unit's first
    NAL unit and before parameter sets, 3 bytes before the others."""
    out = bytearray()
    for i, nal in enumerate(nals):
        out += b"\x00\x00\x00\x01" if i == 0 or (nal[0] >> 1) & 0x3F in (32, 33, 34) else b"\x00\x00\x01"
        out += nal
    return bytes(out)


def split_access_unit(au: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit, without their start codes; ValueError unless ``au`` is in
    the form :func:`_join` writes (x265's), so that it can be rebuilt byte for byte."""
    starts = _start_codes(au)
    ends = [s - (au[s - 1] == 0) for s in starts[1:]] + [len(au)]  # a zero_byte belongs to the next start code
    nals = [au[a + 3 : b] for a, b in zip(starts, ends)]
    if not nals or any(not nal for nal in nals) or _join(nals) != au:
        raise ValueError("keyframe access unit is not a sequence of NAL units with x265's start codes")
    return nals


def pack_access_unit(au: bytes) -> bytes:
    """Format 4's form of an access unit: ``n`` (varint) | ``n`` x (varint ``c``: ``c`` < len(PARAMETER_SETS)
    names a table entry, else a raw NAL unit of ``c - len(PARAMETER_SETS)`` bytes follows) | the last NAL
    unit (to the end). No start codes: a P keyframe (one NAL unit) costs one byte of framing, not four."""
    from ..varint import write_uvarint

    *first, last = split_access_unit(au)
    out = bytearray(write_uvarint(len(first)))
    for nal in first:
        if nal in PARAMETER_SETS:
            out += write_uvarint(PARAMETER_SETS.index(nal))
        else:
            out += write_uvarint(len(PARAMETER_SETS) + len(nal)) + nal
    return bytes(out + last)


def unpack_access_unit(data: bytes) -> bytes:
    """Inverse of :func:`pack_access_unit` (Annex B as x265 writes it); BitstreamError when ``data`` is not
    in that form. Each input byte gives at most a start code and the table's longest entry (46 bytes), so no
    unit can make the decoder run away."""
    from ..varint import read_uvarint

    count, pos = read_uvarint(data, 0)
    if count >= len(data):
        raise BitstreamError("keyframe unit names more NAL units than it holds")
    nals = []
    for _ in range(count):
        code, pos = read_uvarint(data, pos)
        if code < len(PARAMETER_SETS):
            nals.append(PARAMETER_SETS[code])
            continue
        end = pos + code - len(PARAMETER_SETS)
        if end >= len(data) or end == pos:
            raise BitstreamError("keyframe unit is truncated (inside a NAL unit)")
        nals.append(data[pos:end])
        pos = end
    if pos >= len(data):
        raise BitstreamError("keyframe unit has no picture NAL unit")
    nals.append(data[pos:])
    return _join(nals)


class HevcChainCodec(KeyframeCodec):
    """Keyframes as a low-delay HEVC video at a constant ``qp`` (0..51); stateful: one instance codes
    (or decodes) one stream's keyframes, in order."""

    name = "hevc"

    def __init__(self, qp: int = 42, preset: str = "medium", target_bpp: float = 0.0) -> None:
        if isinstance(qp, bool) or not isinstance(qp, int) or not 0 <= qp <= 51:
            raise ConfigError(f"keyframe_codec.hevc.qp must be an integer in 0..51, got {qp!r}")
        if preset not in PRESETS:
            raise ConfigError(f"keyframe_codec.hevc.preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        if not (isinstance(target_bpp, (int, float)) and 0 <= target_bpp < float("inf")):
            raise ConfigError(f"keyframe_codec.hevc.target_bpp must be a finite number >= 0, got {target_bpp!r}")
        self.qp, self.preset, self.target_bpp = qp, preset, float(target_bpp)
        self._encoder: Any = None
        self._decoder: Any = None
        self._size: Optional[tuple[int, int]] = None
        self._count = 0

    @classmethod
    def from_options(cls, opts: Any) -> "HevcChainCodec":
        return cls(opts.qp, opts.preset, opts.target_bpp)

    def params(self) -> dict[str, Any]:
        # the access units are self-describing; qp, preset and a rate-control target are kept for `m3cvc info`
        out: dict[str, Any] = {"qp": self.qp, "preset": self.preset}
        if self.target_bpp > 0:
            out["target_bpp"] = self.target_bpp
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "HevcChainCodec":
        """Decoder side. The access units describe themselves, so qp and preset only inform ``info``; unknown
        keys or invalid values still mean a damaged or foreign header (BitstreamError)."""
        from ..registry import read_params

        values = read_params("hevc keyframe codec", params, {"qp": 42, "preset": "medium", "target_bpp": 0.0})
        try:
            return cls(values["qp"], values["preset"], values["target_bpp"])
        except ConfigError as exc:
            raise BitstreamError(f"hevc keyframe codec: invalid parameters in the stream header ({exc})") from None

    # ------------------------------------------------------------------------------------ encoder
    def _open_encoder(self, frame: np.ndarray) -> Any:
        import av

        h, w = _pad_even(frame).shape[:2]
        ctx = av.CodecContext.create("libx265", "w")
        ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
        ctx.time_base = Fraction(1, 1)
        ctx.thread_count = 1
        ctx.options = {"preset": self.preset, "forced-idr": "1", "x265-params": f"qp={self.qp}:{X265_FIXED}"}
        self._size = frame.shape[:2]
        return ctx

    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False, picture: Any = None) -> bytes:
        """The next keyframe -> its HEVC access unit. ``intra``: start a fresh IDR (a scene cut).
        ``picture``: the frame already converted (:func:`to_picture`, :func:`picture_from_planes`; rate
        control reads its stored keyframes that way), of which only ``frame``'s shape is then used."""
        if self._encoder is None:
            self._encoder = self._open_encoder(frame)
            intra = True
        elif frame.shape[:2] != self._size:
            raise ConfigError(f"keyframe size changed from {self._size} to {frame.shape[:2]}")
        vf = to_picture(frame) if picture is None else picture
        prepare(vf, self._count, intra)
        try:
            packets = self._encoder.encode(vf)
        except av_errors() as exc:  # x265 refuses the picture size when it opens (e.g. a side under 16 px)
            if self._count:
                raise
            h, w = frame.shape[:2]
            raise InputError(f"x265 cannot code {w}x{h} keyframes ({type(exc).__name__}); HEVC needs sides of at "
                             "least 16 px and a level-conformant size: choose another --size, or keyframe_codec."
                             "backend: avif") from None
        self._count += 1
        if len(packets) != 1:  # low delay: x265 must return this picture now
            raise RuntimeError(f"x265 returned {len(packets)} packets for one keyframe (expected 1)")
        return bytes(packets[0])

    # ------------------------------------------------------------------------------------ decoder
    def decompress(self, data: bytes, shape: tuple[int, int], text: str = "") -> np.ndarray:
        """The next keyframe's access unit -> RGB uint8 ``(H, W, 3)``; units must come in stream order."""
        import av

        if not data.startswith(START_CODES):
            raise BitstreamError("keyframe unit is not an HEVC access unit (no start code)")
        if self._decoder is None:
            self._decoder = av.CodecContext.create("hevc", "r")
            self._decoder.thread_count = 1
            # a unit whose parameter sets claim a much larger picture than the header fails before that
            # picture is allocated (the margin covers coding-block alignment; exact sizes are checked below)
            self._decoder.options = {"max_pixels": str((shape[0] + 128) * (shape[1] + 128))}
        try:
            frames = self._decoder.decode(av.Packet(data))
        except MemoryError:  # FFmpeg's ENOMEM: the max_pixels guard above
            raise BitstreamError(f"keyframe access unit claims a picture much larger than the header's "
                                 f"{shape[1]}x{shape[0]}") from None  # fmt: skip
        except (av.error.FFmpegError, ValueError) as exc:
            raise BitstreamError(f"keyframe access unit cannot be decoded ({type(exc).__name__}: {exc})") from None
        if len(frames) != 1:
            raise BitstreamError(f"keyframe access unit gave {len(frames)} pictures (a damaged or reordered stream)")
        vf = frames[0]
        padded = (shape[0] + shape[0] % 2, shape[1] + shape[1] % 2)
        if (vf.height, vf.width) != padded:
            raise BitstreamError(f"keyframe picture is {vf.width}x{vf.height}, header says {shape[1]}x{shape[0]}")
        return _to_rgb(vf, shape)


def av_errors() -> tuple[type, ...]:
    """PyAV's FFmpeg error classes (imported lazily)."""
    import av

    return (av.error.FFmpegError,)
