"""masker=sam3 (SAM 3 alone) and masker=grounded_sam2 (Grounding DINO + SAM 2) on tiny
random weights built here in their official layouts (iiie.tiny_weights.sam3 / .sam2).

Random weights find nothing real, so these check the contract: a mask of the image's size,
the background complement, the shared routing and provenance, agreement with transformers'
own post-processing, and clear errors for missing folders.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compose_config
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image

from iiie import masks as M
from iiie.maskers import tiny as tiny_gsam
from iiie.maskers.detection import QueryScores
from iiie.maskers.sam2 import HFSam2
from iiie.maskers.sam3 import Sam3Masker
from iiie.protocols import Masker
from iiie.tiny_weights import sam2 as tiny_sam2
from iiie.tiny_weights import sam3 as tiny_sam3
from iiie.types import Category, EditRequest, Plan
from iiie.weights import MissingWeightsError

pytestmark = pytest.mark.timeout(300)
NO_DILATE = "{local: {dilate: 0.0}, background: {dilate: 0.0}}"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny_2026_maskers")
    return {"sam3": tiny_sam3.ensure(base), "sam2": tiny_sam2.ensure(base), "gsam": tiny_gsam.ensure(base)}


def requests(n, w=120, h=90):
    rng = np.random.default_rng(0)
    return [EditRequest(f"s{i}", Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), "edit") for i in range(n)]


def masker(name, *over):
    cfg = compose_config([f"masker={name}", "runtime=cpu", *over])
    return instantiate(cfg.masker)


# --- the tiny writers -----------------------------------------------------------------


def test_tiny_writers_are_idempotent_and_use_the_official_file_names(root, tmp_path):
    files = {p.name for p in root["sam3"].iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "vocab.json", "merges.txt"} <= files
    assert {"config.json", "model.safetensors", "processor_config.json"} <= {p.name for p in root["sam2"].iterdir()}
    stamp = (root["sam3"] / "model.safetensors").stat().st_mtime_ns
    assert tiny_sam3.ensure(root["sam3"].parent) == root["sam3"]  # second call: no rewrite
    assert (root["sam3"] / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in root["sam3"].parent.iterdir() if p.name.startswith(".sam3.")]  # no temp folder left


# --- masker=sam3 ----------------------------------------------------------------------


def test_sam3_local_mask_has_the_image_size_and_background_is_its_complement(root):
    m = masker("tiny/sam3", f"masker.model_path={root['sam3']}", f"masker.categories={NO_DILATE}")
    assert isinstance(m, Sam3Masker) and isinstance(m, Masker)
    reqs = requests(2)
    local, background = m.mask_batch(reqs, [Plan(Category.LOCAL, "red circle"), Plan(Category.BACKGROUND, "red circle")])
    again = m.mask_batch(reqs[:1], [Plan(Category.BACKGROUND, "red circle")])[0]
    assert local.mask.shape == background.mask.shape == (90, 120) and local.mask.dtype == bool
    assert local.source.startswith("sam3:") and local.boxes and len(local.scores) == len(local.boxes)
    assert all(0 <= b[0] < b[2] <= 120 and 0 <= b[1] < b[3] <= 90 for b in local.boxes)
    assert 0 < local.mask.sum() < local.mask.size  # a region, not the whole image
    assert np.array_equal(again.mask, ~local.mask)  # same image and phrase: the complement
    st = m.stats()
    assert st["local:segmented"] == 1 and st["background:segmented"] == 2


def test_sam3_mask_is_the_union_of_transformers_post_processed_instances(root):
    import torch
    from transformers import Sam3Model, Sam3Processor

    m = Sam3Masker(model_path=str(root["sam3"]), device="cpu", score_thresholds=[0.0], keep="all",
                   categories={"local": {"dilate": 0.0}})
    req = requests(1)[0]
    got = m.mask(req, Plan(Category.LOCAL, "blue square"))
    model, proc = Sam3Model.from_pretrained(root["sam3"]).eval(), Sam3Processor.from_pretrained(root["sam3"])
    with torch.no_grad():
        out = model(**{k: v for k, v in proc(images=[req.image], text=["blue square"], return_tensors="pt").items()
                       if k != "original_sizes"})
    ref = proc.post_process_instance_segmentation(out, threshold=0.0, target_sizes=[(90, 120)])[0]
    union = np.zeros((90, 120), bool)
    for mask, box in zip(ref["masks"].numpy().astype(bool), ref["boxes"].tolist(), strict=True):
        union |= mask if mask.any() else M.box_to_mask(M.clamp_box(tuple(box), (120, 90)), (120, 90))
    assert len(got.boxes) == len(ref["scores"]) == 8  # every tiny query scores above 0
    assert sorted(got.scores) == pytest.approx(sorted(ref["scores"].tolist()))
    assert np.array_equal(got.mask, union)
    best = Sam3Masker(model_path=str(root["sam3"]), device="cpu", score_thresholds=[0.0], keep="best").mask(
        req, Plan(Category.LOCAL, "blue square"))
    assert len(best.boxes) == 1 and best.scores[0] == pytest.approx(float(ref["scores"].max()))


def test_sam3_empty_policy_skip_and_full(root):
    from iiie.errors import SampleError

    plan = Plan(Category.LOCAL, "red circle")
    skip = Sam3Masker(model_path=str(root["sam3"]), device="cpu", score_thresholds=[0.99], on_empty="skip")
    with pytest.raises(SampleError, match="no SAM 3 instance of 'red circle' above 0.99"):
        skip.mask(requests(1)[0], plan)
    full = Sam3Masker(model_path=str(root["sam3"]), device="cpu", score_thresholds=[0.99], on_empty="full").mask(requests(1)[0], plan)
    assert full.mask.all() and "fell back to the full image" in full.reason


def test_sam3_on_empty_box_uses_the_best_query_below_the_floor(root):
    import torch
    from transformers import Sam3Model, Sam3Processor

    req = requests(1)[0]
    model, proc = Sam3Model.from_pretrained(root["sam3"]).eval(), Sam3Processor.from_pretrained(root["sam3"])
    with torch.no_grad():
        out = model(**{k: v for k, v in proc(images=[req.image], text=["red circle"], return_tensors="pt").items()
                       if k != "original_sizes"})
    scores = out.pred_logits.sigmoid()[0] * out.presence_logits.sigmoid()[0]
    expected = M.clamp_box(tuple((out.pred_boxes[0, int(scores.argmax())] * torch.tensor([120, 90, 120, 90])).tolist()), (120, 90))
    got = Sam3Masker(model_path=str(root["sam3"]), device="cpu", score_thresholds=[0.99], on_empty="box",
                     categories={"local": {"dilate": 0.0}}).mask(req, Plan(Category.LOCAL, "red circle"))
    assert not M.box_is_degenerate(expected)  # seeded tiny weights: the top query has a real box
    assert got.source == "sam3:fallback-box" and got.boxes == [pytest.approx(expected)]
    assert np.array_equal(got.mask, M.box_to_mask(expected, (120, 90)))


def test_sam3_missing_folder_and_bad_options_are_clear_errors(tmp_path):
    m = Sam3Masker(model_path=str(tmp_path / "nope"), device="cpu")
    with pytest.raises(MissingWeightsError, match=r"masker\.model_path.*facebook/sam3"):
        m.mask(requests(1)[0], Plan(Category.LOCAL, "red circle"))
    assert m.mask(requests(1)[0], Plan(Category.GLOBAL)).mask.all()  # no model needed for global
    with pytest.raises(ValueError, match="keep"):
        Sam3Masker(model_path="x", keep="phrase")
    with pytest.raises(ValueError, match="score_thresholds"):
        Sam3Masker(model_path="x", score_thresholds=[])


def test_sam3_batches_named_phrases_and_never_sends_a_phrase_less_sample(monkeypatch):
    """The shared find_boxes (BoxSamMasker) notes the phrase-less sample; the rest go to
    SAM 3 in ``batch_size`` chunks, in order (no model is loaded: the forward is recorded)."""
    from iiie.maskers.segmenting import BoxFinding

    m = Sam3Masker(model_path="unused", device="cpu", batch_size=2, on_empty="full")
    calls = []
    monkeypatch.setattr(m, "_forward", lambda reqs, phrases: (calls.append(list(phrases)),
                                                               [BoxFinding(note=f"saw {p}") for p in phrases])[1])
    plans = [Plan(Category.LOCAL, "a"), Plan(Category.LOCAL, ""), Plan(Category.REMOVE, "b"), Plan(Category.LOCAL, "c")]
    out = m.mask_batch(requests(4), plans)
    assert calls == [["a", "b"], ["c"]]
    assert [r.reason.split(";")[0] for r in out] == ["saw a", "the plan names no object to find for category 'local'",
                                                     "saw b", "saw c"]


@pytest.mark.parametrize("name,folder,key", [("sam3", "sam3", "masker.model_path"),
                                              ("grounded_sam2", "sam2.1-hiera-large", "masker.sam")])
def test_a_missing_2026_masker_folder_stops_the_run_before_any_stage(tmp_path, name, folder, key):
    """The maskers load lazily (a global-only batch needs no model), so the early failure is
    the run's preflight (iiie.run calls it before building the Runner), naming the key."""
    from iiie.weights.needs import preflight

    with pytest.raises(MissingWeightsError) as err:
        preflight(compose_config([f"paths.weights={tmp_path}", f"masker={name}", "runtime=cpu"]))
    assert f"{tmp_path / folder}" in str(err.value) and f"from `{key}`" in str(err.value)


