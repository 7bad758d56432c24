"""End-to-end through the CLI functions a user hits (lite profile)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from m3cvc.cli import main
from m3cvc.config import PreprocessConfig
from m3cvc.video import read_frames

from conftest import synthetic_frames, write_video

EXACT = PreprocessConfig(keep_size=True, keep_fps=True)
SMALL = ["--size", "96x64"]


def run_ok(*argv: str) -> None:
    assert main(list(argv)) == 0


def info_json(path: Path, capsys) -> dict:
    capsys.readouterr()
    run_ok("info", str(path), "--json")
    return json.loads(capsys.readouterr().out)


def test_encode_decode_info_round_trip(small_video, tmp_path, capsys):
    m3c, out, ref = tmp_path / "c.m3c", tmp_path / "out.y4m", tmp_path / "ref.y4m"
    run_ok("preprocess", str(small_video), "-o", str(ref), *SMALL, "-q")
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "-q")
    run_ok("decode", str(m3c), "-o", str(out), "-q")
    info = info_json(m3c, capsys)
    ref_frames, dec_frames = read_frames(ref, EXACT), read_frames(out, EXACT)
    assert len(dec_frames) == len(ref_frames) == info["frames"] == 20
    assert dec_frames[0].shape == ref_frames[0].shape == (64, 96, 3)
    assert (info["width"], info["height"], info["fps"]) == (96, 64, 8.0)
    assert info["keyframes"][0] == 0 and info["keyframes"] == sorted(set(info["keyframes"]))
    assert info["bytes_total"] == m3c.stat().st_size == sum(info["sections"].values())
    assert info["bpp"] == pytest.approx(8 * m3c.stat().st_size / (20 * 96 * 64))
    assert set(info["sections"]) == {"header", "keyframe_images", "clip_motion", "keyframe_texts", "clip_texts"}
    assert info["sections"]["clip_motion"] > 0 and info["reconstructor"]["params"]["motion_hints"] is True
    assert info["motion_hints"] is True
    capsys.readouterr()
    run_ok("info", str(m3c))
    text = capsys.readouterr().out
    assert "clip_motion" in text and f"motion hints, {info['sections']['clip_motion']} bytes" in text
    # decoded keyframes are close to the references (AVIF at the default quality)
    for k in info["keyframes"]:
        mse = np.mean((dec_frames[k].astype(float) - ref_frames[k]) ** 2)
        assert 10 * np.log10(255**2 / mse) > 20


def test_encoding_is_deterministic(small_video, tmp_path):
    a, b = tmp_path / "a.m3c", tmp_path / "b.m3c"
    run_ok("encode", str(small_video), "-o", str(a), *SMALL, "-q")
    run_ok("encode", str(small_video), "-o", str(b), *SMALL, "-q")
    assert a.read_bytes() == b.read_bytes()


def test_descriptions_are_stored(small_video, tmp_path, capsys):
    desc = tmp_path / "d.json"
    desc.write_text(json.dumps({"keyframes": ["a red and blue mosaic"], "clips": ["the camera pans right"]}))
    m3c = tmp_path / "c.m3c"
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "--descriptions", str(desc), "-q")
    info = info_json(m3c, capsys)
    assert info["keyframe_texts"][0] == "a red and blue mosaic"
    assert info["clip_texts"][0] == "the camera pans right"
    assert all(t == "" for t in info["keyframe_texts"][1:])
    too_many = tmp_path / "many.json"
    too_many.write_text(json.dumps({"keyframes": ["x"] * 50}))
    assert main(["encode", str(small_video), "-o", str(tmp_path / "z.m3c"), *SMALL, "--descriptions", str(too_many), "-q"]) == 2
    assert "keyframe texts" in capsys.readouterr().err
    assert not (tmp_path / "z.m3c").exists()


@pytest.mark.parametrize("mode", ["interpolation", "prediction"])
def test_modes_and_fixed_selector(small_video, tmp_path, capsys, mode):
    m3c, out = tmp_path / "c.m3c", tmp_path / "o.y4m"
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "--mode", mode, "--interval", "6", "-q")
    info = info_json(m3c, capsys)
    expected = [0, 6, 12, 18] + ([19] if mode == "interpolation" else [])
    assert info["keyframes"] == expected
    assert info["reconstructor"]["params"]["mode"] == mode
    run_ok("decode", str(m3c), "-o", str(out), "-q")
    frames = read_frames(out, EXACT)
    assert len(frames) == 20
    if mode == "prediction":  # the keyframe follows the pan (motion hints; 2 px per frame) ...
        shifted = np.abs(frames[1][:, :-4].astype(int) - frames[0][:, 2:-2])
        assert shifted.mean() < 2.0 and not np.array_equal(frames[1], frames[0])
        cfg = tmp_path / "nohints.yaml"
        cfg.write_text("reconstruct:\n  flow:\n    motion_hints: false\n")
        run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "--mode", mode, "--interval", "6", "-q",
               "--overwrite", "--config", str(cfg))
        run_ok("decode", str(m3c), "-o", str(out), "-q", "--overwrite")
        frames = read_frames(out, EXACT)  # ... or, without hints, is held through its clip
        np.testing.assert_array_equal(frames[1], frames[0])


def test_one_frame_video(tmp_path, capsys):
    src = write_video(tmp_path / "one.y4m", synthetic_frames(1))
    m3c, out = tmp_path / "one.m3c", tmp_path / "one_out.y4m"
    run_ok("encode", str(src), "-o", str(m3c), *SMALL, "-q")
    assert info_json(m3c, capsys)["keyframes"] == [0]
    run_ok("decode", str(m3c), "-o", str(out), "-q")
    assert len(read_frames(out, EXACT)) == 1


def test_odd_native_size_keep_size(tmp_path, capsys):
    src = write_video(tmp_path / "odd.y4m", synthetic_frames(6, width=177, height=143))
    m3c, out, mp4 = tmp_path / "odd.m3c", tmp_path / "odd_out.y4m", tmp_path / "odd_out.mp4"
    run_ok("encode", str(src), "-o", str(m3c), "--keep-size", "-q")
    info = info_json(m3c, capsys)
    assert (info["width"], info["height"], info["frames"]) == (177, 143, 6)
    run_ok("decode", str(m3c), "-o", str(out), "-q")
    run_ok("decode", str(m3c), "-o", str(mp4), "-q")
    assert read_frames(out, EXACT)[0].shape == (143, 177, 3)
    assert len(read_frames(mp4, EXACT)) == 6


def test_scene_cuts_only(tmp_path, capsys):
    rng = np.random.default_rng(3)
    frames = [np.full((64, 96, 3), rng.integers(0, 256, 3), np.uint8) for _ in range(8)]
    src = write_video(tmp_path / "cuts.y4m", frames)
    m3c, out = tmp_path / "cuts.m3c", tmp_path / "cuts.y4m.out.y4m"
    run_ok("encode", str(src), "-o", str(m3c), *SMALL, "-q")
    run_ok("decode", str(m3c), "-o", str(out), "-q")
    assert len(read_frames(out, EXACT)) == 8
    assert info_json(m3c, capsys)["keyframes"][0] == 0


def test_long_input_keeps_streaming_and_max_interval(tmp_path, capsys):
    src = write_video(tmp_path / "pan.y4m", synthetic_frames(40))
    m3c = tmp_path / "pan.m3c"
    run_ok("encode", str(src), "-o", str(m3c), *SMALL, "-q")
    kfs = info_json(m3c, capsys)["keyframes"]
    assert all(b - a <= 16 for a, b in zip(kfs, kfs[1:] + [40]))


def test_png_and_mp4_outputs(small_video, tmp_path):
    m3c = tmp_path / "c.m3c"
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "-q")
    (tmp_path / "png").mkdir()
    run_ok("decode", str(m3c), "-o", str(tmp_path / "png" / "f_%04d.png"), "-q")
    assert len(list((tmp_path / "png").glob("f_*.png"))) == 20
    run_ok("decode", str(m3c), "-o", str(tmp_path / "o.mp4"), "-q")
    assert len(read_frames(tmp_path / "o.mp4", EXACT)) == 20


# ---------------------------------------------------------------------------- bad input
def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("content", [b"", b"hello, I am a text file\n" * 20])
def test_bad_video_inputs(tmp_path, capsys, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    assert main(["encode", str(bad), "-o", str(tmp_path / "x.m3c")]) == 2
    assert "error" in _err(capsys)
    assert not (tmp_path / "x.m3c").exists()
    assert bad.read_bytes() == content


def test_output_equal_to_input_is_refused(small_video, capsys):
    before = small_video.read_bytes()
    assert main(["encode", str(small_video), "-o", str(small_video), "-y"]) == 2
    assert "input" in _err(capsys)
    assert small_video.read_bytes() == before


def test_unwritable_output(small_video, tmp_path, capsys):
    assert main(["encode", str(small_video), "-o", str(tmp_path / "missing" / "x.m3c")]) == 2
    assert "does not exist" in _err(capsys)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file instead
            target = str(small_video) + "/x.m3c"
        else:
            target = str(locked / "x.m3c")
        assert main(["encode", str(small_video), "-o", target]) == 2
        _err(capsys)
    finally:
        locked.chmod(0o700)


def test_outputs_that_cannot_be_files_get_one_line_and_stay_as_they_are(small_video, tmp_path, capsys):
    """A FIFO (like /dev/null, a non-regular file) is never replaced by the atomic rename; a name too long
    for the file system, an existing file as the eval folder: one line, exit 2, no temp file named."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["encode", str(small_video), "-o", str(fifo), "-y", "--no-config-out", *SMALL, "-q"]) == 2
    assert "not a regular file" in _err(capsys)
    assert not fifo.is_file() and fifo.exists()  # still the FIFO
    legal = tmp_path / ("y" * 251 + ".m3c")  # 255 characters: legal, also with the temporary file's affixes
    assert main(["encode", str(small_video), "-o", str(legal), "--no-config-out", *SMALL, "-q"]) == 0
    assert legal.read_bytes()[:4] == b"M3CV"
    long_name = tmp_path / ("x" * 300 + ".m3c")
    assert main(["encode", str(small_video), "-o", str(long_name), "--no-config-out", *SMALL, "-q"]) == 2
    err = _err(capsys)
    assert "cannot write" in err and ".part" not in err
    a_file = tmp_path / "results"
    a_file.write_text("keep")
    assert main(["eval", "--dataset", str(small_video.parent), "--out", str(a_file), "--codecs", "x265", "-q"]) == 2
    assert "is a file" in _err(capsys) and a_file.read_text() == "keep"
    assert not list(tmp_path.glob(".*.part*"))


