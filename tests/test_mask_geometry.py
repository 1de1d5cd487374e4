"""Exact expectations for the mask geometry the maskers build on (iiie/masks.py,
iiie/maskers/policy.py) and for the box policy's pure parts (ladder, keep, coordinates)."""

from __future__ import annotations

import numpy as np
import pytest

from iiie import masks as M
from iiie.maskers.detection import (
    QueryScores,
    apply_ladder,
    cxcywh_to_xyxy,
    phrase_matches,
    preprocess_caption,
    select,
    xyxy_to_cxcywh,
)
from iiie.maskers.policy import (
    CategoryMaskPolicy,
    finish_object_mask,
    policies_from_config,
    reshape,
)
from iiie.types import Category

# --- boxes <-> masks ---------------------------------------------------------------------


def test_box_to_mask_rectangle_is_exact():
    m = M.box_to_mask((2, 1, 5, 4), (8, 6))
    assert m.shape == (6, 8) and m.dtype == bool
    assert m.sum() == 3 * 3
    assert np.array_equal(np.argwhere(m)[[0, -1]], [[1, 2], [3, 4]])


def test_mask_to_box_round_trip_and_empty():
    box = (3.0, 2.0, 7.0, 5.0)
    assert M.mask_to_box(M.box_to_mask(box, (10, 8))) == box
    assert M.mask_to_box(np.zeros((4, 4), bool)) is None


def test_fractional_box_uses_pixel_centres():
    # pixel x is inside when x + 0.5 lies in [x0, x1): [1.4, 3.6) covers centres 1.5, 2.5, 3.5
    m = M.box_to_mask((1.4, 0, 3.6, 1), (6, 2))
    assert m[0].tolist() == [False, True, True, True, False, False]


def test_clamp_box_orders_and_clips():
    assert M.clamp_box((12, -3, 4, 5), (10, 8)) == (4.0, 0.0, 10.0, 5.0)
    assert M.clamp_box((-5, -5, -1, -1), (10, 8)) == (0.0, 0.0, 0.0, 0.0)
    assert M.box_is_degenerate(M.clamp_box((-5, -5, -1, -1), (10, 8)))
    assert not M.box_is_degenerate((0, 0, 1, 1))
    assert M.box_is_degenerate((0, 0, 0.5, 3))


def test_ellipse_inscribed_in_box():
    size = (21, 11)
    e = M.box_to_mask((0, 0, 21, 11), size, "ellipse")
    r = M.box_to_mask((0, 0, 21, 11), size, "rectangle")
    assert np.all(r[e])  # inside the rectangle
    assert e[5, 10] and e[5, 0] and e[5, 20]  # centre row spans the width
    assert not e[0, 0] and not e[10, 20]  # corners are outside
    # area close to pi/4 of the box
    assert abs(e.sum() / r.sum() - np.pi / 4) < 0.05
    with pytest.raises(ValueError, match="shape"):
        M.box_to_mask((0, 0, 2, 2), (4, 4), "triangle")


def test_union_of_box_masks_equals_pixelwise_or():
    size = (12, 10)
    a, b = (1, 1, 5, 4), (4, 3, 9, 8)
    union = M.box_to_mask(a, size) | M.box_to_mask(b, size)
    assert union.sum() == 12 + 25 - 1  # the 1x1 overlap counted once
    assert M.mask_to_box(union) == (1.0, 1.0, 9.0, 8.0)


# --- complement, dilation -----------------------------------------------------------------


def test_complement_is_exact_inverse():
    m = M.box_to_mask((1, 1, 3, 3), (5, 5))
    c = M.complement(m)
    assert (c ^ m).all() and c.sum() == 25 - 4
    assert np.array_equal(M.complement(c), m)


def test_relative_radius_uses_long_side():
    assert M.relative_radius((512, 256), 0.02) == 10
    assert M.relative_radius((100, 400), 0.015) == 6
    assert M.relative_radius((100, 100), 0.0) == 0


def test_dilate_single_pixel_is_a_disc_of_that_radius():
    m = np.zeros((21, 21), bool)
    m[10, 10] = True
    d = M.dilate(m, 3)
    yy, xx = np.mgrid[:21, :21]
    assert np.array_equal(d, (yy - 10) ** 2 + (xx - 10) ** 2 <= 9)
    assert d.sum() == 29  # lattice points in a radius-3 disc
    assert np.array_equal(M.dilate(m, 0), m)


def test_erode_is_negative_dilation():
    m = M.box_to_mask((2, 2, 9, 9), (12, 12))
    e = M.dilate(m, -1)
    assert M.mask_to_box(e) == (3.0, 3.0, 8.0, 8.0)


def test_convex_hull_fills_the_gap():
    m = np.zeros((7, 7), bool)
    m[1, 1] = m[1, 5] = m[5, 1] = m[5, 5] = True
    h = M.convex_hull(m)
    assert h[3, 3] and h.sum() == 25


