"""``masker=oracle``: masks from the dataset's own object annotations.

The embedded CPU default. It looks the *planner's* object phrase up in
``request.meta["objects"]`` (phrase -> HxW bool mask), so planner mistakes still propagate
to the mask exactly as they would through a detector; only the detector's own errors are
removed. Per-category finishing (dilation, shape, complement) is the shared
:mod:`iiie.maskers.policy`, the same code the Grounded-SAM masker uses.

What the loaders provide (``request.meta``)
-------------------------------------------
``objects``
    phrase -> HxW bool mask of that object. The synthetic benchmark annotates every object
    in the scene; ``data=folder`` gives ``{object: mask}`` for a local/remove line with
    both keys and ``{object: ~mask}`` (the kept subject) for a background line
    (:func:`iiie.data.base.oracle_meta`).
``edit_mask``
    HxW bool, True = the region the benchmark's edit changes (PIE-Bench without its
    evaluation border, MagicBrush's drawn mask, ``data=folder``'s ``mask``). It is *one*
    region with no name, so the planner's phrase cannot be checked against it.

Lookup order for local/remove/background plans: the planner's phrase in ``objects``
(exact, containment, generic subject -> union); only when the sample annotates **no**
named object at all does the oracle fall back to ``edit_mask`` (``source="oracle:edit-mask"``).
A phrase that misses a non-empty ``objects`` table is a planner mistake and stays one
(``on_missing``), even if an ``edit_mask`` is there too.

``edit_mask`` semantics per category: it already *is* the region to change, for
``background`` plans too, so it is never complemented. The category's policy is applied
as if its complement were the found subject (the way ``objects`` regions are finished):
``local``/``remove`` dilate/reshape the edit region itself; ``background`` treats the
complement as the subject to keep, so ``dilate > 0`` shrinks the edit region away from the
subject (with the default ``dilate: 0, shape: mask`` the result is the edit mask exactly).
``addition`` (``plan.add_box``) and ``global`` (full image) do not read annotations.
"""

from __future__ import annotations

import re

import numpy as np

from iiie import masks as M
from iiie.errors import SampleError
from iiie.maskers.policy import finish_object_mask, policies_from_config
from iiie.protocols import BaseMasker
from iiie.types import Category, EditRequest, MaskResult, Plan

#: Phrases that mean "whatever the main subject is": resolved to the union of all objects.
GENERIC_SUBJECTS = {"", "subject", "main subject", "foreground", "object", "objects", "everything", "it", "them"}
_ARTICLES = re.compile(r"^(the|a|an|this|that|these|those)\s+")


def normalise_phrase(text: str) -> str:
    """Lower-case, strip articles and punctuation: "The Red circle." -> "red circle"."""
    t = re.sub(r"[^\w\s-]", " ", (text or "").lower()).strip()
    t = _ARTICLES.sub("", re.sub(r"\s+", " ", t))
    return t.strip()


class OracleMasker(BaseMasker):
    """Annotation lookup + the shared per-category policy.

    ``on_missing`` decides what happens when the phrase names no annotated object:
    ``skip`` records a per-sample error; ``full`` edits the whole image; ``empty`` edits
    nothing (the editor then returns the input). The choice is counted in :meth:`stats`.
    """

    name = "oracle"

    def __init__(self, categories: dict | None = None, add_box_shape: str = "rectangle", on_missing: str = "skip") -> None:
        if on_missing not in ("skip", "full", "empty"):
            raise ValueError("masker.on_missing must be skip, full or empty")
        if add_box_shape not in ("rectangle", "ellipse"):
            raise ValueError("masker.add_box_shape must be rectangle or ellipse")
        self.policies = policies_from_config(categories)
        self.add_box_shape = add_box_shape
        self.on_missing = on_missing
        self._stats: dict[str, int] = {}

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def _count(self, key: str) -> None:
        self._stats[key] = self._stats.get(key, 0) + 1

    def lookup(self, request: EditRequest, phrase: str) -> tuple[np.ndarray | None, str]:
        """Find the annotated region for ``phrase``: exact, then containment, then union."""
        objects: dict[str, np.ndarray] = request.meta.get("objects") or {}
        want = normalise_phrase(phrase)
        table = {normalise_phrase(k): v for k, v in objects.items()}
        if want in table:
            return table[want], "exact"
        hits = [k for k in table if k and (k in want or want in k)]
        if len(hits) == 1:
            return table[hits[0]], f"partial:{hits[0]}"
        if want in GENERIC_SUBJECTS and table:
            return np.logical_or.reduce(list(table.values())), "all-objects"
        return None, "not-found"

    @staticmethod
    def edit_region(request: EditRequest) -> np.ndarray | None:
        """The sample's unnamed ``meta["edit_mask"]``, when it annotates no named object.

        ``None`` when ``objects`` is non-empty (the phrase lookup is authoritative there),
        when there is no edit mask, or when it is empty. A mask whose shape is not the
        image's is a loader bug: a :class:`SampleError` rather than a silently wrong edit.
        """
        if request.meta.get("objects"):
            return None
        region = request.meta.get("edit_mask")
        if region is None:
            return None
        region = np.asarray(region, dtype=bool)
        want = (request.size[1], request.size[0])
        if region.shape != want:
            raise SampleError(f"meta['edit_mask'] has shape {region.shape}, image is {want} (HxW)")
        return region if region.any() else None

    def _from_edit_mask(self, region: np.ndarray, cat: Category, policy) -> MaskResult:
        """Finish the GT edit region for ``cat`` without complementing it (see module doc)."""
        if cat is Category.BACKGROUND:
            subject = ~region
            final = finish_object_mask(subject, cat, policy)  # = complement of the grown subject
            box = M.mask_to_box(subject)
        else:
            final = finish_object_mask(region, cat, policy)
            box = M.mask_to_box(region)
        return MaskResult(final, boxes=[box] if box else [], scores=[1.0], source="oracle:edit-mask")

    def mask(self, request: EditRequest, plan: Plan) -> MaskResult:
        size = request.size
        cat = plan.category
        policy = self.policies[cat]
        if cat is Category.GLOBAL:
            return MaskResult(M.full_mask(size), source="full-image")
        if cat is Category.ADDITION:
            if plan.add_box is None:
                self._count("addition_without_box")
                raise SampleError("addition plan has no add_box; cannot place the new object")
            box = M.clamp_box(plan.add_box, size)
            if M.box_is_degenerate(box):
                self._count("degenerate_box")
                raise SampleError(f"addition box {plan.add_box} is empty after clamping to {size}")
            region = M.box_to_mask(box, size, self.add_box_shape)
            region = M.dilate(region, M.relative_radius(size, policy.dilate))
            return MaskResult(region, boxes=[box], scores=[1.0], source=f"plan-box:{self.add_box_shape}")
        region, how = self.lookup(request, plan.object)
        if region is None and (edit := self.edit_region(request)) is not None:
            self._count("lookup:edit-mask")
            return self._from_edit_mask(edit, cat, policy)
        if region is None:
            self._count(f"missing_object:{self.on_missing}")
            reason = f"no annotated object matches {plan.object!r}"
            if self.on_missing == "skip":
                raise SampleError(reason)
            fallback = M.full_mask(size) if self.on_missing == "full" else M.empty_mask(size)
            return MaskResult(fallback, source=f"fallback:{self.on_missing}", reason=reason)
        self._count(f"lookup:{how.split(':')[0]}")
        box = M.mask_to_box(region)
        final = finish_object_mask(region, cat, policy)
        return MaskResult(final, boxes=[box] if box else [], scores=[1.0], source=f"oracle:{how}")
