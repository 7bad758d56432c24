"""``m3cvc encode | decode | preprocess | info | config``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from ..config import PROFILES, M3Config, dump_yaml, load_config, with_overrides
from ..errors import ConfigError, InputError, count
from ..fileio import atomic_path, check_input_file, check_output_path, write_bytes_atomic
from ..info import kbps, stream_info  # noqa: F401  (stream_info re-exported: `info --json` is built there)


class _Parser(argparse.ArgumentParser):
    """argparse that raises (one line) instead of printing usage and exiting with code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message} (see {self.prog} -h)")


def _parser(prog: str, description: str) -> _Parser:
    return _Parser(prog=f"m3cvc {prog}", description=description)


def add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, help="embedded default profile (default: lite, or the config's)")
    p.add_argument("--config", metavar="FILE", help="YAML config overriding any subset of the profile")


def add_preprocess_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", metavar="WxH", help="target size after centre crop + resize (default 512x320)")
    p.add_argument("--fps", type=float, help="target frame rate (default 8)")
    p.add_argument("--keep-size", action="store_true", help="keep the native frame size")
    p.add_argument("--keep-fps", action="store_true", help="keep every frame and the native frame rate")
    add_input_options(p)


def add_input_options(p: Any) -> None:
    """How to read an input video: a raw file's layout, the stream to read (a parser or argument group)."""
    p.add_argument("--input-size", metavar="WxH", help="frame size of a raw .yuv input")
    p.add_argument("--input-fps", type=float, help="frame rate of a raw .yuv input")
    p.add_argument("--input-pix-fmt", default=None,
                   help="pixel format of a raw .yuv input: any that `ffmpeg -pix_fmts` lists (default yuv420p)")
    p.add_argument("--stream", type=int, metavar="N",
                   help="read the input's stream N (as ffprobe numbers them) instead of the one ffmpeg would pick")


def add_keyframe_options(p: argparse.ArgumentParser) -> None:
    """Options that decide the keyframes (shared by encode and describe, so both pick the same)."""
    p.add_argument("--selector", choices=("composite", "fixed"), help="keyframe selector (default composite)")
    p.add_argument("--interval", type=int, metavar="N", help="keyframe every N frames (implies --selector fixed)")
    p.add_argument("--mode", choices=("interpolation", "prediction"), help="clip reconstruction mode")


def add_codec_options(p: argparse.ArgumentParser) -> None:
    """Rate, keyframe coding, description and text options (shared by encode and batch encode)."""
    p.add_argument("--keyframe-qp", type=int, metavar="QP", help="QP 0..51 of the HEVC keyframe chain (lite default codec)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--target-bpp", type=float, metavar="B", help="rate control: choose keyframe spacing and QP for B bits per pixel")
    rate.add_argument("--target-kbps", type=float, metavar="K", help="rate control: the same for K kbit/s at the coded frame rate")
    p.add_argument("--rate-choice", choices=("rule", "gmsd"),
                   help="rate control: take the densest finalist (default), or decode every finalist and keep the "
                        "least distorted by GMSD (better LPIPS, 2-3x slower analysis)")  # fmt: skip
    p.add_argument("--keyframe-quality", type=int, metavar="Q", help="AVIF keyframe quality 0..100 (keyframe_codec.backend avif)")
    p.add_argument("--describer", metavar="NAME", help="describer backend (none, manual, qwen-vl, openai)")
    p.add_argument("--prompts", metavar="FILE", help="YAML prompts overriding the describer's shipped ones")
    p.add_argument("--text-codec", metavar="NAME", help="text coder: auto (smallest), lzw, raw, ...")


def add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def open_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from ..video import parse_size

    return {
        "raw_size": parse_size(args.input_size) if args.input_size else None,
        "raw_fps": args.input_fps,
        "raw_pix_fmt": args.input_pix_fmt,  # None: yuv420p for raw input
        "stream": args.stream,
    }


