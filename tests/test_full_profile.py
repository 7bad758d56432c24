"""The training-free ``full`` profile end to end, with tiny random models of every stage saved to folders.

CLIP (semantic), RAFT (motion), Qwen-VL (descriptions), Stable Diffusion img2img (keyframe refinement)
and LTX-Video (clips) are built from small configs, saved like downloaded models and loaded back through
the same ``from_pretrained`` code a user's models go through. Nothing here measures quality: the models
are random.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("diffusers")

from conftest import TEST_DEVICE, synthetic_frames, write_video  # noqa: E402
from describe_helpers import build_tiny_qwen  # noqa: E402
from tiny_models import build_tiny_clip, build_tiny_raft, build_tiny_sd, save_pipeline, tiny_ltx  # noqa: E402

from m3cvc.cli import main  # noqa: E402
from m3cvc.config import KeyframeCodecConfig, RefineOptions, load_config  # noqa: E402
from m3cvc.errors import BitstreamError, ConfigError  # noqa: E402
from m3cvc.keyframe_codec import HevcChainCodec, build_keyframe_codec, keyframe_codec_from_params  # noqa: E402
from m3cvc.video import open_video  # noqa: E402

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("full_models")
    torch.manual_seed(0)
    return {
        "clip": build_tiny_clip(root / "clip"),
        "raft": build_tiny_raft(root / "raft_small.pth"),
        "qwen": build_tiny_qwen(root / "qwen", "qwen2_vl"),
        "sd": build_tiny_sd(root / "sd", pipeline=True),
        "ltx": save_pipeline(tiny_ltx(), root / "ltx"),
    }


def full_config(models: dict[str, Path], path: Path) -> Path:
    """A user's config file for the full profile pointing every model at a local folder."""
    cfg = {
        "profile": "full",
        "preprocess": {"width": 96, "height": 64},
        "keyframes": {
            "clip": {"model": str(models["clip"]), "local_files_only": True, "device": TEST_DEVICE},
            "raft": {"variant": "small", "weights": str(models["raft"]), "device": TEST_DEVICE, "num_flow_updates": 2,
                     "working_width": 128},
        },
        "describe": {"max_new_tokens": 3, "max_summary_tokens": 4, "clip_frames": 2,
                     "qwen_vl": {"model": str(models["qwen"]), "local_files_only": True, "device": TEST_DEVICE,
                                 "max_pixels": 56 * 84}},
        "keyframe_codec": {"refine": {"model": str(models["sd"]), "local_files_only": True, "steps": 8,
                                      "strength": 0.5, "device": TEST_DEVICE}},
        "reconstruct": {"diffusion": {"device": TEST_DEVICE, "local_files_only": True},
                        "ltx": {"model": str(models["ltx"]), "steps": 2}},
    }
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _frames(path: Path) -> list[np.ndarray]:
    with open_video(path) as src:
        return [raw.rgb() for _, raw in src.frames()]


def test_full_profile_is_training_free_and_the_paper_codec_is_its_own_profile():
    full, paper = load_config(profile="full"), load_config(profile="paper")
    assert full.keyframe_codec.backend == "hevc" and full.keyframe_codec.refine.backend == "img2img"
    assert full.keyframe_codec.refine.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert (full.keyframes.semantic, full.keyframes.motion, full.describe.backend, full.reconstruct.backend) == (
        "clip", "raft", "qwen-vl", "ltx")
    assert paper.keyframe_codec.backend == "vq-diffusion" and paper.keyframe_codec.refine.backend == "none"
    assert load_config(profile="lite").keyframe_codec.refine.backend == "none"
    # every model stage resolves device and dtype in one place (auto by default)
    for opts in (full.keyframes.clip, full.describe.qwen_vl, full.keyframe_codec.refine, full.reconstruct.diffusion,
                 paper.keyframe_codec.vq_diffusion):  # fmt: skip
        assert (opts.device, opts.dtype) == ("auto", "auto")


