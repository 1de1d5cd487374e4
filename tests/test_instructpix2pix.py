"""``editor=instructpix2pix`` on a tiny random model saved in the instruct-pix2pix layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from iiie import weights
from iiie.editors.instructpix2pix import InstructPix2PixEditor
from iiie.types import Category, EditRequest, MaskResult, Plan
from iiie.weights import MissingWeightsError


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    from iiie.tiny_weights.infedit import ensure_instructpix2pix

    root = tmp_path_factory.mktemp("tiny_ip2p")
    ensure_instructpix2pix(root)
    return root


def _req(w, h, text="make it winter", seed=0):
    rng = np.random.default_rng(seed)
    return EditRequest("s", Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), text)


def test_tiny_folder_is_the_official_layout(tiny_root):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(tiny_root / "instruct-pix2pix",
                                                                  safety_checker=None)
    assert pipe.unet.config.in_channels == 8


def test_config_instantiates(make_cfg, tiny_root):
    cfg = make_cfg("editor@editor.global=instructpix2pix", f"paths.weights={tiny_root}")
    editor = instantiate(cfg.editor["global"])
    assert isinstance(editor, InstructPix2PixEditor)
    assert (editor.steps, editor.guidance_scale, editor.image_guidance_scale) == (100, 7.5, 1.5)


def test_missing_weights(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"editor\.<route>\.model_path"):
        InstructPix2PixEditor(str(tmp_path / "none"))
    with pytest.raises(MissingWeightsError, match=r"editor\.local\.model_path"):
        InstructPix2PixEditor(str(tmp_path / "none"), config_key="editor.local")


def test_edit_batch_uses_the_instruction_and_keeps_sizes(tiny_root):
    weights.clear_loaded()
    editor = InstructPix2PixEditor(str(tiny_root / "instruct-pix2pix"), steps=2, resolution=64, device="cpu")
    reqs = [_req(70, 50), _req(33, 61, "turn it into a watercolor"), _req(70, 50, seed=1)]
    plans = [Plan(Category.GLOBAL, target_caption="ignored")] * 3
    masks = [MaskResult(np.ones((r.image.height, r.image.width), bool)) for r in reqs]
    out = editor.edit_batch(reqs, plans, masks, [0, 1, 2])
    assert [r.image.size for r in out] == [(70, 50), (33, 61), (70, 50)]
    assert out[1].params["prompt"] == "turn it into a watercolor"
    assert editor.stats()["model_batches"] == 2  # two model resolutions
    again = editor.edit(reqs[0], plans[0], masks[0], 0)
    assert np.array_equal(np.asarray(again.image), np.asarray(out[0].image))
    assert weights.LOAD_COUNTS.get("instructpix2pix") == 1
    mask = np.zeros((50, 70), bool)
    mask[:20] = True
    part = editor.edit(reqs[0], plans[0], MaskResult(mask), 0)
    assert np.array_equal(np.asarray(part.image)[~mask], np.asarray(reqs[0].image)[~mask])
