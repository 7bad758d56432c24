"""Motion hints: encoder-side global motion of every frame relative to its clip's keyframe.

Two keyframes alone cannot say how the camera moved between them (a pan that accelerates, a
zoom that stops). The encoder, which sees every frame, therefore measures for each non-keyframe
frame ``f`` of clip ``i`` one projective transform ``H_f`` that maps pixel positions of ``f`` to
positions in the clip's keyframe ``K_i`` (``f(x) ~ K_i(H_f x)``), and, when the next keyframe
arrives, ``H_L`` from ``K_{i+1}`` to ``K_i``. The decoder warps ``K_i`` by ``H_f`` and ``K_{i+1}``
by ``H_L^-1 H_f`` (see :mod:`m3cvc.reconstruct.flow`).

Estimation (streaming; the encoder holds the keyframe's grey image and the last estimate):
the keyframe is warped by the previous frame's estimate, DIS optical flow (``fast`` preset, grey
at ``working_width``) runs from the frame to that warped keyframe, flow vectors on an 8 px grid
whose source lies inside the keyframe become point matches, and a model is fitted with RANSAC
(``similarity``: cv2.estimateAffinePartial2D, ``affine``: cv2.estimateAffine2D, ``homography``:
cv2.findHomography; threshold ``RANSAC_PX`` working pixels). Starting from the previous estimate
keeps large, accumulated motion (pans over a 2 s clip) within DIS's reach without drifting. A fit
with fewer than ``MIN_INLIERS`` of the matches as inliers, or whose inliers land on keyframe grey
levels more than ``MAX_GREY_MEDIAN`` away from their own (median), is rejected (on bikes.mp4 the
median was 1-8 within shots and 39-79 across its scene cuts, where DIS returns smooth nonsense
that RANSAC happily confirms): a frame keeps the previous
estimate, and the next keyframe is then marked *unlinked* (a scene cut, or motion the model cannot
explain), so the decoder predicts the clip from its first keyframe alone.

Fixed point: a transform is sent as the displacement of the four frame corners (0, 0), (W-1, 0),
(0, H-1), (W-1, H-1) -- where each lands in the keyframe, minus where it is -- in quarter pixels
of the coded frame size (8 signed integers, x before y, corners in that order). The decoder
rebuilds ``H`` with cv2.getPerspectiveTransform (all-zero displacements: identity), so every
model shares one format. |value| <= ``MAX_QUARTERS`` (16 frame widths) or the stream is invalid.

Coding (the CLIP_MOTION unit's payload, a bit string, most significant bit first, zero-padded
to a whole byte): for each clip in order, if it has a next keyframe, 1 bit *linked*; then (format
version 3) a 2-bit predictor ``p``: 0 none, 1 the previous vector, 2 linear extrapolation, 3 every
vector is zero (nothing follows: a clip whose hints the encoder dropped costs 2 or 3 bits); then a
2-bit Exp-Golomb order ``k``; then for ``n = length - 1 (+ 1 if linked)``
vectors ``v_1 .. v_n`` (``v_n`` is ``H_L`` when linked), the 8 residuals ``v_j - pred_j`` with
``pred_j`` = 0, ``v_{j-1}`` or ``2 v_{j-1} - v_{j-2}`` (``v_0 = v_-1 = 0``), zig-zag mapped and
Exp-Golomb coded with order ``k``. The encoder takes the predictor and order that code the clip
in the fewest bits: smooth camera paths (pans) favour linear extrapolation, jittery fits of a
still camera's moving foreground (carphone: 185 -> 136 bytes) no prediction at all. Format
version 2 has no predictor field and always extrapolates linearly. Format version 4 then adds,
for a clip of two or more frames with a next keyframe, its *timing hints*: 1 bit *timed*; if set,
a 2-bit order ``k`` and, for j = 1 .. length - 1, frame j's time ``q_j`` (in steps of
``1 / TIMING_STEPS``, 0 = this keyframe, ``TIMING_STEPS`` = the next) minus its default
``round(TIMING_STEPS j / length)``, zig-zag Exp-Golomb; ``q_j`` outside 0..TIMING_STEPS is invalid.
Anything left over or missing is a :class:`BitstreamError`.

Timing hints (:class:`m3cvc.reconstruct.flow.HintTrial`): interpolation assumes that motion between
two keyframes is uniform in time; a talking head that turns and turns back, or a hand that moves
and stops, is not. The encoder draws each frame as the decoder would at times 0, 1/8, .. 1, descending
from the frame's default time while the picture gets closer to the frame (GMSD, at the hint check's trial
size), and sends the time where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import BitstreamError, ConfigError

MODELS = ("similarity", "affine", "homography")
QUARTER = 4  # fixed-point units per pixel
VALUES = 8  # four corners, x and y
MAX_QUARTERS = QUARTER * 16 * 65536
MAX_ORDER = 3
GRID_STEP = 8  # working pixels between flow samples
RANSAC_PX = 1.5  # inlier threshold, working pixels
MIN_INLIERS = 0.2  # share of the matches a fit must explain
MIN_MATCHES = 12
MAX_GREY_MEDIAN = 10  # grey levels between inliers and where they land in the keyframe
MIN_SIDE = 32  # OpenCV 4.x's DIS crashes (segfault) on images under 32 px high; smaller frames get identity hints


TIMING_STEPS = 8  # timing hints: a frame's time within its clip in steps of 1/8


def default_timing(length: int) -> np.ndarray:
    """Frame j's time j / length in steps of ``1 / TIMING_STEPS``, rounded half up (j = 1 .. length - 1)."""
    j = np.arange(1, max(length, 1), dtype=np.int64)
    return (2 * TIMING_STEPS * j + length) // (2 * length)


