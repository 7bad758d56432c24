"""Evaluation harness: codec paths, results schema, resume, BD-rate, plots, datasets, CLI."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from m3cvc.cli import main as cli_main
from m3cvc.config import PreprocessConfig
from m3cvc.errors import ConfigError, InputError
from m3cvc.eval.bdrate import Curve, bd, dataset_curve
from m3cvc.eval.codecs import Clip, build_codec, slug
from m3cvc.eval.datasets import load_dataset
from m3cvc.eval.metrics import psnr
from m3cvc.eval.quick import shapes_frames
from m3cvc.eval.results import CSV_FIELDS, SCHEMA, group_by_dataset
from m3cvc.eval.runner import EvalOptions, EvalRun

W, H, N = 128, 80, 6


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return list(shapes_frames(N, W, H))


@pytest.fixture()
def clip(frames, tmp_path) -> Clip:
    return Clip("shapes", frames, Fraction(8), tmp_path / "work")


@pytest.fixture()
def video_folder(frames, tmp_path) -> Path:
    from m3cvc.video import open_writer

    folder = tmp_path / "videos"
    folder.mkdir()
    with open_writer(folder / "shapes.y4m", W, H, Fraction(8)) as writer:
        for f in frames:
            writer.write(f)
    return folder


# ---------------------------------------------------------------------------------------- codecs
@pytest.mark.parametrize("name,qp", [("x264", 40), ("x265", 40), ("vvc", 48)])
def test_anchor_codes_real_bytes_and_decodes(name, qp, clip):
    codec = build_codec(name, [qp])
    (point,) = codec.rate_points()
    coded = codec.run(clip, point)
    stream = clip.workdir / coded.info["stream"]
    assert coded.nbytes == stream.stat().st_size > 0
    assert len(coded.frames) == N and coded.frames[0].shape == (H, W, 3) and coded.frames[0].dtype == np.uint8
    assert 20.0 < np.mean([psnr(a, b) for a, b in zip(clip.frames, coded.frames)]) < 60.0
    desc = codec.describe()
    assert desc["versions"]["ffmpeg"].startswith("ffmpeg version")
    assert desc["versions"][codec.encoder] != "unknown"


def test_x264_lossless_round_trip_is_exactly_the_420_conversion(clip):
    from m3cvc.video.color import rgb_to_yuv420, yuv_to_rgb

    coded = build_codec("x264", [0]).run(clip, build_codec("x264", [0]).rate_points()[0])
    for ref, dec in zip(clip.frames, coded.frames):
        np.testing.assert_array_equal(dec, yuv_to_rgb(*rgb_to_yuv420(ref), full_range=False))


def test_m3cvc_lite_is_a_codec_of_the_harness(clip):
    codec = build_codec("m3cvc:lite", [0.02])
    assert codec.name == "m3cvc:lite"
    (point,) = codec.rate_points()
    assert point.params == {"rate.target_bpp": 0.02}  # lite's points are rate-control targets
    coded = codec.run(clip, point)
    assert len(coded.frames) == N and coded.nbytes > 0 and coded.info["keyframes"] >= 1
    # the bytes are a real .m3c stream of exactly that length
    from m3cvc.pipeline import Encoder

    from m3cvc.eval.m3cvc_codec import ArraySource

    data = Encoder(codec.point_config(point)).encode(ArraySource(clip.frames, clip.fps)).data
    assert len(data) == coded.nbytes
    # the point's info says what rate control chose, as encode --json does
    rc = coded.info["rate_control"]
    assert rc["target_bpp"] == 0.02 and rc["predicted_bpp"] == pytest.approx(8 * coded.nbytes / (N * W * H))
    assert {"max_interval", "qp", "within_tolerance", "candidates", "cut_short"} <= set(rc)


def test_m3cvc_config_that_sets_what_rate_control_chooses_is_refused_for_a_rate_sweep(tmp_path):
    """Found by a try-out: eval swept the rate target over a config that set the QP, which rate control
    silently replaced while the results still named the config's QP."""
    config = tmp_path / "q38.yaml"
    config.write_text("keyframe_codec: {hevc: {qp: 38}}\n")
    with pytest.raises(ConfigError, match="sets keyframe_codec.hevc.qp 38, which rate control chooses"):
        build_codec(f"m3cvc:{config}", [0.01])
    (point,) = build_codec(f"m3cvc:{config}", [40], sweep="keyframe_codec.hevc.qp").rate_points()  # QP sweeps stay
    assert point.params == {"keyframe_codec.hevc.qp": 40}
    targeted = tmp_path / "target.yaml"
    targeted.write_text("rate: {target_bpp: 0.01}\n")  # a QP sweep under a target would be replaced at every point
    with pytest.raises(ConfigError, match="makes rate control choose keyframe_codec.hevc.qp"):
        build_codec(f"m3cvc:{targeted}", [40], sweep="keyframe_codec.hevc.qp")
    with pytest.raises(ConfigError, match="for clip.y4m sets keyframes.max_interval 8"):
        from m3cvc.eval.m3cvc_codec import M3cvcCodec

        M3cvcCodec("lite", [0.01], per_clip={"clip.y4m": {"keyframes.max_interval": 8}})


