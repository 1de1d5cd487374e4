"""Classical editors: exact paste-back, colour fill, filter vocabulary."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iiie import masks as M
from iiie.editors.classical import (
    ClassicalInpaintEditor,
    ColorFillEditor,
    FilterEditor,
    detect_filter,
)
from iiie.types import Category, EditRequest, EditResult, MaskResult, Plan, mark_noop


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    mask = M.box_to_mask((20, 10, 40, 30), img.size)
    return EditRequest("x", img, "make the square red"), mask


@pytest.mark.parametrize("blur", [0, 2, 5])
@pytest.mark.parametrize("editor", [ClassicalInpaintEditor("telea"), ClassicalInpaintEditor("ns"), ColorFillEditor()])
def test_outside_feathered_mask_is_exactly_the_input(scene, editor, blur):
    req, mask = scene
    editor.blur = blur
    if hasattr(editor, "inpaint"):
        editor.inpaint.blur = blur
    out = editor.edit(req, Plan(Category.LOCAL, "square", "a red square"), MaskResult(mask), 0)
    assert out.image.size == req.image.size
    weight = M.feather(mask, blur)
    src, got = np.asarray(req.image), np.asarray(out.image)
    assert (got[weight == 0] == src[weight == 0]).all()
    assert (got[mask] != src[mask]).any()


def test_feather_support_is_bounded_by_radius():
    mask = M.box_to_mask((30, 30, 34, 34), (64, 64))
    w = M.feather(mask, 6)
    assert (w[mask] == 1).all()
    grown = M.box_to_mask((24, 24, 40, 40), (64, 64))  # 6 px in the max-norm
    assert (w[~grown] == 0).all()
    assert ((w > 0) & ~mask).any()


def test_color_fill_uses_named_colour(scene):
    req, mask = scene
    out = ColorFillEditor(blur=0).edit(req, Plan(Category.LOCAL, "square", "a blue square"), MaskResult(mask), 0)
    got = np.asarray(out.image)[mask].astype(int)
    assert (got[:, 2] >= got[:, 0]).all() and (got[:, 2] >= got[:, 1]).all()  # blue, shaded
    assert out.params["color"] == "blue"
    flat = ColorFillEditor(blur=0, shading=0.0).edit(req, Plan(Category.LOCAL, "square", "a blue square"),
                                                    MaskResult(mask), 0)
    # a flat fill is the named colour (up to the Lab round trip)
    assert np.abs(np.asarray(flat.image)[mask].astype(int) - [0, 0, 255]).max() <= 12


def test_recolour_keeps_shading_not_a_flat_fill():
    """Issue 19: "make the cup red" kept the cup's shading, not one flat colour."""
    ramp = np.tile(np.linspace(40, 220, 64, dtype=np.uint8)[None, :, None], (64, 1, 3))
    req = EditRequest("ramp", Image.fromarray(ramp), "make the cup red")
    mask = np.ones((64, 64), bool)
    out = ColorFillEditor(blur=0).edit(req, Plan(Category.LOCAL, "cup", "a red cup"), MaskResult(mask), 0)
    arr = np.asarray(out.image).astype(int)
    lum = arr.mean(-1)
    assert lum[:, -1].mean() - lum[:, 0].mean() > 60  # the dark-to-light ramp survives
    assert (arr[..., 0] >= arr[..., 1]).all() and (arr[..., 0] > arr[..., 2]).all()  # red everywhere
    flat = ColorFillEditor(blur=0, shading=0.0).edit(req, Plan(Category.LOCAL, "cup", "a red cup"), MaskResult(mask), 0)
    assert np.ptp(np.asarray(flat.image).astype(int).mean(-1)) <= 2


def test_filter_editor_without_a_known_filter_is_a_noop():
    req = EditRequest("w", Image.new("RGB", (16, 16), (10, 120, 30)), "turn it into a watercolor painting")
    plan = Plan(Category.GLOBAL, "", "")
    plan.target_caption = "a watercolor painting"
    out = FilterEditor().edit(req, plan, MaskResult(np.ones((16, 16), bool)), 0)
    assert out.noop and "unchanged" in out.noop_reason and "grayscale" in out.noop_reason
    assert out.image.tobytes() == req.image.tobytes()


def test_mark_noop_flags_unchanged_pixels_only():
    img = Image.new("RGB", (8, 8), (1, 2, 3))
    same = mark_noop(img, EditResult(img.copy(), "x"))
    assert same.noop and same.noop_reason == "the output equals the input"
    changed = mark_noop(img, EditResult(Image.new("RGB", (8, 8), (9, 2, 3)), "x"))
    assert not changed.noop


def test_color_fill_without_colour_falls_back_to_inpainting(scene):
    req, mask = scene
    req.instruction = "make it nicer"
    out = ColorFillEditor().edit(req, Plan(Category.LOCAL, "square", "a nicer square"), MaskResult(mask), 0)
    assert "fallback" in out.params


@pytest.mark.parametrize(
    "text,name",
    [
        ("make the photo black and white", "grayscale"),
        ("apply a sepia filter", "sepia"),
        ("invert the colours", "invert"),
        ("make everything out of focus", "blur"),
        ("make it look like dusk", "darken"),
        ("increase the brightness", "brighten"),
        ("make it a watercolor painting", None),
    ],
)
def test_filter_vocabulary(text, name):
    assert detect_filter(text) == name


def test_unknown_filter_returns_input_and_says_so(scene):
    req, _ = scene
    full = M.full_mask(req.size)
    out = FilterEditor().edit(req, Plan(Category.GLOBAL, target_caption="a watercolor"), MaskResult(full), 0)
    assert (np.asarray(out.image) == np.asarray(req.image)).all()
    assert out.params["filter"] is None
    gray = FilterEditor().edit(req, Plan(Category.GLOBAL, target_caption="a grayscale photo"), MaskResult(full), 0)
    g = np.asarray(gray.image)
    assert (g[..., 0] == g[..., 2]).all()
