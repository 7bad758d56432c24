"""Keyframe selectors: ``composite`` (paper II-A) and ``fixed`` (every N frames), and
:func:`build_selector`, which builds one from a :class:`~m3cvc.config.KeyframeConfig`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional

import numpy as np

from ..config import KeyframeConfig
from ..errors import ConfigError
from .base import (
    MOTION_BACKENDS,
    SELECTORS,
    SEMANTIC_BACKENDS,
    KeyframeScore,
    KeyframeSelector,
    MotionBackend,
    SemanticBackend,
)

NO_MOTION = "none"


class CompositeSelector(KeyframeSelector):
    """Paper II-A. Frame 0 is a keyframe; frame n becomes one when

        D(F_n, F_l) = lambda1 * (1 - sim(F_n, F_l)) + lambda2 * motion(F_l, F_n) - threshold > 0

    against the last keyframe F_l, or when n - l >= max_interval; never when n - l < min_interval.
    ``motion`` is in percent of the frame diagonal. ``motion=None`` or ``lambda2 = 0`` gives the
    semantic-only selection of the paper's ablation (no flow is computed then). The last
    keyframe's embedding and prepared flow input are cached, so each frame costs one embedding
    and at most one flow.

    ``features`` (frame -> ``(embedding, flow_input)``, default :meth:`compute_features`) is the one
    place a frame's features come from: selectors that see the same frames may share one memoised
    callable (rate control's tracks do, :mod:`m3cvc.ratecontrol`).
    """

    def __init__(
        self,
        semantic: Optional[SemanticBackend],
        motion: Optional[MotionBackend] = None,
        lambda1: float = 1.0,
        lambda2: float = 0.0,
        threshold: float = 0.5,
        max_interval: int = 16,
        min_interval: int = 1,
    ) -> None:
        check_weights(lambda1, lambda2, threshold)
        check_intervals(max_interval, min_interval)
        self.semantic = semantic if lambda1 > 0 else None
        self.motion = motion if lambda2 > 0 else None
        if lambda1 > 0 and semantic is None:
            raise ConfigError("keyframes: lambda1 > 0 needs a semantic backend")
        self.lambda1 = float(lambda1)
        self.lambda2 = float(lambda2)
        self.threshold = float(threshold)
        self.max_interval = int(max_interval)
        self.min_interval = int(min_interval)
        self.features: Callable[[np.ndarray], tuple[Optional[np.ndarray], Any]] = self.compute_features
        self.reset()

    def reset(self) -> None:
        self._last: Optional[int] = None
        self._previous: Optional[int] = None
        self._embedding: Optional[np.ndarray] = None
        self._flow_input: Any = None
        self.last_score = None

    def _advance(self, index: int) -> None:
        if self._previous is not None and index <= self._previous:
            raise ValueError(f"frames must come in increasing order (got {index} after {self._previous})")
        self._previous = index

    def is_keyframe(self, index: int, frame: np.ndarray) -> bool:
        if self._last is None or index == 0:
            self.reset()
            self._advance(index)
            self._last = index
            self._embedding, self._flow_input = self.features(frame)
            self.last_score = KeyframeScore(index, index, None, None, None, True, "first")
            return True
        self._advance(index)
        gap = index - self._last
        if gap < self.min_interval:
            self.last_score = KeyframeScore(index, self._last, None, None, None, False, "min_interval")
            return False
        embedding, flow_input = self.features(frame)
        similarity = self._similarity(embedding)
        if gap >= self.max_interval:
            # forced: the scores cannot change the decision, so skip the (costly) flow
            score = KeyframeScore(index, self._last, similarity, None, None, True, "max_interval")
        else:
            motion = self.motion.magnitude(self._flow_input, flow_input) if self.motion is not None else None
            distance = (
                self.lambda1 * (1.0 - similarity if similarity is not None else 0.0)
                + self.lambda2 * (motion if motion is not None else 0.0)
                - self.threshold
            )
            semantic_term = self.lambda1 * (1.0 - similarity) if similarity is not None else 0.0
            motion_term = self.lambda2 * motion if motion is not None else 0.0
            trigger = "motion" if motion_term > semantic_term else "semantic"
            score = KeyframeScore(index, self._last, similarity, motion, distance, distance > 0, "score", trigger)
        self.last_score = score
        if score.keyframe:
            self._last, self._embedding, self._flow_input = index, embedding, flow_input
        return score.keyframe

    def _similarity(self, embedding: Optional[np.ndarray]) -> Optional[float]:
        if self.semantic is None or embedding is None or self._embedding is None:
            return None
        return self.semantic.similarity(self._embedding, embedding)

    def compute_features(self, frame: np.ndarray) -> tuple[Optional[np.ndarray], Any]:
        """The frame's semantic embedding and prepared flow input (None where unused)."""
        embedding = self.semantic.embed(frame) if self.semantic is not None else None
        flow_input = self.motion.prepare(frame) if self.motion is not None else None
        return embedding, flow_input


class FixedSelector(KeyframeSelector):
    """A keyframe every ``interval`` frames (0, interval, 2*interval, ...): the paper's baseline."""

    def __init__(self, interval: int = 16) -> None:
        from ..bitstream import MAX_CLIP

        if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= MAX_CLIP:
            raise ConfigError(f"keyframes.interval must be an integer in 1..{MAX_CLIP}, got {interval!r}")
        self.interval = interval
        self.reset()

    def reset(self) -> None:
        self.last_score = None

    def is_keyframe(self, index: int, frame: np.ndarray) -> bool:
        keyframe = index % self.interval == 0
        self.last_score = KeyframeScore(index, index - index % self.interval, None, None, None, keyframe, "fixed")
        return keyframe


# --------------------------------------------------------------------------------------------
# validation and construction from the config
def check_weights(lambda1: float, lambda2: float, threshold: float) -> None:
    for name, value in (("lambda1", lambda1), ("lambda2", lambda2), ("threshold", threshold)):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"keyframes.{name} must be a finite number >= 0, got {value!r}")
    if lambda1 == 0 and lambda2 == 0:
        raise ConfigError(
            "keyframes: lambda1 and lambda2 are both 0, so only max_interval would place "
            "keyframes; use selector: fixed instead"
        )


