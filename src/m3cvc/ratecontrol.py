"""Rate control of the lite profile: ``--target-bpp`` / ``--target-kbps`` choose keyframe spacing and QP.

In lite, the rate is the keyframe chain (plus a few hundred bytes of motion hints and header). Two knobs
set it: the keyframe QP (how good each keyframe is) and ``keyframes.max_interval`` (how many there are).
Which mix is best depends on the content: where motion is local (a talking head under a static camera)
the interpolated frames are lite's weakest link and bits should buy keyframe *density*; where flow
interpolation works (smooth motion, animation) they can buy keyframe *quality*. For each spacing the
lowest QP whose stream lands within the tolerance is a finalist (those with QP <= ``QP_CAP`` when there are
any: coarser keyframes lost at every rate measured). ``rate.choice`` ranks them:

- ``rule`` (the default): the densest finalist, without decoding any;
- ``gmsd``: each finalist is decoded by the real decoder (detail restoration off; finalists with the same
  keyframes once) and the one with the lowest mean GMSD against the source frames (luma, full resolution,
  :func:`m3cvc.reconstruct.detail.gmsd`, the measure detail restoration uses) wins.

Measured (``benchmarks/rate_choice.py``, 40 frames, 8-11 targets 0.002-0.02 bpp; mean LPIPS of the picks at
equal rate, GMSD / rule / LPIPS' own choice among the same finalists): bigbuckbunny 0.3481 / 0.3649 /
0.3464, carphone 0.1918 / 0.1963 / 0.1913, bikes 0.3309 / 0.3309 / 0.3288. So GMSD picks almost what LPIPS
would. But on the full R-D comparison (``benchmarks/lite_rd.py``, detail restoration on) it bought
bigbuckbunny 2 points of LPIPS BD-rate against VVC (-41.2 % -> -43.2 %) for 37 points of VMAF (+8.2 % ->
+45.4 %), 42 of PSNR and 9 of MS-SSIM (it prefers sparse, fine keyframes there), while on carphone it
gained on LPIPS (-8.5 % -> -14.5 %) and VMAF (+36.5 % -> +23.2 %) at equal PSNR / MS-SSIM; and it makes
the analysis 2-3x slower (all 4 spacings searched, up to 4 decodes). Hence ``rule`` by default and
``gmsd`` for those who rank by LPIPS above all.

One analysis pass over the video finds that point with exact byte counts (no encode-and-retry loop):
the frames are read once, and for every candidate spacing a decision track runs keyframe selection,
scene cuts and motion hints (the tracks run on the ``workers`` threads; the per-frame features they all use,
the thumbnail descriptor and the flow input, are computed once per frame). The keyframes' pictures (each
frame once, whichever tracks chose it) and every frame at the hint trial's 128 pixels go to a temporary
file, so memory stays flat in video length. A spacing's hint check and timing search (the encoder trying
its clips, :class:`m3cvc.reconstruct.flow.HintTrial`) wait until its chain is first measured, and run while
the workers code that chain: most spacings are never measured (they were half of the analysis' CPU time
on bigbuckbunny; the streams are the same either way). They stop once every chain of the round is done and
cut short (below), and go on when a chain of that spacing is first coded whole: only then are its motion
hints part of a candidate. After the pass, a candidate is measured by
coding its spacing's keyframe chain at its QP from those pictures and assembling its stream exactly as
the encoder would write it, so its size is known to the byte. Coding all 4 spacings x 12 QPs would cost
48 chains; the rule needs far fewer, because a chain's size falls as its QP rises. And a chain coded by
the searches below stops as soon as its units alone put the stream past the band's top: it can then be
neither in the band nor below the target, so no rule needs its exact size (its units, scaled to the whole
chain, place the next probes; it is no candidate; the search for the smallest stream, below reach, cuts
chains at the smallest QP 51 stream's size instead, and codes again what another test cut).
On the lite_rd clips at the seven targets that cut 27 % of the keyframes coded on bigbuckbunny (68.6 -> 50.1
per encode) and 9 % on carphone (44.4 -> 40.3), encode CPU about -12 % / -8 %, with the same streams. (The
ladder's top QP is always coded whole: when nothing fits, the rule needs its exact size.)

The densest spacing's first round (its first two probes, which no size measured yet can move) is coded while
the pass still runs, as its keyframes are found, on two threads of its own (:class:`_Chain`; with ``workers``
above 1): the pass keeps about 1.3 of 2 cores busy (the interpreter), x265 does not need it. Those chains
code the same units as after the pass. Measured over the seven lite_rd targets, 8 interleaved runs each
(medians): bigbuckbunny encode + decode 2.32 -> 2.08 s, carphone 1.76 -> 1.69 s; the same streams. Running
the hint trials on the idle workers as well was slower (contention for the interpreter).

- per spacing, densest first (every spacing with ``gmsd``), the lowest QP whose stream fits under the band's top is found by a
  search over the QP ladder (two QPs per round, coded on the ``workers`` threads, each x265
  single-threaded; the rounds never depend on the thread count, so neither does the choice), then
  continued down while lower QPs still fit (static content: sizes flat within a few bytes). A round
  probes where a log-linear fit of the sizes measured so far puts the answer, and its lower neighbour
  (a spacing's first round: the highest QP and the middle, or where the denser spacing's sizes, scaled
  by the keyframe counts, put it), so most searches end after two rounds; if it is
  in the band and at most ``QP_CAP``, rule 1 below has its answer and sparser spacings are not coded; if it
  is in the band but coarser, a sparser spacing can only win with a fine finalist, so its search covers
  QP_CAP and below only (bigbuckbunny at 0.0025 bpp: 31 keyframes coded instead of 49);
- otherwise every spacing gets that search, and if none lands in the band, also its QP 51 chain and the
  search for its largest candidate below the target, and only when no spacing has one (below reach) the
  search for streams at most as large as the smallest QP 51 stream of all spacings (rule 2 takes nothing
  larger; a spacing whose own QP 51 stream is larger codes nothing more). With the previous line, over
  lite_rd's seven targets: keyframes coded per encode 50.1 -> 44.6 on bigbuckbunny, 40.3 -> 35.6 on
  carphone (bikes 63.1 -> 55.1), the same streams.

The band tests are those of :func:`choose`, to the last bit. On the quick dataset (24 frames, 0.002-0.03
bpp, every branch of the rule), a synthetic cut and a still video at targets on the band's edges, and the
lite_rd clips (10 targets, 0.001-0.05 bpp) this chose what measuring all 48 candidates chose, measuring 4-21 of them.
The choice:

1. candidates within +-``tolerance`` (10 %) of the target: per spacing its lowest QP (the finalists), of
   them those with QP at most ``QP_CAP`` (all when none is); with ``rule`` the smallest spacing, with
   ``gmsd`` the one with the lowest measured distortion (ties: the denser spacing);
2. otherwise the largest candidate below the target (the target falls between ladder rungs, "closest
   below", or above the highest: "above reach", every spacing's finest QP being below it), and
   if every candidate is above it, the smallest one (the target is below reach): the encode says so.

Texts are not part of the plan (lite has none; with a describer they add their bytes to the result).
The chosen candidate's stream, assembled by the analysis exactly as the encoder would write it (the
target recorded in the header's keyframe codec params), is the encoder's output when no describer runs;
with a describer the encoder codes the video once more with the chosen settings, which reproduces the
planned keyframe bytes exactly (the pipeline is deterministic) and adds the texts.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable, Iterable, Optional

import numpy as np

from .config import M3Config
from .cpus import default_workers, opencv_single_threaded
from .keyframe_codec import keyframe_codec_from_params
from .keyframes.selectors import CompositeSelector
from .reconstruct.detail import AUTO, gmsd, luma
from .errors import ConfigError, count

QPS = tuple(range(51, 28, -2))  # 51, 49, ..., 29: neighbouring QPs differ by 15-25 % in rate
INTERVALS = (32, 16, 8, 4)
TOLERANCE = 0.10
MAX_BPP = 24.0  # uncompressed 8-bit RGB: no target above it means anything
CHOICES = ("rule", "gmsd")  # rate.choice
QP_CAP = 47  # keyframes coarser than this only when no finer candidate lands (they lose at every rate measured)


@dataclass(frozen=True)
class Candidate:
    interval: int
    qp: int
    bytes: int
    keyframes: int

    def bpp(self, pixels: int) -> float:
        return 8.0 * self.bytes / pixels


@dataclass(frozen=True)
class RatePlan:
    """The analysis result: the target, every candidate measured, and the chosen one."""

    target_bpp: float
    pixels: int  # frames x width x height, the bpp denominator
    candidates: tuple[Candidate, ...]
    chosen: Candidate
    within: bool  # the chosen candidate is within the tolerance of the target
    # the chosen candidate's stream and bytes as the analysis assembled them: exactly what the encoder writes
    # when nothing but the analysis decides the stream (no describer), so it need not code the video again
    stream: Optional[Any] = field(default=None, compare=False, repr=False)
    data: Optional[bytes] = field(default=None, compare=False, repr=False)
    target_kbps: float = 0.0  # the request when it was made in kbit/s (target_bpp is its conversion)
    tolerance: float = TOLERANCE
    spacing_key: str = "max_interval"  # the config key the spacing sets: keyframes.interval with the fixed selector
    # the in-band finalists' measured distortion (mean GMSD of the decoded video), when more than one competed
    distortions: dict[Candidate, float] = field(default_factory=dict, compare=False)
    cut_short: int = 0  # chains the search stopped coding once they were too large to be chosen (not candidates)

    @property
    def predicted_bpp(self) -> float:
        return self.chosen.bpp(self.pixels)

    def extra_bytes(self, written: Optional[int]) -> int:
        """Bytes of a written stream beyond the plan's (the describer's texts, which the plan does not size)."""
        return 0 if written is None else written - self.chosen.bytes

    def note(self, written: Optional[int] = None) -> str:
        """One line for the user; ``written``: the size of the stream written, when texts came on top."""
        c = self.chosen
        if self.within:
            where = "within 10 %"
        elif c.bpp(self.pixels) > self.target_bpp:
            where = "below reach"
        elif c.qp == min(QPS) and not self.cut_short and all(k.bpp(self.pixels) < self.target_bpp for k in self.candidates):
            where = "above reach"  # every spacing's finest QP measured, all below the target: nothing larger exists
        else:
            where = "closest below"
        asked = f"{self.target_kbps:g} kbit/s = " if self.target_kbps else ""
        line = (
            f"rate control: target {asked}{_bpp(self.target_bpp)} bpp -> {self.spacing_key} {c.interval}, QP {c.qp}: "
            f"{_bpp(self.predicted_bpp)} bpp ({where}; {count(len(self.candidates), 'candidate')} measured"
            + (f", {count(self.cut_short, 'chain')} cut short (too large to be chosen)" if self.cut_short else "")
            + (f", {len(self.distortions)} decoded and compared by GMSD" if self.distortions else "") + ")"
        )
        extra = self.extra_bytes(written)
        if extra and written is not None:
            bpp = 8.0 * written / self.pixels
            line += (f"; the texts add {extra} bytes (not part of the plan): {_bpp(bpp)} bpp written, "
                     f"{100.0 * (bpp / self.target_bpp - 1.0):+.1f} % against the target")  # fmt: skip
        return line


def _bpp(value: float) -> str:
    """A bpp figure for people: 5 decimals, or 3 significant digits below 0.0001 (never a bare 0.00000)."""
    return f"{value:.5f}" if value >= 1e-4 or value == 0 else f"{value:.3g}"


def target_bpp(config: M3Config, width: int, height: int, fps: Fraction) -> Optional[float]:
    """The configured target in bpp (``rate.target_kbps`` converted with the coded size and rate)."""
    rate = config.rate
    for key in ("target_bpp", "target_kbps"):
        value = getattr(rate, key)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"rate.{key} must be a finite number >= 0 (0 = off), got {value}")
    if rate.target_bpp and rate.target_kbps:
        raise ConfigError("set rate.target_bpp or rate.target_kbps, not both")
    target = rate.target_kbps * 1000.0 / (float(fps) * width * height) if rate.target_kbps else rate.target_bpp
    if rate.target_kbps and not target > 0:
        raise ConfigError(f"rate.target_kbps {rate.target_kbps:g} is too small to be a rate at {width}x{height}, {float(fps):g} fps")
    if target and not (math.isfinite(target) and target <= MAX_BPP):
        asked = f"rate.target_kbps {rate.target_kbps:g} at {width}x{height}, {float(fps):g} fps is " if rate.target_kbps else ""
        raise ConfigError(f"{asked}a target of {target:g} bpp, beyond any keyframe chain (at most {MAX_BPP} bpp)")
    return target or None


def choose(
    candidates: Iterable[Candidate],
    target: float,
    pixels: int,
    tolerance: float = TOLERANCE,
    distortion: Optional[Callable[[Candidate], float]] = None,
) -> tuple[Candidate, bool]:
    """The rule of the module docstring. ``distortion``: a candidate's measured distortion (lower is better),
    asked only for the in-band finalists (each spacing's lowest in-band QP; those with QP at most ``QP_CAP``
    when there are any) when there are at least two; without it, the densest of them."""
    cands = list(candidates)
    if not cands:
        raise ConfigError("rate control: no candidate settings")
    finalists = band_finalists(cands, target, pixels, tolerance)
    if finalists:
        fine = [c for c in finalists if c.qp <= QP_CAP] or finalists
        if distortion is not None and len(fine) > 1:
            return min(fine, key=lambda c: (round(distortion(c), 9), c.interval, c.qp)), True
        return min(fine, key=lambda c: (c.interval, c.qp)), True
    below = [c for c in cands if c.bpp(pixels) < target]
    if below:
        return max(below, key=lambda c: (c.bytes, -c.qp)), False
    return min(cands, key=lambda c: (c.bytes, c.qp)), False


def band_finalists(candidates: Iterable[Candidate], target: float, pixels: int, tolerance: float = TOLERANCE) -> list[Candidate]:
    """Per spacing, its lowest-QP candidate within ``tolerance`` of ``target`` (the best keyframes that spacing
    affords in the band), densest spacing first."""
    best: dict[int, Candidate] = {}
    for c in candidates:
        if abs(c.bpp(pixels) / target - 1.0) <= tolerance and (c.interval not in best or c.qp < best[c.interval].qp):
            best[c.interval] = c
    return [best[i] for i in sorted(best)]


CHOSEN_KEYS = ("keyframe_codec.hevc.qp", "keyframes.max_interval", "keyframes.interval")  # what rate control sets


def spacing_key(keyframes: Any) -> str:
    """The keyframe config key a spacing candidate sets: the fixed selector's ``interval``, else ``max_interval``."""
    return "interval" if keyframes.selector == "fixed" else "max_interval"


