"""Tiny random BrushNet (SD1.5) weights in the official on-disk layouts (no download).

``ensure(root)`` writes, once::

    root/brushnet/
      realisticVisionV60B1_v51VAE/        SD1.5-layout base (unet, vae, text_encoder,
                                          tokenizer, scheduler, model_index.json)
      segmentation_mask_brushnet_ckpt/    config.json + diffusion_pytorch_model.safetensors
      random_mask_brushnet_ckpt/          config.json + diffusion_pytorch_model.safetensors

the folder names of the released checkpoints, so ``conf/editor/brushnet*.yaml`` point at it
exactly as at the real weights (``base_path``/``brushnet_path``). The models are the real
classes with a few thousand parameters. Each branch is ``BrushNetModel.from_unet`` of the
base UNet with its zero convs randomised (an all-zero branch would leave the UNet unchanged
and make tests blind to wiring mistakes); the two checkpoints use different seeds.

The SD1.5 base comes from :mod:`iiie.tiny_weights.sd15` (shared with PowerPaint).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.sd15 import write_tiny_sd15_base

FOLDER = "brushnet"
BASE = "realisticVisionV60B1_v51VAE"
SEGMENTATION = "segmentation_mask_brushnet_ckpt"
RANDOM = "random_mask_brushnet_ckpt"


def write_tiny_brushnet(base: Path, folder: Path, seed: int) -> None:
    """A plain (TencentARC) BrushNet from the base UNet, with randomised zero convs."""
    from iiie.models.brushnet import BrushNetModel, BrushNetUNet2DConditionModel

    unet = BrushNetUNet2DConditionModel.from_pretrained(base / "unet")
    gen = torch.Generator().manual_seed(seed)
    brushnet = BrushNetModel.from_unet(unet)
    with torch.no_grad():
        for name, p in brushnet.named_parameters():
            if name.startswith(("brushnet_down_blocks", "brushnet_mid_block", "brushnet_up_blocks")):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:  # independent of the UNet, like a trained branch
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    brushnet.save_pretrained(folder, safe_serialization=True)


def write_tiny_brushnet_set(folder: Path) -> None:
    """The base and both released branches, under their official folder names."""
    write_tiny_sd15_base(folder / BASE, seed=0)
    write_tiny_brushnet(folder / BASE, folder / SEGMENTATION, seed=1)
    write_tiny_brushnet(folder / BASE, folder / RANDOM, seed=2)


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/brushnet`` (base + segmentation + random-mask branches) if it is not
    complete yet; return its path (idempotent and atomic, see
    :func:`iiie.tiny_weights.common.ensure_folder`)."""
    return ensure_folder(root, FOLDER, write_tiny_brushnet_set)
