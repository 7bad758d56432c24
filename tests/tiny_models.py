"""Offline building blocks for tiny random models (tokenizers, text encoders, video diffusion
pipelines), shared by the tests and the GPU benchmarks; no pytest here."""

from __future__ import annotations

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
