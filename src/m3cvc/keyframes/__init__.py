"""Keyframe selection (paper II-A).

``build_selector(KeyframeConfig)`` gives a :class:`KeyframeSelector`: ``composite`` (semantic +
motion score against the last keyframe, bounded by ``max_interval`` / ``min_interval``) or
``fixed`` (every ``interval`` frames). Semantic backends: ``thumbnail`` (weight-free) and
``clip`` (transformers CLIPModel). Motion backends: ``dis`` (OpenCV, weight-free), ``raft``
(torchvision) and ``none``. Motion is measured in percent of the frame diagonal (see
:mod:`m3cvc.keyframes.base`). This module never imports torch: ``clip`` and ``raft`` are
imported on first use.
"""

from __future__ import annotations

from .base import (
    MOTION_BACKENDS,
    SELECTORS,
    SEMANTIC_BACKENDS,
    KeyframeScore,
    TRIGGERS,
    KeyframeSelector,
    MotionBackend,
    NoMotion,
    SemanticBackend,
    mean_flow_percent,
    working_size,
)
from .dis import DisMotion
from .selectors import CompositeSelector, FixedSelector, build_selector, check_config
from .thumbnail import ThumbnailSemantic

SEMANTIC_BACKENDS.register("thumbnail", ThumbnailSemantic)
SEMANTIC_BACKENDS.register("clip", "m3cvc.keyframes.clip:ClipSemantic")
MOTION_BACKENDS.register("dis", DisMotion)
MOTION_BACKENDS.register("raft", "m3cvc.keyframes.raft:RaftMotion")
MOTION_BACKENDS.register("none", NoMotion)
SELECTORS.register("composite", CompositeSelector)
SELECTORS.register("fixed", FixedSelector)

__all__ = [
    "MOTION_BACKENDS",
    "SELECTORS",
    "SEMANTIC_BACKENDS",
    "CompositeSelector",
    "DisMotion",
    "FixedSelector",
    "KeyframeScore",
    "TRIGGERS",
    "KeyframeSelector",
    "MotionBackend",
    "NoMotion",
    "SemanticBackend",
    "ThumbnailSemantic",
    "build_selector",
    "check_config",
    "mean_flow_percent",
    "working_size",
]
