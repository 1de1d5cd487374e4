"""Tiny random weights for ``editor=sdxl_inpaint``: every component of the real
``diffusers/stable-diffusion-xl-1.0-inpainting-0.1`` folder (a 9-channel SDXL
``UNet2DConditionModel`` with ``text_time`` added conditioning, the SD ``AutoencoderKL``,
``CLIPTextModel`` + ``CLIPTextModelWithProjection`` with their tokenizers,
``EulerDiscreteScheduler``), saved with ``StableDiffusionXLInpaintPipeline.save_pretrained``.
The CLIP tokenizer and shapes are :mod:`iiie.tiny_weights.sd15`'s.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.sd15 import CROSS, text_config, tiny_vae, write_tiny_clip_tokenizer

FOLDER = "stable-diffusion-xl-1.0-inpainting-0.1"
TIME_DIM = 8  # addition_time_embed_dim; 6 time ids (no aesthetic score)


def write_tiny_sdxl_inpaint(folder: Path, seed: int = 0) -> None:
    """Build the tiny pipeline from the real classes and save it in the diffusers layout."""
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    scratch = folder / ".tok"
    vocab = write_tiny_clip_tokenizer(scratch)
    tokenizer = CLIPTokenizer.from_pretrained(scratch)
    tokenizer_2 = CLIPTokenizer.from_pretrained(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    torch.manual_seed(seed)
    cfg = text_config(vocab)
    text_encoder = CLIPTextModel(cfg)
    cfg2 = text_config(vocab)
    cfg2.projection_dim = CROSS
    text_encoder_2 = CLIPTextModelWithProjection(cfg2)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        norm_num_groups=8, cross_attention_dim=2 * CROSS, attention_head_dim=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        addition_embed_type="text_time", addition_time_embed_dim=TIME_DIM,
        projection_class_embeddings_input_dim=6 * TIME_DIM + CROSS)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLInpaintPipeline(vae=tiny_vae(), text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                            tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet,
                                            scheduler=scheduler, requires_aesthetics_score=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / "README.md").write_text(f"Tiny random-weight SDXL inpainting ({__name__}); not a real model.\n")


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/stable-diffusion-xl-1.0-inpainting-0.1`` (tiny, random) if missing."""
    return ensure_folder(root, FOLDER, write_tiny_sdxl_inpaint)
