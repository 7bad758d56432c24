"""SEINE's video UNet (Chen et al., ICLR 2024), written on torch / diffusers building blocks.

SEINE extends Stable Diffusion v1.4's UNet to video: every 2D layer is applied to each frame
("inflated"), each transformer block gains a temporal self-attention over the frames (rotary
position embedding on 32 of the head features plus a learned T5-style relative position bias),
and ``conv_in`` takes 9 channels: the noisy latent (4), the mask (1, 1 = generate, 0 = given)
and the VAE latents of the masked video (4).

The module tree mirrors the official implementation's (``models/unet.py``, ``unet_blocks.py``,
``attention.py``, ``resnet.py`` of https://github.com/Vchitect/SEINE, Apache-2.0), so the released
checkpoint's ``ema`` state dict loads with no key renaming: :func:`load_seine_state_dict` checks
it strictly and names missing, unexpected or mis-shaped keys in one line. Where this code follows
or differs from the official one:

* same arithmetic: GroupNorm of the ResNet blocks and of ``conv_norm_out`` normalises over all
  frames together (a 5D GroupNorm, as there), the transformers' GroupNorm per frame; the text
  context is repeated per frame; the relative position buckets are computed as there;
* attention runs through ``torch.nn.functional.scaled_dot_product_attention`` instead of the
  explicit ``baddbmm``/``softmax`` (the same function up to rounding); no xformers path;
* inference only (no gradient checkpointing, no image-joint training of ``use_image_num``).

Tensors are ``(batch, channels, frames, height, width)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from ..errors import BackendError

ROTARY_DIM = 32  # RotaryEmbedding(32) in the official UNet, shared by every temporal attention
POSITION_BUCKETS = 32
POSITION_MAX_DISTANCE = 32
IN_CHANNELS = 9  # noisy latent (4) + mask (1) + masked-video latent (4): ``use_concat``


# ------------------------------------------------------------------------------------ layers
def _per_frame(x: torch.Tensor) -> torch.Tensor:
    """``(b, c, f, h, w) -> (b f, c, h, w)`` (batch outer, frame inner)."""
    b, c, f, h, w = x.shape
    return x.transpose(1, 2).reshape(b * f, c, h, w)


class InflatedConv3d(nn.Conv2d):
    """A 2D convolution applied to every frame of ``(b, c, f, h, w)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b, f = x.shape[0], x.shape[2]
        y = super().forward(_per_frame(x))
        return y.reshape(b, f, *y.shape[1:]).transpose(1, 2)


