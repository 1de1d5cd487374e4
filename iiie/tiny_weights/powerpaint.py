"""Tiny random PowerPaint v2 weights in the official on-disk layout (no download).

``ensure(root)`` writes, once::

    root/PowerPaint_v2/
      realisticVisionV60B1_v51VAE/     SD1.5-layout base (unet, vae, text_encoder,
                                       tokenizer, scheduler, model_index.json)
      PowerPaint_Brushnet/             config.json, diffusion_pytorch_model.safetensors,
                                       pytorch_model.bin (+ text_encoder_brushnet.safetensors)

which is the folder layout of the released PowerPaint v2-1 checkpoint, so the editor's
config (``powerpaint_path``/``base_path``) points at it exactly as at the real weights. The
models are the real classes with a few thousand parameters; the BrushNet zero convs and the
task vectors are randomised so that the branch and the task tokens actually change the
output (an all-zero branch would make tests blind to wiring mistakes).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.sd15 import write_tiny_clip_tokenizer, write_tiny_sd15_base

__all__ = ["ensure", "write_tiny_clip_tokenizer", "write_tiny_powerpaint_branch", "write_tiny_sd15_base"]

FOLDER = "PowerPaint_v2"
BASE = "realisticVisionV60B1_v51VAE"
BRANCH = "PowerPaint_Brushnet"


def write_tiny_powerpaint_branch(base: Path, folder: Path, seed: int = 1) -> None:
    """BrushNet-CA from the base UNet + the task-token text encoder, official file names."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig

    from iiie.models.brushnet.model import BrushNetModel
    from iiie.models.powerpaint.text_encoder import (
        build_task_text_encoder,
        save_task_text_encoder_state,
    )

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    brushnet = BrushNetModel.from_unet(unet, use_cross_attention=True)
    with torch.no_grad():
        for name, p in brushnet.named_parameters():
            if name.startswith(("brushnet_down_blocks", "brushnet_mid_block", "brushnet_up_blocks")):
                p.normal_(0.0, 0.05)
            elif name.startswith("conv_in_condition"):
                p.add_(0.1 * torch.randn_like(p))
    brushnet.save_pretrained(folder, safe_serialization=True)
    encoder = build_task_text_encoder(CLIPTextConfig.from_pretrained(base / "text_encoder"))
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for p in encoder.get_input_embeddings().trainable_embeddings.values():
            p.normal_(0.0, 0.5)
    save_task_text_encoder_state(encoder, folder)


def write_tiny_powerpaint_set(folder: Path) -> None:
    """The SD1.5 base and the PowerPaint branch, under their official folder names."""
    write_tiny_sd15_base(folder / BASE)
    write_tiny_powerpaint_branch(folder / BASE, folder / BRANCH)


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/PowerPaint_v2`` if it is not complete yet; return its path (idempotent
    and atomic, see :func:`iiie.tiny_weights.common.ensure_folder`)."""
    return ensure_folder(root, FOLDER, write_tiny_powerpaint_set)
