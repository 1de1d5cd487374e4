"""The frozen SD UNet, able to take BrushNet's add-samples.

:class:`BrushNetUNet2DConditionModel` is a plain subclass of diffusers'
``UNet2DConditionModel``: same config, same weights, loads any standard ``unet/`` folder.
Without add-samples its ``forward`` *is* diffusers' forward. With them, it runs the same
blocks sub-layer by sub-layer (:mod:`iiie.models.brushnet.blocks`) and adds the branch's
features exactly where the original BrushNet fork of diffusers does:

* ``down[0]`` is added to the ``conv_in`` output; the first skip connection is still the
  ``conv_in`` output *before* that add;
* each later down sample is added right after each resnet(+attention) and right after each
  downsampler, and the *sum* is stored as the skip connection;
* the mid sample is added after the mid block;
* the up samples are added after each up resnet(+attention) and after each upsampler.

Counts: ``down = 1 + sum(len(resnets) + has_downsampler)``, ``mid = 1``,
``up = sum(len(resnets) + has_upsampler)``. Unlike the fork, the caller's lists are not
consumed (no ``pop(0)``), so the same branch output can be reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel, UNet2DConditionOutput
from diffusers.utils.peft_utils import apply_lora_scale

from iiie.models.brushnet.blocks import (
    AttentionInputs,
    add_sample_count_down,
    add_sample_count_up,
    run_down_block,
    run_mid_block,
    run_up_block,
)


class BrushNetUNet2DConditionModel(UNet2DConditionModel):
    """``UNet2DConditionModel`` + ``down_block_add_samples`` / ``mid_block_add_sample`` /
    ``up_block_add_samples`` (see the module docstring for where they are added)."""

    def expected_add_samples(self) -> tuple[int, int]:
        """(number of down add-samples, number of up add-samples) this UNet consumes."""
        down = 1 + sum(add_sample_count_down(b) for b in self.down_blocks)
        up = sum(add_sample_count_up(b) for b in self.up_blocks)
        return down, up

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        timestep_cond: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
        down_block_additional_residuals: tuple[torch.Tensor] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        down_intrablock_additional_residuals: tuple[torch.Tensor] | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
        down_block_add_samples: Sequence[torch.Tensor] | None = None,
        mid_block_add_sample: torch.Tensor | None = None,
        up_block_add_samples: Sequence[torch.Tensor] | None = None,
    ) -> UNet2DConditionOutput | tuple:
        given = [x is not None for x in (down_block_add_samples, mid_block_add_sample, up_block_add_samples)]
        if not any(given):
            return super().forward(
                sample,
                timestep,
                encoder_hidden_states,
                class_labels=class_labels,
                timestep_cond=timestep_cond,
                attention_mask=attention_mask,
                cross_attention_kwargs=cross_attention_kwargs,
                added_cond_kwargs=added_cond_kwargs,
                down_block_additional_residuals=down_block_additional_residuals,
                mid_block_additional_residual=mid_block_additional_residual,
                down_intrablock_additional_residuals=down_intrablock_additional_residuals,
                encoder_attention_mask=encoder_attention_mask,
                return_dict=return_dict,
            )
        if not all(given):
            raise ValueError("pass all three of down/mid/up block add-samples, or none")
        if any(x is not None for x in (down_block_additional_residuals, mid_block_additional_residual,
                                       down_intrablock_additional_residuals)):
            raise NotImplementedError("ControlNet/T2I residuals together with BrushNet add-samples")
        n_down, n_up = self.expected_add_samples()
        if len(down_block_add_samples) != n_down or len(up_block_add_samples) != n_up:
            raise ValueError(
                f"this UNet takes {n_down} down and {n_up} up add-samples; got "
                f"{len(down_block_add_samples)} and {len(up_block_add_samples)} "
                "(is the BrushNet built from a UNet with the same layers_per_block?)"
            )
        if cross_attention_kwargs is not None and cross_attention_kwargs.get("gligen") is not None:
            raise NotImplementedError("GLIGEN together with BrushNet add-samples")
        return self._forward_with_add_samples(
            sample, timestep, encoder_hidden_states, class_labels=class_labels,
            timestep_cond=timestep_cond, attention_mask=attention_mask,
            cross_attention_kwargs=cross_attention_kwargs, added_cond_kwargs=added_cond_kwargs,
            encoder_attention_mask=encoder_attention_mask, return_dict=return_dict,
            down_add=list(down_block_add_samples), mid_add=mid_block_add_sample,
            up_add=list(up_block_add_samples),
        )

    @apply_lora_scale("cross_attention_kwargs")  # as diffusers' forward: PEFT LoRA `scale`
    def _forward_with_add_samples(
        self, sample, timestep, encoder_hidden_states, *, class_labels, timestep_cond, attention_mask,
        cross_attention_kwargs, added_cond_kwargs, encoder_attention_mask, return_dict,
        down_add, mid_add, up_add,
    ):
        # Same preamble as diffusers' forward (helpers are diffusers' own methods).
        factor = 2**self.num_upsamplers
        forward_upsample_size = any(d % factor != 0 for d in sample.shape[-2:])
        if attention_mask is not None:
            attention_mask = ((1 - attention_mask.to(sample.dtype)) * -10000.0).unsqueeze(1)
        if encoder_attention_mask is not None:
            encoder_attention_mask = ((1 - encoder_attention_mask.to(sample.dtype)) * -10000.0).unsqueeze(1)
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0

        emb = self.time_embedding(self.get_time_embed(sample=sample, timestep=timestep), timestep_cond)
        class_emb = self.get_class_embed(sample=sample, class_labels=class_labels)
        if class_emb is not None:
            emb = torch.cat([emb, class_emb], dim=-1) if self.config.class_embeddings_concat else emb + class_emb
        if self.config.addition_embed_type == "image_hint":
            raise NotImplementedError("image_hint UNets together with BrushNet add-samples")
        aug_emb = self.get_aug_embed(
            emb=emb, encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs or {}
        )
        if aug_emb is not None:
            emb = emb + aug_emb
        if self.time_embed_act is not None:
            emb = self.time_embed_act(emb)
        encoder_hidden_states = self.process_encoder_hidden_states(
            encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs or {}
        )
        attn = AttentionInputs(encoder_hidden_states, attention_mask, cross_attention_kwargs,
                               encoder_attention_mask)

        sample = self.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (sample,)  # the skip keeps the pre-add conv_in output
        down_iter = iter(down_add)
        sample = sample + next(down_iter)
        for block in self.down_blocks:
            sample, res = run_down_block(block, sample, emb, attn, add=down_iter)
            skips += res

        sample = run_mid_block(self.mid_block, sample, emb, attn)
        sample = sample + mid_add

        up_iter = iter(up_add)
        upsample_size = None
        for i, block in enumerate(self.up_blocks):
            k = len(block.resnets)
            res, skips = skips[-k:], skips[:-k]
            if i < len(self.up_blocks) - 1 and forward_upsample_size:
                upsample_size = skips[-1].shape[2:]
            sample = run_up_block(block, sample, emb, res, upsample_size, attn, add=up_iter)

        if self.conv_norm_out is not None:
            sample = self.conv_act(self.conv_norm_out(sample))
        sample = self.conv_out(sample)
        if not return_dict:
            return (sample,)
        return UNet2DConditionOutput(sample=sample)


#: Short alias used by the pipelines.
UNet = BrushNetUNet2DConditionModel