def check_intervals(max_interval: int, min_interval: int) -> None:
    from ..bitstream import MAX_CLIP

    if not 1 <= max_interval <= MAX_CLIP:
        raise ConfigError(f"keyframes.max_interval must be in 1..{MAX_CLIP} (frames per clip), got {max_interval}")
    if min_interval < 1:
        raise ConfigError(f"keyframes.min_interval must be >= 1, got {min_interval}")
    if min_interval > max_interval:
        raise ConfigError(
            f"keyframes.min_interval ({min_interval}) must not exceed max_interval ({max_interval})"
        )


def _check_name(registry_names: list[str], name: str, key: str) -> None:
    if name not in registry_names:
        raise ConfigError(f"keyframes.{key}: unknown backend {name!r}; choose one of: {', '.join(registry_names)}")


def check_config(cfg: KeyframeConfig) -> None:
    """Validate a keyframe config without building (or importing) any backend."""
    _check_name(SELECTORS.names(), cfg.selector, "selector")
    if cfg.selector == "fixed":
        if cfg.interval < 1:
            raise ConfigError(f"keyframes.interval must be >= 1, got {cfg.interval}")
        return
    _check_name(SEMANTIC_BACKENDS.names(), cfg.semantic, "semantic")
    _check_name(MOTION_BACKENDS.names(), cfg.motion, "motion")
    lambda2 = 0.0 if cfg.motion == NO_MOTION else cfg.lambda2
    check_weights(cfg.lambda1, lambda2, cfg.threshold)
    check_intervals(cfg.max_interval, cfg.min_interval)


def _create(registry: Any, name: str, cfg: KeyframeConfig) -> Any:
    """Build backend ``name`` with its options section of the config (the field named ``name``)."""
    options = getattr(cfg, name, None)
    kwargs = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else {}
    return registry.create(name, **kwargs)


def build_selector(cfg: KeyframeConfig) -> KeyframeSelector:
    """The selector described by ``cfg`` (backends built, model weights loaded)."""
    check_config(cfg)
    if cfg.selector == "fixed":
        return SELECTORS.create("fixed", interval=cfg.interval)
    use_motion = cfg.motion != NO_MOTION and cfg.lambda2 > 0
    semantic = _create(SEMANTIC_BACKENDS, cfg.semantic, cfg) if cfg.lambda1 > 0 else None
    motion = _create(MOTION_BACKENDS, cfg.motion, cfg) if use_motion else None
    return SELECTORS.create(
        cfg.selector,
        semantic=semantic,
        motion=motion,
        lambda1=cfg.lambda1,
        lambda2=cfg.lambda2 if use_motion else 0.0,
        threshold=cfg.threshold,
        max_interval=cfg.max_interval,
        min_interval=cfg.min_interval,
    )
