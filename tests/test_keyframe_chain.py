"""The lite keyframe chain (HEVC low delay through x265) and rate control (--target-bpp / --target-kbps)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import synthetic_frames, write_video
from m3cvc.bitstream import Keyframe, Stream, read_stream, write_stream
from m3cvc.cli import main as cli_main
from m3cvc.config import load_config, with_overrides
from m3cvc.errors import BitstreamError, ConfigError
from m3cvc.keyframe_codec.hevc import HevcChainCodec, picture_type
from m3cvc.keyframe_codec.hevc import nal_unit_types as nal_types
from m3cvc.pipeline import Decoder, Encoder
from m3cvc.ratecontrol import Candidate, choose

def yaml_safe_load(path):
    import yaml

    return yaml.safe_load(Path(path).read_text())


IDR_TYPES = {19, 20}  # IDR_W_RADL, IDR_N_LP
PARAMETER_SETS = {32, 33, 34}  # VPS, SPS, PPS


def _lite(**sections):
    return with_overrides(load_config(profile="lite"), **sections)


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory):
    """24 frames 96x64: a pan, a scene cut at frame 13, the other scene panning on."""
    return write_video(tmp_path_factory.mktemp("chain") / "cut.y4m", synthetic_frames(24, cut_at=13))


def test_chain_round_trip_exact_frames_deterministic_bytes(cut_video):
    cfg = _lite(preprocess={"width": 96, "height": 64}, keyframes={"max_interval": 4})
    a, b = Encoder(cfg).encode(cut_video), Encoder(cfg).encode(cut_video)
    assert a.data == b.data  # same input + settings -> byte-identical stream
    stream = read_stream(a.data)
    assert stream.header.keyframe_codec.name == "hevc" and len(stream.keyframes) >= 6
    frames = list(Decoder().decode(a.data))
    assert len(frames) == 24 and all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in frames)
    # every keyframe unit is a raw access unit: no container, one slice, parameter sets only with IDRs
    for kf in stream.keyframes:
        types = nal_types(kf.data)
        assert kf.data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))
        assert bool(PARAMETER_SETS & set(types)) == bool(IDR_TYPES & set(types))
    # inter coding: a keyframe inside a shot costs far less than the IDR that starts it
    sizes = [len(k.data) for k in stream.keyframes]
    assert max(sizes[1:3]) < sizes[0] / 2


@pytest.mark.parametrize("size", [(96, 64), (128, 64)])
def test_chain_bytes_do_not_depend_on_what_the_process_coded_before(size):
    """x265's weighted-prediction analysis read uninitialised memory at these sizes: after a chain at a
    low QP, the same chain at QP 47 came out different from a fresh process's (weightp is now off)."""
    import hashlib
    import subprocess
    import sys

    code = (
        "import hashlib, sys; sys.path[:0] = sys.argv[1:3]\n"
        "from conftest import synthetic_frames\n"
        "from m3cvc.keyframe_codec.hevc import HevcChainCodec\n"
        f"c = HevcChainCodec(47); fr = synthetic_frames(12, {size[0]}, {size[1]}, cut_at=7)\n"
        "print(hashlib.sha256(b''.join(c.compress(f) for f in fr)).hexdigest())\n"
    )
    tests = str(Path(__file__).parent)
    src = str(Path(__file__).parents[1] / "src")
    fresh = subprocess.run([sys.executable, "-c", code, tests, src], capture_output=True, text=True, check=True)
    frames = synthetic_frames(12, *size, cut_at=7)
    for qp in (29, 35):
        c = HevcChainCodec(qp)
        [c.compress(f) for f in frames]
    c = HevcChainCodec(47)
    assert hashlib.sha256(b"".join(c.compress(f) for f in frames)).hexdigest() == fresh.stdout.strip()


def test_scene_cut_starts_an_idr_and_nothing_else_does(cut_video):
    cfg = _lite(preprocess={"width": 96, "height": 64}, keyframes={"max_interval": 4})
    stream = read_stream(Encoder(cfg).encode(cut_video).data)
    idr = [k.index for k in stream.keyframes if IDR_TYPES & set(nal_types(k.data))]
    first_after_cut = min(k.index for k in stream.keyframes if k.index >= 13)
    assert idr == [0, first_after_cut]
    assert [picture_type(k.data) == "IDR" for k in stream.keyframes] == [k.index in idr for k in stream.keyframes]


def test_image_codec_is_still_available_and_intra_only(cut_video):
    cfg = _lite(preprocess={"width": 96, "height": 64}, keyframe_codec={"backend": "avif"})
    result = Encoder(cfg).encode(cut_video)
    assert read_stream(result.data).header.keyframe_codec.name == "avif"
    assert len(list(Decoder().decode(result.data))) == 24


def test_odd_frame_size_is_padded_and_cropped():
    frames = synthetic_frames(5, width=51, height=37)
    codec, decoder = HevcChainCodec(30), HevcChainCodec(30)
    for f in frames:
        out = decoder.decompress(codec.compress(f), (37, 51))
        assert out.shape == (37, 51, 3) and np.mean(np.abs(out.astype(int) - f)) < 12


def _restream(stream: Stream, keyframes) -> bytes:
    header = stream.header
    if len(keyframes) != header.num_keyframes:
        from dataclasses import replace

        header = replace(header, num_keyframes=len(keyframes), max_clip=2 * header.max_clip)  # a unit left out
        motion = None
        return write_stream(Stream(header, tuple(keyframes), stream.keyframe_texts[: len(keyframes)],
                                   stream.clip_texts[: len(keyframes)], motion))  # fmt: skip
    return write_stream(Stream(header, tuple(keyframes), stream.keyframe_texts, stream.clip_texts, stream.clip_motion))


def test_reordered_missing_or_foreign_keyframe_units_are_clean_errors(cut_video):
    cfg = _lite(preprocess={"width": 96, "height": 64}, keyframes={"max_interval": 4},
                reconstruct={"flow": {"motion_hints": False}})  # fmt: skip
    stream = read_stream(Encoder(cfg).encode(cut_video).data)
    kfs = list(stream.keyframes)

    def decode(keyframes):
        return list(Decoder().decode(_restream(stream, keyframes)))

    assert len(decode(kfs)) == 24
    # two inter units swapped (frame positions kept): the decoder cannot place them
    swapped = [kfs[0], Keyframe(kfs[1].index, kfs[2].data), Keyframe(kfs[2].index, kfs[1].data), *kfs[3:]]
    with pytest.raises(BitstreamError, match="pictures"):
        decode(swapped)
    # an inter unit removed, its neighbours re-spaced: a reference is missing
    dropped = [kfs[0], Keyframe(kfs[1].index, kfs[2].data), *kfs[3:]]
    with pytest.raises(BitstreamError):
        decode(dropped)
    # a stream must start with an IDR
    with pytest.raises(BitstreamError):
        decode([Keyframe(0, kfs[1].data), *kfs[1:]])
    # not HEVC at all: format 4 cannot even write it, a format 3 stream says so on decode
    with pytest.raises(ValueError, match="start codes"):
        decode([Keyframe(0, b"\x12\x34" * 20), *kfs[1:]])
    foreign = write_stream(replace(stream, keyframes=(Keyframe(0, b"\x12\x34" * 20), *kfs[1:]), version=3))
    with pytest.raises(BitstreamError, match="no start code"):
        list(Decoder().decode(foreign))


