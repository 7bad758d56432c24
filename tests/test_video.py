from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from m3cvc.config import PreprocessConfig
from m3cvc.errors import InputError
from m3cvc.video import crop_box, open_video, open_writer, preprocess, read_frames
from m3cvc.video.color import rgb_to_yuv420

from conftest import synthetic_frames, write_video

EXACT = PreprocessConfig(keep_size=True, keep_fps=True)


def test_y4m_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8) for _ in range(4)]
    frames += [np.zeros((37, 53, 3), np.uint8), np.full((37, 53, 3), 255, np.uint8)]
    path = write_video(tmp_path / "x.y4m", frames)
    with open_video(path) as src:
        assert src.frame_count == len(frames)  # known before reading (progress bars show an ETA)
    back = read_frames(path, EXACT)
    assert len(back) == len(frames)
    for a, b in zip(frames, back):
        np.testing.assert_array_equal(a, b)


def test_bikes_preprocess_default(bikes_path):
    with open_video(bikes_path) as src:
        assert (src.width, src.height) == (640, 272)
        video = preprocess(src, PreprocessConfig())
        assert video.frame_count == 80  # estimated before reading, at the new rate (progress bars show an ETA)
        frames = list(video)
    assert (video.width, video.height, video.fps) == (512, 320, Fraction(8))
    assert len(frames) == 80  # 10 s at 8 fps
    assert all(f.shape == (320, 512, 3) and f.dtype == np.uint8 for f in frames)


@pytest.mark.parametrize("src_fps,n", [(25, 50), (2, 4), (Fraction(30000, 1001), 45), (12, 17), (8, 9)])
def test_frame_rate_resampling_is_ffmpegs_fps_filter(tmp_path, src_fps, n):
    """Each output frame is the one ffmpeg's ``fps=8`` filter shows, and there are as many."""
    import subprocess

    import av

    from m3cvc.video.ffmpeg import ffmpeg_exe

    frames = [np.full((16, 16, 3), i * 5, np.uint8) for i in range(n)]  # each frame's brightness is its index
    path = tmp_path / "ramp.y4m"
    from m3cvc.video import open_writer

    with open_writer(path, 16, 16, Fraction(src_fps)) as w:
        for f in frames:
            w.write(f)
    shown = tmp_path / "shown.nut"
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", "fps=8", "-c:v", "rawvideo", "-pix_fmt", "rgb24", str(shown)]
    subprocess.run(cmd, check=True)
    with av.open(str(shown)) as c:
        theirs = [int(f.to_ndarray(format="rgb24")[0, 0, 0]) // 5 for f in c.decode(video=0)]
    ours = [int(f[0, 0, 0]) // 5 for f in read_frames(path, PreprocessConfig(width=16, height=16, fps=8.0))]
    assert ours == theirs


def test_crop_box_keeps_target_aspect():
    assert crop_box(640, 272, 512, 320) == (102, 0, 435, 272)
    assert crop_box(100, 400, 512, 320) == (0, 169, 100, 62)
    x, y, w, h = crop_box(177, 143, 512, 320)
    assert abs(w / h - 1.6) < 0.02


def test_odd_native_size_keep_size(tmp_path):
    path = write_video(tmp_path / "odd.y4m", synthetic_frames(3, width=177, height=143))
    out = read_frames(path, PreprocessConfig(keep_size=True))
    assert out[0].shape == (143, 177, 3)


def test_raw_yuv_input(tmp_path):
    frames = synthetic_frames(3, width=32, height=16)
    raw = tmp_path / "clip.yuv"
    with open(raw, "wb") as fh:
        for f in frames:
            for plane in rgb_to_yuv420(f):
                fh.write(plane.tobytes())
    out = read_frames(raw, EXACT, raw_size=(32, 16), raw_fps=8)
    assert len(out) == 3 and out[0].shape == (16, 32, 3)
    assert np.abs(out[1].astype(int) - frames[1]).mean() < 20  # 4:2:0 chroma loss only
    with pytest.raises(InputError, match="size and frame rate"):
        open_video(raw)
    with pytest.raises(InputError, match="whole number"):
        open_video(raw, raw_size=(30, 16), raw_fps=8)


def test_mp4_writer_and_reader(tmp_path):
    frames = synthetic_frames(10)
    path = write_video(tmp_path / "x.mp4", frames)
    out = read_frames(path, EXACT)
    assert len(out) == 10 and out[0].shape == frames[0].shape


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"this is text, not a video\n" * 10, "ffmpeg|decod")],
)
def test_bad_inputs(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_frames(path)


def test_missing_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_video(tmp_path / "nope.mp4")


def test_writer_is_atomic_on_failure(tmp_path):
    target = tmp_path / "out.y4m"
    target.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with open_writer(target, 8, 8, Fraction(8)) as w:
            w.write(np.zeros((8, 8, 3), np.uint8))
            raise RuntimeError("boom")
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.y4m"]


def test_writer_refuses_input_as_output(tmp_path):
    src = write_video(tmp_path / "in.y4m", synthetic_frames(2))
    before = src.read_bytes()
    with pytest.raises(InputError, match="input"):
        with open_writer(src, 96, 64, Fraction(8), inputs=[src]):
            pass
    assert src.read_bytes() == before


def test_png_pattern_output(tmp_path):
    frames = synthetic_frames(3)
    pattern = tmp_path / "f_%03d.png"
    with open_writer(pattern, 96, 64, Fraction(8)) as w:
        for f in frames:
            w.write(f)
    from PIL import Image

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["f_000.png", "f_001.png", "f_002.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f_002.png")), frames[2])
