"""The whole mask stage on the generated benchmark with masker=grounded_sam.

The detector's forward pass is replaced by oracle queries (the annotated object's box at
score 0.35, a distractor at 0.02), so the real box policy (ladder, keep), the real SAM
(tiny random weights, both implementations), the category routing and the stage's
records all run end to end through ``Runner.run_plan`` + ``Runner.run_mask``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from iiie import masks as M
from iiie.data.synthetic import SyntheticDataset
from iiie.maskers import tiny
from iiie.maskers.detection import GroundingDinoDetector, QueryScores
from iiie.maskers.oracle import OracleMasker
from iiie.pipeline import records as R
from iiie.pipeline.runner import Runner
from iiie.types import Category

pytestmark = pytest.mark.timeout(600)
N = 10


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny.ensure(tmp_path_factory.getbasetemp() / "tiny_masker_weights")


def _key(image) -> str:
    return hashlib.sha1(image.convert("RGB").tobytes()).hexdigest()


@pytest.fixture
def oracle_detector(monkeypatch):
    """Answer every (image, phrase) with the annotated object's box, looked up like the oracle masker."""
    data = SyntheticDataset(n=N, seed=0, width=160, height=128, max_objects=3)
    by_image = {_key(s.request.image): s.request for s in (data.load(i) for i in data.ids())}
    lookup = OracleMasker().lookup
    calls = []

    def score_batch(self, images, phrases, min_score=0.0):
        out = []
        for im, phrase in zip(images, phrases, strict=True):
            calls.append(phrase)
            region, _ = lookup(by_image[_key(im)], phrase)
            boxes, scores = [[0, 0, 8, 8]], [0.02]
            if region is not None:
                boxes.insert(0, list(M.mask_to_box(region)))
                scores.insert(0, 0.35)
            out.append(QueryScores(np.array(boxes, float), np.array(scores), [phrase] + [""] * (len(scores) - 1)))
        return out

    monkeypatch.setattr(GroundingDinoDetector, "score_batch", score_batch)
    return calls


@pytest.mark.parametrize("masker", ["grounded_sam", "grounded_sam_original"])
def test_mask_stage_runs_end_to_end_with_oracle_boxes(make_cfg, root, oracle_detector, masker):
    impl_paths = (
        [f"masker.dino={root / 'grounding-dino'}", f"masker.sam={root / 'sam'}"]
        if masker == "grounded_sam"
        else [f"masker.dino={root / 'groundingdino_swint_ogc.pth'}", f"masker.sam={root / 'sam_vit_h_4b8939.pth'}",
              f"masker.bert={root / 'bert-base-uncased'}"]
    )
    cfg = make_cfg("data=synthetic", f"data.n={N}", "data.odd_inputs=false", "data.width=160", "data.height=128",
                   "planner=rules", f"masker={masker}", "masker.on_empty=full", *impl_paths)
    runner = Runner(cfg, show_progress=False)
    runner.run_stage("plan")
    runner.run_stage("mask")
    d = runner.stage_dir("mask")
    counters = runner.counters["mask"]
    assert counters.computed + counters.errors + counters.skipped_upstream == N and counters.computed > 0
    checked = {c: 0 for c in Category}
    matched = 0
    for sid in runner.ids:
        if not d.is_done(sid):
            continue
        sample, plan, result = runner.sample(sid), runner.plan_of(sid), R.load_mask(d, sid)
        w, h = sample.request.size
        assert result.mask.shape == (h, w)
        cat = plan.category
        if cat is Category.GLOBAL:
            assert result.mask.all()
        elif cat is Category.ADDITION and plan.add_box is not None:
            assert result.boxes == [M.clamp_box(plan.add_box, (w, h))]
        elif cat in (Category.LOCAL, Category.REMOVE, Category.BACKGROUND):
            region, _ = OracleMasker().lookup(sample.request, plan.object)
            if region is not None:  # the planner named an annotated object: SAM ran on its oracle box
                assert result.boxes == [M.mask_to_box(region)] and result.scores == [0.35]
                assert result.source.endswith("@0.30:all") and result.reason is None
                matched += 1
            else:
                assert result.reason and "fell back to the full image" in result.reason and result.mask.all()
        checked[cat] += 1
    assert sum(checked.values()) == counters.computed
    assert matched >= 3  # the SAM path ran on oracle boxes for several samples
    segmented = sum(v for k, v in counters.backend.items() if k.endswith(":segmented"))
    assert segmented > 0 and len(oracle_detector) >= segmented  # detector asked once per object sample
    assert counters.backend.get("global:full", 0) == checked[Category.GLOBAL]
