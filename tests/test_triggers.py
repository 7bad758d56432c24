"""What made each keyframe (issue 17): recorded in the stream, shown by info, encode --json and describe."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from conftest import synthetic_frames, write_video
from m3cvc.cli import main as cli_main
from m3cvc.config import load_config, with_overrides
from m3cvc.keyframes import TRIGGERS
from m3cvc.pipeline import Encoder

NATIVE = {"keep_size": True, "keep_fps": True}
CALIBRATED = {"lambda2": 0.028, "threshold": 0.30}  # benchmarks/calibrate_keyframes.py, 20 dB target (README)


def fast_pan(path: Path, step: int = 4, n: int = 16, width: int = 256, height: int = 160) -> Path:
    """A textured scene panning ``step`` px per frame: no cut, the content slides out of view."""
    rng = np.random.default_rng(1)
    coarse = (rng.random((height // 8 + 2, (width + step * n) // 8 + 2, 3)) * 255).astype(np.uint8)
    big = cv2.resize(coarse, (coarse.shape[1] * 8, coarse.shape[0] * 8), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), 2)
    return write_video(path, [np.ascontiguousarray(big[:height, step * i : step * i + width]) for i in range(n)])


def test_a_fast_pan_gets_a_keyframe_from_the_motion_term(tmp_path):
    pan = fast_pan(tmp_path / "pan.y4m")
    cfg = with_overrides(load_config(profile="lite"), preprocess=NATIVE, keyframes=CALIBRATED)
    stream = Encoder(cfg).encode(pan).stream
    triggers = [TRIGGERS[k.trigger] for k in stream.keyframes]
    assert triggers[0] == "interval" and "motion" in triggers, triggers
    # the lite defaults (threshold 0.47: predicted midpoint PSNR below 15 dB) leave this pan to max_interval
    default = Encoder(with_overrides(load_config(profile="lite"), preprocess=NATIVE)).encode(pan).stream
    assert "motion" not in [TRIGGERS[k.trigger] for k in default.keyframes]


def test_triggers_in_info_encode_json_and_describe(tmp_path, capsys):
    clip = write_video(tmp_path / "cut.y4m", synthetic_frames(24, cut_at=13))
    out = tmp_path / "c.m3c"
    assert cli_main(["encode", str(clip), "-o", str(out), "--keep-size", "--keep-fps", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert cli_main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["keyframe_triggers"] == summary["keyframe_triggers"]
    assert len(info["keyframe_triggers"]) == len(info["keyframes"]) and info["keyframe_triggers"][0] == "interval"
    assert info["keyframe_triggers"][info["keyframes"].index(13)] == "semantic"  # the scene cut
    assert sum(info["trigger_counts"].values()) == len(info["keyframes"]) and info["longest_clip"] == 16
    assert cli_main(["info", str(out)]) == 0
    assert "triggers   interval" in capsys.readouterr().out
    transcript = tmp_path / "t.json"
    texts = tmp_path / "d.json"
    texts.write_text(json.dumps({"keyframes": ["a"], "clips": ["b"]}))
    assert cli_main(["describe", str(clip), "-o", str(transcript), "--keep-size", "--keep-fps", "--describer", "manual",
                     "--descriptions", str(texts), "-q"]) == 0  # fmt: skip
    described = json.loads(transcript.read_text())
    assert described["keyframe_frames"] == info["keyframes"] and described["keyframe_triggers"] == info["keyframe_triggers"]