def test_inputs_that_are_not_videos_or_conflicting_options_are_refused(small_video, tmp_path, capsys):
    m3c = tmp_path / "c.m3c"
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "-q")
    assert main(["encode", str(m3c), "-o", str(tmp_path / "again.m3c")]) == 2  # ffmpeg would read it as HEVC
    assert "m3cvc stream" in _err(capsys)
    assert main(["encode", str(small_video), "-o", str(tmp_path / "r.m3c"), "--input-size", "16x16", "--input-fps", "5"]) == 2
    assert "raw video" in _err(capsys)  # ignored before: a silent wrong reading
    assert main(["encode", str(small_video), "-o", str(tmp_path / "r.m3c"), "--input-pix-fmt", "gray"]) == 2
    assert "raw video" in _err(capsys)
    assert main(["encode", str(small_video), "-o", str(tmp_path / "k.m3c"), "--size", "96x64", "--keep-size"]) == 2
    assert "contradict" in _err(capsys)
    assert main(["encode", str(small_video), "-o", str(tmp_path / "c2.m3c"), "--rate-choice", "rule"]) == 2
    assert "give a target" in _err(capsys)  # it would be ignored without one
    missing = tmp_path / "c3.m3c.yaml"  # a missing config named like the sidecar: said as missing
    assert main(["encode", str(small_video), "-o", str(tmp_path / "c3.m3c"), "--config", str(missing)]) == 2
    assert "is the input" not in _err(capsys)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rate:\n  choice: lpips\n")
    assert main(["config", "--config", str(bad)]) == 2  # checked when loaded, not only when a target is set
    assert "rate.choice must be one of rule, gmsd" in _err(capsys)
    fifo = tmp_path / "in.pipe"
    os.mkfifo(fifo)
    assert main(["info", str(fifo)]) == 2
    assert "not a regular file" in _err(capsys)
    assert not (tmp_path / "again.m3c").exists() and not (tmp_path / "r.m3c").exists()
    # an m3cvc stream named like a video is written, with a warning that players cannot open it
    assert main(["encode", str(small_video), "-o", str(tmp_path / "v.mp4"), "--no-config-out", *SMALL, "-q"]) == 0
    assert "m3cvc stream, not a .mp4 video" in capsys.readouterr().err
    assert (tmp_path / "v.mp4").read_bytes()[:4] == b"M3CV"