def test_full_profile_cli_encode_decode_with_tiny_models(models, tmp_path, capsys):
    video = write_video(tmp_path / "in.y4m", synthetic_frames(12, cut_at=7))
    cfg = full_config(models, tmp_path / "full.yaml")
    a, b = tmp_path / "a.m3c", tmp_path / "b.m3c"
    assert main(["encode", str(video), "-o", str(a), "--config", str(cfg), "--quiet"]) == 0
    assert main(["encode", str(video), "-o", str(b), "--config", str(cfg), "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()  # reproducible bytes
    capsys.readouterr()
    assert main(["info", str(a), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["profile"] == "full" and info["keyframe_codec"]["name"] == "hevc+img2img"
    assert info["keyframe_codec"]["params"]["model"] == str(models["sd"])
    assert info["decoder_uses_text"]["keyframes"] is True and info["reconstructor"]["name"] == "ltx"
    assert info["keyframe_pictures"][0] == "IDR" and set(info["keyframe_pictures"]) <= {"IDR", "P"}  # the chain
    assert any(t for t in info.get("keyframe_texts", [""]))  # Qwen-VL wrote the texts
    # the resolved config sits beside the stream and reproduces it
    sidecar = Path(str(a) + ".yaml")
    assert sidecar.is_file() and yaml.safe_load(sidecar.read_text())["keyframe_codec"]["refine"]["backend"] == "img2img"
    c = tmp_path / "c.m3c"
    assert main(["encode", str(video), "-o", str(c), "--config", str(sidecar), "--quiet"]) == 0
    assert c.read_bytes() == a.read_bytes()
    out1, out2 = tmp_path / "d1.y4m", tmp_path / "d2.y4m"
    assert main(["decode", str(a), "-o", str(out1), "--quiet"]) == 0
    assert main(["decode", str(a), "-o", str(out2), "--quiet"]) == 0
    f1, f2 = _frames(out1), _frames(out2)
    assert len(f1) == 12 and f1[0].shape == (64, 96, 3)
    assert all(np.array_equal(x, y) for x, y in zip(f1, f2))  # same stream, seed, device -> same pixels


def test_full_profile_refinement_stays_outside_the_chain_and_bounds_stream_params(models):
    frames = synthetic_frames(4, cut_at=None)
    kc = KeyframeCodecConfig(refine=RefineOptions(backend="img2img", model=str(models["sd"]), local_files_only=True,
                                                  steps=6, strength=0.5, device=TEST_DEVICE))  # fmt: skip
    enc = build_keyframe_codec(kc)
    assert enc.name == "hevc+img2img" and enc.refiner._pipe is None  # encoding builds no model
    units = [enc.compress(f) for f in frames]
    plain = HevcChainCodec()
    reference = [plain.decompress(u, (64, 96)) for u in units]
    dec = keyframe_codec_from_params(enc.name, enc.params())
    seen = []
    refine = dec.refiner.refine
    dec.refiner.refine = lambda frame, text: seen.append(frame) or refine(frame, text)
    refined = [dec.decompress(u, (64, 96), "a car") for u in units]
    assert all(np.array_equal(s, r) for s, r in zip(seen, reference))  # the chain decodes what was coded
    assert all(x.shape == (64, 96, 3) and x.dtype == np.uint8 for x in refined)
    assert any(not np.array_equal(x, r) for x, r in zip(refined, reference))  # the model changed the pictures
    # a crafted header cannot make the decoder run away or accept nonsense
    for key, value in (("steps", 10**6), ("steps", 1000), ("strength", 0.0), ("strength", 1e-9), ("strength", float("nan")),
                       ("guidance", -1.0), ("device", "meta")):
        with pytest.raises(BitstreamError, match="invalid parameters"):
            keyframe_codec_from_params(enc.name, {**enc.params(), key: value})
    with pytest.raises(BitstreamError, match="unknown parameter|invalid"):
        keyframe_codec_from_params(enc.name, {**enc.params(), "steps": "many"})
    with pytest.raises(ConfigError, match="keyframe_codec.refine refines hevc or avif"):
        build_keyframe_codec(replace(kc, backend="vq-diffusion"))
    with pytest.raises(ConfigError, match="keyframe_codec.refine.strength"):
        build_keyframe_codec(replace(kc, refine=replace(kc.refine, strength=1.5)))
    with pytest.raises(ConfigError, match="at least one denoising step"):
        build_keyframe_codec(replace(kc, refine=replace(kc.refine, steps=3, strength=0.25)))
    with pytest.raises(ConfigError, match="keyframe_codec.refine.device"):
        build_keyframe_codec(replace(kc, refine=replace(kc.refine, device="nonsense")))
    # the inner chain's header params are strict too
    for extra in ({"zzz": 1}, {"qp": 9999}, {"preset": "nonsense"}):
        with pytest.raises(BitstreamError):
            keyframe_codec_from_params(enc.name, {**enc.params(), **extra})
    for extra in ({"zzz": 1}, {"quality": -5}, {"quality": "x"}):  # and the AVIF codec's
        with pytest.raises(BitstreamError):
            keyframe_codec_from_params("avif", {"quality": 30, **extra})
    # a local model folder is stored as an absolute path (decodable from any working directory)
    assert Path(enc.params()["model"]).is_absolute()


def _smooth_images(n: int, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        coarse = torch.from_numpy(rng.integers(0, 256, size=(3, 4, 4)).astype(np.float32))[None]
        img = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0]
        out.append(img.permute(1, 2, 0).round().clamp(0, 255).byte().numpy())
    return out


def _mixed_precision() -> str:
    """bf16 where the test device supports it (the CPU does), else fp16 on an older GPU."""
    if TEST_DEVICE.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return "fp16"
    return "bf16"


def test_full_profile_training_on_the_test_device_with_mixed_precision_resumes(models, tmp_path):
    """The paper profile's keyframe encoder trained through accelerate on M3CVC_TEST_DEVICE (CPU here) with
    mixed precision and gradient accumulation, from latents streamed off disk; a run interrupted at its
    checkpoint and resumed ends where an uninterrupted run ends."""
    from m3cvc.keyframe_codec.train import EncoderTrainConfig, EncoderTrainer, LatentStore, TrainRuntime, train_loop
    from m3cvc.keyframe_codec.vae import load_vae
    from m3cvc.keyframe_codec.vq_model import VQKeyframeModel, VQModelConfig

    vae = load_vae(str(models["sd"]), "autoencoderkl", device=TEST_DEVICE, local_files_only=True)
    store = LatentStore.build(tmp_path / "latents.npy", _smooth_images(6), vae, progress=False, key="six")
    assert isinstance(store.array, np.memmap) and store.shape[0] == 6  # read from disk as drawn
    assert LatentStore.build(tmp_path / "latents.npy", [], vae, progress=False, key="six").shape == store.shape  # reused
    mp = _mixed_precision()
    runtime = TrainRuntime(device=TEST_DEVICE, mixed_precision=mp, grad_accum=2)
    cfg = EncoderTrainConfig(steps=4, prior_steps=2, batch_size=2, crop=0, log_every=1, save_every=2)
    model_cfg = VQModelConfig(grid="full", channels=16, blocks=1, code_dim=8, prior_embed=8, prior_hidden=16)
    whole = EncoderTrainer(store, tmp_path / "a", model_cfg, cfg, progress=False, runtime=runtime)
    assert whole.device.type == torch.device(TEST_DEVICE).type and whole.accel.mixed_precision == mp
    before = whole.eval_loss()
    whole.train()
    assert whole.eval_loss() < before
    part = EncoderTrainer(store, tmp_path / "b", model_cfg, cfg, progress=False, runtime=runtime)
    part._kmeans_init()
    train_loop(part, "vq", 0, 2, part.vq_step)  # interrupted after its step-2 checkpoint
    resumed = EncoderTrainer(store, tmp_path / "b", model_cfg, cfg, resume=True, progress=False, runtime=runtime)
    assert resumed.step == 2
    resumed.train()
    a, b = VQKeyframeModel.from_pretrained(tmp_path / "a"), VQKeyframeModel.from_pretrained(tmp_path / "b")
    for (name, ta), (_, tb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(ta, tb, atol=1e-5), name
    state = torch.load(tmp_path / "b" / "training_state.pt", weights_only=False)
    assert state["runtime"]["mixed_precision_used"] == mp and state["runtime"]["grad_accum"] == 2


def _dataset(folder: Path, n: int = 4) -> Path:
    """A keyframe dataset folder as `m3cvc dataset build` writes it (PNGs + manifest.jsonl)."""
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    lines = []
    for i, image in enumerate(_smooth_images(n, seed=1)):
        Image.fromarray(image).save(folder / "images" / f"v_{i}.png")
        lines.append(json.dumps({"image": f"images/v_{i}.png", "text": "a red car", "video": "v.mp4", "frame": i}))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_full_profile_train_cli_takes_device_precision_and_accumulation(models, tmp_path):
    from m3cvc.keyframe_codec.train import read_loss_log

    ds = _dataset(tmp_path / "ds")
    run = ["--device", TEST_DEVICE, "--mixed-precision", _mixed_precision(), "--grad-accum", "2", "--local-files-only", "-q"]
    enc, dec = tmp_path / "enc", tmp_path / "dec"
    assert main(["train", "keyframe-encoder", str(ds), "-o", str(enc), "--vae", str(models["sd"]), "--grid", "full",
                 "--steps", "2", "--prior-steps", "1", "--channels", "8", "--blocks", "1", "--code-dim", "4",
                 "--crop", "0", *run]) == 0  # fmt: skip
    assert (enc / "latents.npy").is_file()
    base = ["train", "keyframe-decoder", str(ds), "--encoder", str(enc), "--base", str(models["sd"]), "-o", str(dec),
            "--batch-size", "2", *run]  # fmt: skip
    assert main([*base, "--steps", "1"]) == 0
    assert main([*base, "--steps", "2", "--resume"]) == 0
    assert [r["step"] for r in read_loss_log(dec)] == [1, 2]
    assert main([*base[:-1], "--steps", "3", "--resume", "--mixed-precision", "fp16", "--device", "cpu"]) == 2  # one line
    other = tmp_path / "enc2"
    import shutil

    shutil.copytree(enc, other)
    assert main([*base, "--steps", "3", "--resume", "--encoder", str(other)]) == 2  # trained with another encoder
    enc_base = ["train", "keyframe-encoder", str(ds), "--vae", str(models["sd"]), "--grid", "full", "--prior-steps", "1",
                "--channels", "8", "--blocks", "1", "--code-dim", "4", "--crop", "0", "--steps", "2", *run]  # fmt: skip
    for bad in (["--device", "nonsense"], ["--device", "cuda:7"] if not torch.cuda.is_available() else ["--lr", "nan"],
                ["--batch-size", "0"], ["--lr", "-1"], ["--limit", "0"], ["--crop", "2"], ["--steps", "-3"],
                ["--code-dim", "0"], ["--grad-accum", "0"]):  # fmt: skip
        fresh = tmp_path / f"bad{bad[0]}{bad[1]}"
        assert main([*enc_base, "-o", str(fresh), *bad]) == 2, bad
        assert not (fresh / "latents.npy").exists()  # refused before any work
    stamp = (enc / "latents.npy").stat().st_mtime_ns
    assert main([*enc_base, "-o", str(enc), "--resume", "--channels", "16"]) == 2  # other architecture
    assert (enc / "latents.npy").stat().st_mtime_ns == stamp  # refused before the latent cache was touched
    assert main([*enc_base, "-o", str(tmp_path / "never"), "--resume"]) == 2  # nothing to resume
    assert main([*enc_base, "-o", str(tmp_path / "tiny_kind"), "--vae-kind", "autoencodertiny"]) == 2  # not a TAESD


def test_full_profile_decode_overrides_reach_the_refiner(models, tmp_path):
    """decode --device/--dtype/--cpu-offload replace the stream's machine settings of the refiner."""
    from m3cvc.pipeline import DecodeOverrides

    kc = KeyframeCodecConfig(refine=RefineOptions(backend="img2img", model=str(models["sd"])))
    params = build_keyframe_codec(kc).params()
    assert (params["device"], params["dtype"], params["cpu_offload"]) == ("auto", "auto", False)
    applied = DecodeOverrides(device="cpu", dtype="bfloat16", cpu_offload=True).apply(params)
    codec = keyframe_codec_from_params("hevc+img2img", applied)
    o = codec.options
    assert (o.device, o.dtype, o.cpu_offload, o.steps, o.model) == ("cpu", "bfloat16", True, params["steps"], str(models["sd"]))
    assert DecodeOverrides().apply(params) == params


def test_full_profile_training_runs_as_two_processes(models, tmp_path):
    """Multi-process training as `accelerate launch` / `torchrun` start it (two CPU processes, gloo): one
    process group, one log and one checkpoint, each process's sampler state saved for the resume."""
    import os
    import subprocess
    import sys

    from m3cvc.keyframe_codec.train import read_loss_log

    ds, enc = _dataset(tmp_path / "ds"), tmp_path / "enc"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "m3cvc",
            "train", "keyframe-encoder", str(ds), "-o", str(enc), "--vae", str(models["sd"]), "--grid", "full",
            "--prior-steps", "1", "--channels", "8", "--blocks", "1", "--code-dim", "4", "--crop", "0", "--device", "cpu",
            "--mixed-precision", "bf16", "--grad-accum", "2", "--local-files-only", "-q"]  # fmt: skip
    for extra in (["--steps", "2"], ["--steps", "2", "--prior-steps", "2", "--resume"]):
        proc = subprocess.run(base + extra, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["step"] for r in read_loss_log(enc)] == [2, 3, 4]  # each phase end logged once, by the main process
    state = torch.load(enc / "training_state.pt", weights_only=False)
    assert state["runtime"]["processes"] == 2 and len(state["gens"]) == 2 and state["step"] == 4


def test_full_profile_quiet_decode_prints_nothing(models, tmp_path, capfd):
    """`-q` silences the model libraries' progress bars and advice too, and the environment is restored."""
    import os

    video = write_video(tmp_path / "in.y4m", synthetic_frames(6))
    m3c = tmp_path / "a.m3c"
    cfg = tmp_path / "lite_refined.yaml"
    cfg.write_text(yaml.safe_dump({"preprocess": {"width": 96, "height": 64}, "keyframe_codec": {"refine": {
        "backend": "img2img", "model": str(models["sd"]), "local_files_only": True, "steps": 4, "strength": 0.5,
        "device": TEST_DEVICE}}}))  # fmt: skip
    assert main(["encode", str(video), "-o", str(m3c), "--config", str(cfg), "-q"]) == 0
    capfd.readouterr()
    assert main(["decode", str(m3c), "-o", str(tmp_path / "a.y4m"), "-q"]) == 0
    out, err = capfd.readouterr()
    assert out == "" and err == "", err[-500:]
    assert "TQDM_DISABLE" not in os.environ


def test_full_profile_latent_store_resumes_an_interrupted_build(models, tmp_path):
    from m3cvc.keyframe_codec.train import LatentStore
    from m3cvc.keyframe_codec.vae import load_vae

    vae = load_vae(str(models["sd"]), "autoencoderkl", local_files_only=True)
    images = _smooth_images(5, seed=2)

    class Failing(list):
        def __getitem__(self, i):
            if i == 3:
                raise KeyboardInterrupt  # the build is stopped while encoding its second batch
            return list.__getitem__(self, i)

    with pytest.raises(KeyboardInterrupt):
        LatentStore.build(tmp_path / "a.npy", Failing(images), vae, batch_size=2, progress=False, key="k")
    assert json.loads((tmp_path / "a.npy.json").read_text())["done"] == 2
    resumed = LatentStore.build(tmp_path / "a.npy", images, vae, batch_size=2, progress=False, key="k")
    fresh = LatentStore.build(tmp_path / "b.npy", images, vae, batch_size=2, progress=False, key="k")
    assert resumed.shape == fresh.shape == (5, 4, 8, 8) and torch.equal(resumed[:], fresh[:])