def config_from_args(args: argparse.Namespace) -> M3Config:
    """Profile < config file < command-line options."""
    from ..video import parse_size

    cfg = load_config(args.config, args.profile)
    if cfg.keyframe_codec.hevc.target_bpp:
        raise ConfigError("keyframe_codec.hevc.target_bpp is where rate control records its target in the stream header; "
                          "ask for a target with rate.target_bpp or --target-bpp instead")  # fmt: skip
    pre: dict[str, Any] = {}
    for keep, given in (("keep_size", "size"), ("keep_fps", "fps")):
        if getattr(args, keep, False) and getattr(args, given, None) is not None:
            flag = keep.replace("_", "-")
            raise InputError(f"--{flag} and --{given} contradict each other: give one of them")
    if getattr(args, "size", None):
        pre["width"], pre["height"] = parse_size(args.size)
    if getattr(args, "fps", None) is not None:
        pre["fps"] = args.fps
    if getattr(args, "keep_size", False):
        pre["keep_size"] = True
    if getattr(args, "keep_fps", False):
        pre["keep_fps"] = True
    # a target from the options or from the config file: rate control then chooses the QP and the spacing
    asked = getattr(args, "target_bpp", None) is not None or getattr(args, "target_kbps", None) is not None
    target = asked or bool(cfg.rate.target_bpp or cfg.rate.target_kbps)
    target_from = "" if asked else " (the config's rate.*)"
    kf: dict[str, Any] = {}
    if getattr(args, "selector", None):
        kf["selector"] = args.selector
    if getattr(args, "interval", None) is not None:
        if target:
            raise ConfigError(f"--interval and a target rate{target_from} exclude each other: rate control chooses the "
                              "keyframe period (--selector fixed lets it choose the fixed selector's)")  # fmt: skip
        kf["interval"] = args.interval
        kf.setdefault("selector", "fixed")
    recon = {"mode": args.mode} if getattr(args, "mode", None) else {}
    codec: dict[str, Any] = {}
    backend = cfg.keyframe_codec.backend
    if getattr(args, "keyframe_quality", None) is not None:
        if backend != "avif":
            raise ConfigError(f"--keyframe-quality sets the AVIF quality, but the keyframe codec is {backend} (--keyframe-qp for hevc)")
        codec = {"avif": {"quality": args.keyframe_quality}}
    if getattr(args, "keyframe_qp", None) is not None:
        if backend != "hevc":
            raise ConfigError(f"--keyframe-qp sets the HEVC keyframe chain's QP, but the keyframe codec is {backend}")
        if target:
            raise ConfigError(f"--keyframe-qp and a target rate{target_from} exclude each other: rate control chooses the QP")
        codec["hevc"] = {"qp": args.keyframe_qp}
    describe: dict[str, Any] = {}
    if getattr(args, "describer", None):
        describe["backend"] = args.describer
    if getattr(args, "prompts", None):
        describe["prompts"] = args.prompts
    if getattr(args, "strategy", None):
        describe["strategy"] = args.strategy
    text = {"codec": args.text_codec} if getattr(args, "text_codec", None) else {}
    rate: dict[str, Any] = {}
    for key in ("target_bpp", "target_kbps"):
        value = getattr(args, key, None)
        if value is not None:
            if not value > 0 or value != value or value == float("inf"):
                raise ConfigError(f"--{key.replace('_', '-')} must be a positive number, got {value}")
            rate = {key: value, ("target_kbps" if key == "target_bpp" else "target_bpp"): 0.0}
    if getattr(args, "rate_choice", None):
        rate["choice"] = args.rate_choice
    out = with_overrides(
        cfg, preprocess=pre, keyframes=kf, reconstruct=recon, keyframe_codec=codec, describe=describe, text=text,
        rate=rate,
    )  # fmt: skip
    if getattr(args, "rate_choice", None) and not (out.rate.target_bpp or out.rate.target_kbps):
        raise ConfigError("--rate-choice ranks rate control's candidates: give a target (--target-bpp or --target-kbps)")
    if out.rate.target_bpp or out.rate.target_kbps:
        from ..ratecontrol import check_not_chosen

        check_not_chosen(out, "the config")
    return out


def check_new_output(output: str, inputs: Sequence[str], overwrite: bool) -> Path:
    out = check_output_path(output, inputs)
    if out.exists() and not overwrite:
        raise InputError(f"output {out} exists; pass --overwrite (-y) to replace it")
    return out


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def add_decode_machine_options(p: argparse.ArgumentParser) -> None:
    """The decoding machine's settings a stream cannot know (``decode``, ``batch decode``)."""
    p.add_argument("--device", help="run the stream's models here instead (auto, cpu, cuda, cuda:N, mps)")
    p.add_argument("--dtype", help="model precision instead of the stream's (auto, float32, float16, bfloat16)")
    p.add_argument("--cpu-offload", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the stream's models in CPU memory and move each to the GPU only while it runs "
                        "(less GPU memory, slower; needs accelerate); default: the stream's setting")  # fmt: skip
    p.add_argument("--model-path", action="append", metavar="OLD=NEW",
                   help="a model path stored in the stream (see 'm3cvc info') = where it is on this machine; repeatable")


