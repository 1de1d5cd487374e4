"""Walk diffusers' UNet blocks one sub-layer at a time.

BrushNet needs two things that diffusers' block ``forward`` methods do not offer:

* the frozen UNet must *add* a branch feature right after every resnet(+attention) and
  right after every down/upsampler (the "add-samples");
* the BrushNet branch must *read* the hidden state after every up resnet(+attention) and
  after every upsampler (its up taps).

Rather than patching diffusers, these helpers run the sub-modules of a stock
``DownBlock2D`` / ``CrossAttnDownBlock2D`` / ``UpBlock2D`` / ``CrossAttnUpBlock2D`` in the
same order as their own ``forward``, with those two extension points. The weights and
sub-module names are diffusers' own, so checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.models.unets.unet_2d_blocks import (
    CrossAttnDownBlock2D,
    CrossAttnUpBlock2D,
    DownBlock2D,
    UpBlock2D,
)
from diffusers.utils.torch_utils import apply_freeu
from torch import nn

SUPPORTED_DOWN = (DownBlock2D, CrossAttnDownBlock2D)
SUPPORTED_UP = (UpBlock2D, CrossAttnUpBlock2D)


@dataclass
class AttentionInputs:
    """What the cross-attention transformers of a block need (unused by plain blocks)."""

    encoder_hidden_states: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    cross_attention_kwargs: dict[str, Any] | None = None
    encoder_attention_mask: torch.Tensor | None = None

    def apply(self, attn: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        return attn(
            hidden,
            encoder_hidden_states=self.encoder_hidden_states,
            cross_attention_kwargs=self.cross_attention_kwargs,
            attention_mask=self.attention_mask,
            encoder_attention_mask=self.encoder_attention_mask,
            return_dict=False,
        )[0]


def _attentions(block: nn.Module) -> list[nn.Module | None]:
    attns = getattr(block, "attentions", None)
    return list(attns) if attns is not None else [None] * len(block.resnets)


def _check(block: nn.Module, supported: tuple[type, ...]) -> None:
    if not isinstance(block, supported):
        names = ", ".join(t.__name__ for t in supported)
        raise NotImplementedError(
            f"BrushNet add-samples are defined for {names}; got {type(block).__name__}"
        )


def _resnet(block: nn.Module, resnet: nn.Module, hidden: torch.Tensor, temb: torch.Tensor):
    if torch.is_grad_enabled() and getattr(block, "gradient_checkpointing", False):
        return block._gradient_checkpointing_func(resnet, hidden, temb)
    return resnet(hidden, temb)


def add_sample_count_down(block: nn.Module) -> int:
    """How many add-samples a down block consumes: one per resnet, one for its downsampler."""
    return len(block.resnets) + (block.downsamplers is not None)


def add_sample_count_up(block: nn.Module) -> int:
    """How many add-samples (or taps) an up block has: one per resnet, one for its upsampler."""
    return len(block.resnets) + (block.upsamplers is not None)


def run_down_block(
    block: nn.Module,
    hidden: torch.Tensor,
    temb: torch.Tensor,
    attn: AttentionInputs,
    add: Iterator[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Same as ``block(hidden, temb, ...)``; with ``add``, the next add-sample is added after
    each resnet(+attention) and after the downsampler, and the *sum* is the skip connection."""
    _check(block, SUPPORTED_DOWN)
    skips: tuple[torch.Tensor, ...] = ()
    for resnet, attention in zip(block.resnets, _attentions(block), strict=True):
        hidden = _resnet(block, resnet, hidden, temb)
        if attention is not None:
            hidden = attn.apply(attention, hidden)
        if add is not None:
            hidden = hidden + next(add)
        skips += (hidden,)
    if block.downsamplers is not None:
        for downsampler in block.downsamplers:
            hidden = downsampler(hidden)
        if add is not None:
            hidden = hidden + next(add)
        skips += (hidden,)
    return hidden, skips


def run_up_block(
    block: nn.Module,
    hidden: torch.Tensor,
    temb: torch.Tensor,
    skips: tuple[torch.Tensor, ...],
    upsample_size: tuple[int, int] | None,
    attn: AttentionInputs,
    add: Iterator[torch.Tensor] | None = None,
    taps: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Same as ``block(hidden, skips, temb, upsample_size, ...)``.

    ``taps`` (if given) receives the hidden state after each resnet(+attention) and after the
    upsampler, *before* any add-sample; ``add`` adds the next add-sample at those points.
    """
    _check(block, SUPPORTED_UP)
    freeu = all(getattr(block, k, None) for k in ("s1", "s2", "b1", "b2"))
    for resnet, attention in zip(block.resnets, _attentions(block), strict=True):
        res = skips[-1]
        skips = skips[:-1]
        if freeu:
            hidden, res = apply_freeu(
                block.resolution_idx, hidden, res, s1=block.s1, s2=block.s2, b1=block.b1, b2=block.b2
            )
        hidden = torch.cat([hidden, res], dim=1)
        hidden = _resnet(block, resnet, hidden, temb)
        if attention is not None:
            hidden = attn.apply(attention, hidden)
        if taps is not None:
            taps.append(hidden)
        if add is not None:
            hidden = hidden + next(add)
    if block.upsamplers is not None:
        for upsampler in block.upsamplers:
            hidden = upsampler(hidden, upsample_size)
        if taps is not None:
            taps.append(hidden)
        if add is not None:
            hidden = hidden + next(add)
    return hidden


def run_mid_block(
    block: nn.Module | None, hidden: torch.Tensor, temb: torch.Tensor, attn: AttentionInputs
) -> torch.Tensor:
    """Call a mid block with or without cross-attention inputs, as the UNet does."""
    if block is None:
        return hidden
    if getattr(block, "has_cross_attention", False):
        return block(
            hidden,
            temb,
            encoder_hidden_states=attn.encoder_hidden_states,
            attention_mask=attn.attention_mask,
            cross_attention_kwargs=attn.cross_attention_kwargs,
            encoder_attention_mask=attn.encoder_attention_mask,
        )
    return block(hidden, temb)