def test_format_4_codes_access_units_compactly_and_exactly(cut_video):
    """Format 4 stores x265's access units without start codes and its usual parameter sets as table
    indices; every unit comes back byte for byte, and a damaged compact unit is a clean error."""
    from m3cvc.bitstream import keyframe_sizes, section_sizes
    from m3cvc.keyframe_codec.hevc import PARAMETER_SETS, pack_access_unit, split_access_unit, unpack_access_unit

    from m3cvc.pipeline import clip_motions
    from m3cvc.reconstruct.motion import encode_clip_motion

    cfg = _lite(preprocess={"width": 512, "height": 320}, reconstruct={"flow": {"timing": False}})  # (format 4 only)
    data = Encoder(cfg).encode(cut_video).data
    stream = read_stream(data)
    assert stream.version == 4
    v3 = write_stream(replace(stream, version=3, clip_motion=encode_clip_motion(clip_motions(stream), 3)))
    assert read_stream(v3).keyframes == stream.keyframes  # the same access units in both formats
    assert all(np.array_equal(a, b) for a, b in zip(Decoder().decode(data), Decoder().decode(v3), strict=True))
    idr = [k for k in stream.keyframes if picture_type(k.data) == "IDR"]
    assert len(idr) == 2  # the first keyframe and the cut
    # x265 writes the default size's parameter sets exactly as the format's table has them (when this
    # fails, x265 changed: its parameter sets still round-trip, raw, and the table may gain entries)
    for k in idr:
        assert split_access_unit(k.data)[:3] == list(PARAMETER_SETS[:3])
        assert len(pack_access_unit(k.data)) == len(k.data) - 82  # 86 bytes of parameter sets and start codes -> 4
    for k in stream.keyframes:
        assert unpack_access_unit(pack_access_unit(k.data)) == k.data
    sizes = keyframe_sizes(data)
    assert sizes == [len(pack_access_unit(k.data)) for k in stream.keyframes]
    saved = section_sizes(v3)["keyframe_images"] - section_sizes(data)["keyframe_images"]
    assert saved == 82 * len(idr) + 3 * (len(stream.keyframes) - len(idr))
    # parameter sets the table lacks (another size) are carried raw and still round-trip
    small = HevcChainCodec(40).compress(synthetic_frames(1, width=96, height=64)[0])
    assert split_access_unit(small)[1] not in PARAMETER_SETS  # its SPS (VPS and PPS do not depend on the size)
    assert unpack_access_unit(pack_access_unit(small)) == small
    # damaged compact units
    packed = pack_access_unit(idr[0].data)
    for bad, message in [(b"\x05\x00\x01\x02", "more NAL units"), (bytes([1, 200]) + b"\x40" * 10, "truncated"),
                         (b"\x03\x00\x01\x02", "no picture"),  # three table entries, then nothing
                         (packed[:1] + bytes([len(PARAMETER_SETS)]) + packed[2:], "truncated")]:  # a 0-byte NAL unit
        with pytest.raises(BitstreamError, match=message):
            unpack_access_unit(bad)
    with pytest.raises(ValueError):
        pack_access_unit(b"\x00\x00\x01" + b"\x02\x01\xd0")  # a 3-byte start code first: not x265's form


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError):
        HevcChainCodec(52)
    with pytest.raises(ConfigError):
        HevcChainCodec(40, "warp")


# ------------------------------------------------------------------------------------- rate control
def test_choice_rule_densest_fine_enough_candidate_in_band_then_lowest_qp():
    px = 8000  # 1 byte = 0.001 bpp
    cands = [Candidate(32, 45, 9, 2), Candidate(8, 49, 10, 5), Candidate(16, 45, 11, 3), Candidate(16, 43, 10, 3),
             Candidate(4, 45, 14, 9)]  # fmt: skip
    # in band (9..11 bytes): (8, 49) is densest but coarser than QP_CAP; then spacing 16 at its lowest QP
    assert choose(cands, 0.010, px) == (Candidate(16, 43, 10, 3), True)
    assert choose([Candidate(8, 49, 10, 5), Candidate(32, 51, 9, 2)], 0.010, px) == (Candidate(8, 49, 10, 5), True)
    assert choose(cands, 0.030, px) == (Candidate(4, 45, 14, 9), False)  # above reach: the largest below
    assert choose(cands, 0.001, px) == (Candidate(32, 45, 9, 2), False)  # below reach: the smallest


def test_rate_plan_note_says_whether_the_target_was_in_a_gap_above_or_below_reach():
    """Found by a try-out: a target above every stream was reported like one between two rungs."""
    from m3cvc.ratecontrol import QPS, RatePlan

    px = 1000
    fine, coarse = Candidate(4, 29, 100, 5), Candidate(4, 31, 80, 5)

    def note(target, cands, cut=0):
        chosen, within = choose(cands, target, px)
        return RatePlan(target, px, tuple(cands), chosen, within, cut_short=cut).note()

    assert min(QPS) == 29 and "(above reach;" in note(2.0, [fine, coarse])
    assert "(closest below; 2 candidates measured, 1 chain cut short" in note(2.0, [fine, coarse], cut=1)  # a larger one exists
    gap = note(0.72, [coarse, fine])  # 0.64 and 0.8 bpp: more than 10 % from 0.72 either way
    assert "(closest below;" in gap and "QP 31: 0.64000 bpp" in gap and "(below reach;" in note(0.5, [coarse, fine])
    assert "(within 10 %;" in note(0.8, [coarse, fine])


