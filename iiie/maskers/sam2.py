"""SAM 2 behind the segmenter interface of :mod:`iiie.maskers.sam` (boxes -> one mask per box).

``masker=grounded_sam masker.segmenter=sam2`` (or ``masker=grounded_sam2``) puts
transformers' ``Sam2Model`` + ``Sam2Processor`` (``facebook/sam2.1-hiera-large``) behind
Grounding DINO instead of SAM. Like :class:`~iiie.maskers.sam.HFSam` it prompts all boxes
of an image in one call (one image embedding), asks for the three candidate masks and
keeps the one with the highest predicted IoU (:func:`~iiie.maskers.sam.choose_by_iou`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from iiie.maskers.sam import Segment, choose_by_iou, load_hf, segment_each
from iiie.types import Box

#: Hiera blocks and two-way decoder blocks (``offload=sequential``; transformers gives
#: ``Sam2Model`` no ``_no_split_modules``).
BLOCKS = ("Sam2MultiScaleBlock", "Sam2TwoWayAttentionBlock")
HINT = "A local copy of facebook/sam2.1-hiera-large (transformers layout): `python -m iiie.weights fetch masker=grounded_sam2`."


class HFSam2:
    """``Sam2Model`` from a local transformers folder."""

    def __init__(self, path: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 config_key: str = "masker.sam", offload: str = "none") -> None:
        from transformers import Sam2Model, Sam2Processor

        self.device, self.dtype = torch.device(device), dtype
        self.placement, self.processor = load_hf(Sam2Model, Sam2Processor, path, device, dtype, config_key, HINT, "sam2",
                                                 offload=offload, blocks=BLOCKS)
        self.model = self.placement.module

    def segment_batch(self, images: Sequence[Image.Image], boxes: Sequence[Sequence[Box]]) -> list[list[Segment]]:
        """For each image, one :class:`Segment` per box (images without boxes are skipped)."""
        with self.placement.running():
            return segment_each(images, boxes, self._segment_one)

    @torch.no_grad()
    def _segment_one(self, image: Image.Image, bxs: Sequence[Box]) -> list[Segment]:
        enc = self.processor(images=[image.convert("RGB")], input_boxes=[[list(map(float, b)) for b in bxs]],
                             return_tensors="pt")
        out = self.model(pixel_values=enc["pixel_values"].to(self.device, self.dtype),
                         input_boxes=enc["input_boxes"].to(self.device, self.dtype), multimask_output=True)
        masks = self.processor.post_process_masks(out.pred_masks.float().cpu(), enc["original_sizes"])[0].numpy()
        return choose_by_iou(masks, out.iou_scores[0].float().cpu().numpy())
