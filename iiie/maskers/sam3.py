"""``masker=sam3``: SAM 3 finds and segments the planner's object phrase in one model.

SAM 3 (Meta, 2025) does promptable concept segmentation: given an image and a short noun
phrase it returns every instance of that concept with a box, a mask and a score. That
replaces both halves of Grounded-SAM (Grounding DINO's boxes, then SAM on each box) with
one forward pass per (image, phrase), so it is the 2026 alternative in the step-3 ablation.

The model is transformers' ``Sam3Model`` with ``Sam3Processor`` from a local HF folder
(``facebook/sam3``, gated). Scores and masks come from the processor's own
``post_process_instance_segmentation`` (query probability times the image-level presence
probability; masks resized to the image and cut at ``mask_threshold``); the score ladder
and the ``keep`` policy are the same functions ``grounded_sam`` applies to its detector
(:mod:`iiie.maskers.detection`). Everything after that (union of the kept instances,
category shape and dilation, the background complement, the addition box, ``on_empty``)
is the shared routing of :class:`~iiie.maskers.segmenting.BoxSamMasker`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import torch

from iiie import masks as M
from iiie.batching import chunks
from iiie.devices import resolve_device, resolve_dtype
from iiie.maskers.detection import QueryScores, apply_ladder, select, threshold_ladder
from iiie.maskers.sam import HF_FILES, load_hf
from iiie.maskers.segmenting import BoxFinding, BoxSamMasker
from iiie.offload import check_module_offload
from iiie.types import EditRequest

DEFAULT_LADDER = (0.5, 0.4, 0.3, 0.2, 0.1)
FILES = [*HF_FILES, ("tokenizer.json", "vocab.json")]  # SAM 3 also reads its CLIP tokenizer
#: ViT, CLIP text, DETR encoder/decoder and geometry blocks (``offload=sequential``;
#: transformers gives ``Sam3Model`` no ``_no_split_modules``).
BLOCKS = ("Sam3ViTLayer", "CLIPEncoderLayer", "Sam3DetrEncoderLayer", "Sam3DetrDecoderLayer", "Sam3GeometryEncoderLayer")
HINT = "A local copy of facebook/sam3 (gated: accept its licence, then `python -m iiie.weights fetch masker=sam3`)."


class Sam3Masker(BoxSamMasker):
    """Text-prompted SAM 3 instances -> the shared category routing (module docstring).

    ``model_path`` is an HF folder with ``Sam3Model`` weights, the processor and its CLIP
    tokenizer. The model loads on first use, once per process. ``offload``
    (``runtime.offload``; GPU only): ``model`` keeps the weights in host memory and moves
    them to the GPU for each :meth:`find_phrase_boxes` batch; ``sequential`` streams its
    blocks in one at a time.
    """

    name = "sam3"

    def __init__(
        self,
        model_path: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        score_thresholds: Sequence[float] = DEFAULT_LADDER,
        mask_threshold: float = 0.5,
        keep: str = "all",
        batch_size: int = 4,
        categories: dict | None = None,
        add_box_shape: str = "rectangle",
        on_empty: str = "skip",
        background: str = "complement",
        background_phrase: str = "background",
        unnamed_subject: str | None = None,
        offload: str = "none",
    ) -> None:
        super().__init__(categories=categories, add_box_shape=add_box_shape, on_empty=on_empty,
                         background=background, background_phrase=background_phrase,
                         unnamed_subject=unnamed_subject)
        if keep not in ("best", "all"):
            raise ValueError(f"masker.keep must be best or all for sam3 (it has no per-instance phrase), got {keep!r}")
        self.ladder = threshold_ladder(score_thresholds, "masker.score_thresholds")
        if not 0.0 <= float(mask_threshold) < 1.0:
            raise ValueError(f"masker.mask_threshold must be in [0, 1), got {mask_threshold!r}")
        self.model_path = model_path
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        self.offload = check_module_offload(offload, self.device, "masker.offload")
        self.mask_threshold = float(mask_threshold)
        self.keep = keep
        self.batch_size = max(1, int(batch_size))
        self._model = None

    def model(self):
        """``(Sam3Model, Sam3Processor)``, loaded once per process, folder and offload mode."""
        return self.placement().module, self._model[1]

    def placement(self):
        """The model's :class:`~iiie.offload.ModuleOffload` (loads it on first use)."""
        if self._model is None:
            from transformers import Sam3Model, Sam3Processor

            self._model = load_hf(Sam3Model, Sam3Processor, self.model_path, self.device, self.dtype,
                                  "masker.model_path", HINT, "sam3", files=FILES, offload=self.offload, blocks=BLOCKS)
        return self._model[0]

    def find_phrase_boxes(self, requests: Sequence[EditRequest], phrases: Sequence[str]) -> list[BoxFinding]:
        """``batch_size`` (image, phrase) pairs per forward pass."""
        pairs = list(zip(requests, phrases, strict=True))
        # offload=model: on the GPU for this batch only (offload=none loads at the first forward)
        with self.placement().running() if self.offload != "none" else nullcontext():
            return [f for chunk in chunks(pairs, self.batch_size)
                    for f in self._forward([r for r, _ in chunk], [p for _, p in chunk])]

    @torch.no_grad()
    def _forward(self, requests: Sequence[EditRequest], phrases: Sequence[str]) -> list[BoxFinding]:
        """One batched forward pass; every image has its own phrase (the processor resizes
        every image to the model's square input, so mixed sizes batch exactly)."""
        model, processor = self.model()
        images = [r.image.convert("RGB") for r in requests]
        enc = processor(images=images, text=[" ".join(p.lower().split()) for p in phrases], return_tensors="pt")
        enc = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
               for k, v in enc.items() if k != "original_sizes"}
        res = model(**enc)
        raw = SimpleNamespace(pred_logits=res.pred_logits.float().cpu(), pred_boxes=res.pred_boxes.float().cpu(),
                              pred_masks=res.pred_masks.float().cpu(),
                              presence_logits=None if res.presence_logits is None else res.presence_logits.float().cpu())
        sizes = [(im.height, im.width) for im in images]
        floor = min(self.ladder)
        kept = processor.post_process_instance_segmentation(raw, threshold=floor, mask_threshold=self.mask_threshold,
                                                            target_sizes=sizes)
        scores_all = raw.pred_logits.sigmoid()
        if raw.presence_logits is not None:
            scores_all = scores_all * raw.presence_logits.sigmoid()
        out = []
        for b, (im, phrase, inst) in enumerate(zip(images, phrases, kept, strict=True)):
            top = int(scores_all[b].argmax())
            w, h = im.size
            fallback = tuple(float(v) for v in (raw.pred_boxes[b, top] * torch.tensor([w, h, w, h])).tolist())
            out.append(self._policy(inst, phrase, im.size, fallback, float(scores_all[b, top]), floor))
        return out

    def _policy(self, inst: dict, phrase: str, size, fallback, top: float, floor: float) -> BoxFinding:
        """Ladder -> keep policy -> clamped boxes with their masks (a degenerate box with a
        non-empty mask is replaced by the mask's bounding box)."""
        scores = inst["scores"].numpy().astype(np.float64)
        q = QueryScores(inst["boxes"].numpy().astype(np.float64), scores, [phrase] * len(scores))
        idx, threshold = apply_ladder(q, self.ladder)
        if not idx:
            return BoxFinding(note=f"no SAM 3 instance of {phrase!r} above {floor:.2f} (best score {top:.3f})",
                              fallback_box=fallback, tag="none")
        chosen, _ = select(q, idx, self.keep, phrase)
        boxes, kept_scores, masks = [], [], []
        for i in chosen:
            mask = inst["masks"][i].numpy().astype(bool)
            box = M.clamp_box(tuple(float(v) for v in q.boxes[i]), size)
            if M.box_is_degenerate(box):
                box = M.mask_to_box(mask)
                if box is None:
                    continue
            boxes.append(tuple(float(v) for v in box))
            kept_scores.append(float(scores[i]))
            masks.append(mask)
        if not boxes:
            return BoxFinding(note=f"all SAM 3 instances of {phrase!r} were degenerate", fallback_box=fallback, tag="none")
        return BoxFinding(boxes=boxes, scores=kept_scores, masks=masks, fallback_box=fallback,
                          tag=f"{threshold:.2f}:{self.keep}")