# --- masker=grounded_sam2 -------------------------------------------------------------


def gsam2(root, *over):
    m = masker("tiny/grounded_sam2", f"masker.dino={root['gsam'] / 'grounding-dino'}", f"masker.sam={root['sam2']}",
               f"masker.categories={NO_DILATE}", *over)
    return m


def test_grounded_sam2_segments_detector_boxes_with_sam2(root, monkeypatch):
    m = gsam2(root)
    assert m.segmenter_kind == "sam2" and isinstance(m.segmenter(), HFSam2)
    box = [10.0, 10.0, 60.0, 50.0]
    monkeypatch.setattr(m.detector(), "score_batch", lambda imgs, phrases, min_score=0.0: [
        QueryScores(np.array([box]), np.array([0.9]), [p]) for p in phrases])
    reqs = requests(2)
    local, bg = m.mask_batch([reqs[0], reqs[0]], [Plan(Category.LOCAL, "red circle"), Plan(Category.BACKGROUND, "red circle")])
    assert local.mask.shape == (90, 120) and local.boxes == [tuple(box)]
    assert local.source == "grounded_sam:transformers+sam2@0.30:all"
    seg = m.segmenter().segment_batch([reqs[0].image], [[tuple(box)]])[0][0]
    region = seg.mask if seg.mask.any() else M.box_to_mask(tuple(box), (120, 90))
    assert np.array_equal(local.mask, region) and np.array_equal(bg.mask, ~region)