def check_not_chosen(config: M3Config, where: str) -> None:
    """ConfigError when ``config`` (with a target rate) sets what rate control chooses, the HEVC QP or the
    keyframe spacing (``max_interval``, or ``interval`` with the fixed selector), to other than its profile's
    value: rate control would silently replace it. ``where`` names the config for the message. Values equal
    to the profile's (as in the sidecar config that encode writes) are not a choice."""
    from .config import profile_config

    base = profile_config(config.profile)
    key = spacing_key(config.keyframes)
    owned = [
        (f"keyframes.{key}", getattr(config.keyframes, key), getattr(base.keyframes, key)),
        ("keyframe_codec.hevc.qp", config.keyframe_codec.hevc.qp, base.keyframe_codec.hevc.qp),
    ]
    chosen = [f"{name} {value}" for name, value, default in owned if value != default]
    if chosen:
        raise ConfigError(f"{where} sets {' and '.join(chosen)}, which rate control chooses for a target rate: "
                          "remove it, or give no target")  # fmt: skip


def spaced(keyframes: Any, interval: int) -> Any:
    """The keyframe config at one candidate spacing: the fixed selector's period, or the composite
    selector's ``max_interval`` (its scores still add keyframes at cuts and fast changes)."""
    if spacing_key(keyframes) == "interval":
        return replace(keyframes, interval=interval)
    return replace(keyframes, max_interval=interval, min_interval=min(keyframes.min_interval, interval))


