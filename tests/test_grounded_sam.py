"""masker=grounded_sam (both implementations) and masker=vlm_box on tiny random weights.

The weights are written in their real layouts by ``iiie.maskers.tiny`` and loaded by the
same code a user runs (Hydra configs included). Random detectors and SAMs do not find
real objects, so these tests check routing, the box policy, batching, provenance and
failure handling exactly, and leave quality to the real-weight benchmarks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

from iiie import masks as M
from iiie import weights as W
from iiie.errors import SampleError
from iiie.maskers import tiny
from iiie.maskers.detection import QueryScores
from iiie.maskers.grounded_sam import GroundedSamMasker
from iiie.maskers.sam import HFSam, OriginalSam, Segment, to_model_boxes
from iiie.maskers.vlm_box import VlmBoxMasker, plan_boxes
from iiie.protocols import Masker
from iiie.types import Category, EditRequest, Plan
from iiie.weights import MissingWeightsError

pytestmark = pytest.mark.timeout(300)
CONF = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny.ensure(tmp_path_factory.getbasetemp() / "tiny_masker_weights")


def paths(root, impl):
    if impl == "transformers":
        return dict(dino=str(root / "grounding-dino"), sam=str(root / "sam"))
    return dict(dino=str(root / "groundingdino_swint_ogc.pth"), sam=str(root / "sam_vit_h_4b8939.pth"),
                bert=str(root / "bert-base-uncased"))


def from_config(root, name, **over):
    """Instantiate conf/masker/<name>.yaml with the tiny weights, as a run would."""
    impl = "original" if name.endswith("original") else "transformers"
    args = [f"masker={name}", "runtime=cpu"] + [f"masker.{k}={v}" for k, v in {**paths(root, impl), **over}.items()
                                                if not (name == "vlm_box" and k in ("dino", "bert"))]
    with initialize_config_dir(config_dir=CONF, version_base=None):
        cfg = compose("config", overrides=args)
    return instantiate(cfg.masker)


def image(w=120, h=90, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


def requests(n, w=120, h=90):
    return [EditRequest(f"s{i}", image(w, h, i), "edit") for i in range(n)]


def fake_scores(boxes, scores, phrases=None):
    return QueryScores(np.asarray(boxes, float), np.asarray(scores, float), phrases or ["red circle"] * len(scores))


def patch_detector(monkeypatch, masker, per_call):
    """Replace the detector's forward pass by fixed per-(image, phrase) query scores."""
    det = masker.detector()
    monkeypatch.setattr(det, "score_batch", lambda imgs, phrases, min_score=0.0: [per_call(i, p) for i, p in zip(imgs, phrases, strict=True)])


# --- both implementations end to end through the configs ----------------------------------


@pytest.mark.parametrize("name", ["grounded_sam", "grounded_sam_original"])
def test_config_builds_masker_and_routes_every_category(root, name):
    m = from_config(root, name, keep="all")
    assert isinstance(m, Masker) and m.name == "grounded_sam"
    assert m.impl == ("original" if name.endswith("original") else "transformers")
    reqs = requests(5)
    plans = [Plan(Category.LOCAL, "red circle"), Plan(Category.REMOVE, "blue square"), Plan(Category.BACKGROUND, "red circle"),
             Plan(Category.ADDITION, "green star", add_box=(100, 60, 150, 120)), Plan(Category.GLOBAL)]
    out = m.mask_batch(reqs, plans)
    assert len(out) == 5 and all(r.mask.shape == (90, 120) for r in out)
    for r in out[:3]:
        assert r.source.startswith(f"grounded_sam:{m.impl}@0.30:all") and r.boxes and len(r.scores) == len(r.boxes)
        assert all(0 <= b[0] < b[2] <= 120 and 0 <= b[1] < b[3] <= 90 for b in r.boxes)
    assert out[3].boxes == [(100.0, 60.0, 120.0, 90.0)] and out[3].mask.sum() == 20 * 30  # clamped rectangle
    assert out[4].mask.all() and out[4].source == "full-image"
    st = m.stats()
    assert st["global:full"] == 1 and st["addition:rectangle"] == 1
    assert st["local:segmented"] == st["remove:segmented"] == st["background:segmented"] == 1