class ResnetBlock3D(nn.Module):
    """The official ``ResnetBlock3D`` (pre-norm, SiLU, time embedding added after ``conv1``)."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, groups: int, eps: float,
                 output_scale_factor: float = 1.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps, affine=True)
        self.conv1 = InflatedConv3d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps, affine=True)
        self.conv2 = InflatedConv3d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.conv_shortcut = (InflatedConv3d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)
                              if in_channels != out_channels else None)
        self.output_scale_factor = output_scale_factor

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # GroupNorm over (channels/group, frames, h, w), as official
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return (x + h) / self.output_scale_factor


class Downsample3D(nn.Module):
    def __init__(self, channels: int, padding: int) -> None:
        super().__init__()
        self.conv = InflatedConv3d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample3D(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = InflatedConv3d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, output_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        dtype = x.dtype
        if dtype == torch.bfloat16:  # nearest upsampling of bfloat16 is not supported everywhere
            x = x.float()
        if output_size is None:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        else:
            x = F.interpolate(x, size=tuple(output_size), mode="nearest")
        return self.conv(x.to(dtype))


class RotaryEmbedding(nn.Module):
    """Rotary position embedding of the first ``dim`` features (``rotary-embedding-torch`` 0.3.5's
    ``RotaryEmbedding(dim)``, ``freqs_for='lang'``, interleaved pairs); its ``freqs`` is a frozen
    parameter, as in the checkpoint."""

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def rotate(self, t: torch.Tensor) -> torch.Tensor:
        """``t``: (..., seq, features); positions 0..seq-1 along dim -2."""
        seq = t.shape[-2]
        angles = torch.arange(seq, device=t.device, dtype=t.dtype).to(self.freqs.dtype)[:, None] * self.freqs[None, :]
        angles = angles.repeat_interleave(2, dim=-1).to(t)
        rot = angles.shape[-1]
        if rot > t.shape[-1]:
            raise BackendError(f"SEINE temporal attention heads need at least {rot} features (got {t.shape[-1]})")
        x, rest = t[..., :rot], t[..., rot:]
        pairs = x.reshape(*x.shape[:-1], rot // 2, 2)
        half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).reshape(x.shape)
        return torch.cat((x * angles.cos() + half * angles.sin(), rest), dim=-1)


class RelativePositionBias(nn.Module):
    """Learned per-head bias of the frame distance (T5 buckets), added to the temporal scores."""

    def __init__(self, heads: int, num_buckets: int = POSITION_BUCKETS, max_distance: int = POSITION_MAX_DISTANCE) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    @staticmethod
    def bucket(relative: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
        n = -relative
        num_buckets //= 2
        ret = (n < 0).long() * num_buckets
        n = torch.abs(n)
        max_exact = num_buckets // 2
        is_small = n < max_exact
        large = max_exact + (
            torch.log(n.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
        ).long()
        large = torch.minimum(large, torch.full_like(large, num_buckets - 1))
        return ret + torch.where(is_small, n, large)

    def forward(self, frames: int, device: Any) -> torch.Tensor:
        pos = torch.arange(frames, dtype=torch.long, device=device)
        buckets = self.bucket(pos[None, :] - pos[:, None], self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)  # (heads, frames, frames)


class Attention(nn.Module):
    """Multi-head attention with the official parameter names (``to_q``, ``to_k``, ``to_v``, ``to_out.0``)."""

    def __init__(self, query_dim: int, heads: int, dim_head: int, cross_attention_dim: Optional[int] = None,
                 upcast_attention: bool = False) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.upcast_attention = upcast_attention
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(cross_attention_dim or query_dim, inner, bias=False)
        self.to_v = nn.Linear(cross_attention_dim or query_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(0.0)])

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        dtype = v.dtype
        if self.upcast_attention:
            q, k, v = q.float(), k.float(), v.float()
        if bias is not None:
            bias = bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).to(dtype)
        b, h, n, d = out.shape
        return self.to_out[1](self.to_out[0](out.transpose(1, 2).reshape(b, n, h * d)))

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        context = x if context is None else context
        return self._attend(self._split(self.to_q(x)), self._split(self.to_k(context)), self._split(self.to_v(context)))


class TemporalAttention(Attention):
    """Self-attention over the frames of each pixel: rotary positions + relative position bias."""

    def __init__(self, query_dim: int, heads: int, dim_head: int, rotary_emb: RotaryEmbedding,
                 upcast_attention: bool = False) -> None:
        super().__init__(query_dim, heads, dim_head, None, upcast_attention)
        self.time_rel_pos_bias = RelativePositionBias(heads)
        self.rotary_emb = rotary_emb  # shared module: one ``freqs`` entry under every temporal attention

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:  # x: (b d, f, c)
        bias = self.time_rel_pos_bias(x.shape[1], x.device)
        q = self.rotary_emb.rotate(self._split(self.to_q(x)))
        k = self.rotary_emb.rotate(self._split(self.to_k(x)))
        return self._attend(q, k, self._split(self.to_v(x)), bias)


class BasicTransformerBlock(nn.Module):
    """Spatial self-attention, text cross-attention, temporal attention, GEGLU feed-forward."""

    def __init__(self, dim: int, heads: int, dim_head: int, cross_attention_dim: int, rotary_emb: RotaryEmbedding,
                 only_cross_attention: bool = False, upcast_attention: bool = False) -> None:
        super().__init__()
        self.only_cross_attention = only_cross_attention
        self.attn1 = Attention(dim, heads, dim_head, None, upcast_attention)
        self.norm1 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, dim_head, cross_attention_dim, upcast_attention)
        self.norm2 = nn.LayerNorm(dim)
        self.attn_temp = TemporalAttention(dim, heads, dim_head, rotary_emb, upcast_attention)
        self.norm_temp = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout=0.0, activation_fn="geglu")
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, frames: int) -> torch.Tensor:  # x: (b f, d, c)
        norm = self.norm1(x)
        x = self.attn1(norm, context if self.only_cross_attention else None) + x
        x = self.attn2(self.norm2(x), context) + x
        bf, d, c = x.shape
        t = x.reshape(bf // frames, frames, d, c).transpose(1, 2).reshape(bf // frames * d, frames, c)
        t = self.attn_temp(self.norm_temp(t)) + t
        x = t.reshape(bf // frames, d, frames, c).transpose(1, 2).reshape(bf, d, c)
        return self.ff(self.norm3(x)) + x


class Transformer3DModel(nn.Module):
    """Per-frame GroupNorm + projection in, one :class:`BasicTransformerBlock`, projection out, residual."""

    def __init__(self, heads: int, dim_head: int, in_channels: int, groups: int, cross_attention_dim: int,
                 rotary_emb: RotaryEmbedding, use_linear_projection: bool = False, only_cross_attention: bool = False,
                 upcast_attention: bool = False) -> None:
        super().__init__()
        inner = heads * dim_head
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(groups, in_channels, eps=1e-6, affine=True)
        linear = use_linear_projection
        self.proj_in = nn.Linear(in_channels, inner) if linear else nn.Conv2d(in_channels, inner, kernel_size=1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(
            inner, heads, dim_head, cross_attention_dim, rotary_emb, only_cross_attention, upcast_attention)])
        # (the official linear proj_out is declared in -> inner; equal sizes, so the same shapes)
        self.proj_out = nn.Linear(in_channels, inner) if linear else nn.Conv2d(inner, in_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        x = _per_frame(x)
        residual = x
        x = self.norm(x)
        if self.use_linear_projection:
            x = self.proj_in(x.permute(0, 2, 3, 1).reshape(b * f, h * w, c))
        else:
            x = self.proj_in(x)
            x = x.permute(0, 2, 3, 1).reshape(b * f, h * w, x.shape[1])
        context = context.repeat_interleave(f, dim=0)  # 'b n c -> (b f) n c'
        for block in self.transformer_blocks:
            x = block(x, context, f)
        if self.use_linear_projection:
            x = self.proj_out(x).reshape(b * f, h, w, -1).permute(0, 3, 1, 2)
        else:
            x = self.proj_out(x.reshape(b * f, h, w, -1).permute(0, 3, 1, 2))
        out = x + residual
        return out.reshape(b, f, c, h, w).transpose(1, 2)


# ------------------------------------------------------------------------------------ blocks
class _Block(nn.Module):
    def _layer(self, i: int, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.resnets[i](x, temb)
        if self.attentions is not None:
            x = self.attentions[i](x, context)
        return x


class DownBlock3D(_Block):
    """``DownBlock3D`` / ``CrossAttnDownBlock3D`` (``cross``): resnets (+ transformers), downsampler."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, layers: int, groups: int, eps: float,
                 add_downsample: bool, padding: int, cross: Optional[dict[str, Any]]) -> None:
        super().__init__()
        # registration order (attentions, resnets, samplers) as official: the state dict lists keys in that order
        self.attentions = nn.ModuleList([Transformer3DModel(in_channels=out_channels, dim_head=out_channels // cross["heads"],
                                                            groups=groups, **cross) for _ in range(layers)]) if cross else None
        self.resnets = nn.ModuleList([ResnetBlock3D(in_channels if i == 0 else out_channels, out_channels, temb_channels,
                                                    groups, eps) for i in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample3D(out_channels, padding)]) if add_downsample else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        states: tuple[torch.Tensor, ...] = ()
        for i in range(len(self.resnets)):
            x = self._layer(i, x, temb, context)
            states += (x,)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            states += (x,)
        return x, states


