"""Per-category routing shared by the box + SAM maskers (``grounded_sam``, ``vlm_box``, ``sam3``).

The maskers differ only in where the boxes come from (Grounding DINO on a phrase, the
VLM's own box, or SAM 3, which also brings each box's mask); everything else is here so the
step-3 ablation compares them on equal terms:

* ``local`` / ``remove``: boxes for ``plan.object`` -> SAM -> union of the box masks ->
  the shared category policy (:mod:`iiie.maskers.policy`: shape, dilation; remove is
  dilated more by default).
* ``background``: ``background: complement`` (default) segments the subject
  (``plan.object``) and edits its complement; ``background: detect`` (ablation, what
  BrushEdit does) segments the phrase ``background_phrase`` and edits that region. A plan
  that names no subject uses ``unnamed_subject`` (e.g. "main object") when set, otherwise
  it is an empty detection.
* ``addition``: the plan's box as a rectangle or ellipse, clamped; no detector.
* ``global``: the whole image.

When no box is found the sample gets a recorded ``reason`` and the ``on_empty`` policy:
``skip`` (raise :class:`~iiie.errors.SampleError`, the run records it), ``box`` (the best
box the source can still offer, e.g. the detector's top query below the ladder's floor;
the whole image if there is none) or ``full`` (the whole image). Every such decision is
counted in :meth:`stats`, which the run merges into its manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from iiie import masks as M
from iiie.errors import SampleError
from iiie.maskers.policy import CategoryMaskPolicy, finish_object_mask, policies_from_config
from iiie.protocols import BaseMasker
from iiie.types import Box, Category, EditRequest, MaskResult, Plan

ON_EMPTY = ("skip", "box", "full")
BACKGROUND_MODES = ("complement", "detect")


@dataclass
class BoxFinding:
    """What a box source found for one (image, phrase)."""

    boxes: list[Box] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    note: str | None = None  # why nothing was found, or what was substituted (e.g. phrase fallback)
    fallback_box: Box | None = None  # offered to on_empty=box
    tag: str = ""  # short provenance for MaskResult.source
    #: One mask per box when the source segments by itself (SAM 3 finds and segments the
    #: concept in one pass); ``None`` sends the boxes to :meth:`BoxSamMasker.segmenter`.
    masks: list[np.ndarray] | None = None


class BoxSamMasker(BaseMasker):
    """Base class: subclasses implement :meth:`find_phrase_boxes` (or :meth:`find_boxes`) and :meth:`segmenter`."""

    name = "box_sam"

    def __init__(self, categories: dict | None = None, add_box_shape: str = "rectangle", on_empty: str = "skip",
                 background: str = "complement", background_phrase: str = "background",
                 unnamed_subject: str | None = None) -> None:
        if on_empty not in ON_EMPTY:
            raise ValueError(f"masker.on_empty must be one of {ON_EMPTY}, got {on_empty!r}")
        if background not in BACKGROUND_MODES:
            raise ValueError(f"masker.background must be one of {BACKGROUND_MODES}, got {background!r}")
        if add_box_shape not in ("rectangle", "ellipse"):
            raise ValueError("masker.add_box_shape must be rectangle or ellipse")
        self.policies: dict[Category, CategoryMaskPolicy] = policies_from_config(categories)
        self.add_box_shape = add_box_shape
        self.on_empty = on_empty
        self.background = background
        self.background_phrase = background_phrase
        self.unnamed_subject = unnamed_subject
        self._stats: dict[str, int] = {}

    # -- hooks -------------------------------------------------------------------------
    def find_boxes(self, requests: Sequence[EditRequest], plans: Sequence[Plan], phrases: Sequence[str]) -> list[BoxFinding]:
        """Boxes for each sample's phrase. A phrase-prompted source (``grounded_sam``,
        ``sam3``) implements only :meth:`find_phrase_boxes`: a sample whose plan names no
        phrase gets its note here and is never sent to the model. A source that does not
        read the phrase (``vlm_box``) overrides this method instead."""
        out: list[BoxFinding | None] = [None] * len(requests)
        todo = [i for i, p in enumerate(phrases) if p]
        for i, p in enumerate(phrases):
            if not p:
                out[i] = BoxFinding(note=f"the plan names no object to find for category {plans[i].category.value!r}")
        if todo:
            found = self.find_phrase_boxes([requests[i] for i in todo], [phrases[i] for i in todo])
            for i, finding in zip(todo, found, strict=True):
                out[i] = finding
        return out

    def find_phrase_boxes(self, requests: Sequence[EditRequest], phrases: Sequence[str]) -> list[BoxFinding]:
        """One :class:`BoxFinding` per (image, non-empty phrase), in order, batched as the source likes."""
        raise NotImplementedError

    def segmenter(self):
        raise NotImplementedError

    # -- bookkeeping -------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Counts of every routing and fallback decision (merged into the run manifest)."""
        return dict(self._stats)

    @staticmethod
    def _bump(counts: dict[str, int], key: str, n: int = 1) -> None:
        counts[key] = counts.get(key, 0) + n

    # -- main --------------------------------------------------------------------------
    def mask(self, request: EditRequest, plan: Plan) -> MaskResult:
        return self.mask_batch([request], [plan])[0]

    def mask_batch(self, requests: Sequence[EditRequest], plans: Sequence[Plan]) -> list[MaskResult]:
        """Batched: one box-source call and one SAM pass for all samples that need them.

        If any sample must be skipped the whole call raises its :class:`SampleError`
        (the runner then retries sample by sample, so only that one is recorded as failed);
        counts are committed only for calls that return, so retries do not double count.
        """
        if len(requests) != len(plans):
            raise ValueError(f"{len(requests)} requests but {len(plans)} plans")
        counts: dict[str, int] = {}
        results: list[MaskResult | None] = [None] * len(requests)
        errors: list[SampleError] = []
        need: list[int] = []  # samples that need boxes + SAM
        phrases: list[str] = []
        for i, (req, plan) in enumerate(zip(requests, plans, strict=True)):
            cat = plan.category
            if cat is Category.GLOBAL:
                self._bump(counts, "global:full")
                results[i] = MaskResult(M.full_mask(req.size), source="full-image")
            elif cat is Category.ADDITION:
                try:
                    results[i] = self._addition(req, plan, counts)
                except SampleError as e:
                    errors.append(e)
            else:
                if cat is Category.BACKGROUND and self.background == "detect":
                    phrase = self.background_phrase
                elif cat is Category.BACKGROUND and not (plan.object or "").strip():
                    phrase = self.unnamed_subject or ""  # the instruction did not name the subject
                else:
                    phrase = plan.object
                need.append(i)
                phrases.append((phrase or "").strip())
        if need:
            findings = self.find_boxes([requests[i] for i in need], [plans[i] for i in need], phrases)
            segs = self._segments([requests[i].image for i in need], findings)
            for i, phrase, finding, seg in zip(need, phrases, findings, segs, strict=True):
                try:
                    results[i] = self._object(requests[i], plans[i], phrase, finding, seg, counts)
                except SampleError as e:
                    errors.append(e)
        if errors:
            if len(requests) == 1:
                self._merge(counts)
            raise errors[0]
        self._merge(counts)
        return [r for r in results if r is not None]

    def _segments(self, images, findings: Sequence[BoxFinding]) -> list[list]:
        """One segment per box: the source's own masks where it has them, else one segmenter pass."""
        from iiie.maskers.sam import Segment

        out: list[list] = [[] for _ in findings]
        todo = []
        for j, f in enumerate(findings):
            if f.masks is not None:
                if len(f.masks) != len(f.boxes):
                    raise ValueError(f"{self.name}: {len(f.masks)} masks for {len(f.boxes)} boxes")
                out[j] = [Segment(np.asarray(m, bool), float(s)) for m, s in zip(f.masks, f.scores or [1.0] * len(f.masks), strict=True)]
            elif f.boxes:
                todo.append(j)
        if todo:
            segs = self.segmenter().segment_batch([images[j] for j in todo], [findings[j].boxes for j in todo])
            for j, seg in zip(todo, segs, strict=True):
                out[j] = seg
        return out

    def _merge(self, counts: dict[str, int]) -> None:
        for k, v in counts.items():
            self._bump(self._stats, k, v)

    def _addition(self, req: EditRequest, plan: Plan, counts: dict[str, int]) -> MaskResult:
        size = req.size
        if plan.add_box is None:
            self._bump(counts, "addition:no_box")
            raise SampleError("addition plan has no add_box; cannot place the new object")
        box = M.clamp_box(plan.add_box, size)
        if M.box_is_degenerate(box):
            self._bump(counts, "addition:degenerate_box")
            raise SampleError(f"addition box {tuple(plan.add_box)} is empty after clamping to {size}")
        region = M.box_to_mask(box, size, self.add_box_shape)
        region = M.dilate(region, M.relative_radius(size, self.policies[Category.ADDITION].dilate))
        self._bump(counts, f"addition:{self.add_box_shape}")
        return MaskResult(region, boxes=[box], scores=[1.0], source=f"plan-box:{self.add_box_shape}")

    def _finish(self, region: np.ndarray, cat: Category) -> np.ndarray:
        """The shared category policy (the oracle masker runs the same function).

        ``background: detect`` found the background itself, so it is shaped and dilated
        with the background policy but not complemented.
        """
        policy = self.policies[cat]
        if cat is Category.BACKGROUND and self.background == "detect":
            return finish_object_mask(region, Category.LOCAL, policy)  # LOCAL = no complement
        return finish_object_mask(region, cat, policy)

    def _object(self, req: EditRequest, plan: Plan, phrase: str, finding: BoxFinding, segs, counts) -> MaskResult:
        size, cat = req.size, plan.category
        if finding.boxes:
            union = np.zeros((size[1], size[0]), dtype=bool)
            reason = finding.note
            for box, seg in zip(finding.boxes, segs, strict=True):
                if seg.mask.any():
                    union |= seg.mask
                else:  # SAM found nothing inside the box: keep the box itself
                    union |= M.box_to_mask(box, size, "rectangle")
                    self._bump(counts, "sam:empty_mask_used_box")
                    reason = (reason + "; " if reason else "") + f"SAM returned an empty mask for box {box}; used the box"
            self._bump(counts, f"{cat.value}:segmented")
            self._bump(counts, f"boxes:{min(len(finding.boxes), 5)}{'+' if len(finding.boxes) >= 5 else ''}")
            return MaskResult(self._finish(union, cat), boxes=list(finding.boxes), scores=list(finding.scores),
                              source=f"{self.name}:{finding.tag}".rstrip(":"), reason=reason)
        # nothing found
        why = finding.note or f"no box for {phrase!r}"
        self._bump(counts, f"empty:{self.on_empty}")
        if self.on_empty == "skip":
            raise SampleError(f"{self.name}: {why}; sample skipped (masker.on_empty=skip)")
        if self.on_empty == "box" and finding.fallback_box is not None:
            box = M.clamp_box(finding.fallback_box, size)
            if not M.box_is_degenerate(box):
                region = M.box_to_mask(box, size, "rectangle")
                return MaskResult(self._finish(region, cat), boxes=[box], source=f"{self.name}:fallback-box",
                                  reason=f"{why}; fell back to the best box below threshold")
        if self.on_empty == "box":
            self._bump(counts, "empty:box_unavailable_full")
        return MaskResult(M.full_mask(size), source=f"{self.name}:fallback-full", reason=f"{why}; fell back to the full image")