def test_background_is_complement_of_the_subject_and_detect_is_the_region(root, monkeypatch):
    comp = GroundedSamMasker(**paths(root, "transformers"), device="cpu", keep="best", categories={"background": {"dilate": 0.0}})
    det = GroundedSamMasker(**paths(root, "transformers"), device="cpu", keep="best", background="detect")
    seen = []
    for m in (comp, det):
        patch_detector(monkeypatch, m, lambda im, p: (seen.append(p), fake_scores([[10, 10, 60, 50]], [0.9]))[1])
    req, plan = requests(1), [Plan(Category.BACKGROUND, "red circle")]
    a, b = comp.mask_batch(req, plan)[0], det.mask_batch(req, plan)[0]
    assert seen == ["red circle", "background"]
    region = comp.segmenter().segment_batch([req[0].image], [[(10.0, 10.0, 60.0, 50.0)]])[0][0].mask
    if not region.any():
        region = M.box_to_mask((10, 10, 60, 50), (120, 90))
    assert np.array_equal(a.mask, ~region) and np.array_equal(b.mask, region)


# --- box policy ---------------------------------------------------------------------------


def test_keep_all_unites_the_sam_masks_of_every_kept_box(root, monkeypatch):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", keep="all", categories={"local": {"dilate": 0.0}})
    boxes = [[5, 5, 40, 40], [60, 30, 110, 85], [0, 0, 10, 10]]
    patch_detector(monkeypatch, m, lambda im, p: fake_scores(boxes, [0.6, 0.4, 0.02]))
    req = requests(1)
    r = m.mask_batch(req, [Plan(Category.LOCAL, "red circle")])[0]
    assert r.boxes == [tuple(map(float, b)) for b in boxes[:2]] and r.scores == [0.6, 0.4]
    segs = m.segmenter().segment_batch([req[0].image], [r.boxes])[0]
    want = np.zeros((90, 120), bool)
    for s, b in zip(segs, r.boxes, strict=True):
        want |= s.mask if s.mask.any() else M.box_to_mask(b, (120, 90))
    assert np.array_equal(r.mask, want)


def test_ladder_descends_until_a_box_and_keep_best(root, monkeypatch):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", keep="best", box_thresholds=[0.3, 0.2, 0.1, 0.05])
    patch_detector(monkeypatch, m, lambda im, p: fake_scores([[5, 5, 40, 40], [50, 5, 90, 40]], [0.12, 0.15]))
    r = m.mask_batch(requests(1), [Plan(Category.REMOVE, "red circle")])[0]
    assert r.boxes == [(50.0, 5.0, 90.0, 40.0)] and r.source.endswith("@0.10:best")


def test_keep_phrase_filters_by_detected_phrase(root, monkeypatch):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", keep="phrase")
    patch_detector(monkeypatch, m, lambda im, p: fake_scores([[5, 5, 40, 40], [50, 5, 90, 40]], [0.8, 0.5], ["blue square", "red circle"]))
    r = m.mask_batch(requests(1), [Plan(Category.LOCAL, "red circle")])[0]
    assert r.boxes == [(50.0, 5.0, 90.0, 40.0)] and r.reason is None
    r = m.mask_batch(requests(1), [Plan(Category.LOCAL, "green star")])[0]
    assert r.boxes == [(5.0, 5.0, 40.0, 40.0)] and "green star" in r.reason


