"""End-to-end methods: ``planner=none`` / ``masker=none`` (no model calls, ground-truth
categories) and the MagicBrush editor on tiny random weights in the instruct-pix2pix layout."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from iiie import weights
from iiie.data.base import GroundTruth
from iiie.editors.instructpix2pix import InstructPix2PixEditor
from iiie.maskers.none import NoneMasker
from iiie.planners.none import NonePlanner
from iiie.types import Category, EditRequest, Plan


def _req(w=40, h=30, text="make it winter", seed=0):
    rng = np.random.default_rng(seed)
    return EditRequest("s", Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), text)


@dataclass
class _Sample:
    request: EditRequest
    truth: GroundTruth = field(default_factory=GroundTruth)


def test_none_planner_uses_ground_truth_and_calls_no_model():
    p = NonePlanner()
    assert p.calls_model is False
    plans = p.plan_samples([_Sample(_req(), GroundTruth(category=Category.REMOVE)), _Sample(_req(text="x"))])
    assert [x.category for x in plans] == [Category.REMOVE, Category.GLOBAL]
    assert plans[0].target_prompt == "make it winter" and plans[0].object == ""
    assert p.stats() == {"truth": 1, "default": 1}
    assert NonePlanner("local").plan(_req()).category is Category.LOCAL
    with pytest.raises(ValueError, match="unknown edit category"):
        NonePlanner("nonsense")


def test_none_masker_is_the_whole_image():
    m = NoneMasker()
    assert m.calls_model is False
    out = m.mask(_req(40, 30), Plan(Category.LOCAL, object="cat"))
    assert out.mask.shape == (30, 40) and out.mask.all()


def test_pipeline_counts_zero_planner_and_masker_calls(make_cfg):
    from iiie.pipeline.runner import Runner

    cfg = make_cfg("data=synthetic", "data.n=5", "data.odd_inputs=false", "planner=none", "masker=none",
                   "editor@editor.local=classical_color", "editor@editor.remove=classical_inpaint",
                   "editor@editor.background=classical_color", "editor@editor.addition=classical_inpaint",
                   "editor@editor.global=classical_filter")
    runner = Runner(cfg)
    manifest = runner.run()
    stages = manifest["stages"]
    assert stages["plan"]["model_calls"] == 0 and stages["mask"]["model_calls"] == 0
    rows = [(runner.sample_status(sid), runner.sample(sid).truth.category) for sid in runner.ids]
    assert len(rows) == 5 and len({t for _, t in rows}) == 5  # one sample per category
    for row, truth in rows:
        assert row["plan_category"] == row["category"] == truth.value


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from iiie.tiny_weights import magicbrush

    root = tmp_path_factory.mktemp("tiny_mb")
    magicbrush.ensure(root)
    return root


def test_magicbrush_tiny_layout_and_edit(make_cfg, tiny_root):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(tiny_root / "magicbrush", safety_checker=None)
    assert pipe.unet.config.in_channels == 8
    cfg = make_cfg("editor@editor.global=tiny/magicbrush", f"paths.cache={tiny_root.parent}")
    assert cfg.editor["global"].model_path.endswith("tiny/magicbrush")
    weights.clear_loaded()
    editor = instantiate(cfg.editor["global"], model_path=str(tiny_root / "magicbrush"), steps=2, device="cpu")
    assert isinstance(editor, InstructPix2PixEditor)
    req = _req(50, 34)
    plan = Plan(Category.GLOBAL)
    mask = NoneMasker().mask(req, plan)
    a, b = editor.edit(req, plan, mask, 0), editor.edit(req, plan, mask, 0)
    assert a.image.size == (50, 34) and a.image.mode == "RGB"
    # the wrapper class is InstructPix2Pix's, but records, load label and counter say magicbrush
    assert a.editor == "magicbrush" and editor.stats()["loads"] == {"magicbrush": 1}
    assert "instructpix2pix" not in weights.LOAD_COUNTS
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert not np.array_equal(np.asarray(editor.edit(req, plan, mask, 1).image), np.asarray(a.image))


@pytest.mark.parametrize("method", ["magicbrush", "tiny/magicbrush", "instructpix2pix", "tiny/instructpix2pix"])
def test_method_composes(make_cfg, method):
    cfg = make_cfg(f"method={method}")
    assert cfg.planner._target_.endswith("NonePlanner") and cfg.masker._target_.endswith("NoneMasker")
    assert cfg.method_name == method.split("/")[-1]


def test_ledits_pp_concepts_and_tiny_edit(tmp_path, make_cfg):
    from iiie.editors.ledits_pp import LEditsPPEditor, edit_concept
    from iiie.tiny_weights import ledits_pp

    assert edit_concept(Plan(Category.REMOVE, object="cat"), "remove the cat") == ("cat", True)
    assert edit_concept(Plan(Category.LOCAL, object="cat", target_prompt="a dog"), "x") == ("a dog", False)
    assert edit_concept(Plan(Category.GLOBAL), "make it winter") == ("make it winter", False)
    folder = ledits_pp.ensure(tmp_path)
    cfg = make_cfg("editor@editor.global=tiny/ledits_pp")
    assert cfg.editor["global"].model_path.endswith("tiny/stable-diffusion-v1-5")
    editor = LEditsPPEditor(str(folder), steps=3, resolution=128, device="cpu")
    req, plan = _req(56, 40, "remove the cat"), Plan(Category.REMOVE, object="cat")
    mask = NoneMasker().mask(req, plan)
    a, b = editor.edit(req, plan, mask, 0), editor.edit(req, plan, mask, 0)
    assert a.image.size == (56, 40) and a.params["reverse"] is True
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert not np.array_equal(np.asarray(editor.edit(req, plan, mask, 1).image), np.asarray(a.image))


def test_ledits_pp_method_composes(make_cfg):
    cfg = make_cfg("method=ledits_pp")
    assert cfg.masker._target_.endswith("NoneMasker") and cfg.editor["remove"]._target_.endswith("LEditsPPEditor")