@dataclass(frozen=True)
class ClipMotion:
    """One clip's hints: ``vectors[j - 1]`` for frames j = 1 .. length - 1, then ``H_L`` if linked;
    ``timing[j - 1]``: the time at which the decoder draws frame j, in steps of ``1 / TIMING_STEPS``
    (None: ``j / length``)."""

    vectors: np.ndarray  # (n, 8) int64, quarter pixels
    linked: bool  # the last vector maps the next keyframe to this clip's keyframe
    timing: Optional[np.ndarray] = None  # (length - 1,) int64 in 0..TIMING_STEPS

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ClipMotion) and self.linked == other.linked
            and self.vectors.shape == other.vectors.shape and bool(np.array_equal(self.vectors, other.vectors))
            and (self.timing is None) == (other.timing is None)
            and (self.timing is None or bool(np.array_equal(self.timing, other.timing)))
        )

    def frame(self, j: int, width: int, height: int) -> np.ndarray:
        """``H`` (3x3) mapping frame j's pixels to the keyframe's (j = 0 is the identity)."""
        return np.eye(3) if j == 0 else homography(self.vectors[j - 1], width, height)

    def next_keyframe(self, width: int, height: int) -> Optional[np.ndarray]:
        """``H_L``: next keyframe's pixels -> this keyframe's, or None when unlinked."""
        return homography(self.vectors[-1], width, height) if self.linked else None


# --------------------------------------------------------------------------------------------
# fixed point <-> transforms
def corners(width: int, height: int) -> np.ndarray:
    return np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], np.float64)


def homography(vector: np.ndarray, width: int, height: int) -> np.ndarray:
    """The 3x3 transform whose corner displacements are ``vector`` (quarter pixels)."""
    import cv2

    if not np.any(vector) or min(width, height) < 2:
        return np.eye(3)
    src = corners(width, height)
    dst = src + np.asarray(vector, np.float64).reshape(4, 2) / QUARTER
    h = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    if not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-6:
        raise BitstreamError("motion hints describe a degenerate transform")
    return h


def quantise(h: np.ndarray, width: int, height: int) -> np.ndarray:
    """Corner displacements of ``h`` (frame pixels) in quarter pixels, clipped to the valid range."""
    src = corners(width, height)
    p = np.c_[src, np.ones(4)] @ h.T
    with np.errstate(divide="ignore", invalid="ignore"):
        dst = p[:, :2] / p[:, 2:3]
    if not np.all(np.isfinite(dst)):
        return np.zeros(VALUES, np.int64)
    q = np.rint((dst - src) * QUARTER).astype(np.int64).reshape(-1)
    return np.clip(q, -MAX_QUARTERS, MAX_QUARTERS)