@pytest.mark.parametrize("on_empty", ["skip", "box", "full"])
def test_empty_detection_policies_are_applied_and_counted(root, monkeypatch, on_empty):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", on_empty=on_empty, categories={"remove": {"dilate": 0.0}})
    patch_detector(monkeypatch, m, lambda im, p: fake_scores([[5, 5, 40, 40], [50, 5, 90, 40]], [0.01, 0.04]))
    req, plan = requests(1), [Plan(Category.REMOVE, "red circle")]
    if on_empty == "skip":
        with pytest.raises(SampleError, match="no box for 'red circle' above 0.05"):
            m.mask_batch(req, plan)
    else:
        r = m.mask_batch(req, plan)[0]
        assert "no box for 'red circle'" in r.reason
        if on_empty == "box":
            assert r.boxes == [(50.0, 5.0, 90.0, 40.0)] and np.array_equal(r.mask, M.box_to_mask((50, 5, 90, 40), (120, 90)))
        else:
            assert r.mask.all()
    assert m.stats() == {f"empty:{on_empty}": 1}


def test_a_skipped_sample_fails_the_batch_without_double_counting(root, monkeypatch):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", on_empty="skip")
    patch_detector(monkeypatch, m, lambda im, p: fake_scores([[5, 5, 40, 40]], [0.9 if p == "red circle" else 0.0]))
    reqs = requests(2)
    plans = [Plan(Category.LOCAL, "red circle"), Plan(Category.LOCAL, "nothing")]
    with pytest.raises(SampleError):
        m.mask_batch(reqs, plans)
    assert m.stats() == {}  # the runner retries one by one; only those calls count
    m.mask_batch(reqs[:1], plans[:1])
    with pytest.raises(SampleError):
        m.mask_batch(reqs[1:], plans[1:])
    assert m.stats()["local:segmented"] == 1 and m.stats()["empty:skip"] == 1


def test_plan_without_object_is_an_empty_detection(root):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", on_empty="full")
    r = m.mask_batch(requests(1), [Plan(Category.LOCAL, "")])[0]
    assert r.mask.all() and "names no object" in r.reason


def test_sam_empty_mask_falls_back_to_the_box(root, monkeypatch):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", categories={"local": {"dilate": 0.0}})
    patch_detector(monkeypatch, m, lambda im, p: fake_scores([[5, 5, 40, 40]], [0.9]))
    monkeypatch.setattr(m.segmenter(), "segment_batch", lambda imgs, boxes: [[Segment(np.zeros((90, 120), bool), 0.1) for _ in b] for b in boxes])
    r = m.mask_batch(requests(1), [Plan(Category.LOCAL, "red circle")])[0]
    assert np.array_equal(r.mask, M.box_to_mask((5, 5, 40, 40), (120, 90))) and "empty mask" in r.reason
    assert m.stats()["sam:empty_mask_used_box"] == 1


def test_addition_shapes_and_bad_boxes(root):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", add_box_shape="ellipse")
    r = m.mask_batch(requests(1), [Plan(Category.ADDITION, "cat", add_box=(20, 10, 60, 50))])[0]
    assert np.array_equal(r.mask, M.box_to_mask((20, 10, 60, 50), (120, 90), "ellipse"))
    with pytest.raises(SampleError, match="no add_box"):
        m.mask_batch(requests(1), [Plan(Category.ADDITION, "cat")])
    with pytest.raises(SampleError, match="empty after clamping"):
        m.mask_batch(requests(1), [Plan(Category.ADDITION, "cat", add_box=(200, 10, 260, 50))])


def test_invalid_settings_are_rejected(root):
    for bad in (dict(keep="first"), dict(on_empty="ignore"), dict(background="sky"), dict(impl="groundingdino-py"),
                dict(box_thresholds=[])):
        with pytest.raises(ValueError):
            GroundedSamMasker(**{**paths(root, "transformers"), **bad})


# --- batching and loading ------------------------------------------------------------------


