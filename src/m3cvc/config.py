"""Typed, frozen configuration of every stage, and the embedded profiles.

A config is a tree of frozen dataclasses. It round-trips through plain dicts and YAML
(``m3cvc config --profile lite`` prints the full default; ``--config FILE`` overrides any subset
of it). Unknown keys and wrongly typed values are rejected with the dotted path of the key.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence, TypeVar, Union

import yaml

from .errors import ConfigError

T = TypeVar("T")

PROFILES = ("lite", "full", "paper")
_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")  # 1e-2, 5E3, .5


# --------------------------------------------------------------------------------------------
# stage 1: preprocessing
@dataclass(frozen=True)
class PreprocessConfig:
    """Centre-crop to the target aspect, resize, resample the frame rate by timestamps."""

    width: int = 512
    height: int = 320
    fps: float = 8.0
    keep_size: bool = False  # keep the native size (no crop, no resize)
    keep_fps: bool = False  # keep every decoded frame and the native frame rate


# --------------------------------------------------------------------------------------------
# stage 2: keyframe selection
@dataclass(frozen=True)
class ClipOptions:
    """transformers CLIPModel used as the semantic backend ``clip``."""

    model: str = "openai/clip-vit-base-patch32"  # hub id or local folder
    device: str = "auto"  # auto (cuda when available, else cpu) | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (bfloat16 on GPUs that support it, float32 on cpu; m3cvc/devices.py) | float32 | float16 | bfloat16
    local_files_only: bool = False


@dataclass(frozen=True)
class RaftOptions:
    """torchvision RAFT used as the motion backend ``raft``."""

    variant: str = "large"  # large | small
    weights: str = "DEFAULT"  # DEFAULT (torchvision's pretrained), none (random init), or a .pth path
    device: str = "auto"  # auto (cuda when available, else cpu) | cpu | cuda | cuda:N
    num_flow_updates: int = 12
    working_width: int = 512  # flow is computed at this width (rounded to a multiple of 8)


@dataclass(frozen=True)
class DisOptions:
    """OpenCV DIS optical flow used as the motion backend ``dis`` (weight-free)."""

    preset: str = "fast"  # ultrafast | fast | medium
    working_width: int = 192  # flow computed at this width (about 1 ms per frame with "fast")


@dataclass(frozen=True)
class KeyframeConfig:
    """Paper II-A: D(F_n, F_l) = lambda1*(1 - sim) + lambda2*motion - threshold > 0 -> keyframe.

    F_l is the last keyframe; ``sim`` is the cosine similarity of the semantic descriptors (in
    [-1, 1]; so 1 - sim is in [0, 2]). ``motion`` is the mean optical-flow magnitude from F_l to
    F_n in percent of the frame diagonal: flow is computed at the backend's working resolution
    and divided by that resolution's diagonal (x100), so lambda2 and threshold mean the same at
    every video size and working size (motion 10 = content moved 10 % of the diagonal).
    ``motion: none`` or lambda2 = 0 gives semantic-only selection (no flow is computed).
    Lite defaults were tuned on bikes.mp4 (512x320, 8 fps): a keyframe at every scene cut.
    """

    selector: str = "composite"  # composite | fixed
    semantic: str = "thumbnail"  # thumbnail | clip
    motion: str = "dis"  # dis | raft | none (semantic-only, same as lambda2 = 0)
    lambda1: float = 1.0
    lambda2: float = 0.02  # per percent of the diagonal: 0.02 * 25 % = 0.5
    threshold: float = 0.47
    max_interval: int = 16  # force a keyframe after this many frames (video models' clip length)
    min_interval: int = 1  # never two keyframes closer than this
    interval: int = 16  # the ``fixed`` selector's period
    tail_keyframe: bool = True  # interpolation mode: also code the last frame as a keyframe
    cut_threshold: float = 0.4  # adjacent-frame thumbnail distance that marks a scene cut (keyframes/cuts.py)
    clip: ClipOptions = field(default_factory=ClipOptions)
    raft: RaftOptions = field(default_factory=RaftOptions)
    dis: DisOptions = field(default_factory=DisOptions)


# --------------------------------------------------------------------------------------------
# stage 3: descriptions (text channel)
@dataclass(frozen=True)
class QwenVLOptions:
    """transformers Qwen-VL (AutoProcessor + AutoModelForImageTextToText) for the ``qwen-vl`` backend."""

    model: str = "Qwen/Qwen2-VL-7B-Instruct"  # hub id (also Qwen2.5-VL / Qwen3-VL ids) or local folder
    device: str = "auto"  # auto (cuda if available) | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (bfloat16 on cuda, float32 on cpu) | float32 | float16 | bfloat16
    attn_implementation: str = "sdpa"  # sdpa | eager | flash_attention_2
    local_files_only: bool = False
    max_pixels: int = 512 * 320  # images and video frames are downscaled to at most this many pixels


@dataclass(frozen=True)
class OpenAIOptions:
    """An OpenAI-compatible ``/v1/chat/completions`` server (vLLM, Ollama, LM Studio) for ``openai``."""

    base_url: str = "http://127.0.0.1:8000/v1"  # env M3CVC_OPENAI_BASE_URL overrides
    model: str = "Qwen/Qwen2-VL-7B-Instruct"  # env M3CVC_OPENAI_MODEL overrides
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key (optional)
    timeout: float = 120.0  # seconds per request
    retries: int = 3  # extra attempts after a connection error, timeout, 429 or 5xx
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    image_format: str = "jpeg"  # jpeg | png (images are sent as base64 data URLs)
    jpeg_quality: int = 90


@dataclass(frozen=True)
class DescribeConfig:
    backend: str = "none"  # none | manual | qwen-vl | openai
    descriptions: Optional[str] = None  # ``manual``: JSON {"keyframes": [...], "clips": [...]}
    strategy: str = "dialogue"  # dialogue (paper Fig. 2: multi-round) | single (one prompt each)
    prompts: Optional[str] = None  # YAML file overriding the shipped prompts (any subset of keys)
    max_new_tokens: int = 160  # per dialogue turn
    max_summary_tokens: int = 96  # per final description D^F / D^C (bounds the text rate)
    max_chars: int = 0  # if > 0, cut each final description at a sentence end within this length
    clip_frames: int = 8  # frames sampled evenly from each clip for the clip turn
    qwen_vl: QwenVLOptions = field(default_factory=QwenVLOptions)
    openai: OpenAIOptions = field(default_factory=OpenAIOptions)


@dataclass(frozen=True)
class RateConfig:
    """Rate control (m3cvc/ratecontrol.py): a target picks keyframe spacing and QP; 0 = off."""

    target_bpp: float = 0.0  # bits per pixel of the whole stream
    target_kbps: float = 0.0  # kbit/s at the coded frame rate (converted to bpp)
    # how the in-band finalists (one per spacing) are ranked: "rule" takes the densest spacing (no decoding),
    # "gmsd" decodes each and keeps the least distorted against the source (better LPIPS, slower; README)
    choice: Literal["rule", "gmsd"] = "rule"


@dataclass(frozen=True)
class TextConfig:
    codec: str = "auto"  # auto (smallest) | lzw | raw | ppm


# --------------------------------------------------------------------------------------------
# stage 4: keyframe codec
@dataclass(frozen=True)
class AvifOptions:
    quality: int = 10  # 0..100 (Pillow's AVIF quality); 10 measured best R-D with motion hints (README, lite codec)
    speed: int = 6  # 0 (slowest, best) .. 10
    subsampling: str = "4:2:0"


@dataclass(frozen=True)
class HevcOptions:
    """The keyframe chain as one low-delay HEVC video (x265): each keyframe predicted from the last."""

    qp: int = 42  # 0..51, constant QP of every keyframe (42: the middle of the measured R-D front, README)
    preset: str = "medium"  # x265 preset (ultrafast .. veryslow)
    target_bpp: float = 0.0  # set by rate control (recorded in the header for `m3cvc info`), else 0


@dataclass(frozen=True)
class VQDiffusionOptions:
    """Generative keyframe codec (paper II-C): VAE -> post-encoder -> 256-entry VQ -> entropy-coded
    indices; decoder: codebook -> z_hat -> text-conditioned latent diffusion -> VAE decoder."""

    checkpoint: Optional[str] = None  # VQ keyframe model folder (m3cvc train keyframe-encoder)
    vae: Optional[str] = None  # None: the VAE the checkpoint was trained with; hub id / folder / "taef2:<folder>"
    vae_kind: Optional[str] = None  # autoencoderkl | autoencodertiny | taef2 (None: from the checkpoint)
    grid: Optional[str] = None  # half (latent/2) | full (latent/1); None: the checkpoint's, else must match it
    decoder: str = "finetuned"  # finetuned (z_hat-conditioned UNet) | img2img (training-free) | vae (no diffusion)
    diffusion: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # text encoder, tokenizer, scheduler, img2img UNet
    unet: Optional[str] = None  # fine-tuned decoder folder (m3cvc train keyframe-decoder), for decoder=finetuned
    scheduler: str = "ddim"  # ddim | ddpm
    steps: int = 50
    strength: float = 0.6  # img2img: fraction of the schedule re-noised
    guidance: float = 5.0  # classifier-free guidance scale (1 = off)
    seed: int = 0  # stored in the stream
    dtype: str = "auto"  # auto (bfloat16 on GPUs that support it, float32 on cpu) | float32 | float16 | bfloat16
    device: str = "auto"  # auto (cuda when available, else cpu; the header keeps "auto") | cpu | cuda | cuda:N
    local_files_only: bool = False


@dataclass(frozen=True)
class RefineOptions:
    """Decoder-side refinement of the decoded hevc/avif keyframes by a public text-to-image model
    (training-free; the ``full`` profile): diffusers image-to-image at a low ``strength``, conditioned
    on the decoded keyframe and its text D^F. Every setting but device/dtype/cpu_offload/local_files_only
    changes the decoded pixels and is stored in the stream (keyframe_codec/refine.py)."""

    backend: str = "none"  # none | img2img
    model: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # any AutoPipelineForImage2Image model: hub id or folder
    strength: float = 0.25  # share of the noise schedule re-applied to the decoded keyframe (0 < strength <= 1)
    steps: int = 40  # scheduler steps of the full schedule; int(steps * strength) of them run
    guidance: float = 4.0  # classifier-free guidance scale (1 = off)
    negative_prompt: str = "blurry, low quality, jpeg artifacts, compression artifacts"
    seed: int = 0
    dtype: str = "auto"  # auto (bfloat16 on GPUs that support it, float32 on cpu) | float32 | float16 | bfloat16
    device: str = "auto"  # auto (cuda when available, else cpu) | cpu | cuda | cuda:N
    cpu_offload: bool = False  # enable_model_cpu_offload (GPU only; needs accelerate)
    local_files_only: bool = False


@dataclass(frozen=True)
class KeyframeCodecConfig:
    backend: str = "hevc"  # hevc (keyframe chain, lite) | avif (independent images) | vq-diffusion
    hevc: HevcOptions = field(default_factory=HevcOptions)
    avif: AvifOptions = field(default_factory=AvifOptions)
    vq_diffusion: VQDiffusionOptions = field(default_factory=VQDiffusionOptions)
    refine: RefineOptions = field(default_factory=RefineOptions)  # decode-side diffusion refinement of hevc/avif keyframes


# --------------------------------------------------------------------------------------------
# stage 5: clip reconstruction
@dataclass(frozen=True)
class FlowReconOptions:
    """Decoder-side optical-flow interpolation between decoded keyframes."""

    preset: str = "medium"  # DIS preset: ultrafast | fast | medium
    working_width: int = 512  # flow estimated at this width, upsampled to the frame size
    variational_iterations: int = 0  # DIS variational refinement (presets use 5; 0 measured better on bikes.mp4)
    occlusion: bool = True  # forward-backward consistency + out-of-frame weights when blending
    cut_threshold: float = 0.05  # fewer matched pixels than this: a scene cut, hold the keyframe
    fallback: float = 0.5  # share of the plain cross-fade where the flow is unreliable (0: warp only)
    motion_hints: bool = True  # encoder-side global motion per frame (CLIP_MOTION unit), see reconstruct/motion.py
    residual: bool = True  # with hints: add the decoder-side flow between the hint-aligned keyframes
    hint_model: str = "affine"  # similarity | affine | homography (encoder side only)
    hint_working_width: int = 256  # hint estimation width (encoder side only)
    hint_check: bool = True  # encoder side: keep a clip's hints only where they render it better than flow alone
    timing: bool = True  # encoder side: send the time at which each interpolated frame renders best (needs motion_hints)
    sharpen: int = -1  # detail restoration in tenths of the unsharp-mask strength, 0..30; -1: chosen per video by GMSD


@dataclass(frozen=True)
class VideoDiffusionOptions:
    """Settings shared by the video diffusion reconstructors (``ltx``, ``wan``, ``cogvideox``, ``seine``)."""

    seed: int = 0  # torch.Generator seed: same seed + device -> same frames
    dtype: str = "auto"  # auto (bfloat16 on GPU, float32 on CPU) | float32 | float16 | bfloat16
    device: str = "auto"  # auto (cuda when available, else cpu) | cpu | cuda | cuda:N | mps
    cpu_offload: bool = False  # enable_model_cpu_offload (GPU only; needs accelerate)
    vae_tiling: bool = False
    vae_slicing: bool = False
    max_sequence_length: int = 0  # text tokens; 0: the model's own (CogVideoX: its transformer's)
    local_files_only: bool = False  # never contact the hub (HF cache or a local folder only)


@dataclass(frozen=True)
class LtxOptions:
    """LTX-Video ``LTXConditionPipeline``: keyframe conditions at frame 0 and at the clip length."""

    model: str = "Lightricks/LTX-Video-0.9.5"  # hub id or local folder
    steps: int = 40
    guidance: float = 3.0
    negative_prompt: str = "worst quality, inconsistent motion, blurry, jittery, distorted"
    num_frames: int = 0  # frames per generated window; 0: the smallest 8k+1 covering the clip
    max_frames: int = 161  # longer clips are generated in chained windows
    width: int = 0  # generation size (multiple of 32); 0: the clip size within max_area
    height: int = 0
    max_area: int = 768 * 512
    frame_rate: float = 0.0  # LTX's frame-rate conditioning; 0: the video's (generated frames map 1:1 onto clip frames)


@dataclass(frozen=True)
class WanOptions:
    """Wan 2.x ``WanImageToVideoPipeline``: first frame (+ ``last_image`` for interpolation)."""

    model: str = "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers"  # interpolation (first + last frame)
    prediction_model: str = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"  # prediction (first frame)
    steps: int = 50
    guidance: float = 5.0
    negative_prompt: str = "static, blurred details, worst quality, low quality, JPEG artifacts, deformed"
    num_frames: int = 0  # frames per window; 0: the smallest 4k+1 covering the clip
    max_frames: int = 81
    width: int = 0  # generation size (multiple of 16); 0: the clip size within max_area
    height: int = 0
    max_area: int = 832 * 480


@dataclass(frozen=True)
class CogVideoXOptions:
    """CogVideoX ``CogVideoXImageToVideoPipeline`` (prediction only)."""

    model: str = "THUDM/CogVideoX-5b-I2V"
    steps: int = 50
    guidance: float = 6.0
    negative_prompt: str = ""
    num_frames: int = 0  # 0: the transformer's sample_frames (49 for CogVideoX-5b-I2V)
    width: int = 0  # 0: the transformer's sample size (720x480 for CogVideoX-5b-I2V)
    height: int = 0


SEINE_SAMPLERS = ("ddpm", "ddim")


@dataclass(frozen=True)
class SeineOptions:
    """SEINE (the paper's model): 16-frame masked video diffusion on Stable Diffusion v1.4 (``seine.pt``)."""

    model: str = "xinyuanc91/SEINE"  # seine.pt, a folder holding it, or a hub repo id with it
    base: str = "CompVis/stable-diffusion-v1-4"  # its VAE, CLIP text encoder, tokenizer and UNet config
    steps: int = 250  # sampling steps, respaced from SEINE's 1000 (the official sampling scripts use 250)
    sampler: str = "ddpm"  # ddpm (official default) | ddim (the official scripts' other option, eta 0)
    guidance: float = 8.0  # classifier-free guidance scale (official: 8)
    negative_prompt: str = ""
    num_frames: int = 16  # frames per generated window (SEINE is trained on 16)
    width: int = 0  # generation size (multiples of 8); 0: the clip size within max_area (512x320 clips: 512x320)
    height: int = 0
    max_area: int = 512 * 512  # pixels, at most 512 * 512 (the paper: "output resolution up to 512 x 512")


@dataclass(frozen=True)
class ReconstructConfig:
    backend: str = "flow"  # flow | blend | ltx | wan | cogvideox | seine
    mode: str = "interpolation"  # interpolation | prediction
    flow: FlowReconOptions = field(default_factory=FlowReconOptions)
    diffusion: VideoDiffusionOptions = field(default_factory=VideoDiffusionOptions)
    ltx: LtxOptions = field(default_factory=LtxOptions)
    wan: WanOptions = field(default_factory=WanOptions)
    cogvideox: CogVideoXOptions = field(default_factory=CogVideoXOptions)
    seine: SeineOptions = field(default_factory=SeineOptions)


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class M3Config:
    profile: str = "lite"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    describe: DescribeConfig = field(default_factory=DescribeConfig)
    text: TextConfig = field(default_factory=TextConfig)
    rate: RateConfig = field(default_factory=RateConfig)
    keyframe_codec: KeyframeCodecConfig = field(default_factory=KeyframeCodecConfig)
    reconstruct: ReconstructConfig = field(default_factory=ReconstructConfig)


def profile_config(profile: str) -> M3Config:
    """The embedded default config of a profile."""
    if profile == "lite":
        return M3Config()
    if profile in ("full", "paper"):
        # full: training-free generative profile on public weights (lite's HEVC keyframe chain refined on
        # decode by SD img2img) and LTX-Video clips; paper: the paper's trained VQ keyframe codec (needs
        # `m3cvc train`) and its video model, SEINE
        base = M3Config(profile=profile)
        kc = base.keyframe_codec
        kc = replace(kc, refine=replace(kc.refine, backend="img2img")) if profile == "full" else replace(kc, backend="vq-diffusion")
        return replace(
            base,
            # paper: clips of at most 15 frame intervals, SEINE's 16-frame window (one run per clip, frames 1:1)
            keyframes=replace(base.keyframes, semantic="clip", motion="raft",
                              max_interval=base.keyframes.max_interval if profile == "full" else 15,
                              interval=base.keyframes.interval if profile == "full" else 15),
            describe=replace(base.describe, backend="qwen-vl"),
            keyframe_codec=kc,
            reconstruct=replace(base.reconstruct, backend="ltx" if profile == "full" else "seine"),
        )
    raise ConfigError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")


# --------------------------------------------------------------------------------------------
# dict / YAML conversion
def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain dicts (field order kept)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    return obj


def _check_scalar(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        last: Optional[ConfigError] = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_scalar(arg, value, path)
            except ConfigError as exc:
                last = exc
        raise last or ConfigError(f"{path}: invalid value {value!r}")
    if origin is Literal:  # a closed set of strings
        allowed = typing.get_args(tp)
        if isinstance(value, str) and value in allowed:
            return value
        raise ConfigError(f"{path} must be one of {', '.join(allowed)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _YAML12_FLOAT.match(value.strip()):
            return float(value)  # YAML 1.1 (PyYAML) reads 1e-2, without a dot, as a string; YAML 1.2 as a number
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_check_scalar(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and is_dataclass(tp):
        return from_dict(tp, value, path)
    raise ConfigError(f"{path}: unsupported config type {tp!r}")  # pragma: no cover


def from_dict(cls: type[T], data: Any, path: str = "", base: Optional[T] = None) -> T:
    """Build ``cls`` from ``data``; keys missing in ``data`` come from ``base`` (or defaults)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"unknown config key {where!r}; valid keys: {', '.join(sorted(names))}")
    base = base if base is not None else cls()
    values = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        where = f"{path}.{f.name}" if path else f.name
        tp = hints[f.name]
        current = getattr(base, f.name)
        if is_dataclass(tp):
            values[f.name] = from_dict(tp, data[f.name], where, current)
        else:
            values[f.name] = _check_scalar(tp, data[f.name], where)
    return dataclasses.replace(base, **values)  # type: ignore[type-var]


def dump_yaml(config: M3Config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False)


SIDECAR_SUFFIX = ".yaml"


def sidecar_path(output: Union[str, Path]) -> Path:
    """Where ``encode`` writes the config of ``output``: ``OUT.yaml`` beside it (``clip.m3c.yaml``)."""
    return Path(str(output) + SIDECAR_SUFFIX)


def command_word(path: Any) -> str:
    """A path as one shell word of an m3cvc command (quoted; ``./`` before a relative path that starts
    with ``-``, which would read as an option)."""
    import shlex

    text = str(path)
    return shlex.quote("./" + text if text.startswith("-") else text)


def sidecar_yaml(
    config: M3Config, input: Union[str, Path], output: Union[str, Path], args: Sequence[str] = (), notes: Sequence[str] = ()
) -> str:
    """The full resolved ``config`` of an encode as YAML, headed by comments with the m3cvc version and a
    command that re-creates ``output`` byte for byte from it (same m3cvc and codec builds); ``args``: the
    encode options that are not config keys (``--descriptions``, input-reading options), already quoted;
    ``notes``: more comment lines (what rate control chose)."""
    from . import __version__

    word = command_word
    command = ["m3cvc", "encode", word(input), "-o", word(output), "--config", word(sidecar_path(output)), *args,
               "--no-config-out", "-y"]  # fmt: skip
    head = [f"m3cvc {__version__} encode config of {Path(output).name} (input: {input})",
            "re-create the stream from this file:", "  " + " ".join(command), *notes]  # fmt: skip
    return "".join(f"# {line}\n" for line in head) + dump_yaml(config)


def reading_args(open_kwargs: Mapping[str, Any]) -> list[str]:
    """``m3cvc encode``'s options that read a source as ``open_kwargs`` (:func:`m3cvc.video.open_video`'s
    keywords) says, as quoted command words (for a sidecar's re-create command)."""
    import shlex

    out: list[str] = []
    if open_kwargs.get("raw_size"):
        out += ["--input-size", "{}x{}".format(*open_kwargs["raw_size"]),
                "--input-pix-fmt", shlex.quote(open_kwargs.get("raw_pix_fmt") or "yuv420p")]  # fmt: skip
    if open_kwargs.get("raw_fps") is not None:
        out += ["--input-fps", repr(float(open_kwargs["raw_fps"]))]
    if open_kwargs.get("stream") is not None:
        out += ["--stream", str(open_kwargs["stream"])]
    return out


SIDECAR_MARK = "# m3cvc "  # how a sidecar written by m3cvc starts


def read_yaml(path: Union[str, Path], what: str) -> Any:
    """The YAML document in ``path``; ConfigError naming ``what`` if unreadable or invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def load_config(path: Optional[Union[str, Path]] = None, profile: Optional[str] = None) -> M3Config:
    """The profile's defaults overridden by the YAML file at ``path`` (any subset of keys).

    The profile comes from ``profile`` if given, else from the file's ``profile`` key, else lite.
    """
    data: dict[str, Any] = {}
    if path is not None:
        loaded = read_yaml(path, "config")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must be a YAML mapping at the top level")
        data = loaded
    chosen = profile or data.get("profile") or "lite"
    if not isinstance(chosen, str):
        raise ConfigError(f"profile: expected a string, got {chosen!r}")
    base = profile_config(chosen)
    data = dict(data)
    data["profile"] = chosen
    return from_dict(M3Config, data, "", base)


def with_overrides(config: M3Config, **sections: dict[str, Any]) -> M3Config:
    """Apply dotted CLI overrides, e.g. ``with_overrides(cfg, keyframes={"interval": 8})``."""
    data = {name: values for name, values in sections.items() if values}
    return from_dict(M3Config, data, "", config) if data else config
