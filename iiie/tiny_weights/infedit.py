"""Tiny random weights for the global-route editors, in the official on-disk layouts.

``ensure(root)`` writes ``root/LCM_Dreamshaper_v7/`` laid out like
``SimianLuo/LCM_Dreamshaper_v7`` (unet with ``time_cond_proj_dim``, vae, text_encoder,
tokenizer, LCMScheduler config, model_index.json), which InfEdit loads.

``ensure_instructpix2pix(root)`` writes ``root/instruct-pix2pix/`` laid out like
``timbrooks/instruct-pix2pix`` (8-input-channel UNet, EulerAncestral scheduler), which
diffusers' ``StableDiffusionInstructPix2PixPipeline`` loads.

Both are the real classes with a few thousand parameters. The cross-attention query/key
weights are scaled up (as in the InfEdit golden set) so that random cross-attention is not
nearly uniform; otherwise every local-blend mask would be all-on or all-off and tests of the
blend would be blind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

LCM_FOLDER = "LCM_Dreamshaper_v7"
IP2P_FOLDER = "instruct-pix2pix"
_DONE = ".complete"
_CROSS = 32


def _text_encoder(folder: Path, vocab_size: int) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=_CROSS, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
    )
    model = CLIPTextModel(config)
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 0.5)
    model.save_pretrained(folder)


def _unet(in_channels: int, time_cond_proj_dim: int | None):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 16, 32, 32), norm_num_groups=8, cross_attention_dim=_CROSS,
        attention_head_dim=4, time_cond_proj_dim=time_cond_proj_dim,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if ".attn2.to_q." in name or ".attn2.to_k." in name:
                p.mul_(3.0)
    return unet


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 16, 16, 16), norm_num_groups=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )


def _index(pipeline_class: str, scheduler_class: str) -> dict:
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


def write_tiny_lcm_sd15(folder: Path, seed: int = 0) -> None:
    """An LCM-Dreamshaper-layout SD1.5 folder with random tiny components."""
    from diffusers import LCMScheduler

    from iiie.tiny_weights.powerpaint import write_tiny_clip_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_clip_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    _unet(4, 256).save_pretrained(folder / "unet", safe_serialization=True)
    _vae().save_pretrained(folder / "vae", safe_serialization=True)
    _text_encoder(folder / "text_encoder", vocab_size)
    LCMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        original_inference_steps=50, set_alpha_to_one=True, steps_offset=1,
        timestep_spacing="leading", timestep_scaling=10.0, prediction_type="epsilon",
        clip_sample=False,
    ).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(
        json.dumps(_index("LatentConsistencyModelPipeline", "LCMScheduler"), indent=2))


def write_tiny_instructpix2pix(folder: Path, seed: int = 0) -> None:
    """An instruct-pix2pix-layout folder: UNet with 8 input channels (latent + image)."""
    from diffusers import EulerAncestralDiscreteScheduler

    from iiie.tiny_weights.powerpaint import write_tiny_clip_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_clip_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    _unet(8, None).save_pretrained(folder / "unet", safe_serialization=True)
    _vae().save_pretrained(folder / "vae", safe_serialization=True)
    _text_encoder(folder / "text_encoder", vocab_size)
    EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, prediction_type="epsilon",
    ).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps(
        _index("StableDiffusionInstructPix2PixPipeline", "EulerAncestralDiscreteScheduler"), indent=2))


def _ensure(root: str | os.PathLike, name: str, write: Callable[[Path], None]) -> Path:
    """Build ``root/name`` in a temporary sibling and rename it into place (idempotent)."""
    target = Path(root).expanduser() / name
    if (target / _DONE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        write(tmp)
        (tmp / _DONE).write_text(f"tiny random weights ({__name__})\n")
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


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/LCM_Dreamshaper_v7`` (tiny, random) if missing; return its path."""
    return _ensure(root, LCM_FOLDER, write_tiny_lcm_sd15)


def ensure_instructpix2pix(root: str | os.PathLike) -> Path:
    """Write ``root/instruct-pix2pix`` (tiny, random) if missing; return its path."""
    return _ensure(root, IP2P_FOLDER, write_tiny_instructpix2pix)