def test_hf_sam_embeds_each_image_once_in_one_batch(root, monkeypatch):
    sam = HFSam(str(root / "sam"))
    calls = []
    orig = sam.model.get_image_embeddings
    monkeypatch.setattr(sam.model, "get_image_embeddings", lambda px: (calls.append(px.shape[0]), orig(px))[1])
    out = sam.segment_batch([image(seed=1), image(seed=2), image(seed=3)], [[(1, 1, 30, 30), (40, 40, 90, 80)], [], [(0, 0, 120, 90)]])
    assert calls == [2]  # one forward pass, two images (the one without boxes is skipped)
    assert [len(o) for o in out] == [2, 0, 1]
    assert all(s.mask.shape == (90, 120) and s.mask.dtype == bool for o in out for s in o)


def test_original_sam_embeds_each_image_once(root, monkeypatch):
    sam = OriginalSam(str(root / "sam_vit_h_4b8939.pth"))
    calls = []
    orig = sam.predictor.set_image
    monkeypatch.setattr(sam.predictor, "set_image", lambda arr, *a, **k: (calls.append(arr.shape), orig(arr, *a, **k))[1])
    out = sam.segment_batch([image(seed=1), image(seed=2)], [[(1, 1, 30, 30), (40, 40, 90, 80), (0, 0, 5, 5)], [(0, 0, 120, 90)]])
    assert calls == [(90, 120, 3), (90, 120, 3)]
    assert [len(o) for o in out] == [3, 1] and all(s.mask.shape == (90, 120) for o in out for s in o)


def test_multimask_choice_is_by_predicted_iou():
    from iiie.maskers.sam import choose_by_iou

    cands = np.zeros((2, 3, 4, 4), bool)
    for j in range(3):
        cands[:, j, : j + 1] = True
    out = choose_by_iou(cands, np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.7]]))
    assert [s.mask.sum() for s in out] == [8, 4] and [s.score for s in out] == [0.9, 0.8]


def test_box_coordinates_round_trip_to_sam_resolution(root):
    from segment_anything.utils.transforms import ResizeLongestSide
    from transformers import SamProcessor

    proc = SamProcessor.from_pretrained(root / "sam")
    box = [10.0, 20.0, 50.0, 60.0]
    enc = proc(images=image(100, 80), input_boxes=[[box]], return_tensors="pt")
    # tiny SAM runs at a 64 px long side: 100x80 -> 64x51; boxes scale per axis
    assert enc["reshaped_input_sizes"].tolist() == [[51, 64]]
    sx, sy = 64 / 100, 51 / 80
    back = enc["input_boxes"][0, 0].double() / torch.tensor([sx, sy, sx, sy], dtype=torch.float64)
    torch.testing.assert_close(back, torch.tensor(box, dtype=torch.float64), rtol=0, atol=1e-4)
    # the masker's own conversion (no second preprocessing of the image) equals the processor's
    mine = to_model_boxes([box], enc["original_sizes"][0].tolist(), enc["reshaped_input_sizes"][0].tolist())
    torch.testing.assert_close(mine[0, 0].double(), enc["input_boxes"][0, 0].double(), rtol=0, atol=1e-4)
    t = ResizeLongestSide(64).apply_boxes(np.array([box]), (80, 100))
    assert np.allclose(t[0] / [sx, sy, sx, sy], box, atol=1e-4)


def test_models_load_once_per_process(root, monkeypatch):
    W.clear_loaded()
    a = GroundedSamMasker(**paths(root, "transformers"), device="cpu")
    b = GroundedSamMasker(**paths(root, "transformers"), device="cpu", keep="best")
    for m in (a, b):
        m.mask_batch(requests(1), [Plan(Category.LOCAL, "red circle")])
    assert a.detector().model is b.detector().model and a.segmenter().model is b.segmenter().model
    assert W.LOAD_COUNTS == {"grounding_dino": 1, "sam": 1}


