"""The oracle masker: phrase lookup, per-category policy, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iiie import masks as M
from iiie.errors import SampleError
from iiie.maskers.oracle import OracleMasker, normalise_phrase
from iiie.types import Category, EditRequest, Plan


@pytest.fixture
def request_with_objects():
    size = (80, 60)
    a = M.box_to_mask((10, 10, 30, 30), size)
    b = M.box_to_mask((50, 20, 70, 50), size)
    return EditRequest("r", Image.new("RGB", size), "x", meta={"objects": {"red circle": a, "blue square": b}})


def test_normalise_phrase():
    assert normalise_phrase("The Red circle.") == "red circle"
    assert normalise_phrase("  a  blue square ") == "blue square"


def test_lookup_exact_partial_generic(request_with_objects):
    m = OracleMasker()
    objs = request_with_objects.meta["objects"]
    region, how = m.lookup(request_with_objects, "the red circle")
    assert how == "exact" and (region == objs["red circle"]).all()
    region, how = m.lookup(request_with_objects, "small blue square on the right")
    assert how.startswith("partial") and (region == objs["blue square"]).all()
    region, how = m.lookup(request_with_objects, "main subject")
    assert how == "all-objects" and region.sum() == objs["red circle"].sum() + objs["blue square"].sum()
    assert m.lookup(request_with_objects, "green star")[0] is None


def test_per_category_masks(request_with_objects):
    req = request_with_objects
    obj = req.meta["objects"]["red circle"]
    m = OracleMasker(categories={"local": {"dilate": 0.0, "shape": "mask"}, "remove": {"dilate": 0.05, "shape": "mask"}})
    local = m.mask(req, Plan(Category.LOCAL, "red circle")).mask
    assert (local == obj).all()
    remove = m.mask(req, Plan(Category.REMOVE, "red circle")).mask
    assert (remove == M.dilate(obj, 4)).all()  # 0.05 * 80 px = 4 px
    bg = m.mask(req, Plan(Category.BACKGROUND, "red circle")).mask
    assert (bg == ~obj).all()
    glob = m.mask(req, Plan(Category.GLOBAL)).mask
    assert glob.all()
    add = m.mask(req, Plan(Category.ADDITION, "cat", add_box=(-5, 40, 20, 90)))
    assert add.boxes == [(0.0, 40.0, 20.0, 60.0)] and add.mask.sum() == 20 * 20


def test_missing_object_policy(request_with_objects):
    req = request_with_objects
    with pytest.raises(SampleError, match="green star"):
        OracleMasker(on_missing="skip").mask(req, Plan(Category.LOCAL, "green star"))
    full = OracleMasker(on_missing="full")
    res = full.mask(req, Plan(Category.REMOVE, "green star"))
    assert res.mask.all() and "green star" in res.reason
    assert full.stats() == {"missing_object:full": 1}
    with pytest.raises(SampleError, match="add_box"):
        OracleMasker().mask(req, Plan(Category.ADDITION, "cat"))
    with pytest.raises(ValueError):
        OracleMasker(on_missing="maybe")


# --- fallback to the dataset's single unnamed edit mask (pie_bench, magicbrush, folder) ----


@pytest.fixture
def request_with_edit_mask():
    size = (80, 60)
    edit = M.box_to_mask((20, 10, 60, 40), size)
    return EditRequest("e", Image.new("RGB", size), "x", meta={"edit_mask": edit})


def test_edit_mask_is_used_when_no_object_is_named(request_with_edit_mask):
    req = request_with_edit_mask
    edit = req.meta["edit_mask"]
    m = OracleMasker(categories={"local": {"dilate": 0.0, "shape": "mask"}, "remove": {"dilate": 0.05, "shape": "mask"}})
    local = m.mask(req, Plan(Category.LOCAL, "anything"))
    assert local.source == "oracle:edit-mask" and (local.mask == edit).all()
    assert local.boxes == [M.mask_to_box(edit)]
    remove = m.mask(req, Plan(Category.REMOVE, "anything"))
    assert (remove.mask == M.dilate(edit, 4)).all()
    # background: the GT mask already is the region to change -> not complemented
    bg = m.mask(req, Plan(Category.BACKGROUND, "the dog"))
    assert bg.source == "oracle:edit-mask" and (bg.mask == edit).all()
    # a background margin shrinks the edit region away from the (complement) subject
    grown = OracleMasker(categories={"background": {"dilate": 0.05, "shape": "mask"}})
    shrunk = grown.mask(req, Plan(Category.BACKGROUND, "dog")).mask
    assert (shrunk == ~M.dilate(~edit, 4)).all() and shrunk.sum() < edit.sum()
    assert m.mask(req, Plan(Category.GLOBAL)).mask.all()  # global ignores annotations
    assert m.stats()["lookup:edit-mask"] == 3


def test_named_objects_win_over_the_edit_mask(request_with_objects):
    """With named objects the phrase lookup is authoritative: a planner mistake is not
    papered over by the unnamed edit mask."""
    req = request_with_objects
    req.meta["edit_mask"] = M.full_mask(req.size)
    m = OracleMasker()
    assert m.mask(req, Plan(Category.LOCAL, "red circle")).source == "oracle:exact"
    with pytest.raises(SampleError, match="green star"):
        m.mask(req, Plan(Category.LOCAL, "green star"))


def test_empty_or_misshaped_edit_mask(request_with_edit_mask):
    req = request_with_edit_mask
    req.meta["edit_mask"] = np.zeros((60, 80), bool)
    with pytest.raises(SampleError, match="no annotated object"):
        OracleMasker().mask(req, Plan(Category.LOCAL, "cat"))
    req.meta["edit_mask"] = np.ones((10, 10), bool)
    with pytest.raises(SampleError, match="shape"):
        OracleMasker().mask(req, Plan(Category.LOCAL, "cat"))
