"""The codec interface of the evaluation harness, and how ``--codecs`` names map to codecs.

Every codec, m3cvc itself included, is an :class:`EvalCodec`: it has named rate points and turns the
preprocessed RGB frames of a :class:`Clip` into real bytes plus decoded RGB frames. The runner measures
everything else (bpp from the bytes, metrics on the decoded frames) the same way for every codec.

Codec names: ``x264``, ``x265``, ``vvc`` (ffmpeg anchors), ``m3cvc:lite``, ``m3cvc:full`` (a profile)
or ``m3cvc:PATH.yaml`` (a config file).
"""

from __future__ import annotations

import hashlib
import math
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import ConfigError
from ..registry import Registry


@dataclass(frozen=True)
class RatePoint:
    """One operating point of a codec: a label (``qp43``, ``q20``) and the settings it changes."""

    label: str
    params: dict[str, Any]


@dataclass
class Clip:
    """The preprocessed frames of one sequence, shared by every codec, plus a scratch folder."""

    name: str
    frames: list[np.ndarray]
    fps: Fraction
    workdir: Path

    @property
    def width(self) -> int:
        return int(self.frames[0].shape[1])

    @property
    def height(self) -> int:
        return int(self.frames[0].shape[0])

    @property
    def pixels(self) -> int:
        """Pixels in the whole clip (frames x width x height), the bpp denominator."""
        return len(self.frames) * self.width * self.height


@dataclass
class CodedVideo:
    """What a codec made of a clip at one rate point."""

    nbytes: int
    frames: list[np.ndarray]
    encode_s: float
    decode_s: float
    info: dict[str, Any] = field(default_factory=dict)


class EvalCodec(ABC):
    """A codec under evaluation. Subclasses set ``name`` and implement the three methods."""

    name: str = ""

    @abstractmethod
    def rate_points(self) -> list[RatePoint]:
        """The operating points, from the lowest rate to the highest."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """``{"description": str, "versions": {...}, "settings": {...}}`` for the results file."""

    @abstractmethod
    def run(self, clip: Clip, point: RatePoint) -> CodedVideo:
        """Encode ``clip`` at ``point`` into real bytes and decode them back."""

    def settings_key(self) -> str:
        """A short hash of the settings: results made with other settings are not resumed."""
        blob = json.dumps(self.describe().get("settings", {}), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


CODECS: Registry[EvalCodec] = Registry("eval codec")
CODECS.register("x264", "m3cvc.eval.anchors:X264")
CODECS.register("x265", "m3cvc.eval.anchors:X265")
CODECS.register("vvc", "m3cvc.eval.anchors:VVC")
CODECS.register("m3cvc", "m3cvc.eval.m3cvc_codec:M3cvcCodec")


def parse_values(text: str) -> list[float]:
    items = text.split(",")
    try:
        values = [float(v) for v in items]
    except ValueError:
        raise ConfigError(f"rate points must be comma-separated numbers, got {text!r}") from None
    if not values or any(not math.isfinite(v) for v in values):
        raise ConfigError(f"rate points must be finite numbers, got {text!r}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ConfigError(f"rate point {repeated[0]:g} is given twice in {text!r} (each rate point once)")
    return values


def build_codec(spec: str, points: Optional[Sequence[float]] = None, **kwargs: Any) -> EvalCodec:
    """A codec from its ``--codecs`` name; ``points`` overrides its default rate points and ``kwargs``
    go to its constructor (``preset`` for the anchors, ``sweep`` / ``overrides`` for m3cvc)."""
    base, _, arg = spec.partition(":")
    if base == "m3cvc":
        return CODECS.create("m3cvc", arg or "lite", points=points, **kwargs)
    if arg:
        raise ConfigError(f"codec {spec!r}: only m3cvc takes an argument (m3cvc:lite, m3cvc:full, m3cvc:FILE.yaml)")
    return CODECS.create(base, points=points, **kwargs)


def work_name(name: str) -> str:
    """The folder of a sequence under ``_work/``: its slug, plus a hash of the name where the slug
    changed it (so ``a b`` and ``a-b`` do not share a folder)."""
    s = slug(name)
    return s if s == name else f"{s}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def slug(name: str) -> str:
    """A file-name-safe form of a codec name (``m3cvc:lite`` -> ``m3cvc-lite``)."""
    out = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return out.strip("-") or "codec"