def test_raw_input_with_the_raw_suffix(tmp_path):
    frames = synthetic_frames(6, 48, 32)
    raw = tmp_path / "clip.raw"
    raw.write_bytes(b"".join(f.tobytes() for f in frames))
    run_ok("preprocess", str(raw), "-o", str(tmp_path / "p.y4m"), "--keep-size", "--keep-fps", "--input-size", "48x32",
           "--input-fps", "5", "--input-pix-fmt", "rgb24", "-q")
    got = read_frames(tmp_path / "p.y4m", EXACT)
    assert len(got) == 6 and got[0].shape == (32, 48, 3)
    assert np.abs(got[3].astype(int) - frames[3]).mean() < 2  # through limited-range yuv420p: close, not exact


def test_png_pattern_output_is_one_set(small_video, tmp_path, monkeypatch):
    """--overwrite replaces the whole set of frames (an earlier, longer video's frames do not stay), and a
    decode that fails half-way leaves none of its frames."""
    m3c = tmp_path / "c.m3c"
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "-q")
    (tmp_path / "png").mkdir()
    pattern = str(tmp_path / "png" / "f_%04d.png")
    for i in range(30):  # a longer video's frames
        (tmp_path / "png" / f"f_{i:04d}.png").write_bytes(b"old")
    (tmp_path / "png" / "keep.png").write_bytes(b"not a match")
    run_ok("decode", str(m3c), "-o", pattern, "-q", "-y")
    frames = sorted((tmp_path / "png").glob("f_*.png"))
    assert len(frames) == 20 and all(f.read_bytes()[:4] == b"\x89PNG" for f in frames)
    assert (tmp_path / "png" / "keep.png").read_bytes() == b"not a match"
    from m3cvc.video import writers

    calls = {"n": 0}
    original = writers.PNGWriter._write

    def failing(self, frame):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return original(self, frame)

    monkeypatch.setattr(writers.PNGWriter, "_write", failing)
    (tmp_path / "png2").mkdir()
    assert main(["decode", str(m3c), "-o", str(tmp_path / "png2" / "g_%04d.png"), "-q"]) != 0
    assert not list((tmp_path / "png2").iterdir())


