"""Dialogue logic independent of the model: prompts files, turns, sampling, cleaning, config checks."""

from __future__ import annotations

import numpy as np
import pytest

from m3cvc.config import DescribeConfig
from m3cvc.describe import DESCRIBERS, build_describer
from m3cvc.describe.dialogue import (
    ChatBackend,
    DialogueDescriber,
    Image,
    Prompts,
    Video,
    clean_description,
    sample_frames,
)
from m3cvc.errors import BackendError, ConfigError


class Recorder(ChatBackend):
    """Answers every turn with the turn's number and keeps every request it saw."""

    name = "recorder"
    model = "none"

    def __init__(self) -> None:
        self.calls: list[tuple[list, int]] = []

    def chat(self, messages, max_new_tokens):
        self.calls.append((list(messages), max_new_tokens))
        return f" turn {len(self.calls)}\n- with a list item "


def _frames(n):
    return [np.full((16, 24, 3), i * 10, np.uint8) for i in range(n)]


def test_shipped_prompts_are_complete():
    p = Prompts.load()
    assert "{max_words}" in p.keyframe.summary and "{keyframe_text}" in p.clip.motion
    assert p.system == ""


def test_user_prompts_override_a_subset(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("keyframe:\n  summary: 'Describe it in {max_words} words, focusing on faces.'\n")
    p = Prompts.load(f)
    assert p.keyframe.summary.startswith("Describe it") and p.keyframe.objects == Prompts.load().keyframe.objects


@pytest.mark.parametrize(
    "text, match",
    [
        ("keyframe:\n  sumary: x\n", "unknown config key 'keyframe.sumary'"),
        ("keyframe:\n  summary: 'use {colour}'\n", "bad placeholder"),
        ("keyframe:\n  summary: ''\n", "is empty"),
        ("keyframe: [1, 2\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_prompts_files_are_config_errors(tmp_path, text, match):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        Prompts.load(f)


def test_missing_prompts_file():
    with pytest.raises(ConfigError, match="cannot read prompts"):
        Prompts.load("/nonexistent/prompts.yaml")


def test_keyframe_and_clip_dialogues_follow_the_paper():
    rec = Recorder()
    d = DialogueDescriber(rec, DescribeConfig(max_new_tokens=50, max_summary_tokens=20, clip_frames=4))
    frames = _frames(10)
    t0 = d.describe_keyframe(0, frames[0], None)
    assert len(rec.calls) == 3  # objects, details, summary (no previous keyframe)
    assert t0 == "turn 3 with a list item"  # cleaned: one paragraph, no list marker
    c0 = d.describe_clip(0, frames[:9], t0)
    motion = rec.calls[3][0][-1].content
    assert isinstance(motion[0], Video) and len(motion[0].frames) == 4
    assert [int(f[0, 0, 0]) for f in motion[0].frames] == [0, 30, 50, 80]  # evenly spread, ends included
    assert t0 in motion[1]
    assert c0 == "turn 5 with a list item"
    d.describe_keyframe(1, frames[9], frames[0])
    messages, budget = rec.calls[6]  # compare turn: previous and current keyframe
    assert [type(p) for p in messages[-1].content] == [Image, Image, str]
    assert int(messages[-1].content[0].pixels[0, 0, 0]) == 0 and int(messages[-1].content[1].pixels[0, 0, 0]) == 90
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert budget == 50 and rec.calls[-1][1] == 20  # summaries get the summary budget
    names = [[t.name for t in e.turns] for e in d.exchanges]
    assert names == [["objects", "details", "summary"], ["motion", "summary"],
                     ["objects", "compare", "details", "summary"]]


def test_single_strategy_and_system_prompt(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("system: 'You describe videos for a codec.'\n")
    rec = Recorder()
    d = DialogueDescriber(rec, DescribeConfig(strategy="single", prompts=str(f)))
    d.describe_keyframe(0, _frames(1)[0], None)
    d.describe_clip(0, _frames(3), "a text")
    assert len(rec.calls) == 2
    assert rec.calls[0][0][0].role == "system" and rec.calls[0][0][0].text == "You describe videos for a codec."
    assert [t.name for e in d.exchanges for t in e.turns] == ["single", "single"]


@pytest.mark.parametrize("kw", [dict(strategy="chain"), dict(max_new_tokens=0), dict(clip_frames=0)])
def test_bad_describe_config(kw):
    with pytest.raises(ConfigError):
        DialogueDescriber(Recorder(), DescribeConfig(**kw))


def test_sample_frames_and_clean_description():
    f = _frames(5)
    assert len(sample_frames(f, 8)) == 5 and len(sample_frames(f, 1)) == 1 and sample_frames([], 4) == []
    assert clean_description("1. A dog.\n2. **A cat** runs.") == "A dog. A cat runs."
    long = "The first sentence is here. The second one is longer and gets cut."
    assert clean_description(long, max_chars=40) == "The first sentence is here."
    assert clean_description("no sentence end at all in this text", max_chars=12) == "no sentence"


def test_backends_are_registered_lazily():
    assert {"none", "manual", "qwen-vl", "openai"} <= set(DESCRIBERS.names())
    with pytest.raises(BackendError, match="unknown describer backend 'gpt'"):
        build_describer(DescribeConfig(backend="gpt"))