def test_detector_batches_same_size_pairs_and_returns_original_pixels(root):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", detect_batch_size=2)
    det = m.detector()
    calls = []
    orig = det.model.forward
    det.model.forward = lambda **kw: (calls.append(tuple(kw["pixel_values"].shape)), orig(**kw))[1]
    imgs = [image(120, 90, 1), image(60, 100, 2), image(120, 90, 3), image(120, 90, 4)]
    caps = ["red circle", "blue square . green star", "cat", "the dog"]
    out = det.score_batch(imgs, caps)
    # same-size images share a pass (2 per pass); the odd size runs alone, without padding
    assert [c[0] for c in calls] == [2, 1, 1] and calls[1][2:] == calls[0][2:] and len(out) == 4
    for q in out:
        assert q.boxes.shape == (12, 4) and q.scores.shape == (12,) and (q.boxes[:, 2] >= q.boxes[:, 0]).all()
    # batching (with caption padding) gives the same answer as one pair at a time, in input order
    for i in range(4):
        alone = det.score_batch(imgs[i : i + 1], caps[i : i + 1])[0]
        np.testing.assert_allclose(alone.scores, out[i].scores, atol=1e-5)
        np.testing.assert_allclose(alone.boxes, out[i].boxes, atol=1e-3)


def test_detector_boxes_are_in_original_pixels(root):
    """pred_boxes are relative to the unpadded input, so scaling by the original size inverts the resize."""
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu")
    det = m.detector()
    captured = {}
    orig = det.model.forward
    det.model.forward = lambda **kw: captured.setdefault("out", orig(**kw))
    q = det.score_batch([image(150, 90, 5)], ["red circle"])[0]
    rel = captured["out"].pred_boxes[0].detach().numpy()
    cx, cy, w, h = rel.T
    np.testing.assert_allclose(q.boxes, np.stack([(cx - w / 2) * 150, (cy - h / 2) * 90, (cx + w / 2) * 150, (cy + h / 2) * 90], 1),
                               rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("impl,key", [("transformers", "masker.dino"), ("original", "masker.dino")])
def test_missing_detector_weights_name_the_key(root, tmp_path, impl, key):
    p = {**paths(root, impl), "dino": str(tmp_path / "missing")}
    m = GroundedSamMasker(impl=impl, **p, device="cpu")
    with pytest.raises(MissingWeightsError, match=key):
        m.mask_batch(requests(1), [Plan(Category.LOCAL, "red circle")])


@pytest.mark.parametrize("impl", ["transformers", "original"])
def test_missing_sam_weights_name_the_key(root, tmp_path, impl):
    """vlm_box checks SAM when it is built, before any stage work."""
    with pytest.raises(MissingWeightsError, match="masker.sam"):
        VlmBoxMasker(impl=impl, sam=str(tmp_path / "missing"), device="cpu")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match="masker.sam.*model.safetensors"):
        VlmBoxMasker(impl="transformers", sam=str(tmp_path / "half"), device="cpu")


def test_missing_bert_folder_names_the_key(root, tmp_path):
    m = GroundedSamMasker(impl="original", **{**paths(root, "original"), "bert": str(tmp_path / "bert")}, device="cpu")
    with pytest.raises(MissingWeightsError, match="masker.bert"):
        m.mask_batch(requests(1), [Plan(Category.LOCAL, "red circle")])


# --- vlm_box ------------------------------------------------------------------------------


#: plan.raw of a VLM plan whose model gave no usable box (grounding on).
VLM_NO_BOX = {"planner": "vlm", "model": "m", "ground_objects": True, "object_box": None,
              "object_box_reason": "box_not_found"}


def test_plan_boxes_contract():
    assert plan_boxes(Plan(Category.LOCAL, "x", raw={"object_box": [1, 2, 3, 4]})) == ([(1.0, 2.0, 3.0, 4.0)], None)
    assert plan_boxes(Plan(Category.LOCAL, "x", raw={"object_box": [[1, 2, 3, 4], [5, 6, 7, 8]]}))[0][1] == (5.0, 6.0, 7.0, 8.0)
    assert "missing" in plan_boxes(Plan(Category.LOCAL, "x", raw="a reply"))[1]
    assert "[x0, y0, x1, y1]" in plan_boxes(Plan(Category.LOCAL, "x", raw={"object_box": [1, 2, 3]}))[1]