class _PictureStore:
    """The keyframe pictures of every track, each frame stored once as yuv420p planes, every frame at the hint
    trial's size (for the deferred hint checks and timing searches) and, with ``gmsd``, every frame's luma
    plane, in a temporary file (memory stays flat in video length; the file holds at most about 1.7 luma
    planes per frame); read back with ``pread``, so threads may share it."""

    def __init__(self) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile(prefix="m3cvc-rate-")
        self._where: dict[int, tuple[int, tuple[int, int]]] = {}  # frame index -> (offset, padded (h, w))
        self._planes: dict[int, tuple[int, tuple[int, ...]]] = {}  # frame index -> (offset, (h, w)) of its luma
        self._smalls: dict[int, tuple[int, tuple[int, ...]]] = {}  # frame index -> (offset, shape) at the trial size
        self._end = 0
        self._lock = threading.Lock()  # the tracks of the pass run on several threads

    def put(self, index: int, frame: np.ndarray) -> None:
        from .keyframe_codec.hevc import _pad_even
        from .video.color import rgb_to_yuv420

        with self._lock:
            if index in self._where:
                return
            rgb = _pad_even(frame)
            data = b"".join(np.ascontiguousarray(p).tobytes() for p in rgb_to_yuv420(rgb))
            os.pwrite(self._file.fileno(), data, self._end)
            self._where[index] = (self._end, rgb.shape[:2])
            self._end += len(data)

    def picture(self, index: int) -> Any:
        """Frame ``index`` as the ``av.VideoFrame`` the x265 encoder takes (a fresh one per call)."""
        from .keyframe_codec.hevc import picture_from_planes

        offset, (h, w) = self._where[index]
        ch, cw = h // 2, w // 2
        data = os.pread(self._file.fileno(), h * w + 2 * ch * cw, offset)
        y = np.frombuffer(data, np.uint8, h * w).reshape(h, w)
        cb = np.frombuffer(data, np.uint8, ch * cw, h * w).reshape(ch, cw)
        cr = np.frombuffer(data, np.uint8, ch * cw, h * w + ch * cw).reshape(ch, cw)
        return picture_from_planes((y, cb, cr))

    def _append(self, table: dict[int, tuple[int, tuple[int, ...]]], index: int, array: np.ndarray) -> None:
        """Store ``array`` (uint8) as frame ``index``'s entry of ``table`` (once: later calls keep the first)."""
        data = np.ascontiguousarray(array, np.uint8)
        with self._lock:
            if index not in table:
                os.pwrite(self._file.fileno(), data.tobytes(), self._end)
                table[index] = (self._end, data.shape)
                self._end += data.nbytes

    def _array(self, table: dict[int, tuple[int, tuple[int, ...]]], index: int) -> np.ndarray:
        offset, shape = table[index]
        return np.frombuffer(os.pread(self._file.fileno(), int(np.prod(shape)), offset), np.uint8).reshape(shape)

    def put_luma(self, index: int, plane: np.ndarray) -> None:
        """Frame ``index``'s luma plane (uint8 ``(H, W)``), what the candidates' distortion is measured against."""
        self._append(self._planes, index, plane)

    def put_small(self, index: int, small: np.ndarray) -> int:
        """Frame ``index`` at the hint trial's size (uint8 ``(h, w, 3)``, the same from every track: stored
        once); returns ``index``, the handle :meth:`small` takes."""
        self._append(self._smalls, index, small)
        return index

    def small(self, index: int) -> np.ndarray:
        return self._array(self._smalls, index).copy()  # writable, as the frames the trials take in a plain encode

    def source_luma(self, index: int) -> np.ndarray:
        return self._array(self._planes, index)

    def luma(self, index: int, height: int, width: int) -> np.ndarray:
        """Frame ``index``'s luma plane, (height, width) uint8 (the padding cropped)."""
        offset, (h, w) = self._where[index]
        y = np.frombuffer(os.pread(self._file.fileno(), h * w, offset), np.uint8).reshape(h, w)
        return np.ascontiguousarray(y[:height, :width])

    def close(self) -> None:
        self._file.close()


