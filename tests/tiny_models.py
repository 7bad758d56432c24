"""Offline building blocks for tiny random models (tokenizers, text encoders, video diffusion
pipelines), shared by the tests and the GPU benchmarks; no pytest here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def t5_tokenizer() -> Any:
    """A T5 (sentencepiece-style unigram) tokenizer from a small hand-written vocabulary."""
    from transformers import T5Tokenizer

    words = ["a", "the", "cat", "dog", "walks", "street", "video", "car", "man", "runs"]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [("\u2581" + c, -3.5) for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [("\u2581" + w, -1.0) for w in words]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=64)


TINY_T5 = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)


def t5_encoder(vocab_size: int, umt5: bool = False, **size: Any) -> Any:
    """A random T5 (or UMT5) text encoder: tiny, unless ``size`` overrides ``TINY_T5``'s keys."""
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    kw = dict(vocab_size=vocab_size, **{**TINY_T5, **size})
    if umt5:
        return UMT5EncoderModel(UMT5Config(**kw))
    return T5EncoderModel(T5Config(**kw))


def tiny_ltx() -> Any:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )

    tok = t5_tokenizer()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
        attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False,
        patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False,
    )  # 4x spatial, 4x temporal: frame counts 4k+1
    return LTXConditionPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                                text_encoder=t5_encoder(len(tok)), tokenizer=tok, transformer=transformer)


def tiny_wan(with_clip: bool) -> Any:
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    tok = t5_tokenizer()
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])  # 8x spatial, 4x temporal
    extra, comps = {}, {}
    if with_clip:  # Wan2.1 FLF2V layout: CLIP tokens of first + last image with a learned pos-embed
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

        enc = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, image_size=32,
            intermediate_size=64, patch_size=8))
        extra = dict(image_dim=32, added_kv_proj_dim=24, pos_embed_seq_len=2 * 17)
        comps = dict(image_encoder=enc, image_processor=CLIPImageProcessor(crop_size=32, size=32))
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16 + 4 + 16,
        out_channels=16, text_dim=32, freq_dim=64, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, **extra,
    )
    return WanImageToVideoPipeline(tokenizer=tok, text_encoder=t5_encoder(len(tok), umt5=True, relative_attention_num_buckets=8), vae=vae,
                                   transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                   **comps)


def tiny_cogvideox() -> Any:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    tok = t5_tokenizer()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=8, sample_height=8, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16, use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )  # 64x64 (latent 8x8), 9 frames
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    )
    return CogVideoXImageToVideoPipeline(tokenizer=tok, text_encoder=t5_encoder(len(tok)), vae=vae,
                                         transformer=transformer, scheduler=CogVideoXDDIMScheduler())


# ------------------------------------------------------------------------------ CLIP / Stable Diffusion
def write_clip_tokenizer(folder: Path, merges: tuple[str, ...] = ("t h", "th e</w>", "a n", "an d</w>")) -> None:
    """vocab.json / merges.txt of a tiny byte-level CLIP BPE (the 256 byte symbols, their word-final
    forms, a few merges) for ``CLIPTokenizer.from_pretrained``."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            codes.append(256 + extra)
            extra += 1
    chars = [chr(c) for c in codes]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    for merge in merges:
        vocab["".join(merge.split())] = len(vocab)
    for token in ("<|startoftext|>", "<|endoftext|>"):
        vocab[token] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def tiny_unet(in_channels: int = 4, attention_head_dim: int = 4) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        norm_num_groups=8, cross_attention_dim=32, attention_head_dim=attention_head_dim,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))


def build_tiny_sd(root: Path, sample_size: int = 64, pipeline: bool = False) -> Path:
    """A random Stable-Diffusion-layout folder (tokenizer/, text_encoder/, vae/, unet/, scheduler/) in
    ``root``; ``pipeline``: also the ``model_index.json`` of a StableDiffusionPipeline, so diffusers'
    pipeline loaders (``AutoPipelineForImage2Image``) take the folder as they take SD 1.5's."""
    import torch
    import transformers
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline

    torch.manual_seed(0)
    write_clip_tokenizer(root / "_tok")
    tok = transformers.CLIPTokenizer.from_pretrained(str(root / "_tok"), model_max_length=16)
    enc = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=16, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[16, 16, 32, 32], layers_per_block=1,
        norm_num_groups=8, sample_size=sample_size)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    if pipeline:
        StableDiffusionPipeline(vae=vae, text_encoder=enc, tokenizer=tok, unet=tiny_unet(4), scheduler=sched,
                                safety_checker=None, feature_extractor=None, requires_safety_checker=False,
                                ).save_pretrained(str(root))
    else:
        tok.save_pretrained(str(root / "tokenizer"))
        enc.save_pretrained(str(root / "text_encoder"))
        vae.save_pretrained(str(root / "vae"))
        tiny_unet(4).save_pretrained(str(root / "unet"))
        sched.save_pretrained(str(root / "scheduler"))
    return root


def build_tiny_seine(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """``(seine.pt, base folder)``: a tiny Stable-Diffusion-layout base whose UNet config has one head
    per block (32 / 64 features: SEINE's temporal attention rotates 32), and a random SEINE UNet of that
    config saved as the official checkpoint is (``torch.save({"ema": state_dict})``)."""
    import torch

    from m3cvc.reconstruct.seine_unet import SeineUNet3D

    base = build_tiny_sd(root / "sd")
    unet = tiny_unet(4, attention_head_dim=1)
    unet.save_pretrained(str(base / "unet"))
    torch.manual_seed(seed)
    seine = SeineUNet3D.from_sd_config(dict(unet.config)).eval()
    (root / "seine").mkdir(parents=True, exist_ok=True)
    torch.save({"ema": seine.state_dict()}, root / "seine" / "seine.pt")
    return root / "seine" / "seine.pt", base


def build_tiny_clip(root: Path) -> Path:
    """A random CLIPModel + CLIPProcessor (32 px images) saved in ``root/model``; returns that folder."""
    import torch
    import transformers

    write_clip_tokenizer(root / "tokenizer", merges=("t h", "a n"))
    tokenizer = transformers.CLIPTokenizer.from_pretrained(root / "tokenizer", model_max_length=16)
    config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, max_position_embeddings=16, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    model = transformers.CLIPModel(config).eval()
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = transformers.CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    return root / "model"


def build_tiny_raft(path: Path) -> Path:
    """Random RAFT-small weights saved as a ``.pth`` state dict (``keyframes.raft.weights``)."""
    import torch
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    torch.save(raft_small(weights=None, progress=False).state_dict(), path)
    return path


def save_pipeline(pipe: Any, folder: Path) -> Path:
    """``pipe.save_pretrained(folder)`` with every module in eval mode (modules built from configs start
    in train mode)."""
    import torch

    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    pipe.save_pretrained(folder)
    return folder