@pytest.mark.parametrize("impl", ["transformers", "original"])
def test_vlm_box_uses_the_plan_box_then_sam(root, impl):
    name = "vlm_box"
    m = from_config(root, name, impl=impl, sam=paths(root, impl)["sam"], on_empty="full")
    assert m.name == "vlm_box"
    plans = [Plan(Category.REMOVE, "red circle", raw={"object_box": [10, 10, 200, 50]}),
             Plan(Category.BACKGROUND, "dog", raw={"object_box": [[0, 0, 30, 30], [60, 40, 100, 80]]}),
             Plan(Category.LOCAL, "cat", raw=VLM_NO_BOX),
             Plan(Category.ADDITION, "cat", add_box=(0, 0, 30, 30)),
             Plan(Category.GLOBAL)]
    out = m.mask_batch(requests(5), plans)
    assert out[0].boxes == [(10.0, 10.0, 120.0, 50.0)] and out[0].source == f"vlm_box:{impl}:vlm"
    assert len(out[1].boxes) == 2
    assert out[2].mask.all() and "object_box" in out[2].reason
    assert out[3].mask.sum() == 900 and out[4].mask.all()
    assert m.stats()["empty:full"] == 1


def test_vlm_box_skips_without_a_box(root):
    m = VlmBoxMasker(sam=str(root / "sam"), device="cpu")
    with pytest.raises(SampleError, match="object_box"):
        m.mask_batch(requests(1), [Plan(Category.LOCAL, "cat", raw=VLM_NO_BOX)])
    fallback = {"vlm": {**VLM_NO_BOX, "failure": "schema"}, "fallback": {"field": "plan"}}
    with pytest.raises(SampleError, match="object_box"):  # VLM fell back to its backup planner
        m.mask_batch(requests(1), [Plan(Category.LOCAL, "cat", raw=fallback)])


@pytest.mark.parametrize("raw,why", [
    ({"planner": "rules", "cues": []}, "planner 'rules'"),
    (None, "without VLM provenance"),
    ({**VLM_NO_BOX, "ground_objects": False, "object_box_reason": "disabled"}, "ground_objects=false"),
])
def test_vlm_box_with_a_non_grounding_planner_is_a_config_error(root, raw, why):
    """Plans that can never carry a box stop the run (a fatal error, not one per sample)."""
    from iiie.errors import IIIEError, IncompatibleComponentsError
    from iiie.pipeline.runner import FATAL

    m = VlmBoxMasker(sam=str(root / "sam"), device="cpu", on_empty="full")
    with pytest.raises(IncompatibleComponentsError, match="planner=vlm with planner.ground_objects=true") as info:
        m.mask_batch(requests(2), [Plan(Category.GLOBAL), Plan(Category.REMOVE, "cat", raw=raw)])
    assert why in str(info.value) and not isinstance(info.value, SampleError)
    assert isinstance(info.value, IIIEError) and isinstance(info.value, FATAL)
    # global/addition plans need no box: any planner is fine there
    assert m.mask_batch(requests(1), [Plan(Category.GLOBAL, raw=raw)])[0].mask.all()


def test_unnamed_background_subject_uses_the_configured_phrase(root, monkeypatch):
    m = GroundedSamMasker(**paths(root, "transformers"), device="cpu", unnamed_subject="main object", on_empty="full")
    seen = []
    patch_detector(monkeypatch, m, lambda im, p: (seen.append(p), fake_scores([[10, 10, 60, 50]], [0.9]))[1])
    r = m.mask_batch(requests(1), [Plan(Category.BACKGROUND, "")])[0]
    assert seen == ["main object"] and r.boxes == [(10.0, 10.0, 60.0, 50.0)]
    plain = GroundedSamMasker(**paths(root, "transformers"), device="cpu", on_empty="full")
    r = plain.mask_batch(requests(1), [Plan(Category.BACKGROUND, "")])[0]
    assert r.mask.all() and "names no object" in r.reason
