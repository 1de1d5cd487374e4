"""editor=sdxl_inpaint on tiny random weights of the real SDXL inpainting classes (official layout,
built here): a 2-image batch keeps the input sizes, pixels outside the feathered mask are the
source, a seed fixes the pixels, the plan's prompt reaches the model, a missing folder names
the config key."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from iiie import masks as M
from iiie import weights
from iiie.types import Category, EditRequest, MaskResult, Plan
from iiie.weights import MissingWeightsError


def _inputs():
    reqs, masks = [], []
    for seed, (w, h) in enumerate([(50, 34), (52, 36)]):
        rng = np.random.default_rng(seed)
        reqs.append(EditRequest(f"s{seed}", Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), "x"))
        m = np.zeros((h, w), bool)
        m[6:22, 10 + seed:34] = True
        masks.append(MaskResult(m))
    plans = [Plan(Category.LOCAL, object="cat", target_prompt="a red cat"),
             Plan(Category.REMOVE, object="dog", target_prompt="")]
    return reqs, plans, masks


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from iiie.tiny_weights import sdxl_inpaint

    root = tmp_path_factory.mktemp("tiny_sx")
    f = sdxl_inpaint.ensure(root)
    assert sdxl_inpaint.ensure(root) == f  # idempotent
    return f


def test_sdxl_inpaint_batch_paste_back_and_seed(folder, make_cfg):
    from iiie.editors.sdxl_inpaint import SDXLInpaintEditor
    from iiie.planners.rules_prompts import REMOVE_PROMPT

    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLInpaintPipeline"
    assert json.loads((folder / "unet" / "config.json").read_text())["in_channels"] == 9
    node = make_cfg("editor@editor.local=tiny/sdxl_inpaint").editor["local"]
    assert node.model_path.endswith("tiny/stable-diffusion-xl-1.0-inpainting-0.1") and node.steps == 2 and node.resolution == 64
    assert make_cfg("editor@editor.local=sdxl_inpaint").editor["local"].guidance_scale == 8.0
    weights.clear_loaded()
    editor = SDXLInpaintEditor(str(folder), steps=2, resolution=64, blur=2, device="cpu")
    reqs, plans, masks = _inputs()
    first = editor.edit_batch(reqs, plans, masks, [0, 1])
    assert [r.image.size for r in first] == [(50, 34), (52, 36)]
    assert [r.params["prompt"] for r in first] == ["a red cat", REMOVE_PROMPT]  # never "dog"
    assert first[0].params["resolution"] == [64, 40] and first[0].params["pipeline"] == "StableDiffusionXLInpaintPipeline"
    for req, m, res in zip(reqs, masks, first, strict=True):
        src, got = np.asarray(req.image), np.asarray(res.image)
        outside = M.feather(m.mask, 2) == 0
        np.testing.assert_array_equal(got[outside], src[outside])
        assert not np.array_equal(got[m.mask], src[m.mask])  # it did inpaint
    again = editor.edit_batch(reqs, plans, masks, [0, 1])
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    other = editor.edit(reqs[0], plans[0], masks[0], 7)
    assert not np.array_equal(np.asarray(other.image), np.asarray(first[0].image))
    assert editor.stats()["loads"] == {"sdxl_inpaint": 1} and editor.stats()["model_batches"] == 5  # 64x40 and 64x48: two calls per batch


def test_sdxl_inpaint_missing_folder_names_the_config_key(tmp_path):
    from iiie.editors.sdxl_inpaint import SDXLInpaintEditor

    with pytest.raises(MissingWeightsError, match=r"editor\.remove\.model_path.*stable-diffusion-xl-1.0-inpainting-0.1"):
        SDXLInpaintEditor(str(tmp_path / "stable-diffusion-xl-1.0-inpainting-0.1"), config_key="editor.remove")
