"""Inputs are read as ffmpeg shows them (issue 12): orientation, pixel aspect, stream choice, damaged
packets, timing, every y4m / raw format, colour tags. Each case is a few-kB file made here with the
ffmpeg that imageio-ffmpeg bundles, and ``m3cvc preprocess`` is compared with that ffmpeg's own output."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from m3cvc.cli import main as cli_main
from m3cvc.errors import InputError
from m3cvc.video import open_video
from m3cvc.video.ffmpeg import ffmpeg_exe

LAVFI = "testsrc2=size={size}:rate={rate}:duration={duration}"


def ff(*args: str) -> None:
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def source(path: Path, size: str = "96x64", rate: int = 8, duration: float = 1, *extra: str) -> Path:
    ff("-f", "lavfi", "-i", LAVFI.format(size=size, rate=rate, duration=duration), *extra, str(path))
    return path


def ffmpeg_shows(path: Path, *args: str) -> np.ndarray:
    """The frames ffmpeg's command line gives (autorotate on, like a player): (N, H, W, 3) uint8."""
    import av

    out = path.with_suffix(".shown.nut")
    ff("-i", str(path), *args, "-c:v", "rawvideo", "-pix_fmt", "rgb24", str(out))
    with av.open(str(out)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def m3cvc_preprocess(path: Path, *args: str) -> np.ndarray:
    """``m3cvc preprocess`` (native size and rate unless ``args`` say otherwise), read back."""
    import av

    out = path.with_suffix(".pre.y4m")
    assert cli_main(["preprocess", str(path), "-o", str(out), "-y", "-q", *args]) == 0
    with av.open(str(out)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


NATIVE = ("--keep-size", "--keep-fps")


def assert_same(ours: np.ndarray, theirs: np.ndarray, tol: int = 1) -> None:
    assert ours.shape == theirs.shape
    assert int(np.abs(ours.astype(int) - theirs).max()) <= tol


# ------------------------------------------------------------------------------------ orientation
@pytest.mark.parametrize(
    "flags", [["-display_rotation", "90"], ["-display_rotation", "180"], ["-display_rotation", "270"],
              ["-display_rotation", "90", "-display_hflip"], ["-display_vflip"]],  # fmt: skip
)
def test_display_matrix_is_applied_like_ffmpeg_autorotate(tmp_path, flags):
    land = source(tmp_path / "land.mp4", "96x64", 8, 0.5, "-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0")
    turned = tmp_path / "turned.mp4"
    ff(*flags, "-i", str(land), "-c", "copy", str(turned))
    theirs = ffmpeg_shows(turned)
    assert_same(m3cvc_preprocess(turned, *NATIVE), theirs)
    with open_video(turned) as src:
        assert (src.width, src.height) == theirs.shape[2:0:-1]
    # and before the crop and resize: the default 512x320 output is the centre of the upright picture
    assert m3cvc_preprocess(turned).shape[1:3] == (320, 512)


def test_other_display_angles_rotate_about_the_centre_like_ffmpeg(tmp_path):
    land = source(tmp_path / "land.mp4", "96x64", 8, 0.5, "-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0")
    tilted = tmp_path / "tilted.mp4"
    for flags in (["-display_rotation", "45"], ["-display_rotation", "60"], ["-display_rotation", "30", "-display_hflip"]):
        ff(*flags, "-i", str(land), "-c", "copy", str(tilted))
        ours, theirs = m3cvc_preprocess(tilted, *NATIVE), ffmpeg_shows(tilted)
        assert ours.shape == theirs.shape, flags  # the frame keeps its size (no transpose), nothing is mirrored
        assert float(np.abs(ours.astype(int) - theirs).mean()) < 6, flags  # edge antialiasing differs; wrong: ~40


# ------------------------------------------------------------------------------------ pixel aspect
@pytest.mark.parametrize("container", ["mp4", "y4m"])
def test_non_square_pixels_are_shown_at_their_display_aspect(tmp_path, container):
    extra = ["-vf", "setsar=4/3"] + (["-c:v", "libx264", "-qp", "0"] if container == "mp4" else [])
    path = source(tmp_path / f"sar.{container}", "240x176", 8, 0.5, *extra)
    theirs = ffmpeg_shows(path, "-vf", "scale=iw*sar:ih:flags=bicubic,setsar=1")
    ours = m3cvc_preprocess(path, *NATIVE)
    assert ours.shape == theirs.shape and ours.shape[1:3] == (176, 320)
    assert float(np.abs(ours.astype(int) - theirs).mean()) < 3.0  # resampling filters differ, the picture does not


# ------------------------------------------------------------------------------------ streams
def test_the_stream_ffmpeg_would_pick_and_explicit_stream_choice(tmp_path, capsys):
    thumb = source(tmp_path / "thumb.mp4", "64x36", 8, 0.5, "-c:v", "libx264")
    main = source(tmp_path / "main.mp4", "128x72", 8, 0.5, "-c:v", "libx264")
    both = tmp_path / "both.mp4"
    ff("-i", str(thumb), "-i", str(main), "-map", "0", "-map", "1", "-c", "copy",
       "-disposition:v:0", "0", "-disposition:v:1", "default", str(both))  # fmt: skip
    assert m3cvc_preprocess(both, *NATIVE).shape[1:3] == (72, 128)
    assert m3cvc_preprocess(both, *NATIVE, "--stream", "0").shape[1:3] == (36, 64)
    out = tmp_path / "x.y4m"
    for bad, message in ((["--stream", "7"], "no stream 7"), (["--stream", "-1"], "no stream -1")):
        assert cli_main(["preprocess", str(both), "-o", str(out), "-y", *bad]) == 2
        assert message in capsys.readouterr().err


def test_cover_art_is_not_video(tmp_path, capsys):
    cover = source(tmp_path / "cover.png", "64x64", 1, 1, "-frames:v", "1")
    song = tmp_path / "song.mp3"
    ff("-f", "lavfi", "-i", "sine=duration=1", "-i", str(cover), "-map", "0", "-map", "1", "-c:a", "libmp3lame",
       "-c:v", "png", "-disposition:v", "attached_pic", str(song))  # fmt: skip
    out = tmp_path / "x.y4m"
    assert cli_main(["preprocess", str(song), "-o", str(out)]) == 2
    assert "cover art" in capsys.readouterr().err and not out.exists()
    # a video whose first video stream is the cover: the real video is read
    video = source(tmp_path / "v.mkv", "128x72", 8, 0.5, "-c:v", "libx264")
    both = tmp_path / "covered.mkv"
    ff("-i", str(cover), "-i", str(video), "-map", "0", "-map", "1", "-c:v:0", "mjpeg", "-c:v:1", "copy",
       "-disposition:v:0", "attached_pic", str(both))  # fmt: skip
    assert m3cvc_preprocess(both, *NATIVE).shape == (4, 72, 128, 3)


# ------------------------------------------------------------------------------------ damage
def test_a_damaged_packet_is_skipped_and_reported_once(tmp_path, capsys):
    import av

    clean = source(tmp_path / "clean.mp4", "128x72", 8, 2, "-c:v", "libx264", "-bf", "0")
    damaged = tmp_path / "damaged.mp4"
    with av.open(str(clean)) as src, av.open(str(damaged), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for i, packet in enumerate(src.demux(video=0)):
            if packet.size == 0:
                continue
            if i == 6:  # scramble one packet in the middle (valid container, invalid H.264)
                data = bytearray(bytes(packet))
                data[8:] = bytes((b * 7 + 13) & 255 for b in data[8:])
                bad = av.Packet(bytes(data))
                bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                packet = bad
            packet.stream = out
            dst.mux(packet)
    ours = m3cvc_preprocess(damaged, *NATIVE)
    err = capsys.readouterr().err
    assert len(ours) == 15 and err.count("warning") == 1 and "1 damaged packet" in err
    assert len(m3cvc_preprocess(damaged)) == len(ffmpeg_shows(damaged, "-vf", "fps=8")) == 16


# ------------------------------------------------------------------------------------ timing
@pytest.mark.parametrize("rate,duration,extra,frames", [
    (25, 2, ["-bf", "3", "-g", "12", "-qp", "0", "-pix_fmt", "yuv444p"], 16),
    (10, 1, ["-bf", "2", "-g", "10"], 8),  # real B-frames: decode-order stamps, first frame at 0.2 s
])  # fmt: skip
def test_b_frames_in_avi_keep_presentation_order_and_the_fps_filter_length(tmp_path, rate, duration, extra, frames):
    avi = source(tmp_path / "b.avi", "128x72", rate, duration, "-c:v", "libx264", *extra)
    theirs = ffmpeg_shows(avi, "-vf", "fps=8")
    ours = m3cvc_preprocess(avi, "--keep-size")
    assert len(ours) == len(theirs) == frames
    assert_same(ours, theirs, tol=2)


def test_h264_copied_into_avi_keeps_its_frame_rate(tmp_path):
    mp4 = source(tmp_path / "v.mp4", "128x72", 10, 1, "-c:v", "libx264", "-bf", "0")
    avi = tmp_path / "v.avi"
    ff("-i", str(mp4), "-c", "copy", str(avi))
    with open_video(avi) as src:
        assert src.fps == 10
    theirs = ffmpeg_shows(avi, "-vf", "fps=8")
    ours = m3cvc_preprocess(avi, "--keep-size")
    assert len(ours) == len(theirs) == 8
    assert_same(ours, theirs, tol=2)


def test_timestamps_with_a_gap_and_a_duplicate(tmp_path):
    import av

    path = tmp_path / "odd.mkv"
    pts = [0, 1, 2, 3, 8, 9, 9, 10]  # in 1/8 s: a gap of four frames, a duplicate
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=8)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv444p"
        s.codec_context.time_base = Fraction(1, 8)
        for i, t in enumerate(pts):
            vf = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 20 * i, np.uint8), format="rgb24")
            vf.pts, vf.time_base = t, Fraction(1, 8)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with open_video(path) as src:
        assert [round(t * 8) for t, _ in src.frames()] == pts
    theirs = ffmpeg_shows(path, "-vf", "fps=8")
    ours = m3cvc_preprocess(path, "--keep-size")
    assert len(ours) == len(theirs) == 11  # the gap is filled by repeating, the duplicate is dropped
    assert_same(ours, theirs)


