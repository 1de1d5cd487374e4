"""The generated benchmark is deterministic and its ground truth is self-consistent."""

from __future__ import annotations

import numpy as np
import pytest

from iiie.data.synthetic import SyntheticDataset, apply_filter
from iiie.errors import ImageLoadError
from iiie.types import Category


def _arr(img):
    return np.asarray(img, dtype=np.int16)


def test_deterministic_across_instances_and_order():
    a, b = SyntheticDataset(n=10, seed=3), SyntheticDataset(n=10, seed=3)
    for sid in reversed(a.ids()):
        sa, sb = a.load(sid), b.load(sid)
        assert sa.request.instruction == sb.request.instruction
        assert (_arr(sa.request.image) == _arr(sb.request.image)).all()
        assert (sa.truth.mask == sb.truth.mask).all()
    other = SyntheticDataset(n=10, seed=4)
    assert any(other.load(i).request.instruction != a.load(i).request.instruction for i in a.ids())


def test_categories_rotate_and_are_balanced():
    d = SyntheticDataset(n=25)
    cats = [d.load(i).truth.category for i in d.ids()]
    assert {c: cats.count(c) for c in set(cats)} == {c: 5 for c in Category}


@pytest.mark.parametrize("index", range(15))
def test_ground_truth_consistency(index):
    s = SyntheticDataset(n=15, seed=1).load(f"syn{index:04d}")
    src, tgt, mask = _arr(s.request.image), _arr(s.truth.target), s.truth.mask
    cat = s.truth.category
    assert src.shape == tgt.shape and mask.shape == src.shape[:2]
    assert mask.any()
    if cat is Category.GLOBAL:
        assert mask.all() and s.truth.object == ""
        assert s.truth.source_caption and s.truth.target_caption
    else:
        # Outside the change region the target equals the source exactly...
        assert (src[~mask] == tgt[~mask]).all()
        # ...and inside it something changes.
        assert (src[mask] != tgt[mask]).any()
        assert s.truth.object in s.request.instruction  # "" when the subject is not named
    if cat in (Category.REMOVE, Category.LOCAL):
        assert s.truth.object in s.request.meta["objects"]
    if cat is Category.REMOVE:
        assert (mask == s.request.meta["objects"][s.truth.object]).all()
    if cat is Category.BACKGROUND:
        (subject,) = s.request.meta["objects"].values()
        assert (mask == ~subject).all()


def test_filters_are_exact_functions():
    s = SyntheticDataset(n=1).load("syn0000")
    gray = np.asarray(apply_filter(s.request.image, "grayscale"))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    inv = np.asarray(apply_filter(s.request.image, "invert")).astype(int)
    assert (inv + np.asarray(s.request.image).astype(int) == 255).all()


def test_odd_inputs_exercise_loading():
    d = SyntheticDataset(n=2, odd_inputs=True)
    assert d.ids()[-4:] == ["odd_rgba", "odd_gray16", "odd_truncated", "odd_empty_instruction"]
    assert d.load("odd_rgba").request.image.mode == "RGB"
    assert d.load("odd_gray16").request.image.mode == "RGB"
    with pytest.raises(ImageLoadError):
        d.load("odd_truncated")
    assert d.load("odd_empty_instruction").request.instruction == ""
    with pytest.raises(KeyError):
        d.load("nope")


def test_fingerprint_does_not_depend_on_n():
    """Growing data.n must not invalidate cached plans: samples depend on seed and index."""
    small, big = SyntheticDataset(n=5, odd_inputs=True), SyntheticDataset(n=6, odd_inputs=True)
    assert small.fingerprint() == big.fingerprint()
    assert big.ids()[:5] == small.ids()[:5]
    assert small.fingerprint() != SyntheticDataset(n=5, seed=1, odd_inputs=True).fingerprint()
    a, b = small.load("syn0004"), big.load("syn0004")
    assert a.request.instruction == b.request.instruction
    assert np.array_equal(np.asarray(a.request.image), np.asarray(b.request.image))