# --------------------------------------------------------------------------------------------
# Exp-Golomb bit coding
class _BitWriter:
    """MSB-first bits; whole bytes move to ``out`` as they fill (linear time)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.bits = 0

    def write(self, value: int, nbits: int) -> None:
        self.acc = (self.acc << nbits) | value
        self.bits += nbits
        if self.bits >= 64:
            whole = self.bits // 8
            self.bits -= 8 * whole
            self.out += (self.acc >> self.bits).to_bytes(whole, "big")
            self.acc &= (1 << self.bits) - 1

    def exp_golomb(self, signed: int, k: int) -> None:
        u = (signed << 1) if signed >= 0 else ((-signed << 1) - 1)
        w = u + (1 << k)
        n = w.bit_length()
        self.write(0, n - k - 1)
        self.write(w, n)

    def getvalue(self) -> bytes:
        pad = -self.bits % 8
        return bytes(self.out) + (self.acc << pad).to_bytes((self.bits + pad) // 8, "big")


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0  # bit position
        self.total = 8 * len(data)

    def read(self, nbits: int) -> int:
        if self.pos + nbits > self.total:
            raise BitstreamError("motion hints are truncated")
        first, last = self.pos >> 3, (self.pos + nbits + 7) >> 3
        chunk = int.from_bytes(self.data[first:last], "big")
        self.pos += nbits
        return (chunk >> (8 * last - self.pos)) & ((1 << nbits) - 1)

    def exp_golomb(self, k: int) -> int:
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros > 40:
                raise BitstreamError("motion hints hold an over-long code")
        w = (1 << (zeros + k)) | self.read(zeros + k)
        u = w - (1 << k)
        return (u >> 1) if not u & 1 else -((u + 1) >> 1)

    def finish(self) -> None:
        left = self.total - self.pos
        if left >= 8 or self.read(left) != 0:
            raise BitstreamError("motion hints have trailing data")


PREDICTORS = 3  # none, previous, linear
LINEAR = 2  # format version 2's only predictor
ZERO = 3  # format version 3: every vector of the clip is zero, no residuals follow


def _residuals(vectors: np.ndarray, predictor: int = LINEAR) -> np.ndarray:
    v = np.vstack([np.zeros((2, VALUES), np.int64), vectors])
    if predictor == 0:
        return v[2:]
    if predictor == 1:
        return v[2:] - v[1:-1]
    return v[2:] - (2 * v[1:-1] - v[:-2])


def _golomb_bits(res: np.ndarray, k: int) -> int:
    u = np.where(res >= 0, res << 1, ((-res) << 1) - 1) + (1 << k)
    return int(np.sum(2 * np.floor(np.log2(u)).astype(np.int64) + 1 - k))


def encode_clip_motion(clips: Sequence[ClipMotion], version: int = 4) -> bytes:
    """The CLIP_MOTION payload for all clips (the last clip has no next keyframe: never linked, never
    timed), in the layout of bitstream format ``version`` (2, 3 or 4; timing hints need 4)."""
    out = _BitWriter()
    for i, clip in enumerate(clips):
        has_next = i + 1 < len(clips)
        if has_next:
            out.write(int(clip.linked), 1)
        elif clip.linked:
            raise ValueError("the last clip has no next keyframe to link")
        vectors = clip.vectors.reshape(-1, VALUES).astype(np.int64)
        if version >= 3 and not np.any(vectors):
            out.write(ZERO, 2)
        else:
            choices = [(p, k) for p in (range(PREDICTORS) if version >= 3 else (LINEAR,)) for k in range(MAX_ORDER + 1)]
            p, k = min(choices, key=lambda pk: _golomb_bits(_residuals(vectors, pk[0]), pk[1])) if vectors.size else (0, 0)
            if version >= 3:
                out.write(p, 2)
            out.write(k, 2)
            for value in _residuals(vectors, p).reshape(-1).tolist():
                out.exp_golomb(int(value), k)
        length = len(vectors) + 1 - int(clip.linked)
        if clip.timing is not None and (version < 4 or not has_next or length < 2):
            raise ValueError("timing hints need format 4 and a clip of 2+ frames with a next keyframe")
        if version >= 4 and has_next and length >= 2:
            _write_timing(out, clip.timing, length)
    return out.getvalue()


def _write_timing(out: _BitWriter, timing: Optional[np.ndarray], length: int) -> None:
    """1 bit *timed*; then a 2-bit Exp-Golomb order and each frame's time minus its default."""
    if timing is None:
        out.write(0, 1)
        return
    res = np.asarray(timing, np.int64) - default_timing(length)
    if res.shape != (length - 1,) or np.any(timing < 0) or np.any(timing > TIMING_STEPS):
        raise ValueError(f"timing hints must be {length - 1} integers in 0..{TIMING_STEPS}")
    k = min(range(MAX_ORDER + 1), key=lambda k: _golomb_bits(res, k))
    out.write(1, 1)
    out.write(k, 2)
    for value in res.tolist():
        out.exp_golomb(int(value), k)


