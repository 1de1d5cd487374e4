"""Seconds per denoising step of the BrushNet pipeline (branch + UNet + CFG + scheduler).

    python benchmarks/brushnet_step.py                      # tiny profile on CPU (the default)
    python benchmarks/brushnet_step.py --sizes 256 --batch 1 4
    python benchmarks/brushnet_step.py --full-size --device cuda --dtype float16 \
        --sizes 512 --steps 50                              # SD1.5-sized random weights

The tiny profile uses the weights of ``iiie.tiny_weights.brushnet`` (the ``tiny``
experiment's). ``--full-size`` builds random-weight models with the SD1.5 shapes (UNet
320/640/1280/1280, BrushNet from it, SD VAE, 12-layer CLIP text encoder), so the timing is
that of the real checkpoints without needing them. A step is timed between consecutive
``callback_on_step_end`` calls (the first step, which includes warm-up, is dropped); the
table gives the median over steps and repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def tiny_pipeline(dtype: torch.dtype):
    from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline
    from iiie.tiny_weights import brushnet as tiny

    root = tiny.ensure(Path(tempfile.gettempdir()) / "iiie_bench_tiny")
    return BrushNetInpaintPipeline.from_pretrained(root / tiny.BASE, brushnet=root / tiny.SEGMENTATION,
                                                   torch_dtype=dtype)


def full_size_pipeline(dtype: torch.dtype, device: str):
    """Random weights with the SD1.5 + BrushNet shapes (tokenizer: the tiny one)."""
    from iiie.tiny_weights.sd15 import write_tiny_clip_tokenizer

    tok_dir = Path(tempfile.mkdtemp(prefix="iiie_bench_tok"))
    vocab = write_tiny_clip_tokenizer(tok_dir)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in the target dtype: no float32 copy in memory
    try:
        return _build_full_size(device, vocab, tok_dir)
    finally:
        torch.set_default_dtype(previous)


def _build_full_size(device: str, vocab: int, tok_dir: Path):
    from diffusers import AutoencoderKL, UniPCMultistepScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from iiie.models.brushnet import BrushNetModel, BrushNetUNet2DConditionModel
    from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline

    with torch.device(device):
        unet = BrushNetUNet2DConditionModel(
            sample_size=64, cross_attention_dim=768, attention_head_dim=8,
            block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
        brushnet = BrushNetModel.from_unet(unet)
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            sample_size=512,
        )
        text = CLIPTextModel(CLIPTextConfig(
            vocab_size=vocab, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
            num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
            bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1,
        ))
    scheduler = UniPCMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        steps_offset=1, timestep_spacing="linspace")
    return BrushNetInpaintPipeline(vae=vae, text_encoder=text, tokenizer=CLIPTokenizer.from_pretrained(tok_dir),
                                   unet=unet, brushnet=brushnet, scheduler=scheduler)


def time_steps(pipe, size: int, batch: int, steps: int, repeats: int) -> list[float]:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    mask = np.zeros((size, size), bool)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    per_step: list[float] = []
    for r in range(repeats):
        marks: list[float] = []

        def on_step(p, i, t, kw, marks=marks):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks.append(time.perf_counter())
            return {}

        pipe(["a red cat on a table"] * batch, image, mask, num_inference_steps=steps, guidance_scale=7.5,
             negative_prompt="blurry", generator=[torch.Generator().manual_seed(r * 100 + b) for b in range(batch)],
             output_type="latent", callback_on_step_end=on_step)
        per_step += [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return per_step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-size", action="store_true", help="SD1.5-shaped random weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    pipe = full_size_pipeline(dtype, args.device) if args.full_size else tiny_pipeline(dtype)
    pipe.to(args.device)
    pipe.set_progress_bar_config(disable=True)
    profile = "full-size (SD1.5 shapes, random)" if args.full_size else "tiny"
    print(f"BrushNet pipeline, {profile}, {args.device} {args.dtype}, CFG on, "
          f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    print(f"| {'size':>9} | {'batch':>5} | {'s/step (median)':>15} | {'min':>8} | {'max':>8} | {'steps timed':>11} |")
    print(f"|{'-' * 11}|{'-' * 7}|{'-' * 17}|{'-' * 10}|{'-' * 10}|{'-' * 13}|")
    for size in args.sizes:
        for batch in args.batch:
            times = time_steps(pipe, size, batch, args.steps, args.repeats)
            print(f"| {f'{size}x{size}':>9} | {batch:>5} | {statistics.median(times):>15.4f} | "
                  f"{min(times):>8.4f} | {max(times):>8.4f} | {len(times):>11} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
