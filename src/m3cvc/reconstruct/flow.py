"""Weight-free clip reconstruction: decoder-side optical flow between the decoded keyframes.

Interpolation (per clip, keyframes ``I0`` at t = 0 and ``I1`` at t = 1):

1. DIS optical flow (OpenCV) in both directions, once per clip, on grey images at
   ``working_width``: ``F01`` (I0 -> I1) and ``F10`` (I1 -> I0), upsampled to the frame size.
2. Matches: a pixel of I0 is *matched* when its flow is forward-backward consistent
   (Sundaram et al. 2010: ``|F01 + F10(x + F01)|^2 < 0.01 (|F01|^2 + |F10(x + F01)|^2) + 0.5``,
   working-size pixels) and lands on a grey level within ``MATCH_GREY`` of its own. If fewer
   than ``cut_threshold`` of the pixels are matched in either direction, the two keyframes show
   different shots (a scene cut: the keyframe selector puts the next keyframe on the cut, so the
   clip belongs to the first shot) and the first keyframe is held. On bikes.mp4 (512x320) cut
   pairs measured at most 2.6 % matched, same-shot pairs at least 11.6 %.
3. For t = j / length (j >= 1), the flows from the intermediate frame to both keyframes are
   approximated as in Super SloMo (Jiang et al. 2018, eq. 4), assuming linear motion:
   ``F_t0 = -(1 - t) t F01 + t^2 F10`` and ``F_t1 = (1 - t)^2 F01 - t (1 - t) F10``.
   Forward splatting of ``t F01`` ("flow reversal") measured no better on bikes.mp4 (within
   0.03 dB) at about three times the cost, so the closed form is used.
4. Both keyframes are backward-warped with ``cv2.remap`` and blended with weights ``1 - t`` and
   ``t``. With ``occlusion`` on, each weight is multiplied by the keyframe's visibility warped the
   same way: 1 for matched pixels, ``OCCLUDED_WEIGHT`` for the others and 0 where the
   sample falls outside the keyframe (content that entered or left the frame, e.g. in a pan).
5. Fallback: where the flow is unreliable, the warped result is mixed with the plain cross-fade
   (blur instead of misplaced detail). The confidence of a pixel is the matched mask of each
   keyframe, Gaussian-smoothed (sigma ``CONFIDENCE_SIGMA`` px per 512 px of width), warped like
   the keyframe and weighted ``1 - t`` / ``t``; the output is
   ``c * warped + (1 - c) * cross_fade`` with ``c = 1 - fallback * (1 - confidence)``.
   Measured with the default lite keyframes (PSNR / MS-SSIM, fallback 0 -> 0.5): bikes.mp4
   18.66 -> 18.83 dB / 0.549 -> 0.556, carphone 21.72 -> 22.00 / 0.744 -> 0.753, bigbuckbunny
   22.17 -> 22.37 / 0.776 -> 0.781; fallback 1.0 and smoothing sigma 2 or 8 were no better.

Defaults (measured on bikes.mp4, carphone and bigbuckbunny with the default lite keyframes): the
DIS presets ultrafast / fast / medium gave the same quality within 0.05 dB on these clips, but
medium follows large motion much better (a 60 px synthetic pan: 16.6 dB vs 11.4 ultrafast), so
medium it is; DIS's variational refinement (5 iterations in the presets) cost up to 0.5 dB on
bikes.mp4 with keyframes every 4 frames, hence ``variational_iterations = 0``. The occlusion
weights change real clips by at most 0.01 dB but gain 5-15 dB on synthetic pans (frame borders).

Prediction mode, and the last clip of a video (no next keyframe), hold the keyframe.

Motion hints (``motion_hints``, stored in the stream header; the lite default): the encoder sends
each frame's global motion to its clip's keyframe, ``H_j``, and, for a *linked* next keyframe,
``H_L`` (see :mod:`m3cvc.reconstruct.motion`). Then:

- prediction, the last clip, and clips whose next keyframe is unlinked and that the decoder's own
  check (step 2) also sees as a scene cut: frame j is the keyframe warped by ``H_j``
  (``cv2.warpPerspective``, border replicated) instead of the held keyframe;
- unlinked clips that the decoder's check sees as one shot: steps 1-5 without hints;
- linked clips: the next keyframe is first aligned to this one (warped by ``H_L^-1``); steps 1-2
  run between the keyframe and the aligned next keyframe, so DIS only sees the residual, local
  motion; frame j's pixels go to the keyframe's coordinates by ``H_j`` (the measured camera path,
  not the linear-motion guess), there the residual flow is interpolated as in step 3, and
  ``H_L^-1`` takes the result into the next keyframe. Visibility and confidence (steps 4-5) are
  those of the residual flow, with 0 where the aligned next keyframe had no pixels; the fallback
  mixes in both keyframes warped by the hints alone (weights ``1 - t`` and ``t`` times their
  in-frame masks) instead of the plain cross-fade. ``residual = False`` uses that hints-only
  blend everywhere (and ``residual`` is then a decoder setting stored in the header).
DIS output does not depend on the OpenCV thread count, and ``remap`` is per pixel, so the output
is deterministic.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Mapping, Optional

import numpy as np

from ..config import FlowReconOptions, ReconstructConfig
from ..errors import ConfigError
from .base import ClipReconstructor, check_clip, hold, rebuild
from .detail import AUTO, check_tenths, gmsd_of, gradient_energy, unsharp
from .motion import TIMING_STEPS, ClipMotion, MotionHintEstimator, default_timing

PRESETS = ("ultrafast", "fast", "medium")
# Weight of a keyframe pixel whose flow fails the forward-backward check: not 0, because on real
# video the check also fails on compression noise and flat areas (0 measured worse on bikes.mp4).
OCCLUDED_WEIGHT = 0.25
MATCH_GREY = 20  # grey-level tolerance of a flow match (AVIF noise is well below it)
MIN_FLOW_SIDE = 32  # OpenCV 4.x's DIS crashes (segfault) on images under 32 px high; smaller frames are cross-faded
CONFIDENCE_SIGMA = 4.0  # smoothing of the matched masks for the fallback, px at 512 px width
_TINY = 1e-3  # keeps the weights positive where both samples fall outside the frame
# width of the encoder's hint check (HintTrial): 128 made the same decisions as 256 on carphone and bikes
# and one more (LPIPS -0.001) on bigbuckbunny (keyframe QP 38 / 46), at a third to a quarter of the cost
TRIAL_WIDTH = 128


def _dis(preset: str, variational_iterations: int) -> Any:
    import cv2

    code = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }[preset]
    dis = cv2.DISOpticalFlow_create(code)
    dis.setVariationalRefinementIterations(variational_iterations)
    return dis


def _grey(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def _grid(height: int, width: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([xs, ys])


def _matched(f_ab: np.ndarray, f_ba: np.ndarray, g_a: np.ndarray, g_b: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Float mask (1/0) of the pixels of A whose flow to B is forward-backward consistent and
    lands on a similar grey level (within ``MATCH_GREY`` of 255)."""
    import cv2

    where = grid + f_ab
    back = _warp(f_ba, where)
    diff = f_ab + back
    err = np.einsum("ijk,ijk->ij", diff, diff)
    tol = 0.01 * (np.einsum("ijk,ijk->ij", f_ab, f_ab) + np.einsum("ijk,ijk->ij", back, back)) + 0.5
    same = cv2.absdiff(g_a, _warp(g_b, where)) < MATCH_GREY
    return ((err < tol) & same).astype(np.float32)


