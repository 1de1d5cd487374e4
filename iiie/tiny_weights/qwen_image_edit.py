"""Tiny random weights for ``editor=qwen_image_edit``: every component of the real
``Qwen/Qwen-Image-Edit`` folder (``QwenImageTransformer2DModel``, ``AutoencoderKLQwenImage``,
a ``Qwen2_5_VLForConditionalGeneration`` text encoder with its tokenizer and a
``Qwen2VLProcessor``, ``FlowMatchEulerDiscreteScheduler``), saved with
``QwenImageEditPipeline.save_pretrained`` so the folder has the official layout and the
editor loads it as it loads the real checkpoint. The text encoder, tokenizer and image
processor are the offline tiny Qwen2.5-VL of :mod:`iiie.tiny_weights.qwen2_5_vl`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from iiie.tiny_weights import qwen2_5_vl
from iiie.tiny_weights.common import ensure_folder

FOLDER = "Qwen-Image-Edit"


def _processor(vl_folder: Path, tokenizer):
    """A ``Qwen2VLProcessor`` (the class the real folder's ``processor/`` holds) over the
    tiny Qwen2.5-VL's tokenizer and image processor."""
    from transformers import AutoProcessor, Qwen2VLProcessor

    vl = AutoProcessor.from_pretrained(vl_folder)
    kwargs = {"image_processor": vl.image_processor, "tokenizer": tokenizer,
              "chat_template": qwen2_5_vl.CHAT_TEMPLATE}
    if getattr(vl, "video_processor", None) is not None:
        kwargs["video_processor"] = vl.video_processor
    return Qwen2VLProcessor(**kwargs)


def write_tiny_qwen_image_edit(folder: Path, seed: int = 0) -> None:
    """Build the tiny pipeline from the real classes and save it in the diffusers layout."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    vl_folder = Path(tempfile.mkdtemp(prefix=".qwen2_5_vl.", dir=folder))
    try:
        qwen2_5_vl.write(vl_folder)
        tokenizer = AutoTokenizer.from_pretrained(vl_folder)
        text_encoder = Qwen2_5_VLForConditionalGeneration.from_pretrained(vl_folder)
        processor = _processor(vl_folder, tokenizer)
    finally:
        shutil.rmtree(vl_folder, ignore_errors=True)
    torch.manual_seed(seed)
    z_dim = 16  # as the real VAE (its latents_mean / latents_std have 16 entries)
    # 8x downsampling like the real VAE, but no encoder res-blocks: the pipeline encodes its
    # condition at ~1 MP, and CPU conv3d at full resolution would otherwise cost ~2 s/image.
    vae = AutoencoderKLQwenImage(base_dim=4, z_dim=z_dim, dim_mult=[1, 1, 1, 1], num_res_blocks=0,
                                 temperal_downsample=[False, True, True])
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=z_dim * 4, out_channels=z_dim, num_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=text_encoder.config.text_config.hidden_size,
        axes_dims_rope=(4, 6, 6))
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256, base_shift=0.5, max_image_seq_len=8192, max_shift=0.9, shift=1.0,
        shift_terminal=0.02, use_dynamic_shifting=True, time_shift_type="exponential")
    pipe = QwenImageEditPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                 processor=processor, transformer=transformer)
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / "README.md").write_text(f"Tiny random-weight Qwen-Image-Edit ({__name__}); not a real model.\n")


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/Qwen-Image-Edit`` (tiny, random) if missing; return its path."""
    return ensure_folder(root, FOLDER, write_tiny_qwen_image_edit)
