"""Tiny random weights for the global-route editors, in the official on-disk layouts.

``ensure(root)`` writes ``root/LCM_Dreamshaper_v7/`` laid out like
``SimianLuo/LCM_Dreamshaper_v7`` (unet with ``time_cond_proj_dim``, vae, text_encoder,
tokenizer, LCMScheduler config, safety_checker, feature_extractor and the official
model_index.json naming ``LatentConsistencyModelPipeline``), which InfEdit loads with
diffusers' ``from_pretrained`` (leaving the safety checker out) and diffusers' own LCM
pipeline loads too.

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
from pathlib import Path

import torch

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.sd15 import (
    model_index,
    text_config,
    tiny_unet,
    tiny_vae,
    write_tiny_clip_tokenizer,
)

LCM_FOLDER = "LCM_Dreamshaper_v7"
IP2P_FOLDER = "instruct-pix2pix"
#: Bumped when the LCM folder's content changes (2: safety_checker, feature_extractor and the
#: official model_index.json), so folders written by an older writer are rebuilt.
LCM_VERSION = 2

#: ``model_index.json`` of ``SimianLuo/LCM_Dreamshaper_v7``.
LCM_MODEL_INDEX = {
    "_class_name": "LatentConsistencyModelPipeline",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "requires_safety_checker": True,
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "LCMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def _text_encoder(folder: Path, vocab_size: int) -> None:
    """The shared tiny CLIP text encoder with larger token embeddings (distinct prompts)."""
    from transformers import CLIPTextModel

    model = CLIPTextModel(text_config(vocab_size))
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 0.5)
    model.save_pretrained(folder)


def _unet(in_channels: int, time_cond_proj_dim: int | None):
    """The shared tiny UNet with cross-attention query/key scaled up (see module doc)."""
    unet = tiny_unet(in_channels, time_cond_proj_dim)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if ".attn2.to_q." in name or ".attn2.to_k." in name:
                p.mul_(3.0)
    return unet


def write_tiny_lcm_sd15(folder: Path, seed: int = 0) -> None:
    """An LCM-Dreamshaper-layout SD1.5 folder with random tiny components."""
    from diffusers import LCMScheduler

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_clip_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    _unet(4, 256).save_pretrained(folder / "unet", safe_serialization=True)
    tiny_vae().save_pretrained(folder / "vae", safe_serialization=True)
    _text_encoder(folder / "text_encoder", vocab_size)
    LCMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        original_inference_steps=50, set_alpha_to_one=True, steps_offset=1,
        timestep_spacing="leading", timestep_scaling=10.0, prediction_type="epsilon",
        clip_sample=False,
    ).save_pretrained(folder / "scheduler")
    _safety_checker(folder)  # last: the components above keep their random draws
    (folder / "model_index.json").write_text(json.dumps(LCM_MODEL_INDEX, indent=2))


def _safety_checker(folder: Path) -> None:
    """A tiny ``StableDiffusionSafetyChecker`` and its ``CLIPImageProcessor``, so the folder
    has every component its model_index.json names (InfEdit does not load them)."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    tiny = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(text_config=tiny, vision_config={**tiny, "image_size": 32, "patch_size": 8},
                        projection_dim=8)
    StableDiffusionSafetyChecker(config).save_pretrained(folder / "safety_checker")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder / "feature_extractor")


def write_tiny_instructpix2pix(folder: Path, seed: int = 0) -> None:
    """An instruct-pix2pix-layout folder: UNet with 8 input channels (latent + image)."""
    from diffusers import EulerAncestralDiscreteScheduler

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_clip_tokenizer(folder / "tokenizer")
    torch.manual_seed(seed)
    _unet(8, None).save_pretrained(folder / "unet", safe_serialization=True)
    tiny_vae().save_pretrained(folder / "vae", safe_serialization=True)
    _text_encoder(folder / "text_encoder", vocab_size)
    EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, prediction_type="epsilon",
    ).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps(
        model_index("StableDiffusionInstructPix2PixPipeline", "EulerAncestralDiscreteScheduler"), indent=2))


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/LCM_Dreamshaper_v7`` (tiny, random) if missing; return its path."""
    return ensure_folder(root, LCM_FOLDER, write_tiny_lcm_sd15, version=LCM_VERSION)


def ensure_instructpix2pix(root: str | os.PathLike) -> Path:
    """Write ``root/instruct-pix2pix`` (tiny, random) if missing; return its path."""
    return ensure_folder(root, IP2P_FOLDER, write_tiny_instructpix2pix)
