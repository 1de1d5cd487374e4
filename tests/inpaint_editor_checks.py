"""The checks every inpainting editor on :class:`iiie.editors.base.DiffusionEditor` passes
(docs/ADD_AN_EDITOR.md): a new editor's test states its own layout and config facts and
calls :func:`check_inpainting` for the rest."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iiie import masks as M
from iiie import weights
from iiie.planners.rules_prompts import REMOVE_PROMPT
from iiie.types import Category, EditRequest, MaskResult, Plan
from iiie.weights import MissingWeightsError


def two_samples():
    """Two images of different sizes with a box mask each: a local edit and a removal."""
    reqs, masks = [], []
    for seed, (w, h) in enumerate([(50, 34), (52, 36)]):
        rng = np.random.default_rng(seed)
        reqs.append(EditRequest(f"s{seed}", Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), "x"))
        m = np.zeros((h, w), bool)
        m[6:22, 10 + seed:34] = True
        masks.append(MaskResult(m))
    plans = [Plan(Category.LOCAL, object="cat", target_prompt="a red cat"),
             Plan(Category.REMOVE, object="dog", target_prompt="")]
    return reqs, plans, masks


def check_inpainting(make_editor, name: str, pipeline: str, resolution: list[int], model_batches: int,
                     blur: int = 2) -> None:
    """A 2-image batch keeps the input sizes, the plan's prompt reaches the model (a removal
    never asks for its object), pixels outside the feathered mask are the source, pixels
    inside changed, a seed fixes the pixels and another seed changes them, one load."""
    weights.clear_loaded()
    editor = make_editor()
    reqs, plans, masks = two_samples()
    first = editor.edit_batch(reqs, plans, masks, [0, 1])
    assert [r.image.size for r in first] == [(50, 34), (52, 36)]
    assert [r.params["prompt"] for r in first] == ["a red cat", REMOVE_PROMPT]  # never "dog"
    assert first[0].params["resolution"] == resolution and first[0].params["pipeline"] == pipeline
    for req, m, res in zip(reqs, masks, first, strict=True):
        src, got = np.asarray(req.image), np.asarray(res.image)
        outside = M.feather(m.mask, blur) == 0
        np.testing.assert_array_equal(got[outside], src[outside])
        assert not np.array_equal(got[m.mask], src[m.mask])  # it did inpaint
    again = editor.edit_batch(reqs, plans, masks, [0, 1])
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    other = editor.edit(reqs[0], plans[0], masks[0], 7)
    assert not np.array_equal(np.asarray(other.image), np.asarray(first[0].image))
    assert editor.stats()["loads"] == {name: 1} and editor.stats()["model_batches"] == model_batches


def check_missing_folder(editor_cls, folder, folder_name: str) -> None:
    """A missing weights folder is a clear error naming the route's config key."""
    with pytest.raises(MissingWeightsError, match=rf"editor\.remove\.model_path.*{folder_name}"):
        editor_cls(str(folder), config_key="editor.remove")
