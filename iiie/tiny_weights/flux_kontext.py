"""Tiny random weights for ``editor=flux_kontext``: every component of the real
``black-forest-labs/FLUX.1-Kontext-dev`` folder (``FluxTransformer2DModel``, a 16-channel
Flux-style ``AutoencoderKL``, ``CLIPTextModel`` + ``T5EncoderModel`` with their tokenizers,
``FlowMatchEulerDiscreteScheduler``), at a few thousand parameters, saved with
``FluxKontextPipeline.save_pretrained`` so the folder has the official layout
(``model_index.json``, one subfolder per component) and the editor loads it exactly as it
loads the real checkpoint. Built offline: the tokenizers come from small in-code vocabularies.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.sd15 import text_config, write_tiny_clip_tokenizer

FOLDER = "FLUX.1-Kontext-dev"
#: T5 width = the transformer's joint-attention (text context) width.
T5_WIDTH = 32


def tiny_t5_tokenizer():
    """A real ``T5TokenizerFast`` (Unigram + Metaspace, as the checkpoint's) over printable
    characters and a few words, so any prompt is encodable without a download."""
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -3.0) for c in string.ascii_letters + string.digits + string.punctuation]
    pieces += [("\u2581" + w, -1.0) for w in "a the make it remove add change to of cat dog sky".split()]
    return T5TokenizerFast(vocab=pieces, extra_ids=0)


def tiny_flux_parts(scratch: Path, seed: int = 0, mask_channels: int = 0) -> dict:
    """The components of a tiny FLUX.1 [dev]-family pipeline from the real classes.

    Shared by every Flux-family tiny writer (Kontext, Fill). ``mask_channels`` widens the
    transformer's input for pipelines that concatenate packed masked-image latents and the
    mask to the noisy latents (FLUX.1 Fill: ``latent*4 + latent*4 + 8*8*4``); its output
    stays ``latent*4`` as in the real checkpoints. ``scratch`` holds the CLIP tokenizer files
    while they are read and is removed afterwards.
    """
    import shutil

    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel

    clip_vocab = write_tiny_clip_tokenizer(scratch)
    tokenizer = CLIPTokenizer.from_pretrained(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    tokenizer_2 = tiny_t5_tokenizer()
    torch.manual_seed(seed)
    clip_cfg = text_config(clip_vocab)
    text_encoder = CLIPTextModel(clip_cfg)
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer_2), d_model=T5_WIDTH, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0))
    latent = 4  # the real VAE has 16; the transformer takes latent * 4 packed channels
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent, layers_per_block=1,
        block_out_channels=(8, 8, 16, 16), norm_num_groups=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=latent * 4 + mask_channels, out_channels=latent * 4 if mask_channels else None,
        num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=T5_WIDTH, pooled_projection_dim=clip_cfg.hidden_size,
        guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096, max_shift=1.15, shift=3.0,
        use_dynamic_shifting=True)
    return {"scheduler": scheduler, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "text_encoder_2": text_encoder_2, "tokenizer_2": tokenizer_2, "transformer": transformer}


def write_tiny_flux_kontext(folder: Path, seed: int = 0) -> None:
    """Build the tiny pipeline from the real classes and save it in the diffusers layout."""
    from diffusers import FluxKontextPipeline

    pipe = FluxKontextPipeline(**tiny_flux_parts(folder / ".tok", seed))
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / "README.md").write_text(f"Tiny random-weight FLUX.1 Kontext ({__name__}); not a real model.\n")


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/FLUX.1-Kontext-dev`` (tiny, random) if missing; return its path."""
    return ensure_folder(root, FOLDER, write_tiny_flux_kontext)