def test_a_timestamp_reset_continues_the_timeline(tmp_path):
    """Two MPEG-TS files back to back: the second one's clock starts again."""
    first = source(tmp_path / "a.ts", "64x48", 8, 1, "-c:v", "libx264", "-bf", "0")
    ff("-f", "lavfi", "-i", LAVFI.format(size="64x48", rate=8, duration=1) + ",negate", "-c:v", "libx264", "-bf", "0",
       str(tmp_path / "b.ts"))  # fmt: skip
    both = tmp_path / "ab.ts"
    both.write_bytes(first.read_bytes() + (tmp_path / "b.ts").read_bytes())
    with open_video(both) as src:
        times = [t for t, _ in src.frames()]
    assert np.allclose(np.diff(times), 1 / 8)
    ours, theirs = m3cvc_preprocess(both, "--keep-size"), ffmpeg_shows(both, "-vf", "fps=8")
    assert len(ours) == len(theirs) == 16
    assert_same(ours, theirs)  # the second part (negated colours) follows the first, as ffmpeg shows it
    # a forward jump of the MPEG-TS clock (50 s) is a discontinuity, not 50 s of a frozen frame
    later = tmp_path / "a50.ts"
    ff("-i", str(first), "-c", "copy", "-output_ts_offset", "50", str(later))
    jumped = tmp_path / "jump.ts"
    jumped.write_bytes((tmp_path / "b.ts").read_bytes() + later.read_bytes())
    ours, theirs = m3cvc_preprocess(jumped, "--keep-size"), ffmpeg_shows(jumped, "-vf", "fps=8")
    assert len(ours) == len(theirs) == 16
    assert_same(ours, theirs)


