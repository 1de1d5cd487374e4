"""editor=sdxl_inpaint on tiny random weights of the real SDXL inpainting classes (official layout,
built here): the layout and config facts of this editor, then the checks every inpainting
editor passes (tests/inpaint_editor_checks.py)."""

from __future__ import annotations

import json

import pytest
from inpaint_editor_checks import check_inpainting, check_missing_folder

from iiie.editors.sdxl_inpaint import SDXLInpaintEditor


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from iiie.tiny_weights import sdxl_inpaint

    root = tmp_path_factory.mktemp("tiny_sx")
    built = sdxl_inpaint.ensure(root)
    assert sdxl_inpaint.ensure(root) == built  # idempotent
    return built


def test_sdxl_inpaint_batch_paste_back_and_seed(folder, make_cfg):
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLInpaintPipeline"
    assert json.loads((folder / "unet" / "config.json").read_text())["in_channels"] == 9
    node = make_cfg("editor@editor.local=tiny/sdxl_inpaint").editor["local"]
    assert node.model_path.endswith("tiny/stable-diffusion-xl-1.0-inpainting-0.1") and node.steps == 2 and node.resolution == 64
    assert make_cfg("editor@editor.local=sdxl_inpaint").editor["local"].guidance_scale == 8.0
    check_inpainting(lambda: SDXLInpaintEditor(str(folder), steps=2, resolution=64, blur=2, device="cpu"),
                     "sdxl_inpaint", "StableDiffusionXLInpaintPipeline", [64, 40], 5)  # 64x40 and 64x48: two calls per batch


def test_sdxl_inpaint_missing_folder_names_the_config_key(tmp_path):
    check_missing_folder(SDXLInpaintEditor, tmp_path / "stable-diffusion-xl-1.0-inpainting-0.1", "stable-diffusion-xl-1.0-inpainting-0.1")
