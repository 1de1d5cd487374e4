"""`make reproduce EXPERIMENT=tiny`: the real diffusion editors on generated tiny weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iiie.masks import feather
from iiie.pipeline import records as R
from iiie.pipeline.runner import Runner
from iiie.run import execute

EXPECTED_EDITOR = {
    "local": "brushnet",
    "background": "brushnet",
    "addition": "brushnet",
    "remove": "powerpaint",
    "global": "infedit",
}


@pytest.mark.slow
def test_tiny_profile_routes_every_category_to_its_diffusion_editor(make_cfg, tmp_path):
    cfg = make_cfg("experiment=tiny", "data.n=5")
    table = execute(cfg)
    assert table[-1]["failed"] == 0 and table[-1]["n"] == 5
    # the weights were generated in the official layouts under paths.cache
    tiny = tmp_path / "cache" / "tiny"
    assert (tiny / "brushnet" / "segmentation_mask_brushnet_ckpt" / "diffusion_pytorch_model.safetensors").exists()
    assert (tiny / "PowerPaint_v2" / "PowerPaint_Brushnet" / "config.json").exists()
    assert (tiny / "LCM_Dreamshaper_v7" / "unet").is_dir()

    runner = Runner(cfg, show_progress=False)
    for sid in runner.ids:
        plan = runner.plan_of(sid)
        edit_dir = runner.stage_dir("edit", plan.category)
        record = json.loads(edit_dir.record(sid).read_text())
        assert EXPECTED_EDITOR[plan.category.value] in record["editor"].lower(), record["editor"]
        edit = R.load_edit(edit_dir, sid)
        src = runner.sample(sid).request.image
        assert edit.image.size == src.size
        mask = R.load_mask(runner.stage_dir("mask"), sid)
        untouched = feather(mask.mask, int(cfg.editor[plan.category.value].get("blur", 0))) == 0
        assert (np.asarray(edit.image)[untouched] == np.asarray(src)[untouched]).all()
        assert (np.asarray(edit.image)[mask.mask] != np.asarray(src)[mask.mask]).any()


@pytest.mark.slow
@pytest.mark.parametrize("override", ["editor@editor.remove=classical_inpaint", "editor@editor.global=tiny/instructpix2pix"])
def test_step4_ablations_swap_routes_on_the_tiny_profile(make_cfg, override):
    table = execute(make_cfg("experiment=tiny", "data.n=5", override))
    assert table[-1]["n"] == 5 and table[-1]["failed"] == 0
