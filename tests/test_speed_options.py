"""``diffusion_common.speed_options``: channels_last keeps results (CPU); nothing by default;
every DiffusionEditor applies ``runtime.compile`` / ``runtime.channels_last`` once, when its
pipeline is built, and neither enters a cache key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iiie import weights
from iiie.editors import diffusion_common as dc
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


def test_compile_covers_the_transformer_and_is_applied_once():
    class Flux:  # Flux / Qwen-Image: a transformer denoiser, few convolutions
        transformer = torch.nn.Linear(4, 4)
        vae = torch.nn.Conv2d(4, 4, 3)

    pipe = Flux()
    assert speed_options(pipe, channels_last=True, compile=True) == [
        "transformer:compile", "vae:channels_last"]
    assert pipe.transformer._compiled_call_impl is not None  # compiled lazily: nothing runs on CPU here
    # A module shared with a pipeline built before is not compiled again.
    assert speed_options(pipe, compile=True) == []


# ---------------------------------------------------------------- through DiffusionEditor

@pytest.fixture(scope="module")
def tiny_brushnet(tmp_path_factory):
    from iiie.tiny_weights import brushnet as tiny

    root = tiny.ensure(tmp_path_factory.mktemp("tiny_speed"))
    return root / tiny.BASE, root / tiny.SEGMENTATION


def _brushnet(folders, **kw):
    from iiie.editors.brushnet import BrushNetEditor

    return BrushNetEditor(str(folders[0]), str(folders[1]), steps=2, resolution=64, blur=2, device="cpu", **kw)


def _edit(editor) -> np.ndarray:
    from iiie import masks as M
    from iiie.types import Category, EditRequest, MaskResult, Plan

    rng = np.random.default_rng(0)
    request = EditRequest("s0", Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)), "x")
    mask = MaskResult(M.box_to_mask((10, 10, 40, 30), (70, 50)))
    return np.asarray(editor.edit(request, Plan(Category.LOCAL, "cat", "a red cat"), mask, 3).image)


def test_editor_channels_last_gives_the_same_pixels(tiny_brushnet):
    weights.clear_loaded()
    try:
        plain = _edit(_brushnet(tiny_brushnet))
        weights.clear_loaded()
        editor = _brushnet(tiny_brushnet, channels_last=True)
        fast = _edit(editor)
        conv = editor.pipeline().unet.conv_in.weight
        assert conv.is_contiguous(memory_format=torch.channels_last)
        assert np.abs(fast.astype(int) - plain.astype(int)).max() <= 1
    finally:
        weights.clear_loaded()  # the switched modules must not leak into other tests


def test_editor_switches_reach_speed_options_once_per_built_pipeline(tiny_brushnet, monkeypatch):
    """compile=True on CPU would spend minutes compiling (it is for GPU runs): what is
    checked is that the editor hands its options to speed_options when the pipeline is
    built, and that a second editor on the same weights reuses it without a second call."""
    calls = []
    monkeypatch.setattr(dc, "speed_options", lambda pipe, **kw: calls.append((type(pipe).__name__, kw)) or [])
    weights.clear_loaded()
    try:
        first = _brushnet(tiny_brushnet, compile=True, channels_last=True)
        assert "compile" not in first._params("p", (64, 48)) and "channels_last" not in first._params("p", None)
        pipe = first.pipeline()
        assert _brushnet(tiny_brushnet, compile=True, channels_last=True).pipeline() is pipe
        assert calls == [("BrushNetInpaintPipeline", {"channels_last": True, "compile": True})]
    finally:
        weights.clear_loaded()


def _diffusion_editor_configs() -> list[str]:
    """conf/editor/*.yaml whose target is a DiffusionEditor (InfEdit is not one)."""
    import importlib

    import yaml

    from iiie.editors.base import DiffusionEditor

    names = []
    for path in sorted((Path(__file__).resolve().parents[1] / "conf" / "editor").glob("*.yaml")):
        target = yaml.safe_load(path.read_text()).get("_target_")
        if target:
            module, _, cls = target.rpartition(".")
            if issubclass(getattr(importlib.import_module(module), cls), DiffusionEditor):
                names.append(path.stem)
    return names


def test_every_diffusion_editor_config_reads_the_runtime_switches(make_cfg):
    names = _diffusion_editor_configs()
    assert {"brushnet", "powerpaint", "sdxl_inpaint", "flux_fill", "qwen_image_edit"} <= set(names)
    for name in [*names, "brushnet_random", "powerpaint_text", "magicbrush"]:
        off = make_cfg(f"editor@editor.local={name}").editor.local
        on = make_cfg(f"editor@editor.local={name}", "runtime.compile=true", "runtime.channels_last=true").editor.local
        assert (off.compile, off.channels_last, on.compile, on.channels_last) == (False, False, True, True), name


def test_switches_are_left_out_of_cache_keys(make_cfg):
    from iiie.pipeline.runner import Runner

    keys = [Runner(make_cfg("editor@editor.local=brushnet", "data.n=2", *extra)).keys["edit"]
            for extra in ((), ("runtime.compile=true", "runtime.channels_last=true"))]
    assert keys[0] == keys[1]