def test_choice_by_measured_distortion_ranks_one_finalist_per_spacing():
    """``rate.choice: gmsd``: each spacing's lowest in-band QP is a finalist; the lowest measured distortion
    wins (ties: the denser spacing), whatever the rule would take; one finalist needs no measurement."""
    px = 8000
    cands = [Candidate(32, 45, 10, 2), Candidate(8, 49, 10, 5), Candidate(16, 45, 11, 3), Candidate(16, 43, 10, 3),
             Candidate(4, 45, 14, 9), Candidate(32, 43, 12, 2)]  # fmt: skip  (32/43 is above the band)
    asked = []

    def distortion(c):
        asked.append(c)
        return {32: 0.10, 16: 0.12, 8: 0.11}[c.interval]

    assert choose(cands, 0.010, px, distortion=distortion) == (Candidate(32, 45, 10, 2), True)
    assert sorted(asked, key=str) == sorted([Candidate(16, 43, 10, 3), Candidate(32, 45, 10, 2)], key=str)
    # finalists coarser than QP_CAP compete only when no finer one is in the band; ties go to the denser
    assert choose(cands, 0.010, px, distortion=lambda c: 0.3 if c.interval == 16 else 0.2) == (Candidate(32, 45, 10, 2), True)
    assert choose(cands, 0.010, px, distortion=lambda c: 0.1 if c.interval == 8 else 0.2) == (Candidate(16, 43, 10, 3), True)
    assert choose(cands, 0.010, px) == (Candidate(16, 43, 10, 3), True)  # no measurement: the rule
    asked.clear()
    assert choose([Candidate(4, 45, 14, 9)], 0.014, px, distortion=distortion) == (Candidate(4, 45, 14, 9), True)
    assert not asked