def _read_timing(reader: "_BitReader", length: int) -> Optional[np.ndarray]:
    if not reader.read(1):
        return None
    k = reader.read(2)
    if length - 1 > reader.total - reader.pos:  # every value costs at least one bit
        raise BitstreamError("motion hints are truncated")
    timing = default_timing(length) + np.array([reader.exp_golomb(k) for _ in range(length - 1)], np.int64)
    if np.any(timing < 0) or np.any(timing > TIMING_STEPS):
        raise BitstreamError(f"timing hints are out of range (0..{TIMING_STEPS})")
    return timing


def decode_clip_motion(payload: bytes, lengths: Sequence[int], version: int = 4) -> list[ClipMotion]:
    """Inverse of :func:`encode_clip_motion` given each clip's length; BitstreamError if invalid."""
    reader = _BitReader(payload)
    clips = []
    for i, length in enumerate(lengths):
        has_next = i + 1 < len(lengths)
        linked = bool(reader.read(1)) if has_next else False
        predictor = reader.read(2) if version >= 3 else LINEAR
        n = length - 1 + int(linked)
        timed = version >= 4 and has_next and length >= 2
        if predictor == ZERO:
            timing = _read_timing(reader, length) if timed else None
            clips.append(ClipMotion(np.zeros((n, VALUES), np.int64), linked, timing))
            continue
        k = reader.read(2)
        if n * VALUES > 8 * len(payload):  # every value costs at least one bit
            raise BitstreamError("motion hints are truncated")
        res = np.array([reader.exp_golomb(k) for _ in range(n * VALUES)], np.int64).reshape(n, VALUES)
        vectors = np.zeros((n, VALUES), np.int64)
        previous, before = np.zeros(VALUES, np.int64), np.zeros(VALUES, np.int64)
        for j in range(n):
            vectors[j] = res[j] + (0, previous, 2 * previous - before)[predictor]
            before, previous = previous, vectors[j]
            if np.any(np.abs(previous) > MAX_QUARTERS):  # also keeps the integers from growing without bound
                raise BitstreamError("motion hints are out of range")
        clips.append(ClipMotion(vectors, linked, _read_timing(reader, length) if timed else None))
    reader.finish()
    return clips


