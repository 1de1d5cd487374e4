"""Tiny random SAM 3 (``Sam3Model`` + ``Sam3Processor``) in the ``facebook/sam3`` layout.

``ensure(root)`` writes ``root/sam3`` once, atomically: ``config.json`` +
``model.safetensors``, ``processor_config.json`` and a CLIP BPE tokenizer
(``vocab.json``, ``merges.txt``, ``tokenizer.json``), all offline. The model keeps SAM 3's
structure (ViT + FPN neck, CLIP text encoder, geometry encoder, DETR encoder/decoder with
the presence token, mask decoder) at ~76 k parameters on a 56 px input: enough for
``masker=sam3`` to run its real loading, batching and post-processing on CPU in well under
a second. Random weights segment nothing meaningful.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.sd15 import write_tiny_clip_tokenizer

FOLDER = "sam3"
IMAGE = 56  # 4 x 4 patches of 14 px; the FPN scales 4, 2, 1 give 16, 8, 4


def tiny_config(vocab_size: int):
    """A two-block ViT (one windowed, one global), one layer everywhere else, 8 queries."""
    from transformers import Sam3Config

    grid = IMAGE // 14
    return Sam3Config(
        vision_config=dict(
            backbone_config=dict(model_type="sam3_vit_model", hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, image_size=IMAGE, patch_size=14, window_size=2,
                                 global_attn_indexes=[1], pretrain_image_size=28),
            fpn_hidden_size=16, backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2],
        ),
        text_config=dict(model_type="clip_text_model", vocab_size=vocab_size, hidden_size=16, intermediate_size=32,
                         projection_dim=16, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                         bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1),
        geometry_encoder_config=dict(hidden_size=16, num_layers=1, num_attention_heads=2, intermediate_size=32),
        detr_encoder_config=dict(hidden_size=16, num_layers=1, num_attention_heads=2, intermediate_size=32),
        detr_decoder_config=dict(hidden_size=16, num_layers=1, num_queries=8, num_attention_heads=2, intermediate_size=32),
        mask_decoder_config=dict(hidden_size=16, num_upsampling_stages=3, num_attention_heads=2),
    )


def write_tiny_sam3(folder: Path, seed: int = 0) -> None:
    """Model, processor and tokenizer under their real file names in ``folder``."""
    from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3Model, Sam3Processor

    vocab = write_tiny_clip_tokenizer(folder)
    torch.manual_seed(seed)
    Sam3Model(tiny_config(vocab)).eval().save_pretrained(folder)
    grid = IMAGE // 14
    processor = Sam3Processor(
        image_processor=Sam3ImageProcessor(size={"height": IMAGE, "width": IMAGE},
                                           mask_size={"height": 4 * grid, "width": 4 * grid}),
        tokenizer=CLIPTokenizer.from_pretrained(folder),
    )
    processor.save_pretrained(folder)
    (folder / "README.md").write_text("Tiny random-weight SAM 3 (iiie.tiny_weights.sam3); not a real model.\n")


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/sam3`` (tiny, random) if missing; return its path (idempotent and
    atomic, see :func:`iiie.tiny_weights.common.ensure_folder`)."""
    return ensure_folder(root, FOLDER, write_tiny_sam3)
