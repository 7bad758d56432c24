"""The multi-round description dialogue (paper II-B, Fig. 2), independent of the model backend.

A :class:`ChatBackend` answers a list of chat messages (text, images, sampled video frames) with
greedy decoding. :class:`DialogueDescriber` drives it:

* keyframe F_i: turn 1 objects and background (the image); turn 2 differences from the previous
  keyframe (both images; skipped for the first keyframe); turn 3 trivial details; turn 4 a
  summary, which is D_i^F;
* clip C_i: turn 1 the primary motion (frames sampled from the clip, and D_i^F in the prompt);
  turn 2 a summary, which is D_i^C;
* strategy ``single``: one prompt and one answer each (the paper's ablation).

Every turn (prompt, answer, seconds) is kept in :attr:`DialogueDescriber.exchanges`, the
transcript that ``m3cvc describe`` writes.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..config import DescribeConfig, from_dict, read_yaml
from ..errors import ConfigError
from .base import Describer

STRATEGIES = ("dialogue", "single")


# --------------------------------------------------------------------------------------------
# messages
@dataclass(frozen=True)
class Image:
    """An RGB uint8 (H, W, 3) frame."""

    pixels: np.ndarray


@dataclass(frozen=True)
class Video:
    """Frames sampled in order from a clip (RGB uint8)."""

    frames: tuple[np.ndarray, ...]


Part = Union[str, Image, Video]


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(p for p in self.content if isinstance(p, str))


class ChatBackend(ABC):
    """A vision-language chat model. Must decode greedily (same messages -> same answer)."""

    name: str = ""
    model: str = ""

    @abstractmethod
    def chat(self, messages: Sequence[Message], max_new_tokens: int) -> str:
        """The assistant's answer to ``messages`` (the last one is from the user)."""

    def close(self) -> None:
        """Release the model / connection."""


# --------------------------------------------------------------------------------------------
# prompts
@dataclass(frozen=True)
class KeyframePrompts:
    objects: str = ""
    compare: str = ""
    details: str = ""
    summary: str = ""


@dataclass(frozen=True)
class ClipPrompts:
    motion: str = ""
    summary: str = ""


@dataclass(frozen=True)
class SinglePrompts:
    keyframe: str = ""
    clip: str = ""


@dataclass(frozen=True)
class Prompts:
    version: int = 1
    system: str = ""
    keyframe: KeyframePrompts = field(default_factory=KeyframePrompts)
    clip: ClipPrompts = field(default_factory=ClipPrompts)
    single: SinglePrompts = field(default_factory=SinglePrompts)

    PLACEHOLDERS = ("keyframe_text", "frames", "max_words")

    @classmethod
    def default(cls) -> "Prompts":
        import yaml

        text = resources.files("m3cvc.describe").joinpath("prompts.yaml").read_text(encoding="utf-8")
        return cls._from_data(yaml.safe_load(text), "the shipped prompts.yaml", cls())

    @classmethod
    def load(cls, path: Optional[Union[str, Path]] = None) -> "Prompts":
        """The shipped prompts, overridden by the YAML file at ``path`` (any subset of keys)."""
        base = cls.default()
        if path is None:
            return base
        return cls._from_data(read_yaml(path, "prompts"), f"prompts {path}", base)

    @classmethod
    def _from_data(cls, data: Any, source: str, base: "Prompts") -> "Prompts":
        try:
            prompts = from_dict(cls, {} if data is None else data, "", base)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        prompts._check(source)
        return prompts

    def _check(self, source: str) -> None:
        sample = {name: "x" for name in self.PLACEHOLDERS}
        for section in ("keyframe", "clip", "single"):
            group = getattr(self, section)
            for f in fields(group):
                template = getattr(group, f.name)
                if not template.strip():
                    raise ConfigError(f"{source}: prompt {section}.{f.name} is empty")
                try:
                    template.format(**sample)
                except (KeyError, IndexError, ValueError) as exc:
                    raise ConfigError(
                        f"{source}: prompt {section}.{f.name} has a bad placeholder ({exc}); "
                        f"use {', '.join('{' + p + '}' for p in self.PLACEHOLDERS)}"
                    ) from None


# --------------------------------------------------------------------------------------------
# transcript
@dataclass
class Turn:
    name: str  # objects | compare | details | summary | motion | single
    prompt: str
    answer: str
    seconds: float
    images: int  # images (or video frames) attached to this turn


