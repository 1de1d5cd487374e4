"""Tiny random-weight Qwen3-VL in the official Hugging Face layout, built offline.

Why: ``vlm.engine=transformers`` picks the model class from the folder's config
(``AutoModelForImageTextToText``); this folder proves the Qwen3-VL path (16-pixel patches,
interleaved M-RoPE, deepstack vision features) without a download. Tokenizer, chat template
and the value-closing embeddings/LM head are those of :mod:`iiie.tiny_weights.qwen2_5_vl`.
"""

from __future__ import annotations

import os
from pathlib import Path

from iiie.tiny_weights import qwen2_5_vl as q25
from iiie.tiny_weights.common import ensure_folder

NAME = "qwen3_vl"


def write(folder: Path) -> None:
    """Write config, safetensors, tokenizer and processor configs into ``folder``."""
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    q25._write_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = {t: tok.convert_tokens_to_ids(t) for t in q25.SPECIALS}
    cfg = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         head_dim=16, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": [2, 3, 3], "mrope_interleaved": True},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         bos_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2,
                           out_hidden_size=32, patch_size=16, spatial_merge_size=2,
                           temporal_patch_size=2, num_position_embeddings=64,
                           deepstack_visual_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(cfg).eval()
    q25._close_values(model, tok)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder, safe_serialization=True)
    improc = Qwen2VLImageProcessor(patch_size=16, merge_size=2,
                                   min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 16)
    Qwen3VLProcessor(image_processor=improc, tokenizer=tok, video_processor=Qwen3VLVideoProcessor(),
                     chat_template=q25.CHAT_TEMPLATE).save_pretrained(folder)
    (folder / "README.md").write_text("Tiny random-weight Qwen3-VL (iiie.tiny_weights.qwen3_vl); not a real model.\n")


def ensure(root: str | os.PathLike) -> Path:
    """Build ``root/qwen3_vl`` once (atomic, idempotent) and return it."""
    return ensure_folder(root, NAME, write)