class _Recorder:
    """Keyframe "codec" of an analysis track: stores each keyframe's picture (once per frame, shared by the
    tracks) and remembers whether it starts an IDR; the chains are coded after the pass."""

    name = "hevc"

    def __init__(self, store: _PictureStore, position: list[int]) -> None:
        self.store, self.position = store, position  # position[0]: the frame the analysis loop is at
        self.keyframes: list[tuple[int, bool]] = []  # (frame index, intra)

    def compress(self, frame: np.ndarray, text: str = "", *, intra: bool = False) -> bytes:
        index = self.position[0]
        self.store.put(index, frame)
        self.keyframes.append((index, intra or not self.keyframes))
        return b""


class _Chain:
    """A spacing's keyframe chain coded at one QP (x265, one thread) from the stored pictures; :meth:`run` gives
    ``(interval, qp, (codec, units))``. ``past(bytes, frames)``: true once the units coded so far put the stream
    past what the search can use with ``frames`` frames in the video (then the rest is not coded); None: the
    whole chain.

    Its keyframes may still be arriving: rate control starts its first round's chains while the pass runs
    (:meth:`advance` after each frame, ``ended`` after the last). The pass is bound by the interpreter (about
    1.3 of 2 cores busy) and x265 is not, so they overlap. Such a chain codes a unit only when the chain coded
    after the pass would: while the pass runs, the next unit waits until ``past`` with the frames seen so far
    is false (the band's top only grows with more frames, so the search would go on as well) or the pass ends
    (then ``past`` with the final count decides). So its units are the same, and so is every stream."""

    def __init__(
        self, interval: int, qp: int, keyframes: list[tuple[int, bool]], store: _PictureStore, preset: str,
        target: float, shape: tuple[int, int], past: Optional[Callable[[int, int], bool]],
        progress: Optional[Callable[[int], None]], frames: Optional[int] = None,
    ) -> None:  # fmt: skip
        self.interval, self.qp, self.keyframes, self.store = interval, qp, keyframes, store
        self.preset, self.target, self.shape, self.past, self.progress = preset, target, shape, past, progress
        self._cond = threading.Condition()
        self._frames = frames or 0  # frames the pass has seen
        self._ended = frames is not None  # the keyframes are final
        self._cancelled = False

    def advance(self, frames: int, ended: bool = False) -> None:
        with self._cond:
            self._frames, self._ended = frames, self._ended or ended
            self._cond.notify_all()

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def _next(self, done: int, total: int) -> Optional[tuple[int, bool]]:
        """The next keyframe to code (None: the chain is complete, cut short or cancelled); waits as above."""
        with self._cond:
            while not self._cancelled:
                # before the pass has counted a frame (its first keyframe may already be coded) nothing is known
                if self.past is not None and done and (not self._frames or self.past(total, self._frames)):
                    if self._ended and self._frames:
                        return None  # cut short
                elif done < len(self.keyframes):
                    return self.keyframes[done]
                elif self._ended:
                    return None  # whole
                self._cond.wait()
            return None

    def run(self) -> tuple[int, int, tuple[Any, list[bytes]]]:
        from .keyframe_codec.hevc import HevcChainCodec

        codec = HevcChainCodec(self.qp, self.preset, float(self.target))
        blank = np.broadcast_to(np.uint8(0), (*self.shape, 3))  # compress reads only its shape
        units: list[bytes] = []
        total = 0
        while (nxt := self._next(len(units), total)) is not None:
            index, intra = nxt
            units.append(codec.compress(blank, intra=intra, picture=self.store.picture(index)))
            total += len(units[-1])
            if self.progress:
                self.progress(1)
        return self.interval, self.qp, (codec, units)


class _PerFrame:
    """A function of a frame computed once for the frame the pass is at (every track is fed the same frame
    object) and reused by the other tracks; the first caller computes while the others wait."""

    def __init__(self, fn: Callable[[np.ndarray], Any]) -> None:
        self.fn = fn
        self._lock = threading.Lock()
        self._frame: Optional[np.ndarray] = None
        self._value: Any = None

    def __call__(self, frame: np.ndarray) -> Any:
        with self._lock:
            if frame is not self._frame:
                self._value, self._frame = self.fn(frame), frame
            return self._value