# --- per-category policy ---------------------------------------------------------------


def test_policy_background_is_complement_of_dilated_subject():
    size = (50, 40)
    subject = M.box_to_mask((20, 15, 30, 25), size)
    out = finish_object_mask(subject, Category.BACKGROUND, CategoryMaskPolicy(dilate=0.04))
    grown = M.dilate(subject, 2)  # 0.04 * 50 = 2 px
    assert np.array_equal(out, ~grown)


def test_policy_remove_dilates_more_than_local_by_default():
    size = (100, 80)
    obj = M.box_to_mask((40, 30, 60, 50), size)
    pol = policies_from_config(None)
    local = finish_object_mask(obj, Category.LOCAL, pol[Category.LOCAL])
    remove = finish_object_mask(obj, Category.REMOVE, pol[Category.REMOVE])
    assert obj.sum() < local.sum() < remove.sum()
    assert np.all(local[obj]) and np.all(remove[local])
    assert M.mask_to_box(local) == (38.0, 28.0, 62.0, 52.0)  # round(0.015 * 100) = 2 px
    assert M.mask_to_box(remove) == (37.0, 27.0, 63.0, 53.0)  # round(0.03 * 100) = 3 px


def test_policy_shapes():
    size = (30, 30)
    blob = np.zeros((30, 30), bool)
    blob[5:10, 5:25] = True
    blob[5:25, 5:10] = True  # an L
    assert np.array_equal(reshape(blob, "box"), M.box_to_mask((5, 5, 25, 25), size))
    assert np.array_equal(reshape(blob, "ellipse"), M.box_to_mask((5, 5, 25, 25), size, "ellipse"))
    hull = reshape(blob, "hull")
    assert np.all(hull[blob]) and hull[12, 12] and not hull[22, 22]
    assert reshape(blob, "mask") is blob
    with pytest.raises(ValueError, match="shape"):
        reshape(blob, "star")


def test_policies_from_config_overrides_only_given_categories():
    pol = policies_from_config({"remove": {"dilate": 0.1, "shape": "box"}})
    assert pol[Category.REMOVE] == CategoryMaskPolicy(0.1, "box")
    assert pol[Category.LOCAL] == CategoryMaskPolicy(0.015, "mask")


# --- box policy: ladder, keep, coordinates ------------------------------------------------


def _q(scores, phrases=None):
    n = len(scores)
    boxes = np.array([[i, i, i + 10, i + 10] for i in range(n)], dtype=float)
    return QueryScores(boxes, np.array(scores, dtype=float), phrases or [""] * n)


def test_ladder_tries_thresholds_from_high_to_low():
    q = _q([0.12, 0.27, 0.08, 0.26])
    kept, t = apply_ladder(q, [0.05, 0.30, 0.25, 0.10])  # order in config does not matter
    assert t == 0.25 and kept == [1, 3]  # highest score first
    kept, t = apply_ladder(_q([0.12, 0.07]), [0.30, 0.20, 0.10, 0.05])
    assert t == 0.10 and kept == [0]
    assert apply_ladder(_q([0.04, 0.01]), [0.30, 0.05]) == ([], None)
    # strictly greater than the threshold, like the original post-processing
    assert apply_ladder(_q([0.30]), [0.30]) == ([], None)


def test_keep_best_all_phrase():
    q = _q([0.5, 0.9, 0.7], ["blue square", "red circle", "red"])
    kept, _ = apply_ladder(q, [0.3])
    assert kept == [1, 2, 0]
    assert select(q, kept, "best", "red circle") == ([1], None)
    assert select(q, kept, "all", "red circle") == ([1, 2, 0], None)
    assert select(q, kept, "phrase", "the Red Circle") == ([1, 2], None)  # "red" is contained
    idx, note = select(q, kept, "phrase", "green star")
    assert idx == [1] and "green star" in note
    with pytest.raises(ValueError, match="keep"):
        select(q, kept, "first", "x")


def test_phrase_matching():
    assert phrase_matches("red circle", "the red circle.")
    assert not phrase_matches("", "red circle")
    assert not phrase_matches("blue square", "red circle")


def test_caption_preprocessing_follows_grounding_dino():
    assert preprocess_caption("  The Red  Circle ") == "the red circle."
    assert preprocess_caption("cat.") == "cat."


def test_relative_box_coordinates_round_trip_to_original_pixels():
    size = (640, 480)
    boxes = np.array([[10.0, 20.0, 110.0, 220.0], [0.0, 0.0, 640.0, 480.0]])
    rel = xyxy_to_cxcywh(boxes, size)
    assert np.allclose(rel[1], [0.5, 0.5, 1.0, 1.0])
    assert np.allclose(cxcywh_to_xyxy(rel, size), boxes)
    assert np.allclose(cxcywh_to_xyxy([[0.25, 0.5, 0.5, 1.0]], (200, 100)), [[0, 0, 100, 100]])
