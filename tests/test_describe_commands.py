"""``m3cvc describe`` (against a local OpenAI-compatible server), ``encode --descriptions transcript``
and ``m3cvc edit`` (text units replaced, every other byte kept)."""

from __future__ import annotations

import json

import pytest
from describe_helpers import fake_vlm_server

from m3cvc.bitstream import UnitType, parse_units, read_stream
from m3cvc.cli import main

SIZE = ["--size", "48x32", "--interval", "8"]


@pytest.fixture()
def vlm(monkeypatch):
    with fake_vlm_server((48, 32)) as server:
        monkeypatch.setenv("M3CVC_OPENAI_BASE_URL", server.url)
        yield server


def test_describe_writes_a_transcript_that_encode_accepts(small_video, tmp_path, vlm, capsys):
    out = tmp_path / "t.json"
    assert main(["describe", str(small_video), "-o", str(out), "--describer", "openai", *SIZE]) == 0
    t = json.loads(out.read_text())
    assert t["kind"] == "m3cvc-transcript" and t["backend"] == "openai" and t["strategy"] == "dialogue"
    assert t["frames"] == 20 and t["keyframe_frames"] == [0, 8, 16, 19]  # fixed interval + tail keyframe
    assert [c["start"] for c in t["clip_frames"]] == [0, 8, 16, 19]
    n = len(t["keyframe_frames"])
    assert [len(k["turns"]) for k in t["turns"]["keyframes"]] == [3] + [4] * (n - 1)
    assert [len(c["turns"]) for c in t["turns"]["clips"]] == [2] * n
    assert all({"prompt", "answer", "seconds", "images"} <= set(turn) for turn in t["turns"]["keyframes"][1]["turns"])
    assert len(vlm.requests) == 3 + 4 * (n - 1) + 2 * n
    assert t["descriptions"]["keyframes"][0] == t["turns"]["keyframes"][0]["text"]
    assert "keyframe 0:" in capsys.readouterr().err  # progress per keyframe

    m3c = tmp_path / "a.m3c"
    assert main(["encode", str(small_video), "-o", str(m3c), "-q", *SIZE, "--descriptions", str(out)]) == 0
    stream = read_stream(m3c.read_bytes())
    assert [k.index for k in stream.keyframes] == t["keyframe_frames"]
    assert list(stream.keyframe_texts) == t["descriptions"]["keyframes"]
    assert list(stream.clip_texts) == t["descriptions"]["clips"]


def test_describe_with_user_prompts_and_single_strategy(small_video, tmp_path, vlm):
    prompts = tmp_path / "p.yaml"
    prompts.write_text("single:\n  keyframe: 'Only name the colours.'\n")
    out = tmp_path / "t.json"
    args = ["describe", str(small_video), "-o", str(out), "--describer", "openai", "--strategy", "single",
            "--prompts", str(prompts), "-q", *SIZE]
    assert main(args) == 0
    first = vlm.requests[0]["messages"][0]["content"]
    assert first[-1] == {"type": "text", "text": "Only name the colours."}
    assert json.loads(out.read_text())["prompts"] == str(prompts)


def test_describe_errors_are_one_line(small_video, tmp_path, capsys, monkeypatch):
    out = tmp_path / "t.json"
    assert main(["describe", str(small_video), "-o", str(out)]) == 2  # lite default: no describer
    assert "describe needs a describer" in capsys.readouterr().err
    monkeypatch.setenv("M3CVC_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("describe:\n  openai:\n    retries: 0\n    timeout: 2.0\n")
    assert main(["describe", str(small_video), "-o", str(out), "--describer", "openai", "--config", str(cfg), *SIZE]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot connect" in err and "\n" not in err and not out.exists()


@pytest.fixture()
def encoded(small_video, tmp_path):
    src = tmp_path / "d.json"
    src.write_text(json.dumps({"keyframes": ["a red car", "a blue car"], "clips": ["it drives", "it stops"]}))
    m3c = tmp_path / "a.m3c"
    assert main(["encode", str(small_video), "-o", str(m3c), "-q", *SIZE, "--descriptions", str(src)]) == 0
    return m3c


def test_edit_replaces_only_the_texts(encoded, tmp_path, capsys):
    new = tmp_path / "new.yaml"
    new.write_text("keyframes: ['A woman in a green coat walks a dog along a river at dusk.']\nclips: ['', 'x']\n")
    out = tmp_path / "b.m3c"
    assert main(["edit", str(encoded), "--descriptions", str(new), "-o", str(out)]) == 0
    before, after = encoded.read_bytes(), out.read_bytes()
    old_s, new_s = read_stream(before), read_stream(after)
    assert new_s.keyframe_texts[0].startswith("A woman") and new_s.keyframe_texts[1] == "a blue car"
    assert new_s.clip_texts[:2] == ("", "x") and new_s.clip_texts[2:] == old_s.clip_texts[2:]
    assert new_s.header == old_s.header and new_s.keyframes == old_s.keyframes
    keep = lambda data: [data[u.offset : u.offset + u.size] for u in parse_units(data)  # noqa: E731
                         if u.type not in (UnitType.KEYFRAME_TEXTS, UnitType.CLIP_TEXTS)]
    assert keep(before) == keep(after) and before[:5] == after[:5]
    assert main(["info", str(out)]) == 0
    assert "A woman in a green coat" in capsys.readouterr().out
    # same edit, same bytes
    again = tmp_path / "c.m3c"
    assert main(["edit", str(encoded), "--descriptions", str(new), "-o", str(again), "--text-codec", "auto"]) == 0
    assert again.read_bytes() == after


def test_edit_adds_texts_to_a_textless_stream_and_taking_them_out_restores_its_bytes(small_video, tmp_path, capsys):
    """Format 4 leaves the text units out while every text is empty (the lite default); an edit that adds
    texts sets the header's flag and appends the units, one that empties them gives the original bytes."""
    plain, texted, back = tmp_path / "p.m3c", tmp_path / "t.m3c", tmp_path / "b.m3c"
    assert main(["encode", str(small_video), "-o", str(plain), "-q", *SIZE]) == 0
    types = lambda data: [u.type for u in parse_units(data)]  # noqa: E731
    assert UnitType.KEYFRAME_TEXTS not in types(plain.read_bytes())
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"keyframes": ["a red car"]}))
    assert main(["edit", str(plain), "--descriptions", str(new), "-o", str(texted)]) == 0
    stream = read_stream(texted.read_bytes())
    assert stream.keyframe_texts[0] == "a red car" and types(texted.read_bytes())[-2:] == [3, 4]
    assert stream.keyframes == read_stream(plain.read_bytes()).keyframes
    n = stream.header.num_keyframes
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"keyframes": [""] * n, "clips": [""] * n}))
    assert main(["edit", str(texted), "--descriptions", str(empty), "-o", str(back)]) == 0
    assert back.read_bytes() == plain.read_bytes()
    assert main(["info", str(back)]) == 0 and "texts      none" in capsys.readouterr().out