class _PerPair:
    """``fn(a, b)`` computed once per pair of objects while ``b`` is the frame the pass is at: the selectors'
    motion between their last keyframe's prepared input ``a`` and this frame's ``b`` (the prepared inputs
    are shared objects, :class:`_PerFrame`), the same for every track whose last keyframe is the same.
    The first caller of a pair computes with its own ``fn`` (its own flow object: they are not thread-safe;
    outside the lock, so different pairs in parallel), the others wait for that value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._b: Any = None
        self._pending: list[tuple[Any, Any]] = []  # (a, Future of fn(a, b)) for the current b

    def __call__(self, a: Any, b: Any, fn: Callable[[Any, Any], Any]) -> Any:
        with self._lock:
            if b is not self._b:
                self._b, self._pending = b, []
            found = next((f for x, f in self._pending if x is a), None)
            mine = found is None
            if mine:
                found = Future()
                self._pending.append((a, found))
        if mine:
            try:
                found.set_result(fn(a, b))
            except BaseException as exc:
                found.set_exception(exc)
        return found.result()


class _SharedEstimates:
    """The motion-hint estimates of the tracks: an estimate depends only on the clip's keyframe and the frames
    since (:class:`~m3cvc.reconstruct.motion.MotionHintEstimator` carries its fit from frame to frame), so
    the tracks whose clip starts at the same keyframe share one estimator and each frame's estimate is
    computed once for them (about a third of the estimates on 4 tracks). ``position[0]``: the frame the pass
    is at; :meth:`estimator` gives a track its view."""

    def __init__(self, make: Callable[[], Any], position: list[int]) -> None:
        self.make, self.position = make, position
        self._lock = threading.Lock()
        # keyframe index -> (its estimator, {(frame index, nth measure of it by a track): estimate}, lock)
        self._chains: dict[int, tuple[Any, dict[tuple[int, int], Any], threading.Lock]] = {}
        self._views: list["_TrackEstimator"] = []

    def estimator(self) -> "_TrackEstimator":
        view = _TrackEstimator(self)
        self._views.append(view)
        return view

    def start(self, view: "_TrackEstimator", keyframe: np.ndarray) -> None:
        index = self.position[0]
        with self._lock:
            if index not in self._chains:
                estimator = self.make()
                estimator.start(keyframe)
                self._chains[index] = (estimator, {}, threading.Lock())
            view.key, view.counts = index, {}
            live = {v.key for v in self._views}
            for key in [k for k in self._chains if k not in live]:  # no track's clip starts there any more
                del self._chains[key]

    def measure(self, view: "_TrackEstimator", frame: np.ndarray) -> Any:
        index = self.position[0]
        nth = view.counts.get(index, 0)  # a track measures its last frame again when it becomes the tail keyframe
        view.counts[index] = nth + 1
        estimator, memo, lock = self._chains[view.key]
        with lock:  # the tracks on one chain measure in the same order: the first one computes
            if (index, nth) not in memo:
                memo[(index, nth)] = estimator.measure(frame)
            return memo[(index, nth)]


class _TrackEstimator:
    """A track's motion-hint estimator (``start`` / ``measure``), backed by :class:`_SharedEstimates`."""

    def __init__(self, shared: _SharedEstimates) -> None:
        self.shared = shared
        self.key: Optional[int] = None
        self.counts: dict[int, int] = {}

    def start(self, keyframe: np.ndarray) -> None:
        self.shared.start(self, keyframe)

    def measure(self, frame: np.ndarray) -> Any:
        return self.shared.measure(self, frame)


def _share_frame_features(tracks: list[Any]) -> None:
    """The tracks differ only in their spacing, so their selectors' per-frame features (the semantic
    embedding and the motion backend's prepared input) and their scene-cut descriptors are the same for a
    frame: computed once per frame for all of them (about a quarter of the pass's work on 4 tracks); so is
    the selectors' motion from a keyframe that several of them share to the frame."""
    cut = _PerFrame(tracks[0].cuts.embed)
    for track in tracks:
        track.cuts.embed = cut
    selectors = [t.selector for t in tracks if isinstance(t.selector, CompositeSelector)]
    if selectors:
        features = _PerFrame(selectors[0].compute_features)
        for selector in selectors:
            selector.features = features
        pairs = _PerPair()
        for motion in [s.motion for s in selectors if s.motion is not None]:
            motion.magnitude = lambda a, b, own=motion.magnitude: pairs(a, b, own)


def _with_sharpen(stream: Any, tenths: int) -> Any:
    """``stream`` with the flow reconstructor's ``sharpen`` parameter set to ``tenths``."""
    from dataclasses import replace as with_fields

    from .bitstream import StageInfo

    header = stream.header
    recon = StageInfo(header.reconstructor.name, {**header.reconstructor.params, "sharpen": tenths})
    return with_fields(stream, header=with_fields(header, reconstructor=recon))


def _with_detail(stream: Any, store: _PictureStore, height: int, width: int, pool: ThreadPoolExecutor, threads: int) -> Any:
    """``stream`` with the flow reconstructor's ``sharpen`` resolved as the encoder resolves it (the keyframe
    units decoded in order against the stored source pictures; each keyframe's strengths measured on the
    ``pool`` of ``threads``, at most two keyframes per thread ahead, and added in order: the same sums as on
    one thread); the header's size does not change (a one-byte integer either way)."""
    from collections import deque

    from .pipeline import DetailCollector

    header = stream.header
    codec = keyframe_codec_from_params(header.keyframe_codec.name, header.keyframe_codec.params)
    detail = DetailCollector(codec)
    ahead: deque[Future] = deque()
    for kf in stream.keyframes:
        if len(ahead) >= 2 * threads:
            detail.meter.add_measured(ahead.popleft().result())
        ahead.append(pool.submit(detail.meter.measure, store.luma(kf.index, height, width), detail.decoded(kf.data, (height, width))))
    while ahead:
        detail.meter.add_measured(ahead.popleft().result())
    return _with_sharpen(stream, detail.choice())


def _distortion(stream: Any, store: _PictureStore, text_codec: str, workers: int) -> float:
    """Mean GMSD of a candidate's decoded frames against the source frames' luma (the whole video, decoded by
    the real decoder, detail restoration off: its strength is chosen afterwards for the chosen stream)."""
    from .bitstream import write_stream
    from .pipeline import Decoder

    if "sharpen" in stream.header.reconstructor.params:
        stream = _with_sharpen(stream, 0)
    total, count = 0.0, 0
    for index, frame in enumerate(Decoder(workers=workers).decode(write_stream(stream, text_codec))):
        total += gmsd(store.source_luma(index), luma(frame))
        count += 1
    return total / max(1, count)


PROBES = 2  # QPs measured per search round: fixed, so that what is measured (and chosen) never depends on the cores
RATE_PER_QP = 0.11  # typical fall of ln(chain size) per QP step (sizes fall 20-30 % per 2 QPs): only places probes