def test_grounded_sam2_missing_folder_and_default_segmenter(root, tmp_path):
    m = gsam2(root, f"masker.sam={tmp_path / 'no_sam2'}")
    with pytest.raises(MissingWeightsError, match=r"masker\.sam.*sam2\.1-hiera-large"):
        m.segmenter()
    assert masker("grounded_sam").segmenter_kind == "sam"  # the paper's SAM stays the default
    with pytest.raises(InstantiationException, match="masker.segmenter must be 'sam' or 'sam2'"):
        masker("grounded_sam", "+masker.segmenter=sam3")


def test_build_segmenter_is_the_one_place_sam2_is_chosen(root):
    import torch

    from iiie.maskers.sam import build_segmenter

    seg = build_segmenter("original", str(root["sam2"]), "cpu", torch.float32, "masker.sam", kind="sam2")
    assert isinstance(seg, HFSam2)  # SAM 2 is transformers-only, whatever impl the detector uses
    with pytest.raises(ValueError, match="masker.segmenter must be 'sam' or 'sam2'"):
        build_segmenter("transformers", str(root["sam2"]), "cpu", torch.float32, "masker.sam", kind="sam3")


# --- a composed run -------------------------------------------------------------------


def test_runner_with_masker_tiny_sam3_on_three_synthetic_samples(make_cfg):
    from iiie.pipeline.runner import Runner
    from iiie.run import run_prepare

    cfg = make_cfg("data=synthetic", "data.n=3", "data.odd_inputs=false", "planner=rules", "masker=tiny/sam3",
                   "prepare=[{_target_: iiie.tiny_weights.sam3.ensure, root: '${paths.cache}/tiny'}]",
                   "editor@editor.local=classical_color", "editor@editor.remove=classical_inpaint",
                   "editor@editor.background=classical_color", "editor@editor.addition=classical_inpaint",
                   "editor@editor.global=classical_filter")
    run_prepare(cfg)
    runner = Runner(cfg, show_progress=False)
    manifest = runner.run()
    counters = runner.counters["mask"]
    assert counters.computed == 3 and counters.errors == 0
    assert manifest["stages"]["mask"]["model_calls"] > 0
    d = runner.stage_dir("mask")
    from iiie.pipeline import records as R

    cats = set()
    for sid in runner.ids:
        w, h = runner.sample(sid).request.size
        result = R.load_mask(d, sid)
        assert result.mask.shape == (h, w)
        cat = runner.plan_of(sid).category
        cats.add(cat)
        if cat in (Category.LOCAL, Category.REMOVE, Category.BACKGROUND):
            assert result.source.startswith("sam3:"), result.source  # SAM 3 itself, or its on_empty fallback
    assert len(cats) == 3 and cats & {Category.LOCAL, Category.REMOVE, Category.BACKGROUND}
