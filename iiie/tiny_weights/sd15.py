"""Tiny random Stable Diffusion 1.5 parts shared by the tiny-weight generators.

BrushNet and PowerPaint sit on an SD1.5 base (``realisticVisionV60B1_v51VAE``); InfEdit and
InstructPix2Pix use SD1.5-shaped folders with another UNet or scheduler. All of them need
the same tiny CLIP tokenizer, text encoder, UNet and VAE shapes (cross-attention width
:data:`CROSS`), so those live here once.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

#: Cross-attention width: the text encoder's hidden size and the UNet's context size.
CROSS = 32
#: Words that get BPE merges (so prompts in tests become a few tokens, not one per byte).
WORDS = (
    "a photo of the cat dog table vase flower red yellow wooden empty scene blur room "
    "person sitting on in with background grass sky"
).split()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))


def write_tiny_clip_tokenizer(folder: Path) -> int:
    """A real CLIP BPE tokenizer over bytes plus merges for a few words; returns vocab size."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols]
    merges: list[str] = []
    for word in WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            merged = parts[0] + parts[1]
            rule = f"{parts[0]} {parts[1]}"
            if rule not in merges:
                merges.append(rule)
                vocab.append(merged)
            parts = [merged] + parts[2:]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    ids = {tok: i for i, tok in enumerate(dict.fromkeys(vocab))}
    (folder / "vocab.json").write_text(json.dumps(ids))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    config = dict(special, model_max_length=77, tokenizer_class="CLIPTokenizer",
                  clean_up_tokenization_spaces=True, errors="replace")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return len(ids)


def text_config(vocab_size: int):
    """A two-layer CLIP text encoder config for the tokenizer above."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=CROSS, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
    )


def tiny_unet(in_channels: int = 4, time_cond_proj_dim: int | None = None):
    """An SD1.5-shaped UNet (three cross-attention levels) with a few thousand parameters."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 16, 32, 32), norm_num_groups=8, cross_attention_dim=CROSS,
        attention_head_dim=4, time_cond_proj_dim=time_cond_proj_dim,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )


def tiny_vae():
    """An SD-shaped VAE (4 latent channels, downscale 8)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 16, 16, 16), norm_num_groups=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )


def model_index(pipeline_class: str, scheduler_class: str) -> dict:
    """``model_index.json`` of an SD1.5-layout folder without safety checker."""
    return {
        "_class_name": pipeline_class,
        "feature_extractor": [None, None], "safety_checker": [None, None],
        "requires_safety_checker": False,
        "scheduler": ["diffusers", scheduler_class],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def write_tiny_sd15_base(folder: Path, seed: int = 0) -> None:
    """An SD1.5-layout base model (UNet with cross-attention, VAE, CLIP, UniPC)."""
    from diffusers import UniPCMultistepScheduler
    from transformers import CLIPTextModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_clip_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    tiny_unet().save_pretrained(folder / "unet", safe_serialization=True)
    tiny_vae().save_pretrained(folder / "vae", safe_serialization=True)
    CLIPTextModel(text_config(vocab_size)).save_pretrained(folder / "text_encoder")
    UniPCMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="linspace", solver_order=2, predict_x0=True,
        solver_type="bh2", lower_order_final=True,
    ).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(
        json.dumps(model_index("StableDiffusionPipeline", "UniPCMultistepScheduler"), indent=2))