def test_codec_names_and_bad_points():
    assert slug("m3cvc:lite") == "m3cvc-lite"
    with pytest.raises(InputError):
        build_codec("x264", [70])
    with pytest.raises(ConfigError):
        build_codec("x264:foo")
    with pytest.raises(ConfigError):
        build_codec("m3cvc:lite", [1], sweep="keyframes.selector")


# ---------------------------------------------------------------------------------------- harness
class Counting:
    """Wraps a codec and counts encodes (to check resume)."""

    def __init__(self, codec):
        self.codec, self.calls = codec, 0
        self.name = codec.name

    def __getattr__(self, item):
        return getattr(self.codec, item)

    def run(self, clip, point):
        self.calls += 1
        return self.codec.run(clip, point)


def _opts(out: Path, **kw) -> EvalOptions:
    return EvalOptions(out=out, preprocess=PreprocessConfig(width=W, height=H), max_frames=N,
                       metrics=("psnr", "ms_ssim", "lpips", "vmaf"), progress=False, **kw)  # fmt: skip


def test_schema_csv_and_resume(video_folder, tmp_path):
    out = tmp_path / "results"
    dataset = load_dataset(str(video_folder))
    x264 = Counting(build_codec("x264", [51, 40]))
    lite = Counting(build_codec("m3cvc:lite", [10]))
    notes = []
    csv_path = EvalRun(dataset, [x264, lite], _opts(out), log=notes.append).run()
    assert x264.calls == 2 and lite.calls == 1
    data = json.loads((out / "videos" / "x264.json").read_text())
    assert data["schema"] == SCHEMA and data["codec"]["name"] == "x264"
    assert "veryslow" in data["codec"]["description"] and data["preprocess"]["max_frames"] == N
    seq = data["sequences"]["shapes"]
    assert (seq["frames"], seq["width"], seq["height"]) == (N, W, H)
    p = seq["points"][0]
    assert set(p) >= {"point", "params", "bytes", "bpp", "encode_s", "decode_s", "metrics", "per_frame"}
    assert p["bpp"] == pytest.approx(8 * p["bytes"] / (N * W * H))
    assert p["metrics"]["psnr"] > 15 and 0 < p["metrics"]["ms_ssim"] <= 1 and 0 <= p["metrics"]["vmaf"] <= 100
    assert p["metrics"]["vmaf_hmean"] <= p["metrics"]["vmaf"] + 1e-9
    # per-frame arrays: one value per frame, the stored value is their mean (libvmaf's pooled mean for VMAF)
    for name in ("psnr", "ms_ssim", "vmaf"):
        assert len(p["per_frame"][name]) == N
        assert p["metrics"][name] == pytest.approx(np.mean(p["per_frame"][name]), abs=1e-4)
    assert data["metric_info"]["vmaf"]["model"] == "vmaf_v0.6.1"
    if p["metrics"]["lpips"] is None:  # no backbone weights here: noted once, stored as null
        assert sum("lpips unavailable" in n for n in notes) == 1 and "lpips" in data["metric_notes"]
        assert "lpips" not in p["per_frame"]
    else:
        assert len(p["per_frame"]["lpips"]) == N and data["metric_info"]["lpips"]["net"] == "alex"
    rows = csv_path.read_text().splitlines()
    assert rows[0].split(",") == list(CSV_FIELDS) and len(rows) == 1 + 3
    # resume: nothing is coded again; a new rate point is the only work
    x264b = Counting(build_codec("x264", [51, 40]))
    EvalRun(dataset, [x264b], _opts(out), log=notes.append).run()
    assert x264b.calls == 0
    x264c = Counting(build_codec("x264", [51, 40, 30]))
    EvalRun(dataset, [x264c], _opts(out), log=notes.append).run()
    assert x264c.calls == 1
    assert len(json.loads((out / "videos" / "x264.json").read_text())["sequences"]["shapes"]["points"]) == 3
    stored = json.loads((out / "videos" / "x264.json").read_text())["sequences"]["shapes"]
    assert Path(stored["source"]).is_absolute()  # reports find it from any working directory
    # a changed source file is measured again, not resumed (its stored points are dropped)
    import os

    clip = video_folder / "shapes.y4m"
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = Counting(build_codec("x264", [51, 40]))
    EvalRun(dataset, [again], _opts(out), log=notes.append).run()
    assert again.calls == 2 and any("changed since" in n for n in notes)
    assert len(json.loads((out / "videos" / "x264.json").read_text())["sequences"]["shapes"]["points"]) == 2
    # other settings are refused unless forced
    with pytest.raises(ConfigError):
        EvalRun(dataset, [build_codec("x264", [51], preset="medium")], _opts(out)).run()
    forced = Counting(build_codec("x264", [51], preset="medium"))
    EvalRun(dataset, [forced], _opts(out, force=True)).run()
    assert forced.calls == 1


