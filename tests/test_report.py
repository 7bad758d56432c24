"""``m3cvc report``: the stream page (content equal to ``info --json``, videos a browser plays, texts
escaped, per-frame curves), the eval page (BD tables equal to ``bdrate``, stream pages of kept
streams), atomic replacement and one-line errors. The real-browser checks are in test_report_browser.py."""

from __future__ import annotations

import html
import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import synthetic_frames, write_video
from m3cvc.cli import main as cli_main
from m3cvc.info import stream_info

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")

W, H, N = 128, 80, 24
TEXTS = {"keyframes": ["a <b>red</b> car & a tree", "the other scene"], "clips": ["the camera pans right", ""]}


def _embedded(page: str, node_id: str) -> dict:
    m = re.search(rf'<script type="application/json" id="{node_id}">(.*?)</script>', page, re.S)
    assert m, node_id
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def coded(tmp_path_factory) -> dict[str, Path]:
    """A 24-frame clip with a scene cut, its stream (with descriptions) and a stream report of both."""
    root = tmp_path_factory.mktemp("report")
    video = write_video(root / "clip.y4m", synthetic_frames(N, W, H, cut_at=13))
    (root / "texts.json").write_text(json.dumps(TEXTS))
    stream = root / "clip.m3c"
    assert cli_main(["encode", str(video), "-o", str(stream), "--size", f"{W}x{H}", "--descriptions",
                     str(root / "texts.json"), "-q"]) == 0  # fmt: skip
    page = root / "out" / "index.html"  # the folder is made
    assert cli_main(["report", str(stream), "--reference", str(video), "-o", str(page), "--metrics", "psnr,vmaf", "-q"]) == 0
    return {"root": root, "video": video, "stream": stream, "page": page}


def test_stream_page_shows_what_info_json_says(coded, capsys):
    page = coded["page"].read_text(encoding="utf-8")
    info = stream_info(coded["stream"].read_bytes())
    assert cli_main(["info", "--json", str(coded["stream"])]) == 0
    assert json.loads(capsys.readouterr().out) == info == _embedded(page, "m3cvc-info")
    assert '<meta name="generator" content="m3cvc report">' in page
    for key in ("bytes_total", "frames"):
        assert f"<b>{info[key]}</b>" in page
    assert f"<b>{info['bpp']:.5f}</b>" in page and f"<b>{info['kbps']:.2f}</b>" in page
    # one card per keyframe, each with its frame index, bytes, trigger and picture type
    cards = re.findall(r'<div class="card" data-frame="(\d+)"', page)
    assert [int(c) for c in cards] == info["keyframes"]
    for k, (nbytes, trigger, picture) in enumerate(zip(info["keyframe_bytes"], info["keyframe_triggers"], info["keyframe_pictures"])):
        assert f"#{k} &middot; frame {info['keyframes'][k]} &middot; {picture} &middot; {trigger} &middot; {nbytes} B" in page
    # the bytes per section, as info says
    for name, size in info["sections"].items():
        assert f"<tr><td>{name}</td><td class=\"num\">{size}</td>" in page
    # texts are shown escaped (a description cannot inject markup) and the lite decoder's indifference is said
    assert html.escape(TEXTS["keyframes"][0]) in page and TEXTS["keyframes"][0] not in page
    assert "the camera pans right" in page
    assert "decoder ignores the texts" in page and info["decoder_uses_text"] == {"keyframes": False, "clips": False}
    # the backends and their params from the header
    assert "<b>hevc</b>" in page and "<b>flow</b>" in page