def decode_overrides(args: argparse.Namespace) -> Any:
    """:class:`~m3cvc.pipeline.DecodeOverrides` of :func:`add_decode_machine_options`' options (checked)."""
    from ..devices import check_device, check_dtype
    from ..pipeline import DecodeOverrides

    if args.device is not None:
        check_device(args.device, "--device")
    if args.dtype is not None:
        check_dtype(args.dtype, "--dtype")
    return DecodeOverrides(args.device, args.dtype, DecodeOverrides.parse_model_paths(args.model_path), args.cpu_offload)


def _encode_extra_args(args: argparse.Namespace) -> list[str]:
    """The encode options that are not config keys, as command-line words (for the config sidecar)."""
    from ..config import command_word, reading_args

    out: list[str] = []
    if args.descriptions:
        out += ["--descriptions", command_word(args.descriptions)]
    return out + reading_args(open_kwargs(args))


def _drop_stale_sidecar(out: Path, inputs: Sequence[str]) -> None:
    """With -y --no-config-out, an OUT.yaml that m3cvc wrote for an earlier OUT no longer describes OUT:
    remove it (a file that m3cvc did not write, or this run's --config, is left alone)."""
    from ..config import SIDECAR_MARK, sidecar_path

    old = sidecar_path(out)
    if any(old.resolve() == Path(i).resolve() for i in inputs):
        return
    try:
        with old.open("rb") as fh:
            ours = fh.read(len(SIDECAR_MARK)) == SIDECAR_MARK.encode()
    except OSError:
        return
    if ours:
        old.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
