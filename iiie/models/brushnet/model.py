"""``BrushNetModel``: the BrushNet branch (Ju et al. 2024) on stock diffusers blocks.

The branch is a copy of the SD UNet's encoder/decoder *without* ``conv_in`` and output
head. Its input is ``[noisy latent (4), masked-image latent (4), mask (1, 1 = keep)]``
through ``conv_in_condition``; every intermediate feature (the down skips, the mid output,
and the hidden state after each up resnet and upsampler) goes through its own 1x1 "zero
conv" and is handed to the frozen UNet, which adds it at the matching point
(:mod:`iiie.models.brushnet.unet`).

One class covers both released variants, selected purely by the block types in the config:

* TencentARC BrushNet (SD1.5 segmentation/random-mask checkpoints): ``DownBlock2D`` x4,
  ``MidBlock2D`` (two resnets, no attention), ``UpBlock2D`` x4 — no cross-attention;
* PowerPaint v2 "BrushNet-CA": the UNet's own ``CrossAttn*`` blocks, so the branch
  attends to its own text embeddings.

State-dict keys and ``config.json`` fields are exactly those of the official
``diffusion_pytorch_model.safetensors`` / ``config.json``, so checkpoints load strictly with
no renames. SDXL BrushNet (``addition_embed_type="text_time"``) is accepted structurally
(the SDXL time/text embedding is built); its pipeline is not implemented yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d_blocks import (
    UNetMidBlock2D,
    get_down_block,
    get_mid_block,
    get_up_block,
)
from diffusers.utils import BaseOutput
from torch import nn

from iiie.models.brushnet.blocks import (
    AttentionInputs,
    add_sample_count_down,
    add_sample_count_up,
    run_down_block,
    run_mid_block,
    run_up_block,
)

#: The branch-only mid block name used by the official config (two resnets, no attention).
PLAIN_MID_BLOCK = "MidBlock2D"


@dataclass
class BrushNetOutput(BaseOutput):
    """The branch's features, already multiplied by ``conditioning_scale``.

    ``down_block_res_samples``: ``1 + sum(layers + downsampler)`` tensors (conv_in level
    first); ``mid_block_res_sample``: one tensor; ``up_block_res_samples``: one per up
    resnet plus one per upsampler, in UNet order.
    """

    down_block_res_samples: tuple[torch.Tensor, ...]
    mid_block_res_sample: torch.Tensor
    up_block_res_samples: tuple[torch.Tensor, ...]


def _per_block(value, n: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"`{name}` has {len(value)} entries; expected {n} (one per block)")
        return list(value)
    return [value] * n


def _zero_conv(channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(channels, channels, kernel_size=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class BrushNetModel(ModelMixin, ConfigMixin):
    """The BrushNet branch; see the module docstring. Build with ``from_unet`` or load with
    ``from_pretrained(folder)`` (a folder with ``config.json`` +
    ``diffusion_pytorch_model.safetensors``)."""

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        conditioning_channels: int = 5,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: tuple[str, ...] = ("DownBlock2D",) * 4,
        mid_block_type: str | None = PLAIN_MID_BLOCK,
        up_block_types: tuple[str, ...] = ("UpBlock2D",) * 4,
        only_cross_attention: bool | tuple[bool, ...] = False,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_num_groups: int | None = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 1280,
        transformer_layers_per_block: int | tuple[int, ...] = 1,
        encoder_hid_dim: int | None = None,
        encoder_hid_dim_type: str | None = None,
        attention_head_dim: int | tuple[int, ...] = 8,
        num_attention_heads: int | tuple[int, ...] | None = None,
        use_linear_projection: bool = False,
        class_embed_type: str | None = None,
        addition_embed_type: str | None = None,
        addition_time_embed_dim: int | None = None,
        num_class_embeds: int | None = None,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "default",
        projection_class_embeddings_input_dim: int | None = None,
        brushnet_conditioning_channel_order: str = "rgb",
        conditioning_embedding_out_channels: tuple[int, ...] | None = (16, 32, 96, 256),
        global_pool_conditions: bool = False,
        addition_embed_type_num_heads: int = 64,
    ):
        super().__init__()
        n = len(down_block_types)
        if len(up_block_types) != n or len(block_out_channels) != n:
            raise ValueError(
                "down_block_types, up_block_types and block_out_channels must have the same "
                f"length; got {len(down_block_types)}, {len(up_block_types)}, {len(block_out_channels)}"
            )
        if encoder_hid_dim is not None or encoder_hid_dim_type is not None:
            raise NotImplementedError("BrushNet with encoder_hid_dim (text projection) is not supported")
        if class_embed_type is not None or num_class_embeds is not None:
            raise NotImplementedError("BrushNet with class embeddings is not supported")
        if addition_embed_type not in (None, "text_time"):
            raise NotImplementedError(f"addition_embed_type={addition_embed_type!r} is not supported")
        if brushnet_conditioning_channel_order not in ("rgb", "bgr"):
            raise ValueError(f"unknown brushnet_conditioning_channel_order {brushnet_conditioning_channel_order!r}")

        # Historical diffusers naming: `attention_head_dim` is really the number of heads.
        heads = _per_block(num_attention_heads or attention_head_dim, n, "num_attention_heads")
        head_dims = _per_block(attention_head_dim, n, "attention_head_dim")
        layers_tf = _per_block(transformer_layers_per_block, n, "transformer_layers_per_block")
        only_cross = _per_block(only_cross_attention, n, "only_cross_attention")
        xattn_dims = _per_block(cross_attention_dim, n, "cross_attention_dim")

        self.conv_in_condition = nn.Conv2d(
            in_channels + conditioning_channels, block_out_channels[0], kernel_size=3, padding=1
        )
        time_embed_dim = block_out_channels[0] * 4
        self.time_proj = Timesteps(block_out_channels[0], flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim, act_fn=act_fn)
        if addition_embed_type == "text_time":  # SDXL
            self.add_time_proj = Timesteps(addition_time_embed_dim, flip_sin_to_cos, freq_shift)
            self.add_embedding = TimestepEmbedding(projection_class_embeddings_input_dim, time_embed_dim)

        # Down path: one zero conv for conv_in's level, then one per resnet and downsampler.
        self.down_blocks = nn.ModuleList()
        self.brushnet_down_blocks = nn.ModuleList([_zero_conv(block_out_channels[0])])
        out_ch = block_out_channels[0]
        for i, block_type in enumerate(down_block_types):
            in_ch, out_ch = out_ch, block_out_channels[i]
            final = i == n - 1
            block = get_down_block(
                block_type,
                num_layers=layers_per_block,
                transformer_layers_per_block=layers_tf[i],
                in_channels=in_ch,
                out_channels=out_ch,
                temb_channels=time_embed_dim,
                add_downsample=not final,
                resnet_eps=norm_eps,
                resnet_act_fn=act_fn,
                resnet_groups=norm_num_groups,
                cross_attention_dim=xattn_dims[i],
                num_attention_heads=heads[i],
                attention_head_dim=head_dims[i] if head_dims[i] is not None else out_ch,
                downsample_padding=downsample_padding,
                use_linear_projection=use_linear_projection,
                only_cross_attention=only_cross[i],
                upcast_attention=upcast_attention,
                resnet_time_scale_shift=resnet_time_scale_shift,
            )
            self.down_blocks.append(block)
            for _ in range(add_sample_count_down(block)):
                self.brushnet_down_blocks.append(_zero_conv(out_ch))

        mid_ch = block_out_channels[-1]
        self.brushnet_mid_block = _zero_conv(mid_ch)
        if mid_block_type == PLAIN_MID_BLOCK:
            self.mid_block = UNetMidBlock2D(
                in_channels=mid_ch,
                temb_channels=time_embed_dim,
                num_layers=1,
                resnet_eps=norm_eps,
                resnet_act_fn=act_fn,
                resnet_groups=norm_num_groups,
                resnet_time_scale_shift=resnet_time_scale_shift,
                output_scale_factor=mid_block_scale_factor,
                add_attention=False,
            )
        else:
            self.mid_block = get_mid_block(
                mid_block_type,
                temb_channels=time_embed_dim,
                in_channels=mid_ch,
                resnet_eps=norm_eps,
                resnet_act_fn=act_fn,
                resnet_groups=norm_num_groups,
                output_scale_factor=mid_block_scale_factor,
                transformer_layers_per_block=layers_tf[-1],
                num_attention_heads=heads[-1],
                cross_attention_dim=xattn_dims[-1],
                use_linear_projection=use_linear_projection,
                upcast_attention=upcast_attention,
                resnet_time_scale_shift=resnet_time_scale_shift,
            )

        # Up path: the UNet decoder layout; one zero conv per up resnet and upsampler.
        self.up_blocks = nn.ModuleList()
        self.brushnet_up_blocks = nn.ModuleList()
        rev_ch = list(reversed(block_out_channels))
        out_ch = rev_ch[0]
        for i, block_type in enumerate(up_block_types):
            final = i == n - 1
            prev_ch, out_ch = out_ch, rev_ch[i]
            in_ch = rev_ch[min(i + 1, n - 1)]
            block = get_up_block(
                block_type,
                num_layers=layers_per_block + 1,
                transformer_layers_per_block=layers_tf[::-1][i],
                in_channels=in_ch,
                out_channels=out_ch,
                prev_output_channel=prev_ch,
                temb_channels=time_embed_dim,
                add_upsample=not final,
                resnet_eps=norm_eps,
                resnet_act_fn=act_fn,
                resolution_idx=i,
                resnet_groups=norm_num_groups,
                cross_attention_dim=xattn_dims[::-1][i],
                num_attention_heads=heads[::-1][i],
                use_linear_projection=use_linear_projection,
                only_cross_attention=only_cross[::-1][i],
                upcast_attention=upcast_attention,
                resnet_time_scale_shift=resnet_time_scale_shift,
                attention_head_dim=head_dims[::-1][i] if head_dims[::-1][i] is not None else out_ch,
            )
            self.up_blocks.append(block)
            for _ in range(add_sample_count_up(block)):
                self.brushnet_up_blocks.append(_zero_conv(out_ch))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_unet(
        cls,
        unet,
        conditioning_channels: int = 5,
        use_cross_attention: bool = False,
        load_weights_from_unet: bool = True,
        brushnet_conditioning_channel_order: str = "rgb",
        conditioning_embedding_out_channels: tuple[int, ...] | None = (16, 32, 96, 256),
    ) -> BrushNetModel:
        """A branch shaped like ``unet`` (a ``UNet2DConditionModel``), initialised from it.

        ``use_cross_attention=False`` gives the TencentARC layout (plain blocks);
        ``True`` keeps the UNet's block types (PowerPaint v2 BrushNet-CA). The new input conv
        gets the UNet's ``conv_in`` weights for the noisy and the masked-image latents and
        zeros for the mask channel; its bias is a *copy* of ``conv_in.bias`` (the original
        code shares the Parameter object, which silently ties the two during training).
        The zero convs start at zero, so the untrained branch leaves the UNet unchanged.
        """
        c = unet.config
        n = len(c.down_block_types)
        if use_cross_attention:
            down, mid, up = list(c.down_block_types), c.mid_block_type, list(c.up_block_types)
        else:
            down, mid, up = ["DownBlock2D"] * n, PLAIN_MID_BLOCK, ["UpBlock2D"] * n
        model = cls(
            in_channels=c.in_channels,
            conditioning_channels=conditioning_channels,
            flip_sin_to_cos=c.flip_sin_to_cos,
            freq_shift=c.freq_shift,
            down_block_types=down,
            mid_block_type=mid,
            up_block_types=up,
            only_cross_attention=c.only_cross_attention,
            block_out_channels=c.block_out_channels,
            layers_per_block=c.layers_per_block,
            downsample_padding=c.downsample_padding,
            mid_block_scale_factor=c.mid_block_scale_factor,
            act_fn=c.act_fn,
            norm_num_groups=c.norm_num_groups,
            norm_eps=c.norm_eps,
            cross_attention_dim=c.cross_attention_dim,
            transformer_layers_per_block=c.get("transformer_layers_per_block", 1),
            encoder_hid_dim=c.get("encoder_hid_dim"),
            encoder_hid_dim_type=c.get("encoder_hid_dim_type"),
            attention_head_dim=c.attention_head_dim,
            num_attention_heads=c.num_attention_heads,
            use_linear_projection=c.use_linear_projection,
            class_embed_type=c.class_embed_type,
            addition_embed_type=c.get("addition_embed_type"),
            addition_time_embed_dim=c.get("addition_time_embed_dim"),
            num_class_embeds=c.num_class_embeds,
            upcast_attention=c.upcast_attention,
            resnet_time_scale_shift=c.resnet_time_scale_shift,
            projection_class_embeddings_input_dim=c.projection_class_embeddings_input_dim,
            brushnet_conditioning_channel_order=brushnet_conditioning_channel_order,
            conditioning_embedding_out_channels=conditioning_embedding_out_channels,
        )
        if load_weights_from_unet:
            with torch.no_grad():
                w = torch.zeros_like(model.conv_in_condition.weight)
                lat = unet.conv_in.weight.shape[1]
                w[:, :lat] = unet.conv_in.weight
                w[:, lat : 2 * lat] = unet.conv_in.weight
                model.conv_in_condition.weight.copy_(w)
                model.conv_in_condition.bias.copy_(unet.conv_in.bias)
            model.time_proj.load_state_dict(unet.time_proj.state_dict())
            model.time_embedding.load_state_dict(unet.time_embedding.state_dict())
            if getattr(model, "add_embedding", None) is not None:
                model.add_embedding.load_state_dict(unet.add_embedding.state_dict())
            # strict=False: the plain branch has no attention layers, so the UNet's extra
            # attention weights are skipped; every branch weight is present in the UNet.
            for name in ("down_blocks", "mid_block", "up_blocks"):
                result = getattr(model, name).load_state_dict(
                    getattr(unet, name).state_dict(), strict=False
                )
                if result.missing_keys:
                    raise ValueError(f"UNet lacks branch weights in {name}: {result.missing_keys[:5]}")
        return model

    # ------------------------------------------------------------------ forward
    @property
    def num_down_samples(self) -> int:
        return len(self.brushnet_down_blocks)

    @property
    def num_up_samples(self) -> int:
        return len(self.brushnet_up_blocks)

    def _embedding(self, sample, timestep, timestep_cond, encoder_hidden_states, added_cond_kwargs):
        t = timestep
        if not torch.is_tensor(t):
            dtype = torch.float64 if isinstance(t, float) else torch.int64
            if sample.device.type == "mps":
                dtype = torch.float32 if isinstance(t, float) else torch.int32
            t = torch.tensor([t], dtype=dtype, device=sample.device)
        elif t.ndim == 0:
            t = t[None].to(sample.device)
        t = t.expand(sample.shape[0])
        # Timesteps has no weights and returns float32; the MLP may run in half precision.
        emb = self.time_embedding(self.time_proj(t).to(dtype=sample.dtype), timestep_cond)
        if self.config.addition_embed_type == "text_time":
            kw = added_cond_kwargs or {}
            if "text_embeds" not in kw or "time_ids" not in kw:
                raise ValueError("SDXL BrushNet needs added_cond_kwargs with text_embeds and time_ids")
            time_embeds = self.add_time_proj(kw["time_ids"].flatten())
            time_embeds = time_embeds.reshape((kw["text_embeds"].shape[0], -1))
            add = torch.cat([kw["text_embeds"], time_embeds], dim=-1).to(emb.dtype)
            emb = emb + self.add_embedding(add)
        return emb

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor | None,
        brushnet_cond: torch.Tensor,
        conditioning_scale: float = 1.0,
        timestep_cond: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        guess_mode: bool = False,
        return_dict: bool = True,
    ) -> BrushNetOutput | tuple:
        """Branch features for the UNet.

        ``sample``: the (scaled) noisy latent, ``(B, 4, h, w)``; ``brushnet_cond``:
        ``[masked-image latent * vae scaling, mask (1 = keep)]``, ``(B, 5, h, w)``;
        ``encoder_hidden_states`` is only read by the cross-attention (BrushNet-CA) variant.
        Returns ``(down, mid, up)`` (see :class:`BrushNetOutput`), scaled by
        ``conditioning_scale`` (log-spaced 0.1..1 times it in ``guess_mode``).
        """
        if brushnet_cond.shape[-2:] != sample.shape[-2:] or brushnet_cond.shape[0] != sample.shape[0]:
            raise ValueError(
                f"brushnet_cond {tuple(brushnet_cond.shape)} does not match sample {tuple(sample.shape)}"
            )
        if self.config.brushnet_conditioning_channel_order == "bgr":
            brushnet_cond = torch.flip(brushnet_cond, dims=[1])
        if attention_mask is not None:
            attention_mask = ((1 - attention_mask.to(sample.dtype)) * -10000.0).unsqueeze(1)
        attn = AttentionInputs(encoder_hidden_states, attention_mask, cross_attention_kwargs)

        emb = self._embedding(sample, timestep, timestep_cond, encoder_hidden_states, added_cond_kwargs)
        hidden = self.conv_in_condition(torch.cat([sample, brushnet_cond], dim=1))

        skips: tuple[torch.Tensor, ...] = (hidden,)
        for block in self.down_blocks:
            hidden, res = run_down_block(block, hidden, emb, attn)
            skips += res
        down = tuple(conv(s) for conv, s in zip(self.brushnet_down_blocks, skips, strict=True))

        hidden = run_mid_block(self.mid_block, hidden, emb, attn)
        mid = self.brushnet_mid_block(hidden)

        taps: list[torch.Tensor] = []
        for i, block in enumerate(self.up_blocks):
            k = len(block.resnets)
            res, skips = skips[-k:], skips[:-k]
            # The original always forwards the skip's size (exact for odd latent sizes too).
            upsample_size = skips[-1].shape[2:] if i < len(self.up_blocks) - 1 else None
            hidden = run_up_block(block, hidden, emb, res, upsample_size, attn, taps=taps)
        up = tuple(conv(t) for conv, t in zip(self.brushnet_up_blocks, taps, strict=True))

        if guess_mode and not self.config.global_pool_conditions:
            total = len(down) + 1 + len(up)
            scales = torch.logspace(-1, 0, total, device=sample.device) * conditioning_scale
            down = tuple(d * s for d, s in zip(down, scales[: len(down)], strict=True))
            mid = mid * scales[len(down)]
            up = tuple(u * s for u, s in zip(up, scales[len(down) + 1 :], strict=True))
        else:
            down = tuple(d * conditioning_scale for d in down)
            mid = mid * conditioning_scale
            up = tuple(u * conditioning_scale for u in up)
        if self.config.global_pool_conditions:
            down = tuple(d.mean(dim=(2, 3), keepdim=True) for d in down)
            mid = mid.mean(dim=(2, 3), keepdim=True)
            up = tuple(u.mean(dim=(2, 3), keepdim=True) for u in up)

        if not return_dict:
            return down, mid, up
        return BrushNetOutput(down_block_res_samples=down, mid_block_res_sample=mid, up_block_res_samples=up)
