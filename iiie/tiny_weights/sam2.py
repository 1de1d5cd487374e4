"""Tiny random SAM 2 (``Sam2Model`` + ``Sam2Processor``) in the ``facebook/sam2.1-hiera-*`` layout.

``ensure(root)`` writes ``root/sam2`` once, atomically (``config.json``,
``model.safetensors``, ``processor_config.json``): a four-stage Hiera backbone with one
block per stage (two in the last, whose second block attends globally), an FPN neck and the
two-way mask decoder, ~160 k parameters on a 64 px input, so ``masker=grounded_sam2`` runs
its real box-prompted code on CPU. Random weights segment nothing meaningful.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from iiie.tiny_weights.common import ensure_folder

FOLDER = "sam2"
IMAGE = 64  # patch stride 4 then three 2x poolings: 16, 8, 4, 2


def tiny_config():
    """A global-attention block may not start a stage (its query pooling needs a window)."""
    from transformers import Sam2Config

    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=8, num_attention_heads=1, image_size=[IMAGE, IMAGE],
                    embed_dim_per_stage=[8, 16, 32, 64], blocks_per_stage=[1, 1, 1, 2],
                    num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[2, 2, 2, 2],
                    global_attention_blocks=[4], window_positional_embedding_background_size=[2, 2])
    s = IMAGE // 4
    return Sam2Config(
        vision_config=dict(model_type="sam2_vision_model", backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
                           backbone_feature_sizes=[[s, s], [s // 2, s // 2], [s // 4, s // 4]], fpn_hidden_size=32),
        prompt_encoder_config=dict(hidden_size=32, image_size=IMAGE, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
    )


def write_tiny_sam2(folder: Path, seed: int = 0) -> None:
    from transformers import Sam2ImageProcessor, Sam2Model, Sam2Processor

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    Sam2Model(tiny_config()).eval().save_pretrained(folder)
    s = IMAGE // 4
    Sam2Processor(Sam2ImageProcessor(size={"height": IMAGE, "width": IMAGE},
                                     mask_size={"height": s, "width": s})).save_pretrained(folder)
    (folder / "README.md").write_text("Tiny random-weight SAM 2 (iiie.tiny_weights.sam2); not a real model.\n")


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/sam2`` (tiny, random) if missing; return its path (idempotent and
    atomic, see :func:`iiie.tiny_weights.common.ensure_folder`)."""
    return ensure_folder(root, FOLDER, write_tiny_sam2)