def _probes(
    lo: int, hi: int, qps: list[int], known: dict[int, float], threshold: Optional[float], prior: dict[int, float]
) -> list[int]:
    """Positions in ``[lo, hi)`` to measure next: where the sizes measured so far (``known``: QP -> bytes;
    before the first, the guesses of ``prior``) put the first QP whose size is at most ``threshold``, by a
    log-linear fit of size against QP (two points, or one and :data:`RATE_PER_QP`), with its lower
    neighbour, so that a good guess ends the search in one round; with nothing to fit, the highest QP and
    the middle. Only the cost of the search depends on this, never its answer."""
    if hi - lo <= PROBES:
        return list(range(lo, hi))
    points = sorted((q, math.log(n)) for q, n in (known or prior).items() if n > 0)
    if threshold is None or threshold <= 0 or not points:
        step = (hi - 1 - lo) / PROBES
        return sorted({lo + int(step * k) for k in range(1, PROBES)} | {hi - 1})
    goal = math.log(threshold)
    # the two measured QPs nearest the goal size (or one, with the typical slope)
    near = sorted(points, key=lambda p: abs(p[1] - goal))[:2]
    (q0, l0) = near[0]
    slope = (near[0][1] - near[1][1]) / (near[1][0] - near[0][0]) if len(near) == 2 else RATE_PER_QP
    if not slope > 0:
        slope = RATE_PER_QP
    q_star = q0 + (l0 - goal) / slope  # predicted QP at which the size meets the threshold
    first = next((i for i, q in enumerate(qps) if q >= q_star), len(qps))  # predicted first position that fits
    first = min(max(first, lo + 1), hi - 1)
    return [first - 1, first]


def _search(
    measure: Callable[[list[int]], dict[int, int]],
    predicate: Callable[[int], bool],
    qps: list[int],
    threshold: Optional[float] = None,
    prior: Optional[dict[int, float]] = None,
) -> Optional[int]:
    """The lowest QP of ascending ``qps`` whose size satisfies ``predicate``, or None. Sizes fall as QP rises
    (nearly always: on static content neighbouring QPs can differ by a few bytes either way), so the QPs that
    satisfy it are a top range: a search over the ladder, ``PROBES`` sizes measured per round (``measure``
    codes the chains of the QPs it is given that it has not coded yet, and returns every size known). The
    sizes already known bound the range first; each round's probes go where :func:`_probes` predicts the
    boundary (``threshold``: the size in bytes at which ``predicate`` turns true, ``prior``: guessed sizes
    by QP before any is measured; both used only for that); from
    the QP found, lower QPs are measured while they still satisfy it (a flat stretch of sizes)."""
    known = measure([])
    lo, hi = 0, len(qps)  # the answer's position is in [lo, hi]; hi = len: none
    fits = [i for i, q in enumerate(qps) if q in known and predicate(known[q])]
    if fits:
        hi = fits[0]
    lo = max([i + 1 for i, q in enumerate(qps[:hi]) if q in known and not predicate(known[q])], default=0)
    while lo < hi:
        picks = _probes(lo, hi, qps, known, threshold, prior or {})
        known = measure([qps[i] for i in picks])
        for i in picks:
            if predicate(known[qps[i]]):
                hi = i
                break
            lo = i + 1
    if lo == len(qps):
        return None
    while lo > 0:  # walk down a flat stretch, PROBES QPs per round (a QP already known to fail ends it at once)
        below = list(range(lo - 1, max(lo - 1 - PROBES, -1), -1))
        if qps[below[0]] in known:
            below = below[:1]
        known = measure([qps[i] for i in below])
        for i in below:
            if not predicate(known[qps[i]]):
                return qps[lo]
            lo = i
    return qps[lo]


