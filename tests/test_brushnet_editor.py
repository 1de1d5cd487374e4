"""editor=brushnet through Hydra on tiny generated weights: sizes, exact paste-back,
one model load per process for several routes, clear missing-weight errors."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from iiie import masks as M
from iiie import weights
from iiie.tiny_weights import brushnet as tiny
from iiie.types import Category, EditRequest, MaskResult, Plan


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return tiny.ensure(tmp_path_factory.mktemp("tiny_editor"))


def _overrides(root, route="local", editor="brushnet", extra=()):
    ckpt = tiny.RANDOM if editor == "brushnet_random" else tiny.SEGMENTATION
    p = f"editor.{route}"
    return [f"editor@{p}={editor}", f"{p}.base_path={root / tiny.BASE}", f"{p}.brushnet_path={root / ckpt}",
            f"{p}.steps=2", f"{p}.resolution=64", f"{p}.blur=3", *extra]


def _request(i, w, h):
    rng = np.random.default_rng(i)
    return EditRequest(f"s{i}", Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), "edit it")


def test_routes_share_one_base_and_outputs_keep_input_outside_mask(make_cfg, tiny_root):
    weights.clear_loaded()
    cfg = make_cfg(*_overrides(tiny_root, "local"), *_overrides(tiny_root, "background"),
                   *_overrides(tiny_root, "addition", "brushnet_random"))
    local = instantiate(cfg.editor.local, _convert_="all")
    background = instantiate(cfg.editor.background, _convert_="all")
    addition = instantiate(cfg.editor.addition, _convert_="all")

    reqs = [_request(0, 70, 50), _request(1, 64, 64), _request(2, 50, 70), _request(3, 70, 50)]
    masks = [MaskResult(M.box_to_mask((10, 10, 40, 30), (70, 50))), MaskResult(np.zeros((64, 64), bool)),
             MaskResult(M.box_to_mask((5, 5, 30, 60), (50, 70))), MaskResult(M.box_to_mask((0, 0, 70, 20), (70, 50)))]
    plans = [Plan(Category.LOCAL, "cat", "a red cat")] * 3 + [Plan(Category.LOCAL, "cat", "")]
    out = local.edit_batch(reqs, plans, masks, [1, 2, 3, 4])
    assert len(out) == 4
    for req, res, m in zip(reqs, out, masks, strict=True):
        assert res.image.size == req.image.size and res.image.mode == "RGB" and res.editor == "brushnet"
        src, got = np.asarray(req.image), np.asarray(res.image)
        outside = M.feather(m.mask, 3) == 0
        np.testing.assert_array_equal(got[outside], src[outside])
        if m.mask.any():
            assert np.abs(got[m.mask].astype(int) - src[m.mask]).mean() > 5
    assert out[1].params["note"].startswith("empty mask")
    assert out[3].params["prompt"] == "cat"  # empty target prompt falls back to the object
    assert local.stats()["model_batches"] == 2  # two model resolutions (landscape, portrait)

    # deterministic per sample, whatever the batch
    again = local.edit_batch(reqs[2:3], plans[2:3], masks[2:3], [3])[0]
    assert np.abs(np.asarray(again.image).astype(int) - np.asarray(out[2].image)).max() <= 1

    # the remove_brushnet ablation: an empty removal prompt never falls back to the object
    from iiie.planners.rules_prompts import REMOVE_PROMPT

    removal = local.edit_batch(reqs[:1], [Plan(Category.REMOVE, "cat", "")], masks[:1], [0])[0]
    assert removal.params["prompt"] == REMOVE_PROMPT

    background.edit_batch(reqs[:1], [Plan(Category.BACKGROUND, "cat", "a beach")], masks[:1], [0])
    res = addition.edit_batch(reqs[:1], [Plan(Category.ADDITION, "hat", "a hat")], masks[:1], [0])[0]
    assert res.params["brushnet"] == tiny.RANDOM
    assert weights.LOAD_COUNTS["sd15-base"] == 1  # three routes, one SD1.5 base
    assert weights.LOAD_COUNTS["brushnet"] == 2  # segmentation + random-mask branches
    assert weights.LOAD_COUNTS["brushnet-pipeline"] == 2


def test_missing_weights_name_files_and_config_key(tmp_path, tiny_root):
    from iiie.editors.brushnet import BrushNetEditor

    with pytest.raises(weights.MissingWeightsError, match=r"editor\.<route>\.base_path") as err:
        BrushNetEditor(str(tmp_path / "nope"), str(tiny_root / tiny.SEGMENTATION), device="cpu")
    assert "unet/config.json" in str(err.value) and "realisticVisionV60B1_v51VAE" in str(err.value)
    empty = tmp_path / "empty_ckpt"
    empty.mkdir()
    with pytest.raises(weights.MissingWeightsError, match="diffusion_pytorch_model.safetensors") as err:
        BrushNetEditor(str(tiny_root / tiny.BASE), str(empty), device="cpu")
    assert "brushnet_path" in str(err.value)


def test_config_defaults_point_at_official_folders(make_cfg):
    cfg = make_cfg("editor@editor.local=brushnet", "editor@editor.addition=brushnet_random")
    assert cfg.editor.local.brushnet_path.endswith("brushnet/segmentation_mask_brushnet_ckpt")
    assert cfg.editor.addition.brushnet_path.endswith("brushnet/random_mask_brushnet_ckpt")
    assert cfg.editor.local.base_path.endswith("realisticVisionV60B1_v51VAE")
    assert cfg.editor.local.device == cfg.runtime.device and cfg.editor.local.dtype == cfg.runtime.dtype
