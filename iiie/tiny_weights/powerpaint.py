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

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

FOLDER = "PowerPaint_v2"
BASE = "realisticVisionV60B1_v51VAE"
BRANCH = "PowerPaint_Brushnet"
_DONE = ".complete"

_CROSS = 32
_WORDS = (
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
    for word in _WORDS:
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


def _text_config(vocab_size: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=_CROSS, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
    )


def write_tiny_sd15_base(folder: Path, seed: int = 0) -> None:
    """An SD1.5-layout base model (UNet with cross-attention, VAE, CLIP, UniPC)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel, UniPCMultistepScheduler
    from transformers import CLIPTextModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_clip_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 16, 32, 32), norm_num_groups=8, cross_attention_dim=_CROSS,
        attention_head_dim=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 16, 16, 16), norm_num_groups=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    CLIPTextModel(_text_config(vocab_size)).save_pretrained(folder / "text_encoder")
    UniPCMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="linspace", solver_order=2, predict_x0=True,
        solver_type="bh2", lower_order_final=True,
    ).save_pretrained(folder / "scheduler")
    index = {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None], "safety_checker": [None, None],
        "requires_safety_checker": False,
        "scheduler": ["diffusers", "UniPCMultistepScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


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


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/PowerPaint_v2`` if it is not complete yet; return its path.

    Idempotent and safe against concurrent callers: the set is built in a temporary
    sibling folder and renamed into place.
    """
    target = Path(root).expanduser() / FOLDER
    if (target / _DONE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER}.", dir=target.parent))
    try:
        write_tiny_sd15_base(tmp / BASE)
        write_tiny_powerpaint_branch(tmp / BASE, tmp / BRANCH)
        (tmp / _DONE).write_text("tiny random PowerPaint v2 weights (iiie.tiny_weights.powerpaint)\n")
        if target.exists() and not (target / _DONE).exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / _DONE).exists():  # not a lost race with another writer
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