def _to_frame_size(field: np.ndarray, width: int, height: int, scale: float) -> np.ndarray:
    import cv2

    if field.shape[:2] == (height, width):
        return field
    out = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)
    return out * np.float32(scale) if scale != 1.0 else out


class FlowReconstructor(ClipReconstructor):
    """``flow``: DIS optical-flow interpolation between decoded keyframes (see the module doc)."""

    name = "flow"
    independent_clips = True  # DIS objects and the cut diagnostics are per thread

    def __init__(
        self,
        mode: str = "interpolation",
        preset: str = "medium",
        working_width: int = 512,
        variational_iterations: int = 0,
        occlusion: bool = True,
        cut_threshold: float = 0.05,
        fallback: float = 0.5,
        motion_hints: bool = False,
        residual: bool = True,
        hint_model: str = "affine",
        hint_working_width: int = 256,
        sharpen: int = 0,
        hint_check: bool = True,
        timing: bool = True,
    ) -> None:
        super().__init__(mode)
        problem = check_tenths(sharpen, allow_auto=True)
        if problem:
            raise ConfigError(f"flow reconstructor: {problem}")
        self.sharpen = sharpen  # detail restoration strength in tenths (reconstruct/detail.py); AUTO: the encoder chooses
        if preset not in PRESETS:
            raise ConfigError(f"flow reconstructor: unknown DIS preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        if not 16 <= working_width <= 8192:
            raise ConfigError(f"flow reconstructor: working_width must be in 16..8192, got {working_width}")
        if not 0 <= variational_iterations <= 100:
            raise ConfigError(f"flow reconstructor: variational_iterations must be in 0..100, got {variational_iterations}")
        if not 0.0 <= cut_threshold <= 1.0:
            raise ConfigError(f"flow reconstructor: cut_threshold must be in 0..1, got {cut_threshold}")
        if not 0.0 <= fallback <= 1.0:
            raise ConfigError(f"flow reconstructor: fallback must be in 0..1, got {fallback}")
        self.preset = preset
        self.working_width = working_width
        self.variational_iterations = variational_iterations
        self.occlusion = occlusion
        self.cut_threshold = float(cut_threshold)
        self.fallback = float(fallback)
        self.motion_hints = bool(motion_hints)
        self.residual = bool(residual)
        if self.motion_hints:  # validates the encoder-side hint settings (not stored in the stream)
            MotionHintEstimator(hint_model, hint_working_width)
        self.hint_model = hint_model
        self.hint_working_width = hint_working_width
        self.hint_check = bool(hint_check)  # encoder side: keep a clip's hints only where they beat plain flow
        self.timing = bool(timing)  # encoder side: send each interpolated frame's time where it renders better
        self._local = threading.local()  # this thread's DIS object and cut diagnostics

    @classmethod
    def from_options(cls, mode: str, opts: FlowReconOptions) -> "FlowReconstructor":
        return cls(
            mode, opts.preset, opts.working_width, opts.variational_iterations, opts.occlusion, opts.cut_threshold,
            opts.fallback, opts.motion_hints, opts.residual, opts.hint_model, opts.hint_working_width, opts.sharpen,
            opts.hint_check, opts.timing,
        )

    @classmethod
    def from_config(cls, cfg: ReconstructConfig) -> "FlowReconstructor":
        return cls.from_options(cfg.mode, cfg.flow)

    def params(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "preset": self.preset,
            "working_width": self.working_width,
            "variational_iterations": self.variational_iterations,
            "occlusion": self.occlusion,
            "cut_threshold": self.cut_threshold,
            "fallback": self.fallback,
            "motion_hints": self.motion_hints,
            "residual": self.residual,
            "sharpen": self.sharpen,
        }

    def motion_estimator(self) -> Optional[MotionHintEstimator]:
        return MotionHintEstimator(self.hint_model, self.hint_working_width) if self.motion_hints else None

    def hint_trial(self) -> Optional["HintTrial"]:
        """Encoder side: the trial renders that keep a linked clip's hints only where they beat decoder-side
        flow (``hint_check``) and choose each interpolated frame's time (``timing``); None without hints, in
        prediction mode, or with both off."""
        if not (self.motion_hints and (self.hint_check or self.timing) and self.mode == "interpolation"):
            return None
        return HintTrial(self, TRIAL_WIDTH, self.hint_check, self.timing)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "FlowReconstructor":
        from ..errors import BitstreamError

        sharpen = params.get("sharpen", 0)  # streams from before ``sharpen`` existed read 0
        if sharpen == AUTO and not isinstance(sharpen, bool):  # the encoder resolves it
            raise BitstreamError("flow reconstructor: the stream header leaves the sharpen strength unresolved")
        if isinstance(sharpen, int) and not isinstance(sharpen, bool):  # other types: rebuild says so
            problem = check_tenths(sharpen, allow_auto=False)
            if problem:
                raise BitstreamError(f"flow reconstructor: invalid parameters in the stream header ({problem})")
        return rebuild(cls, params, cls().params())

    # ---------------------------------------------------------------- reconstruction
    def reconstruct(
        self,
        first: np.ndarray,
        following: Optional[np.ndarray],
        length: int,
        text: str = "",
        motion: Optional[ClipMotion] = None,
    ) -> Iterator[np.ndarray]:
        frames = self._clip(first, following, length, motion)
        if self.sharpen > 0:
            return (unsharp(frame, self.sharpen) for frame in frames)
        return frames

    def _clip(
        self, first: np.ndarray, following: Optional[np.ndarray], length: int, motion: Optional[ClipMotion]
    ) -> Iterator[np.ndarray]:
        render = self._renderer(first, following, length, motion)
        if render is None:  # no interpolation: the keyframe held, or warped by the hints
            return hold(first, length) if motion is None else self._hinted_prediction(first, length, motion)
        timing = motion.timing if motion is not None else None
        return _timed_frames(first, length, render, timing)

    def _renderer(
        self, first: np.ndarray, following: Optional[np.ndarray], length: int, motion: Optional[ClipMotion]
    ) -> Optional["_Render"]:
        """``render(j, t)``: frame j of an interpolated clip drawn at time ``t`` (0 = this keyframe, 1 = the
        next), with the flows computed once per clip; None where the clip is not interpolated (prediction
        mode, the last clip, a scene cut by the decoder's check: the caller holds or warps the keyframe)."""
        check_clip(first, following, length)
        self.last_clip_was_cut = False
        if motion is not None:
            expected = length - 1 + int(motion.linked)
            if length and motion.vectors.shape != (expected, 8):
                raise ValueError(f"motion hints hold {motion.vectors.shape[0]} vectors for a clip of {length}")
            if motion.timing is not None and motion.timing.shape != (max(length - 1, 0),):
                raise ValueError(f"timing hints hold {motion.timing.shape[0]} times for a clip of {length}")
        if self.mode != "interpolation" or following is None or length <= 1:
            return None
        if motion is None or not motion.linked:
            # without hints, or the encoder could not link the next keyframe (a cut, or motion its model
            # does not explain): decoder-side flow unless the decoder's check also sees a cut
            flows = self._flows(first, following)
            if flows is None:
                self.last_clip_was_cut = True
                return None
            return _Interpolation(self, first, following, flows)
        to_next = np.linalg.inv(motion.next_keyframe(*first.shape[1::-1]))
        aligned = _warp_h(following, to_next)  # the next keyframe in this keyframe's coordinates
        inside = _warp_h(np.ones(first.shape[:2], np.float32), to_next, outside=0.0)
        flows = self._flows(first, aligned) if self.residual else None
        if flows is None and self.residual:  # the decoder's check sees a scene cut
            self.last_clip_was_cut = True
            return None
        if flows is not None:  # the next keyframe's pixels that were outside its view get no weight
            flows = replace(flows, vis1=flows.vis1 * inside, conf1=flows.conf1 * inside)
        return _HintedInterpolation(self, first, following, motion, to_next, inside, flows)

    def __getstate__(self) -> dict[str, Any]:  # picklable (process pools): the per-thread state stays behind
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    @property
    def last_clip_was_cut(self) -> bool:
        """Diagnostics: the keyframes of the last clip reconstructed on this thread looked like a scene cut."""
        return getattr(self._local, "cut", False)

    @last_clip_was_cut.setter
    def last_clip_was_cut(self, value: bool) -> None:
        self._local.cut = value

    def _dis(self) -> Any:
        dis = getattr(self._local, "dis", None)
        if dis is None:  # an OpenCV DIS object keeps state between calls: one per thread
            dis = self._local.dis = _dis(self.preset, self.variational_iterations)
        return dis

    def _flows(self, first: np.ndarray, following: np.ndarray) -> Optional["_ClipFlow"]:
        """Flows, visibility and confidence maps at the frame size, or None for a scene cut."""
        height, width = first.shape[:2]
        work_w = min(self.working_width, width)
        work_h = max(1, int(round(height * work_w / width)))
        if min(work_w, work_h) < MIN_FLOW_SIDE:
            work_w, work_h = width, height
        if min(work_w, work_h) < MIN_FLOW_SIDE:  # too small for DIS patches: no motion, a plain cross-fade
            zero, ones = np.zeros((height, width, 2), np.float32), np.ones((height, width), np.float32)
            return _ClipFlow(zero, zero, ones, ones, ones, ones)
        g0, g1 = _grey(first, (work_w, work_h)), _grey(following, (work_w, work_h))
        dis = self._dis()
        f01 = dis.calc(g0, g1, None)
        f10 = dis.calc(g1, g0, None)
        grid = _grid(work_h, work_w)
        c0, c1 = _matched(f01, f10, g0, g1, grid), _matched(f10, f01, g1, g0, grid)
        if min(float(c0.mean()), float(c1.mean())) < self.cut_threshold:
            return None
        scale = width / work_w
        sigma = CONFIDENCE_SIGMA * work_w / 512
        return _ClipFlow(
            _to_frame_size(f01, width, height, scale),
            _to_frame_size(f10, width, height, scale),
            _to_frame_size(OCCLUDED_WEIGHT + (1 - OCCLUDED_WEIGHT) * c0, width, height, 1.0),
            _to_frame_size(OCCLUDED_WEIGHT + (1 - OCCLUDED_WEIGHT) * c1, width, height, 1.0),
            _to_frame_size(_smooth(c0, sigma), width, height, 1.0),
            _to_frame_size(_smooth(c1, sigma), width, height, 1.0),
        )

    def _hinted_prediction(self, first: np.ndarray, length: int, motion: ClipMotion) -> Iterator[np.ndarray]:
        for j in range(length):
            yield first if j == 0 else _hint_warp(first, motion, j)


class _Interpolation:
    """Frames of a clip between two keyframes by decoder-side flow (module doc, steps 3-5)."""

    def __init__(self, recon: FlowReconstructor, first: np.ndarray, following: np.ndarray, flow: "_ClipFlow") -> None:
        self.recon, self.first, self.following, self.flow = recon, first, following, flow
        self.grid = _grid(*first.shape[:2])

    def __call__(self, j: int, t: float) -> np.ndarray:
        import cv2

        flow, first, following = self.flow, self.first, self.following
        map0, map1 = _intermediate_flows(flow, t)
        map0 += self.grid
        map1 += self.grid
        w0 = _warp(first, map0)
        w1 = _warp(following, map1)
        if self.recon.occlusion:
            a0 = _warp(flow.vis0, map0, outside=0.0)
            a1 = _warp(flow.vis1, map1, outside=0.0)
            warped = _time_blend(w0, w1, a0, a1, t)
        else:
            warped = cv2.addWeighted(w0, 1 - t, w1, t, 0.0)
        fb = self.recon.fallback
        if fb <= 0.0:
            return warped
        conf = cv2.addWeighted(_warp(flow.conf0, map0), (1 - t) * fb, _warp(flow.conf1, map1), t * fb, 1 - fb)
        plain = cv2.addWeighted(first, 1 - t, following, t, 0.0)
        return cv2.blendLinear(warped, plain, conf, (1 + _TINY) - conf)


class _HintedInterpolation:
    """Frame j at time t of a linked clip: its pixels go to this keyframe's coordinates by the hint ``H_j``;
    there the residual (local) motion between this keyframe and the aligned next one is interpolated as in
    the unhinted case; ``to_next`` (``H_L^-1``) takes the result to the next keyframe. Without a residual
    flow (``residual`` off), both keyframes are warped by the hints alone and blended with weights ``1 - t``
    / ``t`` times their in-frame masks."""

    def __init__(
        self, recon: FlowReconstructor, first: np.ndarray, following: np.ndarray, motion: ClipMotion,
        to_next: np.ndarray, inside: np.ndarray, flow: Optional["_ClipFlow"],
    ) -> None:  # fmt: skip
        self.recon, self.first, self.following, self.motion = recon, first, following, motion
        self.to_next, self.inside, self.flow = to_next, inside, flow
        self.grid = _grid(*first.shape[:2])
        self.ones = np.ones(first.shape[:2], np.float32)
        self._frame: tuple = (-1,)  # frame j's warps by its hint, kept while the encoder draws it at several times

    def _warps(self, j: int) -> tuple:
        if self._frame[0] != j:
            height, width = self.first.shape[:2]
            h0 = self.motion.frame(j, width, height)
            g0, g1 = _warp_h(self.first, h0), _warp_h(self.following, self.to_next @ h0)
            m0, m1 = _warp_h(self.ones, h0, outside=0.0), _warp_h(self.inside, h0, outside=0.0)
            self._frame = (j, g0, g1, m0, m1, _project(h0, self.grid) if self.flow is not None else None)
        return self._frame[1:]

    def __call__(self, j: int, t: float) -> np.ndarray:
        import cv2

        first, following, flow = self.first, self.following, self.flow
        g0, g1, m0, m1, where = self._warps(j)
        hinted = _time_blend(g0, g1, m0.copy(), m1.copy(), t)  # (it scales the weights in place)
        if flow is None:
            return hinted
        map0, map_a = _intermediate_flows(flow, t)
        map0 = _warp(map0, where) + where
        map_a = _warp(map_a, where) + where
        map1 = _project(self.to_next, map_a)
        a0 = _warp(flow.vis0, map0, outside=0.0)
        a1 = _warp(flow.vis1, map_a, outside=0.0)
        warped = _time_blend(_warp(first, map0), _warp(following, map1), a0, a1, t)
        fb = self.recon.fallback
        if fb <= 0.0:
            return warped
        conf = cv2.addWeighted(_warp(flow.conf0, map0), (1 - t) * fb, _warp(flow.conf1, map_a), t * fb, 1 - fb)
        return cv2.blendLinear(warped, hinted, conf, (1 + _TINY) - conf)


_Render = Any  # _Interpolation | _HintedInterpolation: (j, t) -> frame


def _timed_frames(first: np.ndarray, length: int, render: _Render, timing: Optional[np.ndarray]) -> Iterator[np.ndarray]:
    """The clip: the keyframe, then frame j drawn at ``j / length`` or, with timing hints, at the time sent."""
    yield first
    for j in range(1, length):
        yield render(j, j / length if timing is None else float(timing[j - 1]) / TIMING_STEPS)


class HintTrial:
    """Encoder side of the hint check (``hint_check``): motion hints describe one global motion per frame,
    which helps where the camera moves (pans, zooms) and hurts where it does not and the fit followed a
    moving foreground instead: the decoder then drags the still background along (carphone: LPIPS 0.244
    with hints against 0.230 without, 20.6 against 21.6 dB, at keyframe QP 44). So for every linked clip the
    encoder renders the clip both ways, as the decoder would (hinted; unlinked, i.e. decoder-side flow
    alone), from the *source* keyframes at ``width`` pixels wide (``TRIAL_WIDTH``), and keeps the hints
    only when their mean GMSD (grey) against the clip's own frames is lower. Otherwise the clip is sent
    unlinked with zero hints (two bits in the CLIP_MOTION unit). Measured (keyframe QP 38 / 46, LPIPS /
    PSNR / bytes against keeping every hint): carphone 0.222 -> 0.205 / 21.0 -> 22.0 dB / 5105 -> 4967
    and 0.265 -> 0.257 / 20.5 -> 21.4 dB / 2359 -> 2221; bikes 0.267 -> 0.265 and 0.344 -> 0.342
    (+0.2 dB); bigbuckbunny 0.195 -> 0.195 and 0.357 -> 0.356 (one clip of five dropped). Memory: one
    clip of frames at ``width``."""

    def __init__(self, recon: FlowReconstructor, width: int, check: bool = True, timing: bool = True) -> None:
        self.width = width
        self.check, self.timing_on = check, timing
        self.recon = FlowReconstructor(
            "interpolation", recon.preset, max(16, min(recon.working_width, width)), recon.variational_iterations,
            recon.occlusion, recon.cut_threshold, recon.fallback, True, recon.residual, recon.hint_model,
            recon.hint_working_width, 0, False, False,
        )  # fmt: skip
        self.size = (0, 0)  # the trial size, set from the first frame
        self.scale = (1.0, 1.0)  # corner displacement scale, frame -> trial size

    def small(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` at the trial size (uint8 RGB)."""
        import cv2

        height, width = frame.shape[:2]
        if self.size == (0, 0):
            w = min(self.width, width)
            h = max(1, int(round(height * w / width)))
            self.size = (w, h)
            self.scale = ((w - 1) / max(1, width - 1), (h - 1) / max(1, height - 1))
        if (width, height) == self.size:
            return np.ascontiguousarray(frame)
        return cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)

    def tried(self, first: np.ndarray, following: np.ndarray, frames: list[np.ndarray], motion: ClipMotion) -> ClipMotion:
        """A clip's ``motion`` (its hints, frame-size quarter pixels; all pictures at the trial size, :meth:`small`)
        after the hint check and with its timing hints.

        Check (``check``, linked clips): the clip is drawn from ``first`` to ``following`` both ways, hinted and
        by decoder-side flow alone; the hints stay only when their summed GMSD against ``frames`` is lower,
        else the clip becomes unlinked with zero hints. Timing (``timing``): for each frame a time, in steps of
        ``1 / TIMING_STEPS``, at which the decoder's interpolation looks more like it by GMSD, found by descent
        from the frame's default time ``j / length`` (rounded): to the better neighbour (the earlier on a tie)
        if it is strictly better, then on in that direction while each step is strictly better. Trying every
        time instead gave the same streams on bigbuckbunny and carphone at the seven lite_rd targets and LPIPS
        within 0.0005 on bikes (rate control at 0.004-0.02 bpp), for 1.6-1.8x the pictures drawn. No timing
        hints when no frame moves from its default or the clip is not interpolated. With camera motion only the
        residual, local motion is re-timed: frame j stays where its hint puts the camera. Each picture is drawn
        once: the check's pictures serve the timing search (same renderer, same times)."""
        length = len(frames) + 1
        truth = [gradient_energy(_grey(f, self.size)) for f in frames]
        hinted = plain = None
        if motion.linked and self.check:
            hinted = self._pictures(first, following, length, self._scaled(motion), not np.any(motion.vectors))
            plain = self._pictures(first, following, length, None, True)
            cost = [sum(gmsd_of(t, drawn(j, j / length)) for j, t in enumerate(truth, 1)) for drawn in (hinted, plain)]
            if not cost[0] < cost[1]:  # decoder-side flow alone
                motion, hinted = ClipMotion(np.zeros((len(motion.vectors) - 1, 8), np.int64), False), None
        if not self.timing_on:
            return motion
        drawn = hinted or plain or self._pictures(first, following, length, self._scaled(motion), not np.any(motion.vectors))
        if not drawn.interpolated:
            return motion
        default = default_timing(length)
        chosen = default.copy()
        for j, t in enumerate(truth, 1):
            d = int(default[j - 1])
            costs = {d: gmsd_of(t, drawn(j, d / TIMING_STEPS))}

            def better(q: int, than: int) -> bool:  # q is in range and draws the frame strictly better
                if 0 <= q <= TIMING_STEPS and q not in costs:
                    costs[q] = gmsd_of(t, drawn(j, q / TIMING_STEPS))
                return q in costs and costs[q] < costs[than]

            best = d
            for near in (d - 1, d + 1):  # the better neighbour (ties: the earlier one), if better than the default
                if better(near, best):
                    best = near
            step = best - d  # -1, 0 or 1
            while step and better(best + step, best):  # on down the slope while it still falls
                best += step
            chosen[j - 1] = best
        return motion if np.array_equal(chosen, default) else replace(motion, timing=chosen)

    def _scaled(self, motion: ClipMotion) -> ClipMotion:
        """The hints at the trial size (timing dropped)."""
        return ClipMotion(np.rint(motion.vectors * np.tile(self.scale, 4)).astype(np.int64), motion.linked)

    def _pictures(
        self, first: np.ndarray, following: np.ndarray, length: int, motion: Optional[ClipMotion], same: bool
    ) -> "_Drawn":
        """The clip as the decoder draws it with ``motion`` (None: no hints) at the trial size; ``same``: frame j's
        picture at a time does not depend on j (no camera motion)."""
        render = self.recon._renderer(first, following, length, motion)
        if render is not None:
            return _Drawn(render, self.size, same, True)
        if motion is None:  # held
            return _Drawn(lambda j, t: first, self.size, True, False)
        return _Drawn(lambda j, t: _hint_warp(first, motion, j), self.size, same, False)  # warped by the hints


class _Drawn:
    """Gradient energies (GMSD's per-image part, grey at ``size``) of a clip's frames drawn by ``draw(j, t)``,
    each (frame, time) drawn once (once per time where ``same``); ``interpolated``: whether ``t`` matters."""

    def __init__(self, draw: Callable[[int, float], np.ndarray], size: tuple[int, int], same: bool, interpolated: bool) -> None:
        self.draw, self.size, self.same, self.interpolated = draw, size, same, interpolated
        self._energy: dict[tuple[int, float], np.ndarray] = {}

    def __call__(self, j: int, t: float) -> np.ndarray:
        key = (0 if self.same else j, t if self.interpolated else 0.0)
        if key not in self._energy:
            self._energy[key] = gradient_energy(_grey(self.draw(j, t), self.size))
        return self._energy[key]


@dataclass(frozen=True)
class _ClipFlow:
    """Per-clip maps at the frame size: flows, visibility weights, smoothed match confidence."""

    f01: np.ndarray
    f10: np.ndarray
    vis0: np.ndarray
    vis1: np.ndarray
    conf0: np.ndarray
    conf1: np.ndarray


def _warp(image: np.ndarray, where: np.ndarray, outside: Optional[float] = None) -> np.ndarray:
    """Backward warp (bilinear); ``outside=None`` replicates the border, else fills with it."""
    import cv2

    if outside is None:
        return cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=outside)


def _intermediate_flows(flow: _ClipFlow, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Super SloMo's flows from time ``t`` to both keyframes (module doc, step 3)."""
    import cv2

    f_t0 = cv2.addWeighted(flow.f01, -(1 - t) * t, flow.f10, t * t, 0.0)
    f_t1 = cv2.addWeighted(flow.f01, (1 - t) ** 2, flow.f10, -t * (1 - t), 0.0)
    return f_t0, f_t1


def _time_blend(w0: np.ndarray, w1: np.ndarray, a0: np.ndarray, a1: np.ndarray, t: float) -> np.ndarray:
    """``(a0' * w0 + a1' * w1) / (a0' + a1')``, rounded, with ``a0' = (1 - t)(a0 + tiny)`` and
    ``a1' = t (a1 + tiny)``; ``a0`` and ``a1`` (float32 weight maps) are modified in place."""
    import cv2

    a0 += _TINY
    a0 *= np.float32(1 - t)
    a1 += _TINY
    a1 *= np.float32(t)
    return cv2.blendLinear(w0, w1, a0, a1)


def _warp_h(image: np.ndarray, h: np.ndarray, outside: Optional[float] = None) -> np.ndarray:
    """Backward projective warp: ``out(x) = image(h x)`` (bilinear); border as in :func:`_warp`."""
    import cv2

    size = (image.shape[1], image.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if outside is None:
        return cv2.warpPerspective(image, h, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpPerspective(image, h, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=outside)


def _hint_warp(first: np.ndarray, motion: ClipMotion, j: int) -> np.ndarray:
    """Frame j of a clip that is not interpolated: the keyframe warped by the frame's hint ``H_j``."""
    return _warp_h(first, motion.frame(j, first.shape[1], first.shape[0]))


def _project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``h`` applied to an (H, W, 2) float32 field of positions."""
    import cv2

    return cv2.perspectiveTransform(points.reshape(-1, 1, 2), h).reshape(points.shape)


def _smooth(mask: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.5))
