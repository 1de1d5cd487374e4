"""BrushNetInpaintPipeline on tiny random weights written by iiie.tiny_weights.brushnet
(the same official layouts and loading code users run)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, UniPCMultistepScheduler
from PIL import Image

from iiie import masks as M
from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline
from iiie.tiny_weights import brushnet as tiny


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tiny.ensure(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def pipe(tiny_root):
    p = BrushNetInpaintPipeline.from_pretrained(tiny_root / tiny.BASE, brushnet=tiny_root / tiny.SEGMENTATION)
    p.set_progress_bar_config(disable=True)
    return p


def _image(w=48, h=32, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _mask(w=48, h=32):
    return M.box_to_mask((8, 8, 32, 24), (w, h))


def _run(pipe, image, mask, seeds, prompts=None, **kw):
    prompts = prompts or ["a red cat"] * len(seeds)
    args = dict(num_inference_steps=2, guidance_scale=7.5, negative_prompt="blurry", output_type="np")
    args.update(kw)
    return pipe(prompts, image, mask, generator=[torch.Generator().manual_seed(s) for s in seeds], **args).images


def test_tiny_weights_official_layout_and_idempotent(tiny_root):
    assert tiny_root.name == "brushnet"
    for name in (tiny.SEGMENTATION, tiny.RANDOM):
        assert (tiny_root / name / "config.json").exists()
        assert (tiny_root / name / "diffusion_pytorch_model.safetensors").exists()
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (tiny_root / tiny.BASE / sub).is_dir()
    before = (tiny_root / tiny.SEGMENTATION / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    assert tiny.ensure(tiny_root.parent) == tiny_root
    after = (tiny_root / tiny.SEGMENTATION / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    assert before == after


def test_defaults_unipc_and_shapes_nonsquare(pipe):
    assert isinstance(pipe.scheduler, UniPCMultistepScheduler)
    out = _run(pipe, _image(), _mask(), [0])
    assert out.shape == (1, 32, 48, 3) and np.isfinite(out).all()
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_seeded_batches_are_reproducible_and_batch_independent(pipe):
    imgs, masks = [_image(seed=0), _image(seed=1)], [_mask(), _mask()]
    both = _run(pipe, imgs, masks, [5, 6], prompts=["a red cat", "a dog"])
    again = _run(pipe, imgs, masks, [5, 6], prompts=["a red cat", "a dog"])
    alone = _run(pipe, imgs[1:], masks[1:], [6], prompts=["a dog"])
    np.testing.assert_array_equal(both, again)
    np.testing.assert_allclose(both[1], alone[0], atol=1e-4)
    assert np.abs(both[0] - both[1]).max() > 1e-3


def test_hole_is_blacked_out_inside_and_mask_convention(pipe):
    """blackout_hole=True on the raw image == the reference call on the blacked-out image."""
    image, mask = _image(), _mask()
    arr = np.asarray(image).copy()
    arr[mask] = 0
    ours = _run(pipe, image, mask, [1])
    reference_style = _run(pipe, Image.fromarray(arr), M.mask_to_image(mask), [1], blackout_hole=False)
    np.testing.assert_array_equal(ours, reference_style)
    pixels, keep = pipe.prepare_image_and_mask(image, mask, 1, None, None, blackout_hole=False)
    assert keep.shape == (1, 1, 32, 48)
    assert torch.equal(keep[0, 0].bool(), torch.from_numpy(~mask))  # internal: 1 = keep


def test_conditioning_scale_and_injected_vae_noise(pipe):
    image, mask = _image(), _mask()
    a = _run(pipe, image, mask, [2], brushnet_conditioning_scale=1.0)
    b = _run(pipe, image, mask, [2], brushnet_conditioning_scale=0.0)
    assert np.abs(a - b).max() > 1e-3
    eps = torch.randn(2, 4, 4, 6, generator=torch.Generator().manual_seed(0))
    c = _run(pipe, image, mask, [2], vae_posterior_eps=eps)
    d = _run(pipe, image, mask, [3], vae_posterior_eps=eps, latents=torch.zeros(1, 4, 4, 6))
    assert np.isfinite(c).all() and np.isfinite(d).all()
    with pytest.raises(ValueError, match="vae_posterior_eps"):
        _run(pipe, image, mask, [2], vae_posterior_eps=eps[:1])


def test_any_scheduler_by_config_and_branch_embedding_hook(tiny_root, pipe):
    ddim = DDIMScheduler.from_config(pipe.scheduler.config)
    p2 = BrushNetInpaintPipeline(**{**pipe.components, "scheduler": ddim})
    p2.set_progress_bar_config(disable=True)
    assert np.isfinite(_run(p2, _image(), _mask(), [0])).all()

    seen = {}

    class Hooked(BrushNetInpaintPipeline):
        def encode_brushnet_prompt(self, prompt_embeds, negative_prompt_embeds, device, n, cfg, **kw):
            seen.update(kw)
            return prompt_embeds * 0, negative_prompt_embeds * 0

    p3 = Hooked(**pipe.components)
    p3.set_progress_bar_config(disable=True)
    _run(p3, _image(), _mask(), [0], brushnet_prompt_kwargs={"task": "object-removal"})
    assert seen == {"task": "object-removal"}


def test_bfloat16_runs(tiny_root):
    p = BrushNetInpaintPipeline.from_pretrained(tiny_root / tiny.BASE, brushnet=tiny_root / tiny.RANDOM,
                                                torch_dtype=torch.bfloat16)
    p.set_progress_bar_config(disable=True)
    assert p.unet.dtype == torch.bfloat16 and p.brushnet.dtype == torch.bfloat16
    out = _run(p, _image(), _mask(), [0], num_inference_steps=1)
    assert np.isfinite(out).all()


def test_bad_inputs_are_clear(pipe):
    with pytest.raises(ValueError, match="size"):
        _run(pipe, _image(), _mask(w=40), [0])
    with pytest.raises(TypeError, match="PIL image"):
        _run(pipe, "not an image", _mask(), [0])
    with pytest.raises(ValueError, match="generators"):
        _run(pipe, _image(), _mask(), [0, 1], prompts=["one prompt"])