def test_stream_page_media_play_in_browsers_and_match_the_frames(coded):
    import av

    from m3cvc.pipeline import Decoder

    media = coded["page"].parent / "index_files"
    page = coded["page"].read_text(encoding="utf-8")
    for name in ("original.mp4", "decoded.mp4", "difference.mp4", "bit_budget.svg", "per_frame.svg"):
        assert (media / name).is_file() and f'"index_files/{name}"' in page, name
    decoded = list(Decoder().decode(coded["stream"].read_bytes()))
    with av.open(str(media / "decoded.mp4")) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.pix_fmt) == ("h264", "yuv420p")
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == len(decoded) == N
    def psnr(xs, ys):
        return 10 * np.log10(255**2 / np.mean([np.mean((a.astype(float) - b) ** 2) for a, b in zip(xs, ys)]))

    # the page shows the decoded frames, in order (CRF 18 in 4:2:0 on a random texture: ~32 dB)
    assert psnr(frames, decoded) > 28 and psnr(frames, decoded) > psnr(frames[1:], decoded[:-1]) + 6
    # keyframe thumbnails of the decoded and the original frame
    info = stream_info(coded["stream"].read_bytes())
    assert sorted(p.name for p in media.glob("keyframe_*.jpg")) == [f"keyframe_{i:04d}.jpg" for i in range(len(info["keyframes"]))]
    assert len(list(media.glob("original_keyframe_*.jpg"))) == len(info["keyframes"])
    # no absolute or remote URL anywhere: the page works from disk and from any static server
    assert not re.search(r'(src|href)="(https?:|//|/)', page)


def test_stream_page_per_frame_values_are_measured(coded):
    from m3cvc.config import PreprocessConfig
    from m3cvc.eval.metrics import MetricSuite
    from m3cvc.pipeline import Decoder
    from m3cvc.video import read_frames

    data = _embedded(coded["page"].read_text(encoding="utf-8"), "m3cvc-page")
    ref = read_frames(coded["video"], PreprocessConfig(width=W, height=H, fps=8))
    dec = list(Decoder().decode(coded["stream"].read_bytes()))
    _, per_frame = MetricSuite(["psnr"]).measure(ref, dec)
    assert data["per_frame"]["psnr"] == pytest.approx(per_frame["psnr"])
    assert len(data["per_frame"]["vmaf"]) == N and data["frames"] == N and data["fps"] == 8.0