def test_missing_dataset_files_are_reported_not_faked(tmp_path):
    defn = tmp_path / "set.yaml"
    defn.write_text(
        "name: tiny\nroot: data\nformat: yuv\nsequences:\n"
        "  - {name: a, file: a_64x64.yuv, width: 64, height: 64, fps: 8, frames: 4, pix_fmt: yuv420p}\n"
        "  - {name: b, file: b_64x64.yuv, width: 64, height: 64, fps: 8, frames: 4, pix_fmt: yuv420p}\n"
    )
    (tmp_path / "data").mkdir()
    rng = np.random.default_rng(0)
    (tmp_path / "data" / "a_64x64.yuv").write_bytes(rng.integers(0, 255, 64 * 64 * 3 // 2 * 4, dtype=np.uint8).tobytes())
    dataset = load_dataset(str(defn))
    assert [s.name for s in dataset.missing()] == ["b"]
    opts = EvalOptions(out=tmp_path / "r", preprocess=PreprocessConfig(width=64, height=64), metrics=("psnr",), progress=False)
    with pytest.raises(InputError, match="1 of 2 files missing"):
        EvalRun(dataset, [build_codec("x264", [40])], opts).run()
    EvalRun(dataset, [build_codec("x264", [40])], EvalOptions(**{**opts.__dict__, "skip_missing": True})).run()
    data = json.loads((tmp_path / "r" / "tiny" / "x264.json").read_text())
    assert list(data["sequences"]) == ["a"] and data["sequences"]["a"]["frames"] == 4


def test_a_rerun_without_a_metric_keeps_its_stored_provenance(tmp_path):
    from m3cvc.eval.results import ResultsFile

    def header(info):
        return {"schema": SCHEMA, "codec": {"name": "x", "settings_key": "k"}, "preprocess": {}, "metric_info": {"lpips": info}}

    path = tmp_path / "x.json"
    ResultsFile(path, header({"available": True, "net": "alex", "sha256": "aaaa"})).save()
    ResultsFile(path, header({"available": False, "reason": "no weights here"})).save()  # weights missing this time
    assert json.loads(path.read_text())["metric_info"]["lpips"]["sha256"] == "aaaa"
    with pytest.raises(ConfigError, match="other metric settings or weights"):
        ResultsFile(path, header({"available": True, "net": "alex", "sha256": "bbbb"}))


def test_bad_raw_definitions_are_refused_before_any_coding(tmp_path):
    """Types in the definition, and a raw file that the definition does not describe (not whole frames, an
    unknown pixel format), are one-line errors before any point is coded."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.yuv").write_bytes(bytes(64 * 64 * 3 // 2 * 4))
    opts = EvalOptions(out=tmp_path / "r", preprocess=PreprocessConfig(width=64, height=64), metrics=("psnr",), progress=False)
    for entry, message in (("width: '64'", "width must be a positive integer"), ("fps: abc", "fps must be a positive number"),
                           ("width: 60", "not a whole number"), ("pix_fmt: yuv999p", "unknown raw pixel format")):  # fmt: skip
        fields = {"width": "width: 64", "fps": "fps: 8", "pix_fmt": "pix_fmt: yuv420p"}
        fields[entry.split(":")[0]] = entry
        defn = tmp_path / "set.yaml"
        defn.write_text("name: tiny\nroot: data\nformat: yuv\nsequences:\n"
                        f"  - {{name: a, file: a.yuv, height: 64, {', '.join(fields.values())}}}\n")  # fmt: skip
        with pytest.raises((InputError, ConfigError), match=message):
            EvalRun(load_dataset(str(defn)), [build_codec("x264", [40])], opts).run()
        assert not (tmp_path / "r" / "tiny" / "x264.json").exists()


def test_shipped_definitions():
    counts = {"uvg": 7, "mcl-jcv": 30, "hevc-b": 5, "hevc-c": 4}
    for name, n in counts.items():
        ds = load_dataset(name, data_root="/nonexistent")
        assert len(ds.sequences) == n and len(ds.missing()) == n
        s = ds.sequences[0]
        assert s.path.suffix == ".yuv" and s.width and s.height and s.fps and s.frames and s.pix_fmt == "yuv420p"
    assert load_dataset("hevc-c").sequences[0].open_kwargs()["raw_size"] == (832, 480)


def test_quick_dataset_is_deterministic(tmp_path):
    a = load_dataset("quick", cache_dir=tmp_path / "a")
    b = load_dataset("quick", cache_dir=tmp_path / "b")
    assert [s.name for s in a.sequences] == ["bikes", "shapes", "pan"]
    for sa, sb in zip(a.sequences[1:], b.sequences[1:]):
        assert sa.path.read_bytes() == sb.path.read_bytes()


# ---------------------------------------------------------------------------------------- BD-rate
def test_bd_rate_hand_computed():
    # PSNR rises 2 dB per doubling of rate; the test codec needs half the rate for the same PSNR:
    # BD-rate = 10^(mean log10 ratio) - 1 = -50 %, BD-PSNR = +2 dB (Akima is exact on straight lines)
    anchor = Curve((1.0, 2.0, 4.0, 8.0), (30.0, 32.0, 34.0, 36.0))
    test = Curve((0.5, 1.0, 2.0, 4.0), (30.0, 32.0, 34.0, 36.0))
    r = bd(anchor, test, "psnr")
    assert r.bd_rate == pytest.approx(-50.0) and r.bd_quality == pytest.approx(2.0)
    assert r.overlap_quality == pytest.approx(1.0) and r.overlap_rate == pytest.approx(0.5) and r.monotonic


@pytest.mark.parametrize("metric", ["lpips", "dists"])
def test_bd_rate_lower_is_better_metrics_are_negated_and_no_overlap_is_none(metric):
    anchor = Curve((1.0, 2.0, 4.0, 8.0), (0.5, 0.4, 0.3, 0.2))
    test = Curve((0.5, 1.0, 2.0, 4.0), (0.5, 0.4, 0.3, 0.2))
    r = bd(anchor, test, metric)
    assert r.bd_rate == pytest.approx(-50.0) and r.bd_quality == pytest.approx(-0.1)
    vmaf = bd(Curve((1.0, 2.0, 4.0, 8.0), (20, 40, 60, 80)), Curve((0.5, 1.0, 2.0, 4.0), (20, 40, 60, 80)), "vmaf")
    assert vmaf.bd_rate == pytest.approx(-50.0) and vmaf.bd_quality > 0
    far = bd(Curve((1, 2, 4), (30, 32, 34)), Curve((10, 20, 40), (40, 42, 44)), "psnr")
    assert far.bd_rate is None and far.bd_quality is None and "do not overlap" in far.note
    # two rate points that landed on the same stream (rate control below reach): one point, no crash
    same = bd(Curve((1.0, 2.0, 4.0, 8.0), (30, 32, 34, 36)), Curve((1.0, 2.0, 2.0, 4.0), (30, 32, 32, 34)), "psnr")
    assert same.bd_quality == pytest.approx(0.0, abs=1e-9) and same.bd_rate == pytest.approx(0.0, abs=1e-6)
    assert same.monotonic and "monotonic" not in same.note
    odd = bd(Curve((1, 2, 4, 8), (30, 33, 32, 36)), Curve((1, 2, 4), (31, 33, 35)), "psnr")
    assert not odd.monotonic and odd.bd_rate is not None and math.isfinite(odd.bd_rate)


def test_bd_uses_pchip_where_akima_overshoots_between_near_equal_points():
    """Measured on bigbuckbunny (lite_rd): two rate-controlled points 0.03 dB apart made Akima's interpolated
    rate ten times every measured one (+124 %); PCHIP never overshoots (+36 %). Ordinary curves keep Akima."""
    import bjontegaard

    vvc = Curve((0.00235, 0.00313, 0.0054, 0.00953, 0.01906), (21.30, 22.51, 24.17, 26.07, 28.54))
    lite = Curve((0.00179, 0.00271, 0.00393, 0.0054, 0.00888, 0.01276, 0.02027), (20.09, 22.19, 22.70, 23.40, 24.86, 24.89, 26.56))
    akima = bjontegaard.bd_rate(vvc.rates, vvc.values, lite.rates, lite.values, "akima", require_matching_points=False, min_overlap=0)
    pchip = bjontegaard.bd_rate(vvc.rates, vvc.values, lite.rates, lite.values, "pchip", require_matching_points=False, min_overlap=0)
    assert akima > 100 > 40 > pchip > 30  # what the switch is for
    r = bd(vvc, lite, "psnr")
    assert r.bd_rate == pytest.approx(pchip) and r.interpolation["bd_rate"] == "pchip" and "PCHIP" in r.note
    assert r.as_dict()["interpolation"] == r.interpolation
    # without the near-equal point Akima stays, and gives the package's Akima value
    rates, values = lite.rates[:5] + lite.rates[6:], lite.values[:5] + lite.values[6:]
    plain = bd(vvc, Curve(rates, values), "psnr")
    want = bjontegaard.bd_rate(vvc.rates, vvc.values, rates, values, "akima", require_matching_points=False, min_overlap=0)
    assert plain.interpolation == {"bd_rate": "akima", "bd_quality": "akima"} and plain.bd_rate == pytest.approx(want) and "PCHIP" not in plain.note


def test_dataset_curves_of_a_comparison_average_the_shared_sequences_only():
    """A codec run on more sequences than the anchor is compared on the sequences both have."""
    from m3cvc.eval.bdrate import compare

    def seq(scale, shift):
        return {"points": [{"point": f"q{i}", "bpp": b * scale, "metrics": {"psnr": 30 + i + shift}} for i, b in enumerate((0.01, 0.02, 0.04, 0.08))]}

    anchor = {"codec": {"name": "a"}, "sequences": {"easy": seq(1.0, 0)}}
    test = {"codec": {"name": "t"}, "sequences": {"easy": seq(0.8, 0), "hard": seq(3.0, -5)}}
    row = compare(anchor, test, "psnr")
    assert row["dataset_curve"]["bd_rate"] == pytest.approx(-20.0, abs=0.01)  # "hard" left out of the means
    assert row["dataset_sequences"] == {"shared": 1, "anchor": 1, "test": 2}
    from m3cvc.eval.report import format_bd

    assert "curves over the 1 shared sequences (anchor 1, test 2)" in format_bd({"d": {"psnr": [row]}})


def test_dataset_curve_averages_sequences():
    res = {"sequences": {
        "a": {"points": [{"point": "p1", "bpp": 0.1, "metrics": {"psnr": 30.0}}, {"point": "p2", "bpp": 0.2, "metrics": {"psnr": 32.0}}]},
        "b": {"points": [{"point": "p1", "bpp": 0.3, "metrics": {"psnr": 20.0}}]},
    }}  # fmt: skip
    c = dataset_curve(res, "psnr")
    assert c.labels == ("p1",) and c.rates == pytest.approx((0.2,)) and c.values == pytest.approx((25.0,))


# ---------------------------------------------------------------------------------------- CLI, plots
def test_cli_eval_bdrate_plots(video_folder, tmp_path, capsys):
    out = tmp_path / "res"
    args = ["eval", "--dataset", str(video_folder), "--out", str(out), "--codecs", "x264,x265", "--size", f"{W}x{H}",
            "--max-frames", str(N), "--points", "x264=51,45,40", "--points", "x265=51,45,40",
            "--metrics", "psnr,ms_ssim,vmaf", "-q"]  # fmt: skip
    assert cli_main(args) == 0
    folder = out / "videos"
    assert {p.name for p in (folder / "plots").iterdir()} == {
        f"videos_{m}.{ext}" for m in ("psnr", "ms_ssim", "vmaf") for ext in ("png", "svg")
    }  # fmt: skip
    table = capsys.readouterr().out
    assert "vmaf" in table.splitlines()[1] and "lpips" not in table  # the R-D table shows the measured metrics
    svg = (folder / "plots" / "videos_psnr.svg").read_bytes()
    assert cli_main(["bdrate", str(out), "--anchor", "x264", "--plots"]) == 0
    assert (out / "plots" / "videos_psnr.svg").read_bytes() == svg  # same results -> same file
    report = json.loads((out / "bdrate_x264.json").read_text())
    row = report["videos"]["psnr"][0]
    assert row["test"] == "x265" and row["anchor"] == "x264" and "overlap_quality" in row["dataset_curve"]
    assert report["videos"]["vmaf"][0]["test"] == "x265" and "lpips" in report["videos"]["missing_metrics"]
    printed = capsys.readouterr().out
    assert "videos / vmaf vs x264" in printed and "x265" in printed
    assert "of seqs" in printed and row["mean_sequence_count"] == "1/1"  # how many sequences the mean covers
    assert group_by_dataset(out)["videos"].keys() == {"x264", "x265"}
    # another tool's curve imported from CSV joins the comparison
    rows = [r.split(",") for r in (out / "videos" / "results.csv").read_text().splitlines()]
    col = {name: i for i, name in enumerate(rows[0])}
    vtm = ["codec,sequence,bpp,psnr"] + [
        f"vtm,{r[col['sequence']]},{float(r[col['bpp']]) * 0.5},{r[col['psnr']]}" for r in rows[1:] if r[col["codec"]] == "x264"
    ]  # fmt: skip
    (tmp_path / "vtm.csv").write_text("\n".join(vtm) + "\n")
    assert cli_main(["bdrate", str(out), "--anchor", "x264", "--import", str(tmp_path / "vtm.csv"), "--metrics", "psnr"]) == 0
    report = json.loads((out / "bdrate_x264.json").read_text())
    vtm_row = next(r for r in report["videos"]["psnr"] if r["test"] == "vtm")
    assert vtm_row["dataset_curve"]["bd_rate"] == pytest.approx(-50.0, abs=0.01)
    # row order does not matter (unnamed points are labelled by rate); a spreadsheet's BOM is fine
    shuffled = [vtm[0]] + list(reversed(vtm[1:]))
    (tmp_path / "vtm_rev.csv").write_text("\ufeff" + "\n".join(shuffled) + "\n", encoding="utf-8")
    assert cli_main(["bdrate", str(out), "--anchor", "x264", "--import", str(tmp_path / "vtm_rev.csv"), "--metrics", "psnr", "-y",
                     "--json", str(tmp_path / "rev.json")]) == 0  # fmt: skip
    rev = json.loads((tmp_path / "rev.json").read_text())
    assert next(r for r in rev["videos"]["psnr"] if r["test"] == "vtm")["dataset_curve"]["bd_rate"] == pytest.approx(-50.0, abs=0.01)
    capsys.readouterr()
    # bad rows, a curve named like a measured codec, and --json onto an existing file: one line, exit 2
    results_json = out / "videos" / "x265.json"
    before = results_json.read_bytes()
    for name, text in (("short.csv", vtm[0] + "\nvtm,seq\n"), ("empty.csv", vtm[0] + "\nvtm,seq,,30\n"),
                       ("zero.csv", vtm[0] + "\nvtm,seq,0,30\n"), ("clash.csv", vtm[0].replace("vtm", "x") + "\n" + vtm[1].replace("vtm,", "x265,"))):
        (tmp_path / name).write_text(text)
        assert cli_main(["bdrate", str(out), "--anchor", "x264", "--import", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)
    assert cli_main(["bdrate", str(out), "--anchor", "x264", "--json", str(results_json)]) == 2
    assert "is the input file" in capsys.readouterr().err and results_json.read_bytes() == before
    # found by a try-out: with -y the report replaced the results it was computed from (and eval's CSV)
    csv = out / "videos" / "results.csv"
    csv_before = csv.read_bytes()
    for target in (results_json, csv, tmp_path / "vtm.csv"):
        extra = ["--import", str(tmp_path / "vtm.csv")] if target.suffix == ".csv" and target.parent == tmp_path else []
        assert cli_main(["bdrate", str(out), "--anchor", "x264", "--json", str(target), "-y", *extra]) == 2, target
        err = capsys.readouterr()
        assert "is the input file" in err.err and "videos / " not in err.out  # refused before any work
    assert results_json.read_bytes() == before and csv.read_bytes() == csv_before
    assert cli_main(["eval", "--dataset", str(video_folder), "--out", str(out), "--points", "x264=45,45"]) == 2
    assert "given twice" in capsys.readouterr().err
    assert cli_main(["bdrate", str(out), "--anchor", "vvc"]) == 2
    assert cli_main(["eval", "--dataset", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert cli_main(["eval", "--dataset", str(video_folder), "--out", str(out), "--metrics", "ssim"]) == 2
    # a run whose every point fails says so, with the first error, not "no results files"
    capsys.readouterr()
    assert cli_main(["eval", "--dataset", str(video_folder), "--out", str(tmp_path / "allfail"), "--codecs", "m3cvc:lite",
                     "--points", "m3cvc:lite=38", "--metrics", "psnr", "-q"]) == 2  # fmt: skip
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "every point failed (1): nothing was measured" in last and "beyond any keyframe chain" in last, last


def test_ablation_rows_and_cli(video_folder, tmp_path, capsys, monkeypatch):
    from m3cvc.eval.ablation import table_rows

    rows = table_rows(4)
    assert [r.setting for r in rows if r.group == "keyframe selection"] == [
        "fixed-interval", "lambda1 != 0, lambda2 = 0", "lambda1 != 0, lambda2 != 0"
    ]  # fmt: skip
    assert any(r.group == "LMM" for r in rows)
    out = tmp_path / "abl"
    args = ["ablate", "--dataset", str(video_folder), "--out", str(out), "--size", f"{W}x{H}", "--max-frames", str(N),
            "--points", "vvc=63,53,43", "--points", "m3cvc=45,38,31", "--metrics", "psnr", "-q", "--fixed-interval", "3"]  # fmt: skip
    # the default metric is LPIPS (the paper's Table I metric): without its weights, one clean line, no work
    monkeypatch.delenv("M3CVC_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    assert cli_main(args) == 2
    assert "ablate --metric lpips cannot be measured here" in capsys.readouterr().err and not out.exists()
    assert cli_main(args + ["--metric", "psnr"]) == 0
    table = json.loads((out / "videos" / "ablation.json").read_text())["rows"]
    assert len(table) == len(rows)
    fixed = next(r for r in table if r["setting"] == "fixed-interval")
    assert fixed["mean_keyframes"] >= 2 and "bd_rate" in fixed
    assert "Ablation (Table I)" in capsys.readouterr().out
    # the keyframe strategies are compared at equal keyframe counts, at every rate point (a QP sweep)
    report = json.loads((out / "videos" / "ablation.json").read_text())
    assert report["sweep"] == "keyframe_codec.hevc.qp"
    counts = report["equal_keyframe_counts"]["shapes"]
    per_row = {r["setting"]: r["keyframes_per_clip"]["shapes"] for r in table if r.get("keyframes_per_clip")}
    composite = per_row["lambda1 != 0, lambda2 != 0"]
    assert len(set(composite)) == 1 and composite[0] == counts["composite"]
    for setting in ("fixed-interval", "lambda1 != 0, lambda2 = 0"):
        assert per_row[setting] == [counts[setting]["keyframes"]] * 3
        assert abs(counts[setting]["keyframes"] - counts["composite"]) <= 1, (setting, counts)


def test_resume_redoes_points_missing_a_metric_and_refuses_other_metric_weights(video_folder, tmp_path, monkeypatch):
    """A metric that became available is filled in on resume; values from other weights are never mixed."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("lpips")
    tv = pytest.importorskip("torchvision")
    from m3cvc.eval.metrics import MetricOptions

    monkeypatch.delenv("M3CVC_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    out, dataset = tmp_path / "results", load_dataset(str(video_folder))
    first = Counting(build_codec("x264", [45]))
    EvalRun(dataset, [first], _opts(out)).run()
    point = json.loads((out / "videos" / "x264.json").read_text())["sequences"]["shapes"]["points"][0]
    assert first.calls == 1 and point["metrics"]["lpips"] is None
    # weights appear (random ones: plumbing only, this results folder is thrown away)
    torch.manual_seed(0)
    torch.save(tv.models.alexnet(weights=None).state_dict(), tmp_path / "a.pth")
    second = Counting(build_codec("x264", [45]))
    EvalRun(dataset, [second], _opts(out, metric_options=MetricOptions(lpips_backbone=str(tmp_path / "a.pth")))).run()
    point = json.loads((out / "videos" / "x264.json").read_text())["sequences"]["shapes"]["points"][0]
    assert second.calls == 1 and point["metrics"]["lpips"] is not None and len(point["per_frame"]["lpips"]) == N
    # other weights for the same metric: refused, not mixed into the same curve
    torch.manual_seed(1)
    torch.save(tv.models.alexnet(weights=None).state_dict(), tmp_path / "b.pth")
    with pytest.raises(ConfigError, match="lpips values measured with other metric settings"):
        EvalRun(dataset, [build_codec("x264", [45])], _opts(out, metric_options=MetricOptions(lpips_backbone=str(tmp_path / "b.pth")))).run()


def test_core_install_says_what_is_missing_before_any_work(video_folder, tmp_path, capsys, monkeypatch):
    """Without torch, matplotlib and bjontegaard (the core install) eval names what it cannot do, and which
    extra brings it, before coding anything; it still writes JSON and CSV."""
    import importlib.util
    import sys

    real_find_spec = importlib.util.find_spec
    hidden = {"matplotlib", "bjontegaard"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in hidden else real_find_spec(name, *a))
    for name in ("torch", "lpips", "DISTS_pytorch"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as when not installed
    order = []
    from m3cvc.eval import runner

    real_run_point = runner.run_point
    monkeypatch.setattr(runner, "run_point", lambda job: order.append("work") or real_run_point(job))
    monkeypatch.setattr(runner, "_stderr", lambda msg: order.append(msg))
    out = tmp_path / "res"
    args = ["eval", "--dataset", str(video_folder), "--out", str(out), "--codecs", "x264", "--size", f"{W}x{H}",
            "--max-frames", str(N), "--points", "x264=45", "-q"]  # fmt: skip
    assert cli_main(args) == 0
    printed = capsys.readouterr()
    assert "R-D plots need matplotlib: pip install 'm3cvc[eval]'" in printed.err
    notes = [m for m in order if isinstance(m, str) and m != "work"]
    assert order.index("work") > max(order.index(m) for m in notes)
    for metric in ("lpips", "dists"):
        assert any(m.startswith(f"note: {metric} unavailable (needs torch (install torch, then pip install 'm3cvc[eval]'))") for m in notes)
    assert "no plots" in printed.out and (out / "videos" / "results.csv").is_file()
    point = json.loads((out / "videos" / "x264.json").read_text())["sequences"]["shapes"]["points"][0]
    assert point["metrics"]["lpips"] is None and point["metrics"]["vmaf"] is not None


def test_ablation_dialogue_rows_run_through_an_openai_compatible_server(video_folder, tmp_path, capsys, monkeypatch):
    """The LMM rows (single prompt vs multi-round dialogue) end to end against a local test server:
    speed and rate only, no quality claims (the lite decoder ignores texts)."""
    from describe_helpers import fake_vlm_server

    with fake_vlm_server((W, H)) as server:
        monkeypatch.setenv("M3CVC_OPENAI_BASE_URL", server.url)
        out = tmp_path / "abl"
        args = ["ablate", "--dataset", str(video_folder), "--out", str(out), "--size", f"{W}x{H}", "--max-frames", str(N),
                "--points", "vvc=63,53,43", "--points", "m3cvc=45,38,31", "--metrics", "psnr", "--metric", "psnr", "-q",
                "--describer", "openai"]  # fmt: skip
        assert cli_main(args) == 0, capsys.readouterr().err
        turns = len(server.requests)
    table = {r["setting"]: r for r in json.loads((out / "videos" / "ablation.json").read_text())["rows"]}
    single, dialogue = table["openai: single"], table["openai: dialogue"]
    assert single["bd_rate"] is not None and dialogue["bd_rate"] is not None
    assert turns > 0  # the descriptions really came from the server
    # the same keyframes; the dialogue's texts are longer, so its rate (not its pixels) is higher
    assert single["keyframes_per_clip"] == dialogue["keyframes_per_clip"]
    codecs = {c: json.loads(next((out / "videos").glob(f"*{c}*.json")).read_text()) for c in ("single", "dialogue")}
    bpp = {c: [p["bpp"] for p in d["sequences"]["shapes"]["points"]] for c, d in codecs.items()}
    assert all(d >= s for s, d in zip(bpp["single"], bpp["dialogue"]))


def test_ablation_refuses_bad_options_before_any_work(video_folder, tmp_path, capsys):
    out = tmp_path / "abl"
    base = ["ablate", "--dataset", str(video_folder), "--out", str(out), "--size", f"{W}x{H}", "--max-frames", str(N),
            "--points", "vvc=63,53,43", "--metrics", "psnr", "--metric", "psnr", "-q"]  # fmt: skip
    for bad, message in ((["--points", "m3cvc=45,nan"], "finite"), (["--points", "m3cvc=45,,40"], "numbers"),
                         (["--points", "foo=1,2"], "vvc and m3cvc only"), (["--fixed-interval", "0"], ">= 1"),
                         (["--points", "m3cvc=99,100"], "0..51")):  # fmt: skip
        assert cli_main(base + bad) == 2, bad
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (bad, err)
        assert not list(out.rglob("*.json")), bad  # refused before any codec ran
