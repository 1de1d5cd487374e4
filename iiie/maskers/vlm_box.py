"""``masker=vlm_box``: the VLM's own box for the object, then SAM (no Grounding DINO).

The step-3 ablation row that asks whether the detector is needed: grounding is done by
the VLM planner itself, SAM only turns its box into a segmentation.

Where the box comes from (the contract with the VLM planner)
-------------------------------------------------------------
``plan.raw`` must be a dict holding, under ``box_key`` (default ``"object_box"``), the box
of ``plan.object`` as ``[x0, y0, x1, y1]`` in **absolute pixels of the original image**
(the same convention as ``Plan.add_box``; VLM coordinate systems are converted at the
client boundary), or a list of such boxes (their SAM masks are united). For
``background`` plans the box is the *subject's* (``plan.object`` names the subject to
keep) and the complement of its mask is edited. ``addition`` uses ``plan.add_box`` and
``global`` the full image, exactly as in ``grounded_sam``.

A plan from the VLM planner without a usable box (the model gave none, or a bad one) is an
empty detection: ``on_empty`` = ``skip`` records the sample as failed, ``full`` (or
``box``, which has no weaker box to offer here) edits the whole image; both are counted in
:meth:`stats`. A plan with *no VLM provenance* (``plan.raw`` lacks the VLM planner's
``ground_objects`` record: the rule planner, a hand-written plan) or from a VLM planner run
with ``planner.ground_objects=false`` can never carry a box, so that is a configuration
error (:class:`iiie.errors.IncompatibleComponentsError`) that stops the run at once rather
than failing every sample. The SAM weights are checked when the masker is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from iiie.devices import resolve_device, resolve_dtype
from iiie.errors import IncompatibleComponentsError
from iiie.maskers.detection import clamp_boxes
from iiie.maskers.sam import HF_FILES, build_segmenter
from iiie.maskers.segmenting import BoxFinding, BoxSamMasker
from iiie.offload import check_module_offload
from iiie.types import Box, EditRequest, Plan
from iiie.weights import MissingWeightsError, require_files

NEEDS = "masker=vlm_box needs planner=vlm with planner.ground_objects=true"


def vlm_provenance(plan: Plan) -> dict | None:
    """The VLM planner's record in ``plan.raw`` (``ground_objects`` etc.), or ``None``.

    A plan the VLM planner answered holds it at the top level; one where it fell back to
    its backup planner holds it under ``raw["vlm"]``.
    """
    raw = plan.raw if isinstance(plan.raw, dict) else {}
    for record in (raw, raw.get("vlm")):
        if isinstance(record, dict) and "ground_objects" in record:
            return record
    return None


def check_grounded(plan: Plan) -> None:
    """Raise :class:`IncompatibleComponentsError` if ``plan``'s planner cannot give boxes."""
    record = vlm_provenance(plan)
    if record is None:
        made_by = plan.raw.get("planner") if isinstance(plan.raw, dict) else None
        who = f"planner {made_by!r}" if made_by else "a planner without VLM provenance"
        raise IncompatibleComponentsError(f"{NEEDS}; this plan comes from {who} and has no object_box")
    if not record.get("ground_objects"):
        raise IncompatibleComponentsError(f"{NEEDS}; the plans were made with planner.ground_objects=false")


def check_sam_weights(impl: str, path: str | None, config_key: str = "masker.sam") -> None:
    """Fail at build time, not at the first mask: the files ``build_segmenter`` will load."""
    if impl == "transformers":
        require_files(path, HF_FILES, config_key, hint="A local copy of facebook/sam-vit-huge (transformers layout).")
        return
    p = Path(str(path)).expanduser()
    if path is None or str(path) in ("", "None", "???") or not p.is_file():
        raise MissingWeightsError(
            f"SAM checkpoint not found: {p} (from `{config_key}`). Get sam_vit_h_4b8939.pth from "
            "facebookresearch/segment-anything and put it there."
        )


def plan_boxes(plan: Plan, key: str = "object_box") -> tuple[list[Box], str | None]:
    """The VLM's box(es) for ``plan.object`` from ``plan.raw[key]``, or ``([], why)``."""
    raw = plan.raw if isinstance(plan.raw, dict) else None
    if raw is None or raw.get(key) is None:
        return [], f"the plan carries no VLM box (plan.raw[{key!r}] is missing)"
    value = raw[key]
    try:
        items = value if (len(value) and isinstance(value[0], (list, tuple))) else [value]
        boxes = [tuple(float(v) for v in b) for b in items]
    except (TypeError, ValueError):
        return [], f"plan.raw[{key!r}] is not a box or a list of boxes: {value!r}"
    bad = [b for b in boxes if len(b) != 4]
    if bad or not boxes:
        return [], f"plan.raw[{key!r}] must hold [x0, y0, x1, y1] boxes, got {value!r}"
    return boxes, None


class VlmBoxMasker(BoxSamMasker):
    """SAM on the planner's boxes, with the same category routing as ``grounded_sam``."""

    name = "vlm_box"

    def __init__(
        self,
        impl: str = "transformers",
        sam: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        box_key: str = "object_box",
        categories: dict | None = None,
        add_box_shape: str = "rectangle",
        on_empty: str = "skip",
        offload: str = "none",
    ) -> None:
        super().__init__(categories=categories, add_box_shape=add_box_shape, on_empty=on_empty, background="complement")
        if impl not in ("transformers", "original"):
            raise ValueError(f"masker.impl must be 'transformers' or 'original', got {impl!r}")
        self.impl, self.sam_path, self.box_key = impl, sam, box_key
        check_sam_weights(impl, sam)
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        self.offload = check_module_offload(offload, self.device, "masker.offload")  # SAM: runtime.offload
        self._segmenter = None

    def segmenter(self):
        if self._segmenter is None:
            self._segmenter = build_segmenter(self.impl, self.sam_path, self.device, self.dtype, "masker.sam",
                                              offload=self.offload)
        return self._segmenter

    def find_boxes(self, requests: Sequence[EditRequest], plans: Sequence[Plan], phrases: Sequence[str]) -> list[BoxFinding]:
        out = []
        for req, plan in zip(requests, plans, strict=True):
            boxes, why = plan_boxes(plan, self.box_key)
            if not boxes:
                check_grounded(plan)
            kept = clamp_boxes(boxes, req.size)
            if boxes and not kept:
                why = f"the VLM boxes {boxes} are empty after clamping to {req.size}"
            out.append(BoxFinding(boxes=kept, scores=[1.0] * len(kept), note=why, tag=f"{self.impl}:vlm" if kept else "none"))
        return out
