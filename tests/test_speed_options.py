"""``diffusion_common.speed_options``: channels_last keeps results (CPU); nothing by default."""

from __future__ import annotations

import torch

from iiie.editors.diffusion_common import speed_options


def _tiny_pipe(tmp_path):
    from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline
    from iiie.tiny_weights import brushnet as tiny

    root = tiny.ensure(tmp_path)
    pipe = BrushNetInpaintPipeline.from_pretrained(root / tiny.BASE, brushnet=root / tiny.SEGMENTATION)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _latents(pipe):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    return pipe("a red cat", image, mask, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                output_type="latent").images


def test_channels_last_same_output(tmp_path):
    pipe = _tiny_pipe(tmp_path)
    assert speed_options(pipe) == []
    before = _latents(pipe)
    assert not pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    changed = speed_options(pipe, channels_last=True)
    assert changed == ["unet:channels_last", "brushnet:channels_last", "vae:channels_last"]
    for module in (pipe.unet, pipe.brushnet, pipe.vae):
        conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1)
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(_latents(pipe), before, rtol=1e-4, atol=1e-4)


def test_missing_modules_are_skipped():
    class Bare:
        unet = torch.nn.Conv2d(4, 4, 3)

    assert speed_options(Bare(), channels_last=True) == ["unet:channels_last"]