def test_rate_control_decodes_its_finalists_and_keeps_the_least_distorted():
    """The distortion of every finalist is the mean GMSD of what the decoder makes of its stream (checked
    by decoding the chosen stream independently); the choice is the least distorted finalist. On a smooth
    pan, which flow interpolation follows well, that is a sparser spacing with finer keyframes than the
    rule alone (``rate.choice: rule``) takes."""
    from dataclasses import replace
    from fractions import Fraction

    from m3cvc.bitstream import StageInfo
    from m3cvc.ratecontrol import QP_CAP, band_finalists, plan
    from m3cvc.reconstruct.detail import gmsd, luma

    frames = synthetic_frames(24)  # 96x64, panning, no cut
    h, w = frames[0].shape[:2]
    cfg = _lite(rate={"choice": "gmsd"})
    every = plan(cfg, frames, w, h, Fraction(8), 0.05, exhaustive=True)
    pixels = every.pixels
    contested = sorted({c.bpp(pixels) for c in every.candidates
                        if len([f for f in band_finalists(every.candidates, c.bpp(pixels), pixels) if f.qp <= QP_CAP]) > 1})
    assert len(contested) >= 3
    differ = 0
    for target in contested[len(contested) // 4 :: max(1, len(contested) // 4)][:3]:
        measured = plan(cfg, frames, w, h, Fraction(8), target)
        # sizes measured with this target in the header (format 4 codes a short decimal in fewer bytes)
        same = plan(cfg, frames, w, h, Fraction(8), target, exhaustive=True).candidates
        finalists = [f for f in band_finalists(same, target, pixels) if f.qp <= QP_CAP]
        assert set(measured.distortions) == set(finalists) and measured.within
        assert measured.distortions[measured.chosen] == min(measured.distortions.values())
        ruled = plan(_lite(), frames, w, h, Fraction(8), target)  # the default
        assert not ruled.distortions and ruled.chosen == min(finalists, key=lambda c: c.interval)
        differ += measured.chosen.interval > ruled.chosen.interval
    assert differ >= 1
    stream = measured.stream
    header = replace(stream.header, reconstructor=StageInfo(stream.header.reconstructor.name,
                                                            {**stream.header.reconstructor.params, "sharpen": 0}))
    decoded = list(Decoder().decode(write_stream(replace(stream, header=header))))
    mean = float(np.mean([gmsd(luma(a), luma(b)) for a, b in zip(frames, decoded)]))
    assert measured.distortions[measured.chosen] == pytest.approx(mean, abs=1e-9)
    assert "compared by GMSD" in measured.note()
    from m3cvc.ratecontrol import summary  # encode --json lists the finalists with their distortion

    listed = summary(measured)["finalists"]
    assert [(f["max_interval"], f["qp"]) for f in listed] == sorted((c.interval, c.qp) for c in measured.distortions)
    assert min(listed, key=lambda f: f["gmsd"])["max_interval"] == measured.chosen.interval
    with pytest.raises(ConfigError, match="rate.choice"):
        plan(_lite(rate={"choice": "lpips"}), frames, w, h, Fraction(8), target)


@pytest.fixture(scope="module")
def quick_clips(tmp_path_factory):
    """The built-in clips of the quick dataset, 24 frames each at 512x320 / 8 fps."""
    import itertools

    from m3cvc.config import PreprocessConfig
    from m3cvc.eval.datasets import load_dataset
    from m3cvc.video import open_video, preprocess

    folder = tmp_path_factory.mktemp("quick")
    out = []
    for seq in load_dataset("quick", cache_dir=folder / "cache").present().sequences:
        with open_video(seq.path, **seq.open_kwargs()) as src:
            frames = list(itertools.islice(iter(preprocess(src, PreprocessConfig())), 24))
        out.append(write_video(folder / f"{seq.name}.y4m", frames))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("target", [0.004, 0.012])
def test_rate_control_lands_within_10_percent_on_the_built_in_clips(quick_clips, target):
    for path in quick_clips:
        result = Encoder(_lite(rate={"target_bpp": target})).encode(path)
        assert result.rate_plan.predicted_bpp == pytest.approx(result.bpp)  # the plan is exact
        assert abs(result.bpp / target - 1) <= 0.10, (path.name, result.rate_plan.note())
        params = read_stream(result.data).header.keyframe_codec.params
        assert params["target_bpp"] == target and params["qp"] == result.rate_plan.chosen.qp


@pytest.mark.slow
def test_rate_analysis_measures_only_what_the_rule_needs_and_threads_do_not_change_bytes(quick_clips):
    """The search over the QP ladder measures far fewer candidates, yet chooses what coding every
    (spacing, QP) candidate chooses, in the band, above reach and below reach (a target between two rungs:
    test_rate_plan_note_says_whether_the_target_was_in_a_gap_above_or_below_reach); the worker count
    changes nothing (the search's rounds are fixed)."""
    from fractions import Fraction

    from m3cvc.ratecontrol import plan
    from m3cvc.video import read_frames

    cfg = _lite()
    notes = set()
    for path in quick_clips:
        frames = read_frames(path)
        h, w = frames[0].shape[:2]
        for target in (0.002, 0.003, 0.012, 0.03):
            every = plan(cfg, frames, w, h, Fraction(8), target, exhaustive=True)
            coded = {1: [], 2: []}  # keyframes coded by the search (with 2 workers, the first round during the pass)
            fast = plan(cfg, frames, w, h, Fraction(8), target, workers=2, search_progress=coded[2].append)
            one = plan(cfg, frames, w, h, Fraction(8), target, workers=1, search_progress=coded[1].append)
            assert fast.chosen == one.chosen == every.chosen, (path.name, target, fast.note(), every.note())
            assert len(fast.candidates) < len(every.candidates) == 4 * 12
            assert one.candidates == fast.candidates and set(fast.candidates) <= set(every.candidates)
            assert fast.data == one.data == every.data
            assert len(coded[2]) == len(coded[1]) and fast.cut_short == one.cut_short  # not one unit more
            notes.add(fast.note().split("(")[1].split(";")[0])
    assert notes == {"within 10 %", "above reach", "below reach"}  # every branch of the rule but the gap (see above)


def test_after_a_coarse_finalist_sparser_spacings_are_searched_only_up_to_the_qp_cap(cut_video, monkeypatch):
    """Once the densest spacing has a finalist coarser than QP_CAP, a sparser spacing can only win with a
    fine one, so its search stays at QP_CAP and below; the choice and bytes equal measuring every candidate.
    A spacing's motion hints are assembled only for its first chain coded whole (none for a spacing
    whose chains were all cut short: its clips' trials may stop early)."""
    from fractions import Fraction

    from m3cvc.pipeline import _HintCollector
    from m3cvc.ratecontrol import QP_CAP, plan
    from m3cvc.video import read_frames

    paid: list[int] = []
    payload = _HintCollector.payload
    monkeypatch.setattr(_HintCollector, "payload", lambda self: paid.append(id(self)) or payload(self))
    frames = read_frames(cut_video)
    h, w = frames[0].shape[:2]
    cfg = _lite()
    every = plan(cfg, frames, w, h, Fraction(8), 0.05, exhaustive=True)
    coarse = [c for c in every.candidates if c.interval == 4 and c.qp > QP_CAP]
    assert coarse
    for c in coarse:
        target = c.bpp(every.pixels)
        want = plan(cfg, frames, w, h, Fraction(8), target, exhaustive=True)
        paid.clear()
        got = plan(cfg, frames, w, h, Fraction(8), target)
        assert got.chosen == want.chosen and got.data == want.data, got.note()
        assert all(k.qp <= QP_CAP for k in got.candidates if k.interval > 4), got.note()
        sparser = {k.interval for k in want.candidates if k.interval > 4 and k.qp <= QP_CAP and k.bytes <= c.bytes * 1.1}
        assert sparser or got.cut_short  # the sparser spacings were searched (fine candidates fit, or cut short)
        assert len(paid) == len(set(paid)) == len({k.interval for k in got.candidates})


def test_below_reach_every_spacing_is_searched_only_for_streams_as_small_as_the_smallest(cut_video, monkeypatch):
    """Below reach rule 2 takes the smallest stream: every spacing's search for it looks for sizes at most the
    smallest QP 51 stream of all (not its own) and cuts chains past it, so spacings whose QP 51 stream is
    larger code nothing more; the choice equals measuring every candidate."""
    from fractions import Fraction

    import m3cvc.ratecontrol as rc
    from m3cvc.video import read_frames

    thresholds: list = []
    search = rc._search
    monkeypatch.setattr(rc, "_search", lambda m, p, qps, threshold=None, prior=None: thresholds.append(threshold) or search(m, p, qps, threshold, prior))
    frames = read_frames(cut_video)
    h, w = frames[0].shape[:2]
    cfg = _lite()
    coded: list = []
    got = rc.plan(cfg, frames, w, h, Fraction(8), 1e-4, search_progress=coded.append)
    want = rc.plan(cfg, frames, w, h, Fraction(8), 1e-4, exhaustive=True)
    assert got.chosen == want.chosen and got.data == want.data and "below reach" in got.note()
    top = {c.interval: c.bytes for c in got.candidates if c.qp == rc.QPS[0]}
    assert sorted(top) == sorted(rc.INTERVALS) and got.chosen.bytes <= min(top.values())
    assert thresholds[-len(rc.INTERVALS):] == [min(top.values())] * len(rc.INTERVALS)
    assert len(coded) < sum(c.keyframes for c in want.candidates) / 4  # far fewer keyframes than every chain


def test_deferred_hint_trials_stop_when_asked_and_resume_to_the_same_payload(cut_video):
    """Rate control tries a spacing's clips while its chains are coded and stops once all are cut short;
    a later call goes on from the first untried clip, and the payload equals trying every clip at once."""
    from m3cvc.pipeline import _HintCollector
    from m3cvc.reconstruct import build_reconstructor
    from m3cvc.reconstruct.flow import HintTrial
    from m3cvc.video import read_frames

    recon = build_reconstructor(_lite().reconstruct)
    frames = read_frames(cut_video)

    def collected(tried: list) -> _HintCollector:
        kept: list = []
        hints = _HintCollector(recon.motion_estimator(), True, recon.hint_trial(), lambda small: kept.append(small) or len(kept) - 1, kept.__getitem__)
        hints.trial.tried = lambda *a, t=hints.trial: tried.append(1) or HintTrial.tried(t, *a)
        for i, frame in enumerate(frames):
            (hints.keyframe if i % 6 == 0 else hints.frame)(frame)
        return hints

    every: list = []
    once = collected(every).payload()
    calls: list = []
    hints = collected(calls)
    asked: list = []
    assert hints.try_clips(lambda: asked.append(1) or len(asked) > 1) is False
    assert len(calls) == 1 and len(every) == 3  # clips of 6 frames whose next keyframe is known: 3 to try
    assert hints.try_clips(lambda: False) is True and len(calls) == 3
    assert hints.payload() == once and len(calls) == 3  # nothing tried twice


def test_rate_control_writes_the_analysis_stream_which_a_plain_encode_reproduces(cut_video, monkeypatch):
    """Without a describer the analysis has already assembled the chosen stream: the encoder writes it
    without coding the video again, and a plain encode with the chosen settings gives the same bytes.
    With texts the video is coded again, with the same keyframe units and the texts added."""
    from m3cvc.describe import Descriptions
    from m3cvc.ratecontrol import apply

    cfg = _lite(rate={"target_bpp": 0.3})

    def no_second_pass(*args, **kwargs):
        raise AssertionError("the video was coded again after the analysis")

    with monkeypatch.context() as m:
        m.setattr(Encoder, "_run", no_second_pass)
        fast = Encoder(cfg).encode(cut_video)
    plan = fast.rate_plan
    assert len(fast.data) == plan.chosen.bytes and fast.stream == read_stream(fast.data)
    plain = Encoder(with_overrides(apply(cfg, plan), rate={"target_bpp": 0})).encode(cut_video)
    assert plain.data == fast.data and plain.rate_plan is None
    n = len(fast.keyframe_indices)
    texts = Descriptions(tuple(f"keyframe {i}" for i in range(n)), tuple(f"clip {i}" for i in range(n)))
    described = Encoder(cfg).encode(cut_video, descriptions=texts)
    assert described.rate_plan.chosen == plan.chosen
    assert [k.data for k in described.stream.keyframes] == [k.data for k in fast.stream.keyframes]
    assert described.stream.keyframe_texts == texts.keyframes and len(described.data) > len(fast.data)


def test_opencv_threads_are_off_during_the_analysis_restored_after_and_change_no_byte(cut_video, monkeypatch):
    """Rate control runs OpenCV single-threaded (its own threads keep the cores busy), gives back the caller's
    setting afterwards, also around nested and concurrent analyses, and writes the same stream as with
    OpenCV's pool on."""
    import threading
    from contextlib import nullcontext
    from fractions import Fraction

    import cv2

    import m3cvc.ratecontrol as rc
    from m3cvc.cpus import opencv_single_threaded
    from m3cvc.video import read_frames

    frames = read_frames(cut_video)
    h, w = frames[0].shape[:2]
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        seen = []
        real_search = rc._search
        monkeypatch.setattr(rc, "_search", lambda *a, **k: (seen.append(cv2.getNumThreads()), real_search(*a, **k))[1])
        single = rc.plan(_lite(), frames, w, h, Fraction(8), 0.01, workers=2)
        assert seen and set(seen) == {1} and cv2.getNumThreads() == 3
        monkeypatch.setattr(rc, "opencv_single_threaded", nullcontext)  # OpenCV's pool on, as before
        seen.clear()
        pooled = rc.plan(_lite(), frames, w, h, Fraction(8), 0.01, workers=2)
        assert set(seen) == {3} and pooled.data == single.data and pooled.chosen == single.chosen

        # nested and overlapping blocks: the first in saves the setting, the last out restores it
        inside, go = threading.Event(), threading.Event()

        def other():
            with opencv_single_threaded():
                inside.set()
                go.wait(10)

        t = threading.Thread(target=other)
        with opencv_single_threaded():
            with opencv_single_threaded():
                assert cv2.getNumThreads() == 1
            t.start()
            assert inside.wait(10)
        assert cv2.getNumThreads() == 1  # the other thread's block is still open
        go.set()
        t.join(10)
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_the_first_round_is_coded_while_the_pass_runs_and_a_failing_pass_stops_it(cut_video, monkeypatch):
    """With 2 workers, the densest spacing's first two chains are coded while the pass still reads frames
    (x265 runs beside the interpreter-bound pass), the same units as after it (a chain waits while its bytes
    are past the band's top for the frames seen so far); with 1 worker nothing is coded before the pass
    ends. A video that fails half-way gives its error, with no thread left behind."""
    import threading
    from fractions import Fraction

    import m3cvc.keyframe_codec.hevc as hevc
    from m3cvc.errors import InputError
    from m3cvc.ratecontrol import plan
    from m3cvc.video import read_frames

    frames = read_frames(cut_video)
    h, w = frames[0].shape[:2]
    read = [0]
    when: list[int] = []  # frames read when each keyframe was coded
    real = hevc.HevcChainCodec.compress
    monkeypatch.setattr(hevc.HevcChainCodec, "compress", lambda self, *a, **k: (when.append(read[0]), real(self, *a, **k))[1])

    def video(fail_at=None):
        read[0] = 0
        for i, frame in enumerate(frames):
            if i == fail_at:
                raise InputError("the video is damaged at frame 12")
            read[0] = i + 1
            yield frame

    got, coded = {}, {}
    for target, cut in ((0.02, False), (0.01, True), (0.003, True)):  # in the band (0.003: below reach)
        for workers in (2, 1):
            when.clear()
            got[workers] = plan(_lite(), video(), w, h, Fraction(8), target, workers=workers)
            early = sum(n < len(frames) for n in when)
            assert (early > 0) == (workers == 2), (target, workers, when)
            coded[workers] = len(when)
        assert got[2].data == got[1].data and got[2].candidates == got[1].candidates
        assert got[2].cut_short == got[1].cut_short and (got[2].cut_short > 0) == cut
        assert coded[2] == coded[1]  # the same keyframes coded: chains cut at the same units
    threads = threading.active_count()
    with pytest.raises(InputError, match="damaged at frame 12"):
        plan(_lite(), video(fail_at=12), w, h, Fraction(8), 0.05, workers=2)
    assert threading.active_count() == threads


def test_a_chain_that_sees_a_keyframe_before_the_pass_counts_a_frame_waits_for_the_count():
    """Found by a try-out: a first-round chain that starts late can find frame 0's keyframe before the pass has
    counted frame 0; it codes it, and must then wait for the count before asking whether it is past the top
    (it divided by 0 frames and the encode failed)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from m3cvc.ratecontrol import _Chain, _PictureStore

    frames = synthetic_frames(2)
    h, w = frames[0].shape[:2]
    store = _PictureStore()
    try:
        for i, frame in enumerate(frames):
            store.put(i, frame)
        keyframes = [(0, True)]  # frame 0's keyframe, recorded before the pass counts frame 0
        asked, coded = [], threading.Event()
        past = lambda n, seen: (asked.append(seen), 8.0 * n / (seen * w * h) > 24.0)[1]  # noqa: E731
        chain = _Chain(4, 51, keyframes, store, "medium", 0.01, (h, w), past, lambda n: coded.set())
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(chain.run)
            assert coded.wait(10)
            assert not future.done() and 0 not in asked  # it waits for the count, without asking
            keyframes.append((1, False))
            chain.advance(2)
            chain.advance(2, ended=True)
            _, _, (_, units) = future.result(10)
        assert len(units) == 2 and asked and 0 not in asked
    finally:
        store.close()


def test_rate_search_agrees_at_the_band_edge_on_flat_sizes_and_on_any_core_count(cut_video):
    """Found by a try-out: a candidate exactly at the band's top (target = its bpp / 1.1) was accepted by the
    search and refused by the rule; on a static video the sizes barely change with QP (not monotone by a
    few bytes); and the probes of a round depended on the core count. The choice must equal measuring
    every candidate, whatever the workers, also where the search stops coding chains past the band's top."""
    from fractions import Fraction

    from m3cvc.ratecontrol import plan
    from m3cvc.video import read_frames

    cfg = _lite()
    moving = read_frames(cut_video)
    still = [synthetic_frames(1)[0]] * 16
    cut = 0
    for frames in (moving, still):
        h, w = frames[0].shape[:2]
        every = plan(cfg, frames, w, h, Fraction(8), 0.05, exhaustive=True)
        pixels = every.pixels
        edges = sorted({c.bpp(pixels) / 1.1 for c in every.candidates} | {c.bpp(pixels) / 0.9 for c in every.candidates})
        for target in edges[:: max(1, len(edges) // 6)] + [1e-4, 20.0]:
            want = plan(cfg, frames, w, h, Fraction(8), target, exhaustive=True).chosen
            for workers in (1, 8):
                got = plan(cfg, frames, w, h, Fraction(8), target, workers=workers)
                assert got.chosen == want, (target, workers, got.note())
                assert ("cut short (too large to be chosen)" in got.note()) == (got.cut_short > 0)
                cut += got.cut_short
                if target == 20.0:  # above reach: nothing is too large, and the smallest stream is not searched
                    assert "above reach" in got.note() and got.cut_short == 0, got.note()
    assert cut > 0  # chains were cut short, and the choices still equal measuring every candidate whole


def test_rate_control_cli_kbps_info_and_errors(cut_video, tmp_path, capsys):
    out = tmp_path / "r.m3c"
    args = ["encode", str(cut_video), "-o", str(out), "--size", "96x64", "--json"]
    assert cli_main(args + ["--target-kbps", "2.5", "--rate-choice", "gmsd"]) == 0
    capsys.readouterr()
    assert yaml_safe_load(out.with_name(out.name + ".yaml"))["rate"]["choice"] == "gmsd"  # the sidecar keeps it
    assert cli_main(args + ["-y", "--target-kbps", "2.5", "--rate-choice", "fastest"]) == 2
    capsys.readouterr()
    out.unlink()
    out.with_name(out.name + ".yaml").unlink()
    assert cli_main(args + ["--target-kbps", "2.5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "finalists" not in summary["rate_control"]  # the default rule decodes nothing
    assert yaml_safe_load(out.with_name(out.name + ".yaml"))["rate"]["choice"] == "rule"
    target = 2.5 * 1000 / (8 * 96 * 64)
    assert summary["rate_control"]["target_bpp"] == pytest.approx(target)
    assert summary["bpp"] == pytest.approx(summary["rate_control"]["predicted_bpp"])
    assert summary["kbps"] == pytest.approx(summary["bpp"] * 96 * 64 * 8 / 1000)
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # atomic writes keep the usual permissions
    assert cli_main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["keyframe_codec"]["params"]["target_bpp"] == pytest.approx(target)
    # the header keeps the target in bpp; info gives it in kbit/s too (the request, at the coded size and rate)
    assert info["rate_target"] == {"bpp": pytest.approx(target), "kbps": 2.5}  # as asked, without float noise
    from fractions import Fraction

    exact = float(Fraction(8 * out.stat().st_size * 8, 24 * 1000))  # 24 frames at 8 fps, rounded once
    assert info["kbps"] == summary["kbps"] == exact
    assert cli_main(["info", str(out)]) == 0
    assert "rate target 2.5 kbit/s = " in capsys.readouterr().out
    assert cli_main(args + ["-y", "--target-bpp", "-1"]) == 2
    assert cli_main(args + ["-y", "--target-bpp", "0.01", "--target-kbps", "3"]) == 2
    assert "not allowed with" in capsys.readouterr().err
    # values that can never make a stream, and options that rate control would silently override
    for bad in (["--target-bpp", "inf"], ["--target-bpp", "nan"], ["--target-kbps", "1e308"], ["--target-kbps", "5e-324"],
                ["--target-bpp", "0.01", "--keyframe-qp", "30"], ["--keyframe-quality", "50"]):  # fmt: skip
        assert cli_main(args + ["-y", *bad]) == 2, bad
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("1e+308" in err[0] if "1e308" in bad else True), err  # names the request
    inf_cfg = tmp_path / "inf.yaml"
    inf_cfg.write_text("rate: {target_bpp: .inf}\n")
    assert cli_main(args + ["-y", "--config", str(inf_cfg)]) == 2
    assert "finite" in capsys.readouterr().err
    # a config file that sets what rate control chooses is refused with a target, as the options are; the
    # sidecar config (the profile's own spacing and QP, and the target) is not
    sidecar = tmp_path / "sidecar.yaml"
    sidecar.write_text(out.with_name(out.name + ".yaml").read_text())
    for text, key in (("keyframe_codec: {hevc: {qp: 38}}", "keyframe_codec.hevc.qp 38"),
                      ("keyframes: {max_interval: 8}", "keyframes.max_interval 8"),
                      ("keyframes: {selector: fixed, interval: 4}", "keyframes.interval 4")):  # fmt: skip
        owned = tmp_path / "owned.yaml"
        owned.write_text(text + "\n")
        assert cli_main(args + ["-y", "--config", str(owned), "--target-kbps", "2.5"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"the config sets {key}, which rate control chooses" in err[0], err
        assert cli_main(args + ["-y", "--config", str(owned)]) == 0  # without a target the value is used
        capsys.readouterr()
    assert cli_main(args + ["-y", "--config", str(sidecar)]) == 0
    assert json.loads(capsys.readouterr().out)["rate_control"]["target_kbps"] == 2.5
    # found by a try-out: with the target in the config, --keyframe-qp / --interval were ignored (even at the
    # profile's value); the header's recorded target could be set without rate control; 1e-2 was no number
    target_cfg = tmp_path / "target.yaml"
    target_cfg.write_text("rate: {target_bpp: 1e-2}\n")  # YAML 1.1 reads this as a string
    for extra, message in ((["--keyframe-qp", "42"], "--keyframe-qp and a target rate (the config's rate.*)"),
                           (["--interval", "16"], "--interval and a target rate (the config's rate.*)")):  # fmt: skip
        assert cli_main(args + ["-y", "--config", str(target_cfg), *extra]) == 2
        assert message in capsys.readouterr().err
    assert cli_main(args + ["-y", "--config", str(target_cfg)]) == 0
    assert json.loads(capsys.readouterr().out)["rate_control"]["target_bpp"] == 0.01
    recorded = tmp_path / "recorded.yaml"
    recorded.write_text("keyframe_codec: {hevc: {target_bpp: 0.5}}\n")
    assert cli_main(args + ["-y", "--config", str(recorded)]) == 2
    assert "keyframe_codec.hevc.target_bpp is where rate control records its target" in capsys.readouterr().err
    # the fixed selector: rate control chooses its period (an explicit --interval would be overridden: refused)
    assert cli_main(args + ["-y", "--interval", "2", "--target-bpp", "0.3"]) == 2
    assert "--interval and a target rate exclude each other" in capsys.readouterr().err
    assert cli_main(args + ["-y", "--selector", "fixed", "--target-bpp", "0.3"]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert cli_main([a for a in args if a != "--json"] + ["-y", "--selector", "fixed", "--target-bpp", "0.3"]) == 0
    note = capsys.readouterr().err
    assert "max_interval" not in fixed["rate_control"]  # the fixed selector's key, in the note and the JSON
    assert f"-> interval {fixed['rate_control']['interval']}," in note
    period = fixed["rate_control"]["interval"]
    assert period < 24 and fixed["keyframes"][:-1] == list(range(0, 24, period))[: len(fixed["keyframes"]) - 1]
    avif = tmp_path / "avif.yaml"
    avif.write_text("keyframe_codec: {backend: avif}\n")
    assert cli_main(args + ["-y", "--config", str(avif), "--target-bpp", "0.01"]) == 2
    assert "needs keyframe_codec.backend hevc" in capsys.readouterr().err


def test_rate_search_finds_the_lowest_fitting_qp_in_two_rounds_on_log_linear_sizes():
    """The QP search's answer is that of measuring the whole ladder where sizes fall with QP (and a QP that
    fits where they wobble by a few bytes); where sizes fall log-linearly with QP, as x265 chains do (20-30 %
    per 2 QPs), its fitted probes end it after two rounds of two measurements wherever the threshold falls
    between two rungs."""
    from m3cvc.ratecontrol import QPS, _search

    ladder = sorted(QPS)
    shapes = {
        "log-linear": {q: int(4000 * 1.12 ** (51 - q)) for q in ladder},
        "steep": {q: int(900 * 1.2 ** (51 - q)) for q in ladder},
        "flat wobble": {q: 1000 + (3 if q % 4 == 1 else 0) for q in ladder},
    }
    for name, sizes in shapes.items():
        values = sorted(set(sizes.values()))
        between = [(a * b) ** 0.5 for a, b in zip(values, values[1:])]  # targets fall anywhere between rungs
        for threshold in values + between + [values[0] - 1, values[-1] + 1]:
            fits = [q for q in ladder if sizes[q] <= threshold]
            cache: dict[int, int] = {}

            def measure(qps: list[int]) -> dict[int, int]:  # codes (here: looks up) what is not known yet
                cache.update({q: sizes[q] for q in qps})
                return cache

            got = _search(measure, lambda n, t=threshold: n <= t, ladder, threshold)
            if name == "flat wobble":  # not monotone: some QP that fits (the plan-level tests compare choices)
                assert (got in fits) if fits else got is None, (threshold, got, fits)
            else:
                assert got == (min(fits) if fits else None), (name, threshold, got, fits)
            if name != "flat wobble" and threshold in between:
                assert len(cache) <= 4, (name, threshold, sorted(cache))


def test_rate_analysis_computes_each_frames_features_once_for_all_tracks(cut_video, monkeypatch):
    """The 4 spacing tracks of the pass see the same frames: the thumbnail descriptor (selector and scene
    cuts) and the flow input are computed once per frame, not once per track; the selectors' motion and the
    motion-hint estimates are computed once for the tracks whose last keyframe is the same; and the
    streams are those of plain encodes (one track, nothing shared)."""
    from fractions import Fraction

    from m3cvc.keyframes.dis import DisMotion
    from m3cvc.keyframes.thumbnail import ThumbnailSemantic
    from m3cvc.ratecontrol import INTERVALS, apply, plan, spaced
    from m3cvc.reconstruct.motion import MotionHintEstimator
    from m3cvc.video import read_frames

    frames = read_frames(cut_video)
    h, w = frames[0].shape[:2]
    calls = {"embed": 0, "prepare": 0, "magnitude": 0, "estimate": 0}

    def counted(name, fn):
        def call(self, *args):
            calls[name] += 1
            return fn(self, *args)

        return call

    monkeypatch.setattr(ThumbnailSemantic, "embed", counted("embed", ThumbnailSemantic.embed))
    monkeypatch.setattr(DisMotion, "prepare", counted("prepare", DisMotion.prepare))
    monkeypatch.setattr(DisMotion, "magnitude", counted("magnitude", DisMotion.magnitude))
    monkeypatch.setattr(MotionHintEstimator, "measure", counted("estimate", MotionHintEstimator.measure))
    cfg = _lite()
    every = plan(cfg, frames, w, h, Fraction(8), 0.05, exhaustive=True)  # every spacing's stream
    shared = dict(calls)
    assert len(INTERVALS) == 4 and shared["embed"] == 2 * len(frames) and shared["prepare"] == len(frames)
    for key in ("embed", "prepare", "magnitude", "estimate"):
        calls[key] = 0
    plain = {}
    for interval in INTERVALS:  # the same spacings coded one at a time
        c = next(c for c in every.candidates if c.interval == interval and c.qp == 41)
        one = with_overrides(apply(cfg, replace(every, chosen=c)), rate={"target_bpp": 0})
        assert one.keyframes == spaced(cfg.keyframes, interval)
        plain[interval] = Encoder(one).encode(cut_video).data
    separate = dict(calls)
    assert 0 < shared["magnitude"] < separate["magnitude"] and 0 < shared["estimate"] < separate["estimate"], (shared, separate)
    monkeypatch.undo()
    assert {c.interval: c.bytes for c in every.candidates if c.qp == 41} == {i: len(d) for i, d in plain.items()}
    got = plan(cfg, frames, w, h, Fraction(8), 0.05)
    assert got.data == Encoder(with_overrides(apply(cfg, got), rate={"target_bpp": 0})).encode(cut_video).data


def test_rate_analysis_tries_the_clips_only_of_the_spacings_it_measures(cut_video, monkeypatch):
    """The hint check and timing search of a spacing's clips wait until its chain is first measured: where
    the rule stops at the densest spacing, the sparser ones are never tried, and the stream is the same as
    trying every clip during the pass (a plain encode with the chosen settings)."""
    from fractions import Fraction

    from m3cvc.ratecontrol import apply, plan
    from m3cvc.reconstruct.flow import HintTrial
    from m3cvc.video import read_frames

    frames = read_frames(cut_video)
    h, w = frames[0].shape[:2]
    lengths: list[int] = []
    tried = HintTrial.tried

    def counted(self, first, following, clip_frames, motion):
        lengths.append(len(clip_frames) + 1)
        return tried(self, first, following, clip_frames, motion)

    monkeypatch.setattr(HintTrial, "tried", counted)
    cfg = _lite()
    every = plan(cfg, frames, w, h, Fraction(8), 0.05, exhaustive=True)
    fine = next(c.bpp(every.pixels) for c in every.candidates if (c.interval, c.qp) == (4, 39))
    for target, spacings in ((fine, {4}), (1e-4, {4, 8, 16, 32})):  # the densest decides; below reach: all
        lengths.clear()
        got = plan(cfg, frames, w, h, Fraction(8), target)
        measured = {c.interval for c in got.candidates}
        assert measured == spacings, got.note()
        assert lengths and max(lengths) <= max(measured)  # no clip of an unmeasured spacing was tried
        plain = Encoder(with_overrides(apply(cfg, got), rate={"target_bpp": 0})).encode(cut_video)
        assert got.data == plain.data


def test_rate_control_reports_kbps_requests_texts_on_top_tiny_targets_and_the_choice(cut_video, tmp_path, capsys):
    """Found by a try-out: a kbit/s request was only shown converted; texts from --descriptions came on top of
    the plan while the note and JSON still said "within 10 %"; targets under 0.00001 printed as 0.00000; the
    sidecar config did not say what rate control chose."""
    out = tmp_path / "r.m3c"
    base = ["encode", str(cut_video), "-o", str(out), "--size", "96x64", "-y"]
    assert cli_main(base + ["--target-kbps", "2.5"]) == 0
    err = capsys.readouterr().err
    assert "rate control: target 2.5 kbit/s = 0.0508" in err and "texts" not in err
    sidecar = (tmp_path / "r.m3c.yaml").read_text()
    assert "# rate control chose keyframes.max_interval " in sidecar and "keyframe_codec.hevc.qp " in sidecar
    assert cli_main(base + ["--target-kbps", "2.5", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    rc = plain["rate_control"]
    assert rc["target_kbps"] == 2.5 and rc["text_bytes"] == 0 and rc["predicted_bpp"] == pytest.approx(plain["bpp"])
    n = len(plain["keyframes"])
    texts = tmp_path / "d.json"
    texts.write_text(json.dumps({"keyframes": [f"a long description of keyframe {i} " * 8 for i in range(n)],
                                 "clips": [f"a long description of clip {i} " * 8 for i in range(n)]}))  # fmt: skip
    assert cli_main(base + ["--target-kbps", "2.5", "--json", "--descriptions", str(texts)]) == 0
    described = json.loads(capsys.readouterr().out)
    rc = described["rate_control"]
    assert rc["text_bytes"] == described["bytes_total"] - plain["bytes_total"] > 0
    assert rc["within_tolerance"] == (abs(described["bpp"] / rc["target_bpp"] - 1) <= 0.10) is False
    assert cli_main(base + ["--target-kbps", "2.5", "--descriptions", str(texts)]) == 0
    assert f"the texts add {rc['text_bytes']} bytes" in capsys.readouterr().err
    assert cli_main(base + ["--target-bpp", "1e-9"]) == 0
    assert "target 1e-09 bpp" in capsys.readouterr().err


def test_encoder_resolves_the_detail_strength_by_decoding_its_own_keyframes(cut_video):
    """lite's ``sharpen: -1``: the encoder decodes each keyframe unit and writes the GMSD choice into the
    header (a fixed value is written as given); rate control's stream gets the same strength as a plain
    encode with its settings, without changing the planned size."""
    from m3cvc.config import PreprocessConfig
    from m3cvc.keyframe_codec import keyframe_codec_from_params
    from m3cvc.ratecontrol import apply
    from m3cvc.reconstruct.detail import DetailMeter, luma
    from m3cvc.video import read_frames

    cfg = _lite(preprocess={"width": 96, "height": 64}, keyframe_codec={"hevc": {"qp": 51}})
    result = Encoder(cfg).encode(cut_video)
    stream = read_stream(result.data)
    frames = read_frames(cut_video, PreprocessConfig(width=96, height=64))
    decoder = keyframe_codec_from_params(stream.header.keyframe_codec.name, stream.header.keyframe_codec.params)
    meter = DetailMeter()
    for kf in stream.keyframes:
        meter.add(luma(frames[kf.index]), luma(decoder.decompress(kf.data, (64, 96))))
    assert stream.header.reconstructor.params["sharpen"] == meter.choice()
    fixed = Encoder(with_overrides(cfg, reconstruct={"flow": {"sharpen": 5}})).encode(cut_video)
    assert read_stream(fixed.data).header.reconstructor.params["sharpen"] == 5 and len(fixed.data) == len(result.data)
    rated = Encoder(with_overrides(cfg, rate={"target_bpp": 0.2})).encode(cut_video)
    plain = Encoder(with_overrides(apply(cfg, rated.rate_plan), rate={"target_bpp": 0})).encode(cut_video)
    assert rated.data == plain.data and len(rated.data) == rated.rate_plan.chosen.bytes


def test_encode_reports_the_chosen_detail_strength_and_decode_takes_a_thread_count(cut_video, tmp_path, capsys):
    """Found by a try-out: the chosen strength was only visible as a raw header integer; decoding had no way
    to limit its clip threads; a stream's out-of-range strength was reported with the config's range."""
    from m3cvc.reconstruct import reconstructor_from_params
    from m3cvc.reconstruct.flow import FlowReconstructor

    out = tmp_path / "s.m3c"
    assert cli_main(["encode", str(cut_video), "-o", str(out), "--size", "96x64", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    tenths = read_stream(out.read_bytes()).header.reconstructor.params["sharpen"]
    assert summary["sharpen"] == tenths / 10
    assert f"# the encoder chose reconstruct.flow.sharpen {tenths} " in (tmp_path / "s.m3c.yaml").read_text()
    frames = {}
    for threads in ("1", "3"):
        y4m = tmp_path / f"t{threads}.y4m"
        assert cli_main(["decode", str(out), "-o", str(y4m), "--threads", threads, "-q"]) == 0
        frames[threads] = y4m.read_bytes()
    assert frames["1"] == frames["3"]
    assert cli_main(["decode", str(out), "-o", str(tmp_path / "x.y4m"), "--threads", "0"]) == 2
    with pytest.raises(BitstreamError, match=r"in 0\.\.30"):
        reconstructor_from_params("flow", {**FlowReconstructor(sharpen=0).params(), "sharpen": 31})