# --------------------------------------------------------------------------------------------
# encoder side
class MotionHintEstimator:
    """Measures each frame's transform to the current keyframe (see the module doc)."""

    def __init__(self, model: str = "affine", working_width: int = 256) -> None:
        if model not in MODELS:
            raise ConfigError(f"flow reconstructor: unknown hint model {model!r}; choose one of: {', '.join(MODELS)}")
        if not 16 <= working_width <= 8192:
            raise ConfigError(f"flow reconstructor: hint_working_width must be in 16..8192, got {working_width}")
        self.model = model
        self.working_width = working_width
        self._dis: Any = None
        self._key: Optional[np.ndarray] = None
        self._h = np.eye(3)  # working coordinates: current frame -> keyframe
        self._size = (0, 0)
        self._scale = np.eye(3)  # frame pixels -> working pixels

    def start(self, keyframe: np.ndarray) -> None:
        """A new clip starts at ``keyframe``."""
        import cv2

        height, width = keyframe.shape[:2]
        work_w = min(self.working_width, width)
        work_h = max(1, int(round(height * work_w / width)))
        if work_h < MIN_SIDE <= height:  # a wide frame: keep DIS's minimum height rather than lose the hints
            work_w, work_h = max(1, int(round(width * MIN_SIDE / height))), MIN_SIDE
        self._size = (work_w, work_h) if min(work_w, work_h) >= MIN_SIDE else (0, 0)
        sx, sy = work_w / width, work_h / height
        self._scale = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
        self._frame_size = (width, height)
        self._key = self._grey(keyframe) if self._size != (0, 0) else None
        self._h = np.eye(3)
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if (grey.shape[1], grey.shape[0]) == self._size:
            return grey
        return cv2.resize(grey, self._size, interpolation=cv2.INTER_AREA)

    def measure(self, frame: np.ndarray) -> tuple[np.ndarray, bool]:
        """(quantised corner displacements of frame -> keyframe, whether the fit was accepted)."""
        width, height = self._frame_size
        if self._key is None:
            return np.zeros(VALUES, np.int64), True
        grey = self._grey(frame)
        fitted = self._fit(grey)
        if fitted is not None:
            self._h = fitted
        # the decoder warps the keyframe by what we send: send no motion when that predicts the
        # frame better (a still camera whose fit locked onto moving foreground, e.g. carphone)
        hint = self._h
        if not np.allclose(hint, np.eye(3)) and self._error(np.eye(3), grey) <= self._error(hint, grey):
            hint = np.eye(3)
        h_frame = np.linalg.inv(self._scale) @ hint @ self._scale
        return quantise(h_frame, width, height), fitted is not None

    def _error(self, h: np.ndarray, grey: np.ndarray) -> float:
        """Mean absolute grey error of the keyframe warped by ``h`` as a prediction of ``grey``."""
        import cv2

        warped = cv2.warpPerspective(
            self._key, h, self._size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )
        return float(cv2.norm(warped, grey, cv2.NORM_L1))

    def _fit(self, grey: np.ndarray) -> Optional[np.ndarray]:
        import cv2

        work_w, work_h = self._size
        aligned = cv2.warpPerspective(
            self._key, self._h, self._size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        flow = self._dis.calc(grey, aligned, None)
        ys, xs = np.mgrid[GRID_STEP // 2 : work_h : GRID_STEP, GRID_STEP // 2 : work_w : GRID_STEP]
        src = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        moved = src + flow[ys.ravel(), xs.ravel()]
        # where the previous estimate puts these points in the keyframe: only in-frame matches count
        inside = _apply(self._h, src)
        ok = (inside[:, 0] >= 1) & (inside[:, 0] <= work_w - 2) & (inside[:, 1] >= 1) & (inside[:, 1] <= work_h - 2)
        src, dst = src[ok], _apply(self._h, moved[ok])
        if len(src) < MIN_MATCHES:
            return None
        a, b = src.astype(np.float32), dst.astype(np.float32)
        if self.model == "homography":
            h, mask = cv2.findHomography(a, b, cv2.RANSAC, RANSAC_PX, maxIters=2000, confidence=0.995)
        else:
            fit = cv2.estimateAffinePartial2D if self.model == "similarity" else cv2.estimateAffine2D
            m, mask = fit(a, b, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX, maxIters=2000,
                          confidence=0.995, refineIters=10)
            h = None if m is None else np.vstack([m, [0.0, 0.0, 1.0]])
        if h is None or mask is None or not np.all(np.isfinite(h)):
            return None
        # photometric check: DIS between unrelated images (a scene cut) returns smooth, consistent
        # nonsense, so the inliers must also land on similar grey levels in the keyframe
        inliers = mask.ravel().astype(bool)
        if float(inliers.mean()) < MIN_INLIERS:
            return None
        where = _apply(h, src[inliers]).astype(np.float32).reshape(-1, 1, 2)
        sampled = cv2.remap(self._key, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
        own = grey[src[inliers, 1].astype(int), src[inliers, 0].astype(int)]
        if float(np.median(np.abs(sampled.astype(np.int16) - own.astype(np.int16)))) > MAX_GREY_MEDIAN:
            return None
        return h


def _apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = points @ h[:, :2].T + h[:, 2]
    return p[:, :2] / p[:, 2:3]
