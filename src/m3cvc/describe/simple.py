"""Weight-free describers: ``none`` (empty texts) and ``manual`` (texts a person wrote)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import InputError
from .base import Describer


@dataclass(frozen=True)
class Descriptions:
    """Texts applied in order to the selected keyframes and clips (a file may also be a transcript
    written by ``m3cvc describe``: its ``descriptions`` are used)."""

    keyframes: tuple[str, ...] = ()
    clips: tuple[str, ...] = ()

    @classmethod
    def from_obj(cls, obj: object, source: str = "descriptions") -> "Descriptions":
        if not isinstance(obj, dict):
            raise InputError(f"{source}: expected an object {{\"keyframes\": [...], \"clips\": [...]}}")
        if isinstance(obj.get("descriptions"), dict) and obj.get("kind") == "m3cvc-transcript":
            obj = obj["descriptions"]  # a transcript written by ``m3cvc describe``
        unknown = set(obj) - {"keyframes", "clips"}
        if unknown:
            raise InputError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; use keyframes/clips")
        lists = {}
        for key in ("keyframes", "clips"):
            value = obj.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{source}: {key!r} must be a list of strings")
            lists[key] = tuple(value)
        return cls(**lists)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Descriptions":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read descriptions {p}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise InputError(f"descriptions {p} is not UTF-8 text") from None
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                obj = yaml.safe_load(text)
            else:
                obj = json.loads(text)
        except ValueError as exc:  # json.JSONDecodeError and yaml errors
            raise InputError(f"descriptions {p} is not valid JSON: {exc}") from None
        except Exception as exc:  # yaml.YAMLError
            raise InputError(f"descriptions {p} cannot be parsed: {str(exc).splitlines()[0]}") from None
        return cls.from_obj(obj, str(p))

    def check_counts(self, keyframes: int, clips: int) -> None:
        """More entries than keyframes / clips is an error (fewer: the rest stay empty)."""
        if len(self.keyframes) > keyframes:
            raise InputError(
                f"descriptions give {len(self.keyframes)} keyframe texts but the video has {keyframes} keyframes"
            )
        if len(self.clips) > clips:
            raise InputError(f"descriptions give {len(self.clips)} clip texts but the video has {clips} clips")


class NoneDescriber(Describer):
    """Empty texts (the lite profile's default)."""

    def describe_keyframe(self, index: int, frame: np.ndarray, previous: Optional[np.ndarray]) -> str:
        return ""

    def describe_clip(self, index: int, frames: Sequence[np.ndarray], keyframe_text: str) -> str:
        return ""


class ManualDescriber(Describer):
    """Texts from a JSON/YAML file; entries past the end of a list are empty."""

    def __init__(self, descriptions: Descriptions) -> None:
        self.descriptions = descriptions

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "ManualDescriber":
        return cls(Descriptions.load(path))

    def describe_keyframe(self, index: int, frame: np.ndarray, previous: Optional[np.ndarray]) -> str:
        d = self.descriptions.keyframes
        return d[index] if index < len(d) else ""

    def describe_clip(self, index: int, frames: Sequence[np.ndarray], keyframe_text: str) -> str:
        d = self.descriptions.clips
        return d[index] if index < len(d) else ""
