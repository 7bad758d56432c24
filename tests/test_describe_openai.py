"""The ``openai`` describer against a real HTTP server on 127.0.0.1 speaking /v1/chat/completions."""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import numpy as np
import pytest
from describe_helpers import fake_vlm_server

from m3cvc.config import DescribeConfig, OpenAIOptions
from m3cvc.describe import build_describer
from m3cvc.errors import BackendError

FAST = OpenAIOptions(base_url="http://127.0.0.1:9/v1", model="test-vlm", timeout=5.0, retries=2, backoff=0.01)


@pytest.fixture()
def server():
    with fake_vlm_server((48, 32)) as vlm:
        yield vlm


def _describer(url: str, **options):
    cfg = DescribeConfig(backend="openai", clip_frames=3, max_new_tokens=40, max_summary_tokens=30,
                         openai=replace(FAST, base_url=url, **options))
    return build_describer(cfg)


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in range(n)]


def test_dialogue_turns_reach_the_server_with_data_url_images(server):
    frames = _frames(6)
    describer = _describer(server.url)
    d0 = describer.describe_keyframe(0, frames[0], None)
    c0 = describer.describe_clip(0, frames[:5], d0)
    d1 = describer.describe_keyframe(1, frames[5], frames[0])
    reqs = server.requests
    assert len(reqs) == 3 + 2 + 4  # first keyframe has no comparison turn
    assert all(r["model"] == "test-vlm" and r["temperature"] == 0 and not r["stream"] for r in reqs)
    # keyframe 0: objects (1 image), details, summary; the history grows by two messages per turn
    assert [len(r["messages"]) for r in reqs[:3]] == [1, 3, 5]
    assert [server.check_images(r) for r in reqs[:3]] == [1, 1, 1]
    assert reqs[2]["max_tokens"] == 30 and reqs[0]["max_tokens"] == 40
    assert d0 == "answer to Summarize #2"
    # clip: 3 sampled frames and D^F in the motion prompt, then the summary
    motion = reqs[3]["messages"][-1]["content"]
    assert sum(p["type"] == "image_url" for p in motion) == 3
    assert d0 in " ".join(p.get("text", "") for p in motion)
    assert c0 == "answer to Summarize #4"
    # keyframe 1: the comparison turn carries the previous and the current keyframe
    compare = reqs[6]["messages"][-1]["content"]
    assert sum(p["type"] == "image_url" for p in compare) == 2
    assert reqs[6]["messages"][1] == {"role": "assistant", "content": "answer to objects #5"}
    assert d1 == "answer to Summarize #8"
    t = describer.transcript()
    assert [turn["name"] for turn in t["keyframes"][1]["turns"]] == ["objects", "compare", "details", "summary"]
    assert [turn["name"] for turn in t["clips"][0]["turns"]] == ["motion", "summary"]
    assert t["clips"][0]["turns"][0]["images"] == 3 and t["keyframes"][1]["turns"][1]["images"] == 2
    assert all(turn["seconds"] >= 0 for turn in t["keyframes"][0]["turns"])
    assert t["descriptions"] == {"keyframes": [d0, d1], "clips": [c0]}


def test_single_strategy_sends_one_prompt(server):
    cfg = DescribeConfig(backend="openai", strategy="single", openai=replace(FAST, base_url=server.url))
    describer = build_describer(cfg)
    describer.describe_keyframe(0, _frames(1)[0], None)
    assert len(server.requests) == 1 and len(server.requests[0]["messages"]) == 1


def test_api_key_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("M3CVC_TEST_KEY", "sk-test")
    _describer(server.url, api_key_env="M3CVC_TEST_KEY").describe_keyframe(0, _frames(1)[0], None)
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_retries_after_server_errors(server):
    server.script = {0: (503, 0.0), 1: (500, 0.0)}
    _describer(server.url).describe_keyframe(0, _frames(1)[0], None)
    assert len(server.requests) == 2 + 3  # two failures retried, then the three turns


def test_client_errors_are_not_retried(server):
    server.script = {0: (400, 0.0)}
    with pytest.raises(BackendError, match="HTTP 400: scripted failure 400"):
        _describer(server.url).describe_keyframe(0, _frames(1)[0], None)
    assert len(server.requests) == 1


def test_timeout_raises_backend_error(server):
    server.script = {i: (200, 1.0) for i in range(3)}
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"failed after 2 attempt\(s\): no answer within 0.2 s"):
        _describer(server.url, timeout=0.2, retries=1).describe_keyframe(0, _frames(1)[0], None)
    assert time.perf_counter() - start < 3.0


def test_server_down_is_a_clear_error():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendError, match=r"failed after 3 attempt\(s\): cannot connect .*is it running"):
        _describer(f"http://127.0.0.1:{port}/v1").describe_keyframe(0, _frames(1)[0], None)


def test_base_url_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("M3CVC_OPENAI_BASE_URL", server.url)
    _describer("http://127.0.0.1:9/v1").describe_keyframe(0, _frames(1)[0], None)
    assert len(server.requests) == 3
