"""``masker=grounded_sam``: Grounding DINO finds the planner's phrase, SAM segments the boxes.

Two interchangeable implementations (``impl``):

* ``transformers`` (default): ``GroundingDinoForObjectDetection`` and ``SamModel`` with
  their processors, from local HF folders (``grounding-dino-base``, ``sam-vit-huge``).
* ``original``: the checkpoints most Grounded-SAM users already have,
  ``groundingdino_swint_ogc.pth`` and ``sam_vit_h_4b8939.pth``. SAM runs through the
  ``segment-anything`` package as is. Grounding DINO does *not* use ``groundingdino-py``
  (0.4.0, 2023), which breaks on transformers 5 (its BERT calls were removed) while vLLM
  needs transformers 5: the original checkpoint's keys are mapped at load time onto
  transformers' ``GroundingDinoForObjectDetection`` (a documented, tested mapping in
  :mod:`iiie.models.grounding_dino.original`), with BERT's config and tokenizer from a
  local ``bert-base-uncased`` folder.

Box policy (all config): ``text_threshold`` (0.25) selects a box's phrase tokens;
``box_thresholds`` is a ladder tried from high to low (0.30 -> 0.05) until at least one box
survives, all on one forward pass; ``keep`` = ``best`` | ``all`` | ``phrase`` picks among
the survivors; the SAM masks of the kept boxes are united (SAM's three candidates per box,
best by predicted IoU). Per-category shape/dilation, the background mode, the addition box
and the empty-detection policy are shared with ``vlm_box`` (:mod:`iiie.maskers.segmenting`).

``segmenter: sam2`` (``masker=grounded_sam2``) swaps SAM for SAM 2.1 (transformers
``Sam2Model``, :mod:`iiie.maskers.sam2`) behind the same detector; the paper's ``sam`` stays
the default.

Compared with BrushEdit's public pipeline (first box only, "background" phrase, no
dilation) the defaults here unite all kept boxes, edit the complement of the subject for
background changes, and dilate relative to image size; each is an ablation switch.
"""

from __future__ import annotations

from collections.abc import Sequence

from iiie.devices import resolve_device, resolve_dtype
from iiie.maskers.detection import (
    GroundingDinoDetector,
    apply_ladder,
    clamp_boxes,
    select,
    threshold_ladder,
)
from iiie.maskers.sam import SEGMENTERS, build_segmenter
from iiie.maskers.segmenting import BoxFinding, BoxSamMasker
from iiie.offload import check_module_offload
from iiie.types import EditRequest

DEFAULT_LADDER = (0.30, 0.25, 0.20, 0.15, 0.10, 0.05)


class GroundedSamMasker(BoxSamMasker):
    """Grounding DINO + SAM with the configured box policy (see the module docstring).

    Paths: ``dino`` is an HF folder (``impl=transformers``) or the original ``.pth``
    (``impl=original``, with ``bert`` the local ``bert-base-uncased`` folder); ``sam`` is an
    HF folder or an original ``sam_vit_*.pth``. Models load on first use, once per process.

    ``offload`` (``runtime.offload``; GPU only): ``model`` keeps both models in host memory
    and moves each to the GPU for its own batch (the detector's, then SAM's), so they are
    never resident together; ``sequential`` streams their blocks in one at a time.
    """

    name = "grounded_sam"

    def __init__(
        self,
        impl: str = "transformers",
        dino: str | None = None,
        sam: str | None = None,
        bert: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        text_threshold: float = 0.25,
        box_thresholds: Sequence[float] = DEFAULT_LADDER,
        keep: str = "all",
        detect_batch_size: int = 4,
        num_heads: int = 8,
        categories: dict | None = None,
        add_box_shape: str = "rectangle",
        on_empty: str = "skip",
        background: str = "complement",
        background_phrase: str = "background",
        unnamed_subject: str | None = None,
        segmenter: str = "sam",
        offload: str = "none",
    ) -> None:
        super().__init__(categories=categories, add_box_shape=add_box_shape, on_empty=on_empty,
                         background=background, background_phrase=background_phrase,
                         unnamed_subject=unnamed_subject)
        if impl not in ("transformers", "original"):
            raise ValueError(f"masker.impl must be 'transformers' or 'original', got {impl!r}")
        if segmenter not in SEGMENTERS:
            raise ValueError(f"masker.segmenter must be 'sam' or 'sam2', got {segmenter!r}")
        if keep not in ("best", "all", "phrase"):
            raise ValueError(f"masker.keep must be best, all or phrase, got {keep!r}")
        self.ladder = threshold_ladder(box_thresholds, "masker.box_thresholds")
        self.impl, self.dino_path, self.sam_path, self.bert_path = impl, dino, sam, bert
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        self.offload = check_module_offload(offload, self.device, "masker.offload")
        self.text_threshold = float(text_threshold)
        self.keep = keep
        self.segmenter_kind = segmenter
        self.detect_batch_size = int(detect_batch_size)
        self.num_heads = int(num_heads)
        self._detector: GroundingDinoDetector | None = None
        self._segmenter = None

    def detector(self) -> GroundingDinoDetector:
        if self._detector is None:
            key = "masker.dino"
            self._detector = GroundingDinoDetector(
                self.impl, self.dino_path, self.bert_path, self.device, self.dtype, text_threshold=self.text_threshold,
                batch_size=self.detect_batch_size, num_heads=self.num_heads, config_key=key, bert_key="masker.bert",
                offload=self.offload,
            )
        return self._detector

    def segmenter(self):
        if self._segmenter is None:
            self._segmenter = build_segmenter(self.impl, self.sam_path, self.device, self.dtype, "masker.sam",
                                              kind=self.segmenter_kind, offload=self.offload)
        return self._segmenter

    def find_phrase_boxes(self, requests: Sequence[EditRequest], phrases: Sequence[str]) -> list[BoxFinding]:
        """The detector scores every (image, phrase) once (it batches same-size images)."""
        scored = self.detector().score_batch([r.image for r in requests], list(phrases), min_score=min(self.ladder))
        return [self._policy(q, phrase, r.size) for q, phrase, r in zip(scored, phrases, requests, strict=True)]

    def _policy(self, q, phrase: str, size) -> BoxFinding:
        """Ladder -> keep policy -> clamped boxes, with the best query kept as a fallback."""
        best = int(q.scores.argmax()) if len(q.scores) else None
        fallback = tuple(float(v) for v in q.boxes[best]) if best is not None else None
        kept, threshold = apply_ladder(q, self.ladder)
        if not kept:
            top = float(q.scores[best]) if best is not None else 0.0
            return BoxFinding(note=f"no box for {phrase!r} above {self.ladder[-1]:.2f} (best score {top:.3f})",
                              fallback_box=fallback, tag="none")
        chosen, note = select(q, kept, self.keep, phrase)
        boxes, scores = [], []
        for i in chosen:
            box = clamp_boxes([tuple(float(v) for v in q.boxes[i])], size)
            if box:
                boxes.append(box[0])
                scores.append(float(q.scores[i]))
        if not boxes:
            return BoxFinding(note=f"all boxes for {phrase!r} were degenerate after clamping", fallback_box=fallback, tag="none")
        return BoxFinding(boxes=boxes, scores=scores, note=note, fallback_box=fallback,
                          tag=f"{self.impl}{'+sam2' if self.segmenter_kind == 'sam2' else ''}@{threshold:.2f}:{self.keep}")