@dataclass
class Exchange:
    """The dialogue about one keyframe or one clip, and its final description."""

    kind: str  # keyframe | clip
    index: int
    turns: list[Turn] = field(default_factory=list)
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_frames(frames: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """``count`` frames spread evenly over ``frames`` (first and last included), in order."""
    n = len(frames)
    if n <= count or count <= 0:
        return list(frames) if count > 0 else list(frames[:1])
    if count == 1:
        return [frames[0]]
    idx = np.round(np.linspace(0, n - 1, count)).astype(int)
    return [frames[i] for i in idx]


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def clean_description(text: str, max_chars: int = 0) -> str:
    """One paragraph (whitespace collapsed, list markers dropped); optionally cut at a sentence end."""
    lines = [re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", line) for line in text.splitlines()]
    text = " ".join(" ".join(lines).replace("**", "").split())
    if max_chars > 0 and len(text) > max_chars:
        head = text[:max_chars]
        ends = [m.end() for m in _SENTENCE_END.finditer(head)]
        text = head[: ends[-1]] if ends else head.rsplit(" ", 1)[0]
    return text.strip()


# --------------------------------------------------------------------------------------------
def check_config(config: DescribeConfig) -> None:
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"describe.strategy must be one of {', '.join(STRATEGIES)}, got {config.strategy!r}")
    for key in ("max_new_tokens", "max_summary_tokens", "clip_frames"):
        if getattr(config, key) < 1:
            raise ConfigError(f"describe.{key} must be >= 1")


def dialogue_describer(config: DescribeConfig, make_backend: Callable[[], ChatBackend]) -> "DialogueDescriber":
    """Check the config and the prompts first, then build the (possibly slow to load) backend."""
    check_config(config)
    prompts = Prompts.load(config.prompts)
    return DialogueDescriber(make_backend(), config, prompts)


class DialogueDescriber(Describer):
    """A :class:`Describer` that runs the paper's dialogue (or one prompt) on a chat backend."""

    def __init__(self, backend: ChatBackend, config: DescribeConfig, prompts: Optional[Prompts] = None) -> None:
        check_config(config)
        self.backend = backend
        self.config = config
        self.prompts = prompts or Prompts.load(config.prompts)
        self.exchanges: list[Exchange] = []

    # -- helpers
    def _fill(self, template: str, **values: Any) -> str:
        values.setdefault("max_words", max(8, int(self.config.max_summary_tokens * 0.7)))
        values.setdefault("frames", self.config.clip_frames)
        values.setdefault("keyframe_text", "")
        return template.format(**values)

    def _ask(self, exchange: Exchange, history: list[Message], name: str, parts: Sequence[Part], summary: bool) -> str:
        message = Message("user", tuple(parts))
        history.append(message)
        budget = self.config.max_summary_tokens if summary else self.config.max_new_tokens
        start = time.perf_counter()
        answer = self.backend.chat(list(history), budget).strip()
        seconds = time.perf_counter() - start
        history.append(Message("assistant", (answer,)))
        images = sum(1 if isinstance(p, Image) else len(p.frames) if isinstance(p, Video) else 0 for p in parts)
        exchange.turns.append(Turn(name, message.text, answer, round(seconds, 3), images))
        return answer

    def _start(self, kind: str, index: int) -> tuple[Exchange, list[Message]]:
        exchange = Exchange(kind, index)
        self.exchanges.append(exchange)
        history = [Message("system", (self.prompts.system,))] if self.prompts.system.strip() else []
        return exchange, history

    def _finish(self, exchange: Exchange, answer: str) -> str:
        exchange.text = clean_description(answer, self.config.max_chars)
        return exchange.text

    # -- Describer
    def describe_keyframe(self, index: int, frame: np.ndarray, previous: Optional[np.ndarray]) -> str:
        p = self.prompts
        exchange, history = self._start("keyframe", index)
        image = Image(np.ascontiguousarray(frame))
        if self.config.strategy == "single":
            answer = self._ask(exchange, history, "single", (image, self._fill(p.single.keyframe)), True)
            return self._finish(exchange, answer)
        self._ask(exchange, history, "objects", (image, self._fill(p.keyframe.objects)), False)
        if previous is not None:
            both = (Image(np.ascontiguousarray(previous)), image, self._fill(p.keyframe.compare))
            self._ask(exchange, history, "compare", both, False)
        self._ask(exchange, history, "details", (self._fill(p.keyframe.details),), False)
        answer = self._ask(exchange, history, "summary", (self._fill(p.keyframe.summary),), True)
        return self._finish(exchange, answer)

    def describe_clip(self, index: int, frames: Sequence[np.ndarray], keyframe_text: str) -> str:
        p = self.prompts
        exchange, history = self._start("clip", index)
        sampled = sample_frames(frames, self.config.clip_frames)
        if not sampled:
            return self._finish(exchange, "")
        video = Video(tuple(np.ascontiguousarray(f) for f in sampled))
        values = {"keyframe_text": keyframe_text, "frames": len(sampled)}
        if self.config.strategy == "single":
            answer = self._ask(exchange, history, "single", (video, self._fill(p.single.clip, **values)), True)
            return self._finish(exchange, answer)
        self._ask(exchange, history, "motion", (video, self._fill(p.clip.motion, **values)), False)
        answer = self._ask(exchange, history, "summary", (self._fill(p.clip.summary, **values),), True)
        return self._finish(exchange, answer)

    def close(self) -> None:
        self.backend.close()

    def transcript(self) -> dict[str, Any]:
        """Every exchange, and the final texts in the Descriptions layout."""
        keyframes = [e for e in self.exchanges if e.kind == "keyframe"]
        clips = [e for e in self.exchanges if e.kind == "clip"]
        return {
            "backend": self.backend.name,
            "model": self.backend.model,
            "strategy": self.config.strategy,
            "prompts": self.config.prompts or "default",
            "keyframes": [e.to_dict() for e in keyframes],
            "clips": [e.to_dict() for e in clips],
            "descriptions": {"keyframes": [e.text for e in keyframes], "clips": [e.text for e in clips]},
        }