def plan(
    config: M3Config,
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    fps: Fraction,
    target: float,
    progress: Optional[Callable[[int], None]] = None,
    tolerance: float = TOLERANCE,
    workers: int = 0,
    exhaustive: bool = False,
    search_progress: Optional[Callable[[int], None]] = None,
) -> RatePlan:
    """Choose a (spacing, QP) candidate for ``target`` bpp by the rule of :func:`choose`, measuring only the
    candidates that the rule needs (module doc); ``exhaustive``: measure all 4 x 12 (for checks).

    ``progress(1)`` after each frame of the pass, ``search_progress(1)`` after each keyframe coded by the
    search (from the pass on); ``workers``: encoder threads (0: :func:`default_workers`; above 1, two more
    code the first round during the pass)."""
    from .bitstream import Keyframe, write_stream
    from .describe import NoneDescriber
    from .keyframe_codec import with_refine
    from .keyframes import build_selector
    from .pipeline import _HintCollector, _Track, assemble
    from .reconstruct import build_reconstructor

    if config.keyframe_codec.backend != "hevc":
        raise ConfigError("rate control chooses the HEVC keyframe chain's QP: it needs keyframe_codec.backend hevc")
    if not (math.isfinite(target) and 0 < target <= MAX_BPP):
        raise ConfigError(f"the target rate must be a positive number of at most {MAX_BPP} bpp, got {target}")
    if config.rate.choice not in CHOICES:
        raise ConfigError(f"rate.choice must be one of {', '.join(CHOICES)}, got {config.rate.choice!r}")
    measured = config.rate.choice == "gmsd"
    preset = config.keyframe_codec.hevc.preset
    store, position = _PictureStore(), [0]
    threads = workers or default_workers()
    # OpenCV's own threads off: the tracks, chains and trials below keep the cores busy (cpus.py)
    with opencv_single_threaded():
        pool = ThreadPoolExecutor(threads, thread_name_prefix="m3cvc-rate")
        early: dict[tuple[int, int], tuple[_Chain, Optional[Callable[[int], bool]], Future]] = {}
        early_pool: Optional[ThreadPoolExecutor] = None
        try:
            # the pass: every spacing's decisions (selection, scene cuts, motion hints); keyframes are stored
            tracks = {}  # spacing -> (its decision track, recorder, motion hints, reconstructor, config)
            estimates: Optional[_SharedEstimates] = None
            for interval in INTERVALS:
                cfg = replace(config, keyframes=spaced(config.keyframes, interval))
                recon = build_reconstructor(cfg.reconstruct)
                estimator = recon.motion_estimator()
                if estimator is not None:  # the same estimator settings for every spacing
                    estimates = estimates or _SharedEstimates(recon.motion_estimator, position)
                    estimator = estimates.estimator()
                # the hint checks and timing searches wait until the spacing is measured (most never are)
                hints = _HintCollector(estimator, cfg.reconstruct.mode == "interpolation",
                                       recon.hint_trial(), lambda small: store.put_small(position[0], small), store.small)
                recorder = _Recorder(store, position)
                track = _Track(cfg, build_selector(cfg.keyframes), recorder, NoneDescriber(), False, hints)
                tracks[interval] = (track, recorder, hints, recon, cfg)
            _share_frame_features([t[0] for t in tracks.values()])
            ladder = sorted(QPS)
            dense_first = sorted(INTERVALS)

            def bpp(n: int, frames: Optional[int] = None) -> float:
                # as choose() computes it, so that the search and the rule agree to the bit; ``frames``: so far
                return Candidate(0, 0, n, 0).bpp(pixels if frames is None else frames * width * height)

            def under_top(n: int, frames: Optional[int] = None) -> bool:
                return bpp(n, frames) / target - 1.0 <= tolerance

            def in_band(n: int) -> bool:
                return abs(bpp(n) / target - 1.0) <= tolerance

            over_top = lambda n: not under_top(n)  # noqa: E731  (a chain past the top is neither in the band nor below the target)
            # the densest spacing's first round (its search's first probes, the same whatever the sizes) is coded
            # while the pass runs, on threads of its own (_Chain); a chain the search does not ask for is cancelled
            if not exhaustive and threads > 1:
                keyframes_of = tracks[dense_first[0]][1].keyframes
                early_pool = ThreadPoolExecutor(PROBES, thread_name_prefix="m3cvc-rate-early")
                for qp in (ladder[i] for i in _probes(0, len(ladder), ladder, {}, None, {})):
                    stop = None if qp == QPS[0] else over_top  # as measure() codes it (the top QP whole)
                    past = None if stop is None else (lambda n, frames: not under_top(n, frames))
                    chain = _Chain(
                        dense_first[0], qp, keyframes_of, store, preset, target, (height, width), past, search_progress
                    )  # fmt: skip
                    early[(dense_first[0], qp)] = (chain, stop, early_pool.submit(chain.run))
            count = 0
            for index, frame in enumerate(frames):
                position[0] = index
                # the tracks are independent (their OpenCV flow releases the GIL): one thread each
                list(pool.map(lambda t: t[0].feed(index, frame), tracks.values()))
                if measured:
                    store.put_luma(index, luma(frame))
                count = index + 1
                for chain, _, _ in early.values():
                    chain.advance(count)
                if progress:
                    progress(1)
            if count == 0:
                from .errors import InputError

                raise InputError("the input video has no frames")
            finished = {interval: t[0].finish() for interval, t in tracks.items()}  # may add a tail keyframe
            for chain, _, _ in early.values():
                chain.advance(count, ended=True)
            motion: dict[int, Optional[bytes]] = {}  # spacing -> its motion hints, once it is first measured
            pixels = count * width * height
            streams: dict[Candidate, Any] = {}
            sizes: dict[int, dict[int, int]] = {interval: {} for interval in INTERVALS}

            # chains cut short (see code): spacing -> {QP: the test that cut it}
            stopped: dict[int, dict[int, Callable[[int], bool]]] = {interval: {} for interval in INTERVALS}

            def code(interval: int, qp: int, stop: Optional[Callable[[int], bool]]) -> Future:
                """A spacing's chain at a QP, on the workers (or the one the pass started); ``stop(bytes)``: true
                once the units coded so far put the stream past what the search can use (then the rest of the
                chain is not coded)."""
                chain, started, future = early.pop((interval, qp), (None, None, None))
                if chain is not None and started is stop:
                    return future
                if chain is not None:
                    chain.cancel()
                past = None if stop is None else (lambda n, frames: stop(n))
                keyframes = tracks[interval][1].keyframes
                chain = _Chain(interval, qp, keyframes, store, preset, target, (height, width), past, search_progress, count)
                return pool.submit(chain.run)

            def measure(interval: int, qps: list[int], stop: Optional[Callable[[int], bool]] = None) -> dict[int, int]:
                """The sizes known for ``interval`` after coding its chains at ``qps`` (those not known yet). With
                ``stop`` (a test that holds for every larger size too), a chain whose units alone pass it is cut
                short: its size is then only an estimate (its units scaled to the whole chain, itself passing
                ``stop``), good for placing probes, and it is no candidate. A chain cut by another test (or by
                any, without ``stop``) is coded again and its estimate is not returned: it says nothing about
                this test."""
                # the ladder's top QP is always coded whole: when nothing fits, the rule needs its exact size
                todo = [(interval, q, None if q == QPS[0] else stop) for q in qps
                        if q not in sizes[interval] or (q in stopped[interval] and stopped[interval][q] is not stop)]
                _, _, hints, recon, cfg = tracks[interval]
                keyframes, kf_texts, clip_texts, frames_seen = finished[interval]
                chains = [code(*job) for job in todo]
                if chains and interval not in motion:
                    # this thread tries the spacing's clips while the workers code its chains; once every chain is
                    # done and cut short the hints are not needed yet (the tried clips stay tried)
                    cut = lambda: all(f.done() and len(f.result()[2][1]) < len(keyframes) for f in chains)  # noqa: E731
                    hints.try_clips(cut)
                for iv, qp, (codec, units) in (f.result() for f in chains):
                    if len(units) < len(keyframes):
                        sizes[iv][qp] = -(-sum(map(len, units)) * len(keyframes) // len(units))
                        stopped[iv][qp] = stop
                        continue
                    stopped[iv].pop(qp, None)
                    if iv not in motion:
                        motion[iv] = hints.payload()
                    kfs = [Keyframe(k.index, u, k.trigger) for k, u in zip(keyframes, units)]
                    header_codec = with_refine(codec, cfg.keyframe_codec)  # the codec the header will name
                    stream, data = assemble(
                        cfg, width, height, Fraction(fps), frames_seen, header_codec, recon, kfs, kf_texts, clip_texts, motion[iv]
                    )  # fmt: skip
                    sizes[iv][qp] = len(data)
                    streams[Candidate(iv, qp, len(data), len(stream.keyframes))] = stream
                return {q: n for q, n in sizes[interval].items() if stopped[interval].get(q, stop) is stop}

            def guess(interval: int) -> dict[int, float]:
                """Sizes of a spacing before it is measured (only where probes go): the nearest denser spacing's
                measured sizes times the ratio of their keyframe counts."""
                denser = [iv for iv in dense_first if iv < interval and sizes[iv]]
                if not denser:
                    return {}
                ratio = len(tracks[interval][1].keyframes) / max(1, len(tracks[denser[-1]][1].keyframes))
                return {q: n * ratio for q, n in sizes[denser[-1]].items()}

            budget = target * pixels / 8.0  # the target in bytes, and the band's top: only where probes go
            top = budget * (1.0 + tolerance)
            if exhaustive:
                for interval in dense_first:
                    measure(interval, ladder)
            else:
                first_fit: dict[int, Optional[int]] = {}  # spacing -> its lowest QP at most the band's top
                coarse = False  # a denser spacing has a finalist, coarser than QP_CAP
                for interval in dense_first:  # with "gmsd", every spacing: its finalist competes on distortion
                    m = lambda qps, iv=interval: measure(iv, qps, over_top)  # noqa: E731
                    # once a coarse finalist is known, the rule takes a sparser spacing only for a fine one: its
                    # search stays at QP_CAP and below (None: its finalist, if any, is coarse and loses to the denser)
                    qps = [q for q in ladder if q <= QP_CAP] if coarse else ladder
                    first_fit[interval] = _search(m, under_top, qps, top, guess(interval))
                    q = first_fit[interval]
                    if not measured and q is not None and in_band(sizes[interval][q]):
                        if q <= QP_CAP:
                            break  # the rule: the densest spacing with a fine candidate in the band decides
                        coarse = True
                if not any(q is not None and in_band(sizes[iv][q]) for iv, q in first_fit.items()):
                    # nothing in the band: per spacing its largest candidate below the target (from its QP 51
                    # chain, coded whole), and only when no spacing has one (the target is below reach) the
                    # smallest stream
                    for interval in dense_first:
                        measure(interval, [ladder[-1]])
                        m = lambda qps, iv=interval: measure(iv, qps, over_top)  # noqa: E731
                        _search(m, lambda n: bpp(n) < target, ladder, budget)
                    if not any(bpp(c.bytes) < target for c in streams):
                        # rule 2 takes nothing larger than the smallest QP 51 stream: per spacing, the lowest QP of
                        # those at most that size (a flat stretch of sizes), chains cut once past it
                        smallest = min(sizes[iv][ladder[-1]] for iv in dense_first)
                        beyond = lambda n: n > smallest  # noqa: E731  (it is past the band's top)
                        for interval in dense_first:
                            m = lambda qps, iv=interval: measure(iv, qps, beyond)  # noqa: E731
                            _search(m, lambda n: n <= smallest, ladder, smallest)
            distortions: dict[Candidate, float] = {}
            by_content: dict[Any, float] = {}  # spacings that chose the same keyframes decode to the same frames

            def distortion(c: Candidate) -> float:
                if c not in distortions:
                    st = streams[c]
                    key = (tuple((k.index, k.data) for k in st.keyframes), st.clip_motion)
                    if key not in by_content:
                        by_content[key] = _distortion(st, store, config.text.codec, workers)
                    distortions[c] = by_content[key]
                return distortions[c]

            chosen, within = choose(streams, target, pixels, tolerance, distortion if measured else None)
            stream = streams[chosen]
            if getattr(tracks[chosen.interval][3], "sharpen", None) == AUTO:  # the detail strength, for the chosen
                stream = _with_detail(stream, store, height, width, pool, threads)  # stream only (its size does not depend on it)
        finally:
            for chain, _, _ in early.values():  # not asked for (or the pass failed)
                chain.cancel()
            if early_pool is not None:
                early_pool.shutdown(wait=True)
            pool.shutdown(wait=True, cancel_futures=True)
            store.close()
    data = write_stream(stream, config.text.codec)
    if len(data) != chosen.bytes:
        raise RuntimeError(f"rate control: the chosen stream is {len(data)} bytes, measured {chosen.bytes}")
    return RatePlan(
        float(target), pixels, tuple(streams), chosen, within, stream, data, config.rate.target_kbps, tolerance,
        spacing_key(config.keyframes), distortions,
        sum(map(len, stopped.values())),
    )  # fmt: skip


def apply(config: M3Config, plan_: RatePlan) -> M3Config:
    """``config`` with the chosen spacing and QP (and the target recorded for the header)."""
    c = plan_.chosen
    return replace(
        config,
        keyframes=spaced(config.keyframes, c.interval),
        keyframe_codec=replace(config.keyframe_codec, hevc=replace(config.keyframe_codec.hevc, qp=c.qp, target_bpp=plan_.target_bpp)),
    )


def summary(plan_: RatePlan, written: Optional[int] = None) -> dict[str, Any]:
    """JSON-ready description of a plan (for ``encode --json`` and the eval info); ``written``: the size of
    the stream written, when the describer's texts came on top of the plan (then ``within_tolerance`` is
    that of the written stream, ``text_bytes`` what the texts added)."""
    out: dict[str, Any] = {"target_bpp": plan_.target_bpp}
    if plan_.target_kbps:
        out["target_kbps"] = plan_.target_kbps
    extra = plan_.extra_bytes(written)
    within = plan_.within
    if extra and written is not None:
        within = abs(8.0 * written / plan_.pixels / plan_.target_bpp - 1.0) <= plan_.tolerance
    out.update({
        "predicted_bpp": plan_.predicted_bpp,
        "within_tolerance": within,
        "text_bytes": extra,
        plan_.spacing_key: plan_.chosen.interval,  # max_interval, or the fixed selector's interval
        "qp": plan_.chosen.qp,
        "candidates": len(plan_.candidates),
        "cut_short": plan_.cut_short,
    })
    if plan_.distortions:  # the finalists that competed on measured distortion
        out["finalists"] = [{plan_.spacing_key: c.interval, "qp": c.qp, "bpp": c.bpp(plan_.pixels), "gmsd": round(d, 5)}
                            for c, d in sorted(plan_.distortions.items(), key=lambda kv: kv[0].interval)]  # fmt: skip
    return out