def test_webm_output_is_vp9_in_webm(small_video, tmp_path):
    import av

    m3c = tmp_path / "c.m3c"
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "-q")
    run_ok("decode", str(m3c), "-o", str(tmp_path / "o.webm"), "-q")
    with av.open(str(tmp_path / "o.webm")) as c:
        assert "webm" in c.format.name and c.streams.video[0].codec_context.name == "vp9"
    assert (tmp_path / "o.webm").read_bytes()[:4] == b"\x1a\x45\xdf\xa3"
    assert b"webm" in (tmp_path / "o.webm").read_bytes()[:64]  # the EBML doctype browsers check
    assert len(read_frames(tmp_path / "o.webm", EXACT)) == 20


def test_existing_output_needs_overwrite(small_video, tmp_path, capsys):
    out = tmp_path / "x.m3c"
    out.write_bytes(b"keep me")
    assert main(["encode", str(small_video), "-o", str(out), *SMALL, "-q"]) == 2
    assert "--overwrite" in _err(capsys)
    assert out.read_bytes() == b"keep me"
    run_ok("encode", str(small_video), "-o", str(out), *SMALL, "-q", "-y")
    assert out.read_bytes()[:4] == b"M3CV"


def test_decode_rejects_damaged_streams(small_video, tmp_path, capsys):
    m3c = tmp_path / "c.m3c"
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "-q")
    data = m3c.read_bytes()
    bad = tmp_path / "bad.m3c"
    bad.write_bytes(data[: len(data) // 2])
    assert main(["decode", str(bad), "-o", str(tmp_path / "o.y4m")]) == 2
    assert "truncated" in _err(capsys)
    assert not (tmp_path / "o.y4m").exists()
    bad.write_bytes(b"not a stream at all")
    assert main(["info", str(bad)]) == 2
    assert "m3cvc bitstream" in _err(capsys)


def test_decode_model_path_and_device_options(small_video, tmp_path, capsys):
    m3c = tmp_path / "c.m3c"
    run_ok("encode", str(small_video), "-o", str(m3c), *SMALL, "-q")
    out = tmp_path / "o.y4m"
    assert main(["decode", str(m3c), "-o", str(out), "--model-path", "nonsense", "-q"]) == 2
    assert "OLD=NEW" in _err(capsys) and not out.exists()
    # a lite stream has no models: the overrides change nothing
    run_ok("decode", str(m3c), "-o", str(out), "-q")
    plain = out.read_bytes()
    run_ok("decode", str(m3c), "-o", str(out), "-q", "-y", "--device", "cuda", "--model-path", "/a=/b")
    assert out.read_bytes() == plain


def test_unknown_option_and_command(capsys):
    assert main(["encode", "--frobnicate"]) == 2
    _err(capsys)
    assert main(["nosuchcommand"]) == 2


# ---------------------------------------------------------------------------- config
def test_config_prints_full_profiles(capsys, tmp_path):
    run_ok("config", "--profile", "lite")
    lite = yaml.safe_load(capsys.readouterr().out)
    assert lite["profile"] == "lite"
    assert lite["keyframes"]["clip"]["model"] == "openai/clip-vit-base-patch32"
    assert lite["keyframe_codec"]["backend"] == "hevc" and lite["keyframe_codec"]["hevc"]["qp"] >= 0
    run_ok("config", "--profile", "full")
    full = yaml.safe_load(capsys.readouterr().out)
    assert full["keyframes"]["semantic"] == "clip" and full["keyframes"]["motion"] == "raft"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("keyframes: {interval: 5, selector: fixed}\nkeyframe_codec: {avif: {quality: 12}}\n")
    run_ok("config", "--config", str(cfg))
    merged = yaml.safe_load(capsys.readouterr().out)
    assert merged["keyframes"]["interval"] == 5 and merged["keyframe_codec"]["avif"]["quality"] == 12
    assert merged["keyframes"]["max_interval"] == lite["keyframes"]["max_interval"]


def test_config_file_drives_encode(small_video, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preprocess: {width: 96, height: 64}\nkeyframes: {selector: fixed, interval: 5}\n"
                   "reconstruct: {mode: prediction}\n")
    m3c = tmp_path / "c.m3c"
    run_ok("encode", str(small_video), "-o", str(m3c), "--config", str(cfg), "-q")
    assert info_json(m3c, capsys)["keyframes"] == [0, 5, 10, 15]


@pytest.mark.parametrize("text, message", [
    ("keyframes: {nope: 1}\n", "keyframes.nope"),
    ("keyframes: {interval: soon}\n", "keyframes.interval"),
    ("[1, 2\n", "YAML"),
])
def test_bad_config(small_video, tmp_path, capsys, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    assert main(["encode", str(small_video), "-o", str(tmp_path / "x.m3c"), "--config", str(cfg)]) == 2
    assert message in _err(capsys)


# ---------------------------------------------------------------------------- config sidecar
def _reproduce_command(sidecar: Path) -> list[str]:
    import shlex

    lines = sidecar.read_text().splitlines()
    command = lines[lines.index("# re-create the stream from this file:") + 1].lstrip("# ").strip()
    words = shlex.split(command)
    assert words[:2] == ["m3cvc", "encode"]
    return words[1:]


def test_encode_writes_a_config_sidecar_whose_command_recreates_the_stream(small_video, tmp_path, capsys):
    out = tmp_path / "sub dir" / "a.m3c"
    out.parent.mkdir()
    assert main(["encode", str(small_video), "-o", str(out), "--keyframe-qp", "30", "-q"]) == 0
    sidecar = Path(str(out) + ".yaml")
    data, text = out.read_bytes(), sidecar.read_text()
    assert yaml.safe_load(text)["keyframe_codec"]["hevc"]["qp"] == 30 and "input option" not in text
    out.unlink()
    assert main(_reproduce_command(sidecar)) == 0  # runnable as written, with a space in the path
    assert out.read_bytes() == data and sidecar.read_text() == text
    # existing sidecar: refused without -y; -y --no-config-out removes the stale one m3cvc wrote
    assert main(["encode", str(small_video), "-o", str(tmp_path / "b.m3c"), "-q"]) == 0
    (tmp_path / "b.m3c").unlink()
    assert main(["encode", str(small_video), "-o", str(tmp_path / "b.m3c"), "-q"]) == 2
    assert "b.m3c.yaml exists" in capsys.readouterr().err
    assert main(["encode", str(small_video), "-o", str(tmp_path / "b.m3c"), "-q", "-y", "--no-config-out"]) == 0
    assert not (tmp_path / "b.m3c.yaml").exists()
    mine = tmp_path / "c.m3c.yaml"
    mine.write_text("keyframe_codec: {hevc: {qp: 33}}\n")  # a user's file, not a sidecar
    assert main(["encode", str(small_video), "-o", str(tmp_path / "c.m3c"), "-q", "-y", "--no-config-out"]) == 0
    assert mine.read_text() == "keyframe_codec: {hevc: {qp: 33}}\n"
    before = (tmp_path / "c.m3c").read_bytes()
    assert main(["encode", str(small_video), "-o", str(tmp_path / "c.m3c"), "--config", str(mine), "-q", "-y"]) == 2
    err = capsys.readouterr().err  # it names the --config file and the way out
    assert "(the --config file) is where the config that reproduces" in err and "--no-config-out" in err
    assert "qp: 33" in mine.read_text() and (tmp_path / "c.m3c").read_bytes() == before
    assert main(["encode", str(small_video), "-o", str(tmp_path / "c.m3c"), "--config", str(mine), "-q", "-y", "--no-config-out"]) == 0
    assert "qp: 33" in mine.read_text()


def test_batch_encode_never_replaces_its_config_with_a_sidecar(small_video, tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    (videos / "one.y4m").write_bytes(small_video.read_bytes())
    out.mkdir()
    cfg = out / "one.m3c.yaml"
    cfg.write_text("# my config\nkeyframe_codec: {hevc: {qp: 30}}\n")
    assert main(["batch", "encode", str(videos), "-o", str(out), "--config", str(cfg), "-q"]) == 2
    assert "would be replaced" in capsys.readouterr().err and cfg.read_text().startswith("# my config")
    assert main(["batch", "encode", str(videos), "-o", str(out), "--config", str(cfg), "--no-config-out", "-q"]) == 0
    assert cfg.read_text().startswith("# my config") and (out / "one.m3c").is_file()
    assert main(["batch", "encode", str(videos), "-o", str(tmp_path / "out2"), "-q"]) == 0
    assert yaml.safe_load((tmp_path / "out2" / "one.m3c.yaml").read_text())["profile"] == "lite"
    # with a target, the manifest and the sidecar say what rate control chose, as encode does (a try-out)
    assert main(["batch", "encode", str(videos), "-o", str(tmp_path / "out3"), "--target-bpp", "0.05", "-q"]) == 0
    entry = json.loads((tmp_path / "out3" / "manifest.json").read_text())["files"]["one.y4m"]
    rc = entry["rate_control"]
    assert rc["target_bpp"] == 0.05 and rc["predicted_bpp"] == pytest.approx(entry["bpp"])
    sidecar = (tmp_path / "out3" / "one.m3c.yaml").read_text()
    assert f"# rate control chose keyframes.max_interval {rc['max_interval']} and keyframe_codec.hevc.qp {rc['qp']}" in sidecar


def test_decode_checks_device_and_dtype_options(small_video, tmp_path, capsys):
    m3c = tmp_path / "a.m3c"
    assert main(["encode", str(small_video), "-o", str(m3c), "-q"]) == 0
    for option, value in (("--device", "nonsense"), ("--device", "meta"), ("--dtype", "garbage")):
        assert main(["decode", str(m3c), "-o", str(tmp_path / "o.y4m"), option, value, "-q"]) == 2
        assert option in capsys.readouterr().err


def test_batch_decode_takes_the_decoding_machines_options(small_video, tmp_path, capsys):
    streams = tmp_path / "streams"
    streams.mkdir()
    assert main(["encode", str(small_video), "-o", str(streams / "a.m3c"), "-q"]) == 0
    assert main(["batch", "decode", str(streams), "-o", str(tmp_path / "bad"), "--dtype", "garbage", "-q"]) == 2
    assert "--dtype" in capsys.readouterr().err
    assert main(["batch", "decode", str(streams), "-o", str(tmp_path / "out"), "--device", "cpu", "--dtype", "float32",
                 "--model-path", "/a=/b", "-q"]) == 0  # fmt: skip
    assert len(read_frames(tmp_path / "out" / "a.y4m")) == 20