def encode_main(argv: Sequence[str]) -> int:
    p = _parser("encode", "Encode a video into an .m3c bitstream.")
    p.add_argument("input", metavar="IN", help="input video (anything ffmpeg reads, .y4m, raw .yuv)")
    add_output_options(p)
    add_config_options(p)
    add_preprocess_options(p)
    add_keyframe_options(p)
    add_codec_options(p)
    p.add_argument("--descriptions", metavar="FILE", help='JSON {"keyframes": [...], "clips": [...]} texts')
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-config-out", action="store_true",
                   help="do not write OUT.yaml, the resolved config that reproduces OUT (written by default)")
    args = p.parse_args(argv)
    from ..config import sidecar_path, sidecar_yaml
    from ..describe import Descriptions
    from ..fileio import write_text_atomic
    from ..pipeline import Encoder

    inputs = [args.input] + [x for x in (args.config, args.descriptions) if x]
    out = check_new_output(args.output, inputs, args.overwrite)
    if out.suffix.lower() in (".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m"):
        import logging

        logging.getLogger("m3cvc").warning(f"{out} will hold an m3cvc stream, not a {out.suffix} video (players cannot "
                                           "open it; `m3cvc decode` makes the video): the usual extension is .m3c")
    if not args.no_config_out:
        for option, given in (("--config", args.config), ("--descriptions", args.descriptions)):
            if given and Path(given).resolve() == sidecar_path(out).resolve():
                raise InputError(f"{given} (the {option} file) is where the config that reproduces {out} would be "
                                 "written: choose another output path, or pass --no-config-out")  # fmt: skip
    sidecar = None if args.no_config_out else check_new_output(str(sidecar_path(out)), inputs, args.overwrite)
    cfg = config_from_args(args)
    descriptions = Descriptions.load(args.descriptions) if args.descriptions else None
    with atomic_path(out, inputs) as tmp:  # fail on an unwritable folder before the work
        result = Encoder(cfg).encode(
            args.input, descriptions=descriptions, progress=not args.quiet, **open_kwargs(args)
        )
        tmp.write_bytes(result.data)
    if sidecar is not None:
        notes = result.sidecar_notes(cfg)
        write_text_atomic(sidecar, sidecar_yaml(cfg, args.input, args.output, _encode_extra_args(args), notes), inputs)
    elif args.overwrite:
        _drop_stale_sidecar(out, inputs)
    h = result.stream.header
    from ..keyframes import TRIGGERS

    summary = {
        "output": str(out),
        "config": str(sidecar) if sidecar is not None else None,
        "frames": h.frames,
        "width": h.width,
        "height": h.height,
        "fps": float(h.fps),
        "keyframes": list(result.keyframe_indices),
        "keyframe_triggers": [TRIGGERS[k.trigger] for k in result.stream.keyframes],
        # the flow reconstructor's detail restoration (unsharp strength; the header stores tenths), if any
        "sharpen": h.reconstructor.params.get("sharpen", 0) / 10 if h.reconstructor.name == "flow" else None,
        "bytes_total": len(result.data),
        "bpp": result.bpp,
        "kbps": kbps(len(result.data), h.frames, h.fps),
        "seconds": round(result.seconds, 3),
        "frames_per_second": round(h.frames / result.seconds, 2) if result.seconds > 0 else None,
    }
    if result.rate_plan is not None:
        from ..ratecontrol import summary as plan_summary

        summary["rate_control"] = plan_summary(result.rate_plan, len(result.data))
        if not args.json and not args.quiet:
            print(result.rate_plan.note(len(result.data)), file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        print(
            f"{out}: {count(h.frames, 'frame')} {h.width}x{h.height} @ {float(h.fps):g} fps, "
            f"{count(len(result.keyframe_indices), 'keyframe')}, {_human(len(result.data))} = {result.bpp:.5f} bpp "
            f"= {summary['kbps']:.2f} kbit/s, "
            f"{result.seconds:.1f} s ({summary['frames_per_second']} frames/s)"
        )
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def decode_main(argv: Sequence[str]) -> int:
    p = _parser("decode", "Decode an .m3c bitstream into a video (.y4m exact frames, .mp4, or a %05d.png pattern).")
    p.add_argument("input", metavar="IN", help=".m3c bitstream")
    add_output_options(p)
    add_decode_machine_options(p)
    from ..bitstream import DecodeLimits

    p.add_argument("--max-frames", type=_positive_int, default=DecodeLimits.max_frames, metavar="N",
                   help=f"refuse streams of more frames (default {DecodeLimits.max_frames:,})")
    p.add_argument("--max-pixels", type=_positive_int, default=DecodeLimits.max_pixels, metavar="N",
                   help=f"refuse streams whose frames have more pixels, width x height (default {DecodeLimits.max_pixels:,}: 8K)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="threads that reconstruct clips ahead (flow; at most 64 MiB of frames held ahead); "
                        "default: one per CPU, at most 8; 1: one clip at a time (same frames)")  # fmt: skip
    args = p.parse_args(argv)
    from ..pipeline import Decoder
    from ..video import is_png_pattern, open_writer
    from ..video.writers import check_png_pattern

    if is_png_pattern(args.output):
        check_png_pattern(args.output, args.overwrite)
    else:
        check_new_output(args.output, [args.input], args.overwrite)
    data = _read_input(args.input)
    start = time.perf_counter()
    decoded = Decoder(decode_overrides(args), DecodeLimits(args.max_frames, args.max_pixels), args.threads or 0).open(data)
    h = decoded.header
    from ..pipeline import _progress

    from ..errors import BackendError

    try:
        with open_writer(args.output, h.width, h.height, h.fps, [args.input]) as writer:
            with _progress(h.frames, "decode", not args.quiet) as bar:
                for frame in decoded:
                    writer.write(frame)
                    bar.update(1)
    except BackendError as exc:
        if any(why in str(exc) for why in ("does not exist", "not in the HF cache", "no checkpoint", "no seine.pt")):
            raise BackendError(f"{exc} (when decoding: --model-path STORED=LOCAL points a model path stored in the "
                               "stream, see m3cvc info, at a folder here)") from None  # fmt: skip
        raise
    seconds = time.perf_counter() - start
    if not args.quiet:
        print(f"{args.output}: {count(h.frames, 'frame')} {h.width}x{h.height} @ {float(h.fps):g} fps, "
              f"{seconds:.1f} s ({h.frames / max(seconds, 1e-9):.1f} frames/s)")
    return 0


def preprocess_main(argv: Sequence[str]) -> int:
    p = _parser("preprocess", "Write exactly the frames the encoder sees (crop, resize, frame rate).")
    p.add_argument("input", metavar="IN", help="input video")
    add_output_options(p)
    add_config_options(p)
    add_preprocess_options(p)
    args = p.parse_args(argv)
    from ..pipeline import _progress
    from ..video import is_png_pattern, open_video, open_writer, preprocess
    from ..video.writers import check_png_pattern

    if is_png_pattern(args.output):
        check_png_pattern(args.output, args.overwrite)
    else:
        check_new_output(args.output, [args.input], args.overwrite)
    cfg = config_from_args(args)
    with open_video(args.input, **open_kwargs(args)) as source:
        frames = preprocess(source, cfg.preprocess)
        with open_writer(args.output, frames.width, frames.height, frames.fps, [args.input]) as writer:
            with _progress(frames.frame_count, "preprocess", not args.quiet) as bar:
                for frame in frames:
                    writer.write(frame)
                    bar.update(1)
            count = writer.count
        if count == 0:
            raise InputError(f"{args.input} gave no frames")
    if not args.quiet:
        print(f"{args.output}: {count} frames {frames.width}x{frames.height} @ {float(frames.fps):g} fps")
    return 0


def _read_input(path: str) -> bytes:
    p = check_input_file(path)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None


def info_main(argv: Sequence[str]) -> int:
    p = _parser("info", "Describe an .m3c bitstream: header, keyframes, texts, bytes per section, bpp.")
    p.add_argument("input", metavar="IN", help=".m3c bitstream")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    info = stream_info(_read_input(args.input))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    out = sys.stdout
    print(f"{args.input}: m3cvc format {info['format_version']}, profile {info['profile']}", file=out)
    print(f"  video      {count(info['frames'], 'frame')}, {info['width']}x{info['height']} @ {info['fps']:g} fps "
          f"({info['duration_seconds']:.2f} s)", file=out)
    kc, rc = info["keyframe_codec"], info["reconstructor"]
    print(f"  keyframes  {len(info['keyframes'])} via {kc['name']} {kc['params']}", file=out)
    print(f"  clips      {rc['name']} {rc['params']}", file=out)
    if info["motion_hints"]:
        counts = info["motion_clips"]
        print(f"  motion     encoder motion hints, {info['sections']['clip_motion']} bytes: {counts['clips']} clips, "
              f"{counts['linked']} linked by a global motion fit, {counts['timed']} with timing hints", file=out)
    print(f"  size       {info['bytes_total']} bytes = {info['bpp']:.6f} bpp = {info['kbps']:.2f} kbit/s", file=out)
    for name, size in info["sections"].items():
        share = 100.0 * size / info["bytes_total"]
        print(f"    {name:<16}{size:>9} bytes  {share:5.1f} %", file=out)
    if info["rate_target"]:
        t = info["rate_target"]
        ratio = info["bpp"] / t["bpp"]
        landed = f"{100.0 * (ratio - 1.0):+.1f} %" if ratio < 1e4 else f"{ratio:.3g} times the target"
        print(f"  target     rate target {t['kbps']:.4g} kbit/s = {t['bpp']:.6g} bpp ({landed} written)", file=out)
    if info["text_codecs"]:
        print(f"  text codecs {info['text_codecs']}", file=out)
    else:
        print("  texts      none (every text empty: no text units)", file=out)
    counts = ", ".join(f"{t} {n}" for t, n in info["trigger_counts"].items() if n)
    print(f"  triggers   {counts} (longest clip allowed: {count(info['longest_clip'], 'frame')})", file=out)
    rows = zip(info["keyframes"], info["keyframe_bytes"], info["keyframe_pictures"], info["keyframe_triggers"],
               info["clip_lengths"])  # fmt: skip
    for i, (idx, nbytes, picture, trigger, length) in enumerate(rows):
        print(f"  [{i}] frame {idx:>6}  {nbytes:>7} bytes  {picture:<5}  {trigger:<8}  clip of {count(length, 'frame')}", file=out)
        if info["keyframe_texts"][i]:
            print(f"      keyframe: {info['keyframe_texts'][i]}", file=out)
        if info["clip_texts"][i]:
            print(f"      clip:     {info['clip_texts'][i]}", file=out)
    return 0


def config_main(argv: Sequence[str]) -> int:
    p = _parser("config", "Print the full default config of a profile (merged with --config) as YAML.")
    add_config_options(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    args = p.parse_args(argv)
    text = dump_yaml(load_config(args.config, args.profile))
    if args.output:
        write_bytes_atomic(args.output, text.encode("utf-8"), [args.config] if args.config else [])
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:  # pragma: no cover - convenience
    from ..cli import main as cli_main

    return cli_main(argv)