def test_edit_says_when_no_text_changed(encoded, tmp_path, capsys):
    """Found by a try-out: empty lists keep every text (texts past the end of a list are kept) yet the
    command said it replaced them."""
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"keyframes": [], "clips": []}))
    out = tmp_path / "same.m3c"
    assert main(["edit", str(encoded), "--descriptions", str(empty), "-o", str(out)]) == 0
    assert "no text changed" in capsys.readouterr().out and out.read_bytes() == encoded.read_bytes()
    assert main(["edit", str(encoded), "--descriptions", str(empty), "-o", str(out), "-y", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    blank = tmp_path / "blank.json"
    blank.write_text(json.dumps({"keyframes": ["", ""], "clips": ["", ""]}))
    assert main(["edit", str(encoded), "--descriptions", str(blank), "-o", str(out), "-y", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert not any(read_stream(out.read_bytes()).keyframe_texts)


def test_edit_errors(encoded, tmp_path, capsys):
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"keyframes": ["x"] * 9}))
    out = tmp_path / "b.m3c"
    assert main(["edit", str(encoded), "--descriptions", str(many), "-o", str(out)]) == 2
    assert "9 keyframe texts but the video has" in capsys.readouterr().err
    ok = tmp_path / "ok.json"
    ok.write_text("{}")
    assert main(["edit", str(encoded), "--descriptions", str(ok), "-o", str(encoded)]) == 2
    bad = tmp_path / "bad.m3c"
    bad.write_bytes(encoded.read_bytes()[:-3])
    assert main(["edit", str(bad), "--descriptions", str(ok), "-o", str(out)]) == 2
    assert main(["edit", str(encoded), "--descriptions", str(ok), "-o", str(out), "--text-codec", "zip"]) == 2
    assert "unknown text codec 'zip'" in capsys.readouterr().err
    # a crafted motion-hint unit (valid CRC, payload that is no clip motion): refused like decode refuses it,
    # not copied into a new stream
    from m3cvc.bitstream import _unit

    data = encoded.read_bytes()
    units = parse_units(data)
    motion = next(u for u in units if u.type == UnitType.CLIP_MOTION)
    crafted = tmp_path / "crafted.m3c"
    crafted.write_bytes(data[: motion.offset] + _unit(UnitType.CLIP_MOTION, b"\xff" * 3) + data[motion.offset + motion.size :])
    assert main(["decode", str(crafted), "-o", str(tmp_path / "x.y4m")]) == 2
    capsys.readouterr()
    assert main(["edit", str(crafted), "--descriptions", str(ok), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "motion" in err[0]
    assert not out.exists()


def test_encode_with_the_openai_describer_stores_the_texts(small_video, tmp_path, vlm, capsys):
    m3c = tmp_path / "a.m3c"
    assert main(["encode", str(small_video), "-o", str(m3c), "-q", *SIZE, "--describer", "openai"]) == 0
    stream = read_stream(m3c.read_bytes())
    assert stream.keyframe_texts[0] == "answer to Summarize #2" and len(stream.clip_texts) == 4
    assert main(["info", str(m3c)]) == 0
    assert "answer to Summarize #2" in capsys.readouterr().out