class UpBlock3D(_Block):
    """``UpBlock3D`` / ``CrossAttnUpBlock3D`` (``cross``): skip-concatenating resnets (+ transformers), upsampler."""

    def __init__(self, in_channels: int, out_channels: int, prev_channels: int, temb_channels: int, layers: int,
                 groups: int, eps: float, add_upsample: bool, cross: Optional[dict[str, Any]]) -> None:
        super().__init__()
        self.attentions = nn.ModuleList([Transformer3DModel(in_channels=out_channels, dim_head=out_channels // cross["heads"],
                                                            groups=groups, **cross) for _ in range(layers)]) if cross else None
        self.resnets = nn.ModuleList([ResnetBlock3D(
            (prev_channels if i == 0 else out_channels) + (in_channels if i == layers - 1 else out_channels),
            out_channels, temb_channels, groups, eps) for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample3D(out_channels)]) if add_upsample else None

    def forward(self, x: torch.Tensor, skips: tuple[torch.Tensor, ...], temb: torch.Tensor, context: torch.Tensor,
                upsample_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        for i in range(len(self.resnets)):
            x = torch.cat([x, skips[-1]], dim=1)
            skips = skips[:-1]
            x = self._layer(i, x, temb, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, upsample_size)
        return x


class MidBlock3D(nn.Module):
    """``UNetMidBlock3DCrossAttn``: resnet, transformer, resnet."""

    def __init__(self, channels: int, temb_channels: int, groups: int, eps: float, scale: float, cross: dict[str, Any]) -> None:
        super().__init__()
        self.attentions = nn.ModuleList([Transformer3DModel(in_channels=channels, dim_head=channels // cross["heads"],
                                                            groups=groups, **cross)])
        self.resnets = nn.ModuleList([ResnetBlock3D(channels, channels, temb_channels, groups, eps, scale) for _ in range(2)])

    def forward(self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x, temb)
        return self.resnets[1](self.attentions[0](x, context), temb)


# ------------------------------------------------------------------------------------ UNet
DOWN_TYPES = {"CrossAttnDownBlock2D": True, "DownBlock2D": False, "CrossAttnDownBlock3D": True, "DownBlock3D": False}
UP_TYPES = {"CrossAttnUpBlock2D": True, "UpBlock2D": False, "CrossAttnUpBlock3D": True, "UpBlock3D": False}


@dataclasses.dataclass
class UNet3DOutput(BaseOutput):
    sample: torch.Tensor


class SeineUNet3D(ModelMixin, ConfigMixin):
    """SEINE's ``UNet3DConditionModel``, built from the Stable Diffusion UNet config it inflates.

    Config keys are the ``UNet2DConditionModel`` config's (``block_out_channels``, ``layers_per_block``,
    ``attention_head_dim`` = heads per block as in SD 1.x, ``cross_attention_dim``, ``norm_num_groups``, ...);
    ``in_channels`` is 9 for SEINE's masked-video conditioning.

    ``forward(sample (b, 9, f, h, w), timestep, encoder_hidden_states (b, tokens, cross_attention_dim))``
    returns ``.sample`` of shape ``(b, out_channels, f, h, w)``: the predicted noise.
    Raises :class:`m3cvc.errors.BackendError` for a config it cannot build (unknown block type, heads
    too narrow for the 32 rotary features).
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        sample_size: Optional[int] = None,
        in_channels: int = IN_CHANNELS,
        out_channels: int = 4,
        center_input_sample: bool = False,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: Sequence[str] = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types: Sequence[str] = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        only_cross_attention: bool = False,
        block_out_channels: Sequence[int] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1.0,
        act_fn: str = "silu",
        norm_num_groups: int = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 768,
        attention_head_dim: Any = 8,
        use_linear_projection: bool = False,
        upcast_attention: bool = False,
    ) -> None:
        super().__init__()
        channels = list(block_out_channels)
        blocks = len(channels)
        if act_fn not in ("silu", "swish") or len(down_block_types) != blocks or len(up_block_types) != blocks:
            raise BackendError(f"SEINE UNet: unsupported config (act_fn {act_fn!r}, {len(down_block_types)} down / "
                               f"{len(up_block_types)} up block types for {blocks} channel counts)")
        unknown = [t for t in down_block_types if t not in DOWN_TYPES] + [t for t in up_block_types if t not in UP_TYPES]
        if unknown:
            raise BackendError(f"SEINE UNet: unsupported block type(s) {', '.join(unknown)}")
        heads = [attention_head_dim] * blocks if isinstance(attention_head_dim, int) else list(attention_head_dim)
        for c, h in zip(channels, heads):
            if c % h or c // h < ROTARY_DIM:
                raise BackendError(f"SEINE UNet: {c} channels in {h} heads; the temporal attention needs heads of at "
                                   f"least {ROTARY_DIM} features")
        temb = channels[0] * 4
        self.conv_in = InflatedConv3d(in_channels, channels[0], kernel_size=3, padding=(1, 1))
        self.time_proj = Timesteps(channels[0], flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(channels[0], temb)
        rotary = RotaryEmbedding(ROTARY_DIM)

        def cross(h: int) -> dict[str, Any]:
            return dict(heads=h, cross_attention_dim=cross_attention_dim, rotary_emb=rotary,
                        use_linear_projection=use_linear_projection, only_cross_attention=only_cross_attention,
                        upcast_attention=upcast_attention)

        self.down_blocks = nn.ModuleList()
        out = channels[0]
        for i, kind in enumerate(down_block_types):
            prev, out = out, channels[i]
            self.down_blocks.append(DownBlock3D(prev, out, temb, layers_per_block, norm_num_groups, norm_eps,
                                                i < blocks - 1, downsample_padding, cross(heads[i]) if DOWN_TYPES[kind] else None))
        self.up_blocks = nn.ModuleList()  # registered before mid_block, as official (the shared rotary
        # ``freqs`` is loaded from the last key of the state dict's order: the mid block's)
        rev, rev_heads = channels[::-1], heads[::-1]
        out = rev[0]
        for i, kind in enumerate(up_block_types):
            prev, out = out, rev[i]
            self.up_blocks.append(UpBlock3D(rev[min(i + 1, blocks - 1)], out, prev, temb, layers_per_block + 1,
                                            norm_num_groups, norm_eps, i < blocks - 1,
                                            cross(rev_heads[i]) if UP_TYPES[kind] else None))
        self.mid_block = MidBlock3D(channels[-1], temb, norm_num_groups, norm_eps, mid_block_scale_factor, cross(heads[-1]))
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, channels[0], eps=norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = InflatedConv3d(channels[0], out_channels, kernel_size=3, padding=1)

    @classmethod
    def from_sd_config(cls, config: Mapping[str, Any]) -> "SeineUNet3D":
        """SEINE's UNet for a Stable Diffusion ``unet/config.json`` (``from_pretrained_2d(use_concat=True)``:
        the same sizes, 9 input channels), randomly initialised."""
        import inspect

        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        kwargs = {k: v for k, v in config.items() if k in known}
        kwargs["in_channels"] = IN_CHANNELS
        if config.get("class_embed_type") or config.get("num_class_embeds") or config.get("dual_cross_attention"):
            raise BackendError("SEINE UNet: class embeddings and dual cross-attention are not part of SEINE")
        return cls(**kwargs)

    def forward(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor,
                return_dict: bool = True) -> Any:
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0
        t = timestep if torch.is_tensor(timestep) else torch.tensor([timestep], device=sample.device)
        t = t.reshape(-1).to(sample.device).expand(sample.shape[0])
        emb = self.time_embedding(self.time_proj(t).to(dtype=self.dtype))
        factor = 2 ** (len(self.up_blocks) - 1)
        forward_size = any(s % factor for s in sample.shape[-2:])
        x = self.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (x,)
        for block in self.down_blocks:
            x, states = block(x, emb, encoder_hidden_states)
            skips += states
        x = self.mid_block(x, emb, encoder_hidden_states)
        for i, block in enumerate(self.up_blocks):
            n = len(block.resnets)
            res, skips = skips[-n:], skips[:-n]
            size = skips[-1].shape[2:] if (forward_size and i < len(self.up_blocks) - 1) else None
            x = block(x, res, emb, encoder_hidden_states, size)
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return UNet3DOutput(sample=x) if return_dict else (x,)


# ------------------------------------------------------------------------------------ checkpoint
def checkpoint_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The UNet weights of a loaded SEINE checkpoint: its ``ema`` entry (the released ``seine.pt``),
    else ``model`` / ``state_dict``, else the object itself if it is a flat tensor dict."""
    if isinstance(obj, Mapping):
        for key in ("ema", "model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        if obj and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
            return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}
    raise BackendError(f"{source} is not a SEINE checkpoint (expected a dict with an 'ema' state dict of tensors)")


def load_seine_state_dict(model: SeineUNet3D, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly: every key present, none extra, every shape equal;
    else one-line :class:`BackendError` naming the first few offenders."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    dtypes = [f"{k} {str(v.dtype).replace('torch.', '')} {str(v.layout).replace('torch.', '')} {v.device.type}"
              for k, v in state.items() if k in own and (not v.is_floating_point() or v.is_complex()
                                                         or v.layout != torch.strided or v.device.type == "meta")]

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {some(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {some(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {some(shapes)}")
    if dtypes:
        problems.append(f"{len(dtypes)} tensor(s) that are not dense real floating point: {some(dtypes)}")
    if not problems:
        broken = [k for k, v in state.items() if not bool(torch.isfinite(v).all())]
        if broken:
            problems.append(f"{len(broken)} tensor(s) with NaN or inf values: {some(broken)}")
    if problems:
        raise BackendError(f"{source} does not fit SEINE's UNet for this base model config: " + "; ".join(problems))
    # assign: a model built on the meta device takes the checkpoint's tensors as they are
    model.load_state_dict(dict(state), strict=True, assign=True)