def test_stream_page_without_reference_and_with_a_wrong_one(coded, tmp_path, capsys):
    out = tmp_path / "plain.html"
    assert cli_main(["report", str(coded["stream"]), "-o", str(out), "-q"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "--reference VIDEO" in page and "original.mp4" not in page
    assert sorted(p.name for p in (tmp_path / "plain_files").glob("*.mp4")) == ["decoded.mp4"]
    # a reference of another length is refused in one line; the earlier report stays as it was
    short = write_video(tmp_path / "short.y4m", synthetic_frames(10, W, H))
    capsys.readouterr()
    assert cli_main(["report", str(coded["stream"]), "--reference", str(short), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "gives 10 frames" in err and "the stream has 24" in err and len(err.splitlines()) == 1
    assert out.read_text(encoding="utf-8") == page
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_report_replaces_its_own_page_and_nothing_else(coded, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert cli_main(["report", str(coded["stream"]), "-o", str(out), "-q"]) == 0
    (tmp_path / "r_files" / "stale.txt").write_text("from an older run")
    first = out.read_bytes()
    assert cli_main(["report", str(coded["stream"]), "-o", str(out), "-q"]) == 0  # its own page: replaced
    assert out.read_bytes() == first  # same stream -> same page
    assert not (tmp_path / "r_files" / "stale.txt").exists()  # the media folder is replaced whole
    other = tmp_path / "notes.html"
    other.write_text("<html>mine</html>")
    assert cli_main(["report", str(coded["stream"]), "-o", str(other), "-q"]) == 2
    assert "not an m3cvc report" in capsys.readouterr().err and other.read_text() == "<html>mine</html>"
    assert cli_main(["report", str(coded["stream"]), "-o", str(other), "-y", "-q"]) == 0
    assert is_report_page(other)
    for bad, message in [
        ([str(coded["video"])], "not an m3cvc bitstream"),
        ([str(coded["stream"]), "-o", str(tmp_path / "x.png")], "must be an .html file"),
        ([str(tmp_path / "missing.m3c")], "does not exist"),
    ]:
        argv = ["report", *bad] + ([] if "-o" in bad else ["-o", str(tmp_path / "y.html")])
        assert cli_main(argv + ["-q"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "y.html").exists()


def is_report_page(path: Path) -> bool:
    from m3cvc.report.site import is_report

    return is_report(path)


@pytest.fixture(scope="module")
def eval_results(tmp_path_factory, coded) -> Path:
    """A real eval run (lite and x264, 4 rate points each, PSNR and VMAF) that kept its streams."""
    root = tmp_path_factory.mktemp("evalrep")
    videos = root / "videos"
    videos.mkdir()
    write_video(videos / "pan.y4m", synthetic_frames(16, W, H))
    out = root / "results"
    assert cli_main(["eval", "--dataset", str(videos), "--out", str(out), "--codecs", "m3cvc:lite,x264",
                     "--size", f"{W}x{H}", "--max-frames", "16", "--points", "x264=51,45,40,35",
                     "--points", "m3cvc:lite=0.01,0.02,0.04,0.08", "--metrics", "psnr,vmaf", "--keep-streams", "-q"]) == 0  # fmt: skip
    return out


def test_eval_page_tables_equal_bdrate_and_link_stream_pages(eval_results, tmp_path, capsys):
    assert cli_main(["bdrate", str(eval_results), "--anchor", "x264", "--json", str(tmp_path / "bd.json")]) == 0
    bd = json.loads((tmp_path / "bd.json").read_text())["videos"]
    out = tmp_path / "site" / "index.html"
    capsys.readouterr()
    assert cli_main(["report", str(eval_results), "-o", str(out), "--anchor", "x264"]) == 0
    assert str(out) in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    for metric in ("psnr", "vmaf"):
        row = bd[metric][0]
        table = re.search(rf'<table class="bd" data-metric="{metric}">(.*?)</table>', page, re.S).group(1)
        cell = re.search(r'<tr data-codec="m3cvc:lite">.*?<td class="num bd-rate">([^<]+)</td>', table, re.S).group(1)
        assert cell == f"{row['dataset_curve']['bd_rate']:+.1f}"
    assert (out.parent / "index_files" / "rd_videos_psnr.svg").is_file()
    # the per-sequence table lists every point with its bytes; lite's points link to their stream pages
    results = json.loads((eval_results / "videos" / "m3cvc-lite.json").read_text())
    points = results["sequences"]["pan"]["points"]
    links = re.findall(r'<a href="(index_files/streams/[^"]+)">page</a>', page)
    assert len(links) == len(points) == 4
    for p in points:
        assert f"<td>{p['point']}</td><td class=\"num\">{p['bytes']}</td>" in page
    sub = out.parent / links[0]
    sub_page = sub.read_text(encoding="utf-8")
    assert "original.mp4" in sub_page and (sub.parent / "decoded.mp4").is_file()
    href = re.search(r'<a class="back" href="([^"]+)"', sub_page).group(1)
    assert (sub.parent / href).resolve() == out.resolve()
    # its per-frame values are the eval run's, not measured again
    stream_name = Path(links[0]).parent.name.split("_", 1)[1]
    point = next(p for p in points if p["point"] == stream_name)
    assert _embedded(sub_page, "m3cvc-page")["per_frame"]["psnr"] == point["per_frame"]["psnr"]
    # an anchor without results is said on the page, not an error
    assert cli_main(["report", str(eval_results), "-o", str(out), "--anchor", "vvc", "--no-stream-pages", "-q"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "no results of the anchor &#39;vvc&#39;" in page and "index_files/streams" not in page
    assert cli_main(["report", str(tmp_path / "site"), "-o", str(tmp_path / "e.html"), "-q"]) == 2
    assert "no m3cvc results files" in capsys.readouterr().err


def test_browser_video_of_odd_size_is_padded_and_repeatable(tmp_path):
    import av

    from m3cvc.report.media import write_browser_video

    frames = synthetic_frames(5, 33, 21)
    a = write_browser_video(tmp_path / "a.mp4", frames, Fraction(8))
    b = write_browser_video(tmp_path / "b.mp4", frames, Fraction(8))
    assert a.read_bytes() == b.read_bytes()  # same frames -> same bytes
    with av.open(str(a)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 5 and decoded[0].shape == (22, 34, 3)  # yuv420p needs even sizes: edge-padded
    assert np.abs(decoded[2][:21, :33].astype(int) - frames[2]).mean() < 12


def test_report_refuses_a_stream_too_long_to_hold(coded, tmp_path, monkeypatch, capsys):
    import m3cvc.report.stream as stream_page

    monkeypatch.setattr(stream_page, "MAX_FRAME_BYTES", W * H * 3 * N)  # room for the decoded frames only
    out = tmp_path / "r.html"
    assert cli_main(["report", str(coded["stream"]), "-o", str(out), "-q"]) == 0
    assert cli_main(["report", str(coded["stream"]), "--reference", str(coded["video"]), "-o", str(out), "-q"]) == 2
    assert "in memory for a report page" in capsys.readouterr().err


def test_report_never_replaces_what_it_did_not_write(coded, eval_results, tmp_path, capsys):
    import shutil

    stream = str(coded["stream"])
    # a media folder of someone else's is kept unless -y
    (tmp_path / "page_files").mkdir()
    (tmp_path / "page_files" / "thesis.tex").write_text("precious")
    assert cli_main(["report", stream, "-o", str(tmp_path / "page.html"), "-q"]) == 2
    assert "page_files exists and was not written by m3cvc report" in capsys.readouterr().err
    assert (tmp_path / "page_files" / "thesis.tex").read_text() == "precious" and not (tmp_path / "page.html").exists()
    assert cli_main(["report", stream, "-o", str(tmp_path / "page.html"), "-q", "-y"]) == 0
    assert (tmp_path / "page_files" / ".m3cvc-report").is_file() and not (tmp_path / "page_files" / "thesis.tex").exists()
    # a file where the media folder goes is refused before any work, even with -y
    (tmp_path / "f_files").write_text("x")
    assert cli_main(["report", stream, "--reference", str(coded["video"]), "-o", str(tmp_path / "f.html"), "-y", "-q"]) == 2
    assert "f_files exists and is not a folder" in capsys.readouterr().err and (tmp_path / "f_files").read_text() == "x"
    # an input inside the media folder (an eval folder named like it) is refused, and kept
    results = tmp_path / "res_files"
    shutil.copytree(eval_results, results)
    assert cli_main(["report", str(results), "-o", str(tmp_path / "res.html"), "-y", "-q"]) == 2
    assert "lies in the report's media folder" in capsys.readouterr().err
    assert (results / "videos" / "x264.json").is_file()
    # -o FOLDER/ means FOLDER/index.html; a failed report leaves no folder it made
    assert cli_main(["report", stream, "-o", str(tmp_path / "site") + "/", "-q"]) == 0
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "index_files" / "decoded.mp4").is_file()
    assert cli_main(["report", stream, "--reference", stream, "-o", str(tmp_path / "new" / "deep" / "p.html"), "-q"]) == 2
    assert "is an m3cvc stream; give the video" in capsys.readouterr().err and not (tmp_path / "new").exists()
    assert cli_main(["report", stream, "--metrics", "psnr", "-o", str(tmp_path / "m.html"), "-q"]) == 2
    assert "--metrics needs --reference" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_sequences_whose_names_slug_alike_get_their_own_work_folders():
    from m3cvc.eval.codecs import work_name

    assert work_name("pan") == "pan" and work_name("a b") != work_name("a-b") and work_name("a-b") == "a-b"


def test_eval_page_goes_on_when_a_kept_stream_cannot_be_shown(eval_results, tmp_path, capsys):
    import shutil

    broken = tmp_path / "results"
    shutil.copytree(eval_results, broken)
    victim = sorted((broken / "videos" / "_work").rglob("*.m3c"))[0]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated
    assert cli_main(["report", str(broken), "-o", str(tmp_path / "e.html"), "--anchor", "x264", "-q"]) == 0
    assert "no stream page: " in capsys.readouterr().err
    page = (tmp_path / "e.html").read_text(encoding="utf-8")
    assert page.count(">page</a>") == 3 and page.count(">no page</span>") == 1


# ------------------------------------------------------------------------------- a real browser
CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium without the network chatter that a closed network refuses (see stack notes)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright. `make test` installs both (as root, CI: required, so a
    missing browser fails there instead of skipping: M3CVC_REQUIRE_BROWSER=1)."""
    import os

    required = os.environ.get("M3CVC_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (pip install 'm3cvc[dev]')")
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/install-browser.sh)")
        pytest.skip(f"{CHROMIUM} is not installed (scripts/install-browser.sh installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, page_path: Path):
    """Load a page from disk; return it with the console messages, page errors and requests it made."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.route(re.compile(r"^(?!file:).*"), lambda route: route.abort())  # nothing may leave the machine
    page.goto(page_path.resolve().as_uri())
    return page, seen


def _check_clean(seen: dict) -> None:
    assert seen["errors"] == []
    assert [m for m in seen["console"] if m[0] in ("error", "warning")] == []
    assert seen["requests"] and all(u.startswith("file://") for u in seen["requests"]), seen["requests"]


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    import os
    import shutil

    shot = page.screenshot(path=str(tmp_path / name), full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("M3CVC_SCREENSHOTS"):  # keep them to look at
        Path(os.environ["M3CVC_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(os.environ["M3CVC_SCREENSHOTS"]) / name)
    return tmp_path / name


def test_stream_page_in_chromium(browser, coded, tmp_path):
    page, seen = _open(browser, coded["page"])
    page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 3)", timeout=30_000)
    videos = page.evaluate("[...document.querySelectorAll('video')].map(v => [v.currentSrc.split('/').pop(), v.videoWidth, v.videoHeight, v.duration])")
    assert videos == [["original.mp4", W, H, N / 8], ["decoded.mp4", W, H, N / 8], ["difference.mp4", W, H, N / 8]]
    # stepping moves every video to the same frame; clicking a keyframe seeks there and names its texts
    page.click("#next")
    page.click("#next")
    assert page.text_content("#frame-label") == f"frame 2 / {N - 1}"
    times = page.evaluate("[...document.querySelectorAll('video')].map(v => v.currentTime)")
    assert times == pytest.approx([2.5 / 8] * 3)
    info = stream_info(coded["stream"].read_bytes())
    page.click("#kf1")
    assert page.text_content("#frame-label") == f"frame {info['keyframes'][1]} / {N - 1}"
    assert "Keyframe #1" in page.text_content("#now") and TEXTS["keyframes"][1] in page.text_content("#now")
    page.click("#kf0")
    assert TEXTS["keyframes"][0] in page.text_content("#now")  # the raw text, as the browser shows it
    # playback advances all videos together
    page.click("#play")
    page.wait_for_function("document.querySelector('video').currentTime > 0.6", timeout=10_000)
    page.click("#play")  # pausing puts every video on the same frame
    t = page.evaluate("[...document.querySelectorAll('video')].map(v => v.currentTime)")
    assert max(t) == min(t) and page.text_content("#frame-label") == f"frame {int(t[0] * 8)} / {N - 1}"
    # the wipe and difference views
    page.click("button[data-view=wipe]")
    page.fill("#wipe", "30")
    page.dispatch_event("#wipe", "input")
    assert page.get_attribute("#viewer", "class") == "viewer view-wipe"
    assert page.evaluate("getComputedStyle(document.querySelector('#viewer')).getPropertyValue('--wipe')").strip() == "30%"
    page.click("button[data-view=side]")
    _screenshot(page, tmp_path, "stream_report.png")
    page.click("button[data-view=diff]")
    assert page.is_visible("figure.diff video") and not page.is_visible("figure.original video")
    _check_clean(seen)
    page.close()


def test_eval_page_and_its_stream_pages_in_chromium(browser, eval_results, tmp_path):
    out = tmp_path / "eval" / "index.html"
    assert cli_main(["report", str(eval_results), "-o", str(out), "--anchor", "x264", "-q"]) == 0
    page, seen = _open(browser, out)
    page.wait_for_load_state("load")
    sizes = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
    assert sizes and all(ok and w > 0 for ok, w in sizes)  # every R-D plot loaded
    assert page.locator("table.bd").count() == 2
    _screenshot(page, tmp_path, "eval_report.png")
    page.click("text=page >> nth=0")  # a kept stream's page, then back
    page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 3)", timeout=30_000)
    assert page.locator("video").count() == 3
    page.click("a.back")
    page.wait_for_load_state("load")
    assert page.url == out.resolve().as_uri()
    _check_clean(seen)
    page.close()


def test_stream_page_with_url_characters_in_its_name_and_over_a_plain_web_server(browser, coded, tmp_path):
    """A name with '#' (links are percent-encoded), then the page served by a server without HTTP range
    requests (python -m http.server): the videos still seek (the page loads them whole)."""
    import functools
    import http.server
    import threading

    out = tmp_path / "run #2.html"
    assert cli_main(["report", str(coded["stream"]), "--reference", str(coded["video"]), "-o", str(out), "--metrics", "psnr", "-q"]) == 0
    page, seen = _open(browser, out)
    page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 3)", timeout=30_000)
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    _check_clean(seen)
    page.close()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"http://127.0.0.1:{server.server_port}/run%20%232.html")
        page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 3 && v.src.startsWith('blob:'))",
                               timeout=30_000)  # fmt: skip
        page.click("#kf1")
        frame = stream_info(coded["stream"].read_bytes())["keyframes"][1]
        page.wait_for_function(f"[...document.querySelectorAll('video')].every(v => Math.abs(v.currentTime - {(frame + 0.5) / 8}) < 1e-6)",
                               timeout=10_000)  # fmt: skip
        assert errors == []
        page.close()
    finally:
        server.shutdown()


def test_a_raw_yuv_reference_is_read_with_the_input_options(coded, tmp_path, capsys):
    """The reference can be the raw .yuv file the stream was coded from, described as encode is told."""
    frames = synthetic_frames(N, W, H, cut_at=13)
    raw = tmp_path / "clip.yuv"
    import cv2

    raw.write_bytes(b"".join(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420).tobytes() for f in frames))
    stream, page = tmp_path / "raw.m3c", tmp_path / "raw.html"
    size = ["--input-size", f"{W}x{H}", "--input-fps", "8"]
    assert cli_main(["encode", str(raw), *size, "-o", str(stream), "--size", f"{W}x{H}", "-q"]) == 0
    assert cli_main(["report", str(stream), "--reference", str(raw), *size, "-o", str(page), "--metrics", "psnr", "-q"]) == 0
    # the same frames as when the reference is the .y4m they came from (up to the conversions: <= 0.9 dB measured)
    assert cli_main(["report", str(stream), "--reference", str(coded["video"]), "-o", str(tmp_path / "y.html"),
                     "--metrics", "psnr", "-q"]) == 0  # fmt: skip
    raw_curve = _embedded(page.read_text(), "m3cvc-page")["per_frame"]["psnr"]
    y4m_curve = _embedded((tmp_path / "y.html").read_text(), "m3cvc-page")["per_frame"]["psnr"]
    assert len(raw_curve) == N and np.allclose(raw_curve, y4m_curve, atol=1.5), (raw_curve, y4m_curve)
    # without the layout, or the layout without a reference: one line each, no page
    assert cli_main(["report", str(stream), "--reference", str(raw), "-o", str(tmp_path / "a.html"), "-q"]) == 2
    assert "give its size and frame rate" in capsys.readouterr().err
    assert cli_main(["report", str(stream), *size, "-o", str(tmp_path / "b.html"), "-q"]) == 2
    assert "says how to read --reference, which is not given" in capsys.readouterr().err
    assert not (tmp_path / "a.html").exists() and not (tmp_path / "b.html").exists()