# ------------------------------------------------------------------------------------ y4m / raw
@pytest.mark.parametrize("pix_fmt", ["gray10le", "gray16le", "yuv411p", "yuva444p", "yuv422p12le"])
def test_every_y4m_that_ffmpeg_reads(tmp_path, pix_fmt):
    path = source(tmp_path / "x.y4m", "64x48", 8, 0.5, "-pix_fmt", pix_fmt, "-strict", "-1")
    assert_same(m3cvc_preprocess(path, *NATIVE), ffmpeg_shows(path))


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "nv12", "gray16le", "rgb24"])
def test_raw_yuv_in_any_pixel_format(tmp_path, pix_fmt):
    path = source(tmp_path / "x.yuv", "64x48", 8, 0.5, "-pix_fmt", pix_fmt, "-f", "rawvideo")
    raw = ["-f", "rawvideo", "-pixel_format", pix_fmt, "-video_size", "64x48", "-framerate", "8"]
    import av

    shown = tmp_path / "shown.nut"
    ff(*raw, "-i", str(path), "-c:v", "rawvideo", "-pix_fmt", "rgb24", str(shown))
    with av.open(str(shown)) as c:
        theirs = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    ours = m3cvc_preprocess(path, *NATIVE, "--input-size", "64x48", "--input-fps", "8", "--input-pix-fmt", pix_fmt)
    assert_same(ours, theirs)
    with pytest.raises(InputError, match="not a whole number"):
        open_video(path, raw_size=(63, 48), raw_fps=8, raw_pix_fmt=pix_fmt)
    with pytest.raises(InputError, match="unknown raw pixel format"):
        open_video(path, raw_size=(64, 48), raw_fps=8, raw_pix_fmt="yuv999p")


# ------------------------------------------------------------------------------------ colour
@pytest.mark.parametrize("colour_range", ["tv", "pc"])
def test_bt709_tags_are_honoured(tmp_path, colour_range):
    from m3cvc.video.color import yuv_to_rgb

    path = source(tmp_path / "hd.mp4", "128x72", 8, 0.5, "-vf", f"scale=out_color_matrix=bt709:out_range={colour_range}",
                  "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", "-colorspace", "bt709",
                  "-color_range", colour_range)  # fmt: skip
    ours = m3cvc_preprocess(path, *NATIVE)
    assert_same(ours, ffmpeg_shows(path))
    import av

    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in f.planes]
    as601 = yuv_to_rgb(*planes, full_range=colour_range == "pc")
    assert int(np.abs(ours[0].astype(int) - as601).max()) > 10  # BT.601 would be visibly wrong
