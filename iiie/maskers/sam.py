"""SAM behind one small interface: boxes in original pixels -> one mask per box.

Two implementations, chosen by ``impl``:

* ``transformers``: ``SamModel`` + ``SamProcessor`` from a local HF folder (``sam-vit-huge``).
  Image embeddings for a batch of images are computed in one forward pass.
* ``original``: the ``segment-anything`` package as is (``SamPredictor``) on an original
  ``sam_vit_*.pth``, read with ``torch.load(weights_only=True)``. The ViT size is read from
  the checkpoint's shapes, so vit_h/l/b and tiny test checkpoints use the same code.

Both compute the image embedding once per image and decode all of that image's boxes
against it, ask for SAM's three candidate masks per box and keep the one with the highest
predicted IoU (the single-mask output is tuned for ambiguous point prompts, not boxes).

``offload`` (``masker.offload`` = ``runtime.offload``) is handled by
:func:`iiie.offload.offload_module`: ``model`` keeps the weights in host memory and puts
them on the GPU for each ``segment_batch`` only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from iiie.offload import ModuleOffload, load_device, offload_module
from iiie.types import Box
from iiie.weights import MissingWeightsError, load_once, require_files


@dataclass
class Segment:
    """SAM's chosen mask for one box (``True`` = object) and its predicted IoU."""

    mask: np.ndarray
    score: float


def choose_by_iou(masks: np.ndarray, ious: np.ndarray) -> list[Segment]:
    """From ``(boxes, k, H, W)`` candidates and ``(boxes, k)`` predicted IoUs keep the best per box."""
    out = []
    for cand, score in zip(masks, ious, strict=True):
        j = int(np.argmax(score))
        out.append(Segment(np.asarray(cand[j], dtype=bool), float(score[j])))
    return out


#: What a transformers SAM / SAM 2 folder must hold (``vlm_box`` checks it at build time).
HF_FILES = ["config.json", ("model.safetensors", "pytorch_model.bin"), ("preprocessor_config.json", "processor_config.json")]


def load_hf(model_cls, processor_cls, path, device, dtype, config_key: str, hint: str, label: str, files=HF_FILES,
            offload: str = "none", blocks=None) -> tuple[ModuleOffload, object]:
    """``(placement, processor)`` from a local transformers folder, once per process, folder,
    device, dtype and offload mode (SAM, SAM 2, SAM 3); ``placement.module`` is the model,
    placed by :func:`~iiie.offload.offload_module` (``blocks``: what ``sequential`` streams).
    The folder's files are checked first, so a missing one names ``config_key``; ``label``
    counts the load in ``LOAD_COUNTS``."""
    folder = require_files(path, files, config_key, hint=hint)
    host = load_device(torch.device(device), offload)

    def load():
        model = model_cls.from_pretrained(folder, dtype=dtype).to(host)
        return offload_module(model, offload, device, blocks, "masker.offload"), processor_cls.from_pretrained(folder)

    return load_once((f"{label}-hf", str(folder), str(device), str(dtype), offload), load, label=label)


def segment_each(images: Sequence[Image.Image], boxes: Sequence[Sequence[Box]], one) -> list[list[Segment]]:
    """``one(image, boxes)`` for each image that has boxes (its embedding computed once,
    all its boxes decoded against it); ``[]`` for the others."""
    return [one(image, bxs) if len(bxs) else [] for image, bxs in zip(images, boxes, strict=True)]


def to_model_boxes(boxes: Sequence[Box], original_hw: Sequence[int], resized_hw: Sequence[int]) -> torch.Tensor:
    """Original-pixel boxes -> SAM input coordinates, shape ``(1, n, 4)``.

    SAM resizes the long side to its input size and pads; box corners scale per axis by
    ``resized / original`` (what ``SamProcessor`` does for ``input_boxes``), so the image
    is preprocessed once for both the embedding and the prompts.
    """
    (h, w), (rh, rw) = original_hw, resized_hw
    scale = torch.tensor([rw / w, rh / h, rw / w, rh / h], dtype=torch.float64)
    return (torch.as_tensor(np.asarray(boxes, dtype=np.float64)).reshape(-1, 4) * scale).float()[None]


class HFSam:
    """``SamModel`` from a local transformers folder."""

    def __init__(self, path: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 config_key: str = "masker.sam", embed_batch_size: int = 4, offload: str = "none") -> None:
        from transformers import SamModel, SamProcessor

        self.device, self.dtype = torch.device(device), dtype
        self.placement, self.processor = load_hf(SamModel, SamProcessor, path, device, dtype, config_key,
                                                 "A local copy of facebook/sam-vit-huge (transformers layout).", "sam",
                                                 offload=offload)
        self.model = self.placement.module
        self.embed_batch_size = max(1, int(embed_batch_size))

    @torch.no_grad()
    def segment_batch(self, images: Sequence[Image.Image], boxes: Sequence[Sequence[Box]]) -> list[list[Segment]]:
        """For each image, one :class:`Segment` per box (images without boxes are skipped)."""
        with self.placement.running():
            return self._segment_batch(images, boxes)

    def _segment_batch(self, images: Sequence[Image.Image], boxes: Sequence[Sequence[Box]]) -> list[list[Segment]]:
        todo = [i for i, b in enumerate(boxes) if len(b)]
        results: list[list[Segment]] = [[] for _ in images]
        for start in range(0, len(todo), self.embed_batch_size):
            idx = todo[start : start + self.embed_batch_size]
            imgs = [images[i].convert("RGB") for i in idx]
            enc = self.processor(images=imgs, return_tensors="pt")
            pixels = enc["pixel_values"].to(self.device, self.dtype)
            embeddings = self.model.get_image_embeddings(pixels)  # once per image
            for j, i in enumerate(idx):
                orig, reshaped = enc["original_sizes"][j : j + 1], enc["reshaped_input_sizes"][j : j + 1]
                out = self.model(
                    image_embeddings=embeddings[j : j + 1],
                    input_boxes=to_model_boxes(boxes[i], orig[0].tolist(), reshaped[0].tolist()).to(self.device, self.dtype),
                    multimask_output=True,
                )
                masks = self.processor.image_processor.post_process_masks(out.pred_masks.float().cpu(), orig, reshaped)[0].numpy()
                results[i] = choose_by_iou(masks, out.iou_scores[0].float().cpu().numpy())
        return results


def _sam_architecture(sd: dict[str, torch.Tensor]) -> dict:
    """Read the SAM ViT and decoder sizes from an original checkpoint's shapes."""
    try:
        patch = sd["image_encoder.patch_embed.proj.weight"]
        embed_dim, patch_size = int(patch.shape[0]), int(patch.shape[-1])
        grid = int(sd["image_encoder.pos_embed"].shape[1])
        depth = len({k.split(".")[2] for k in sd if k.startswith("image_encoder.blocks.")})
        globals_, windows, head_dim = [], set(), None
        for i in range(depth):
            rel = sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"]
            head_dim = int(rel.shape[1])
            size = (int(rel.shape[0]) + 1) // 2
            if size == grid:
                globals_.append(i)
            else:
                windows.add(size)
        prompt_dim = int(sd["prompt_encoder.no_mask_embed.weight"].shape[1])
        mask_in = int(sd["prompt_encoder.mask_downscaling.3.weight"].shape[0])
        mlp_dim = int(sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0])
        dec_depth = len({k.split(".")[3] for k in sd if k.startswith("mask_decoder.transformer.layers.")})
        iou_hidden = int(sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0])
        iou_depth = len({k.split(".")[3] for k in sd if k.startswith("mask_decoder.iou_prediction_head.layers.")})
        n_masks = int(sd["mask_decoder.mask_tokens.weight"].shape[0]) - 1
    except KeyError as e:
        raise ValueError(f"not an original SAM checkpoint: missing {e.args[0]!r}") from None
    if len(windows) > 1:
        raise ValueError(f"SAM blocks disagree on the window size: {sorted(windows)}")
    return dict(
        embed_dim=embed_dim, patch_size=patch_size, image_size=grid * patch_size, depth=depth,
        num_heads=embed_dim // head_dim, global_attn_indexes=globals_, window_size=windows.pop() if windows else 0,
        prompt_dim=prompt_dim, mask_in_chans=mask_in, mlp_dim=mlp_dim, decoder_depth=dec_depth,
        iou_hidden=iou_hidden, iou_depth=iou_depth, num_multimask_outputs=n_masks,
    )


def build_original_sam(checkpoint: str | os.PathLike):
    """``segment_anything.modeling.Sam`` sized from the checkpoint and loaded strictly."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    from iiie.models.grounding_dino.original import safe_torch_load

    sd = safe_torch_load(checkpoint)
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    a = _sam_architecture(sd)
    grid = a["image_size"] // a["patch_size"]
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=a["depth"], embed_dim=a["embed_dim"], img_size=a["image_size"], mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=a["num_heads"], patch_size=a["patch_size"],
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=tuple(a["global_attn_indexes"]),
            window_size=a["window_size"], out_chans=a["prompt_dim"],
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=a["prompt_dim"], image_embedding_size=(grid, grid),
            input_image_size=(a["image_size"], a["image_size"]), mask_in_chans=a["mask_in_chans"],
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=a["num_multimask_outputs"],
            transformer=TwoWayTransformer(depth=a["decoder_depth"], embedding_dim=a["prompt_dim"], mlp_dim=a["mlp_dim"], num_heads=8),
            transformer_dim=a["prompt_dim"], iou_head_depth=a["iou_depth"], iou_head_hidden_dim=a["iou_hidden"],
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.load_state_dict(sd, strict=True)
    return sam.eval()


#: segment-anything's ViT blocks and two-way decoder blocks (``offload=sequential``).
ORIGINAL_SAM_BLOCKS = ("Block", "TwoWayAttentionBlock")


class OriginalSam:
    """``segment_anything.SamPredictor`` on an original checkpoint (vit_h/l/b)."""

    def __init__(self, checkpoint: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 config_key: str = "masker.sam_checkpoint", offload: str = "none") -> None:
        from segment_anything import SamPredictor

        path = Path(str(checkpoint)).expanduser()
        if str(checkpoint) in ("", "None", "???") or not path.is_file():
            raise MissingWeightsError(
                f"SAM checkpoint not found: {path} (from `{config_key}`). Get sam_vit_h_4b8939.pth from "
                "facebookresearch/segment-anything and put it there."
            )
        if dtype != torch.float32:
            dtype = torch.float32  # SamPredictor feeds float32 tensors; keep the model in float32
        self.device = torch.device(device)
        self.placement = load_once(
            ("sam-original", str(path), str(device), offload),
            lambda: offload_module(build_original_sam(path), offload, self.device, ORIGINAL_SAM_BLOCKS, "masker.offload"),
            label="sam",
        )
        self.predictor = SamPredictor(self.placement.module)

    def segment_batch(self, images: Sequence[Image.Image], boxes: Sequence[Sequence[Box]]) -> list[list[Segment]]:
        with self.placement.running():  # SamPredictor reads model.device: set once the weights are placed
            return segment_each(images, boxes, self._segment_one)

    @torch.no_grad()
    def _segment_one(self, image: Image.Image, bxs: Sequence[Box]) -> list[Segment]:
        arr = np.asarray(image.convert("RGB"))
        self.predictor.set_image(arr)  # image embedding once per image
        t = torch.as_tensor(np.asarray(bxs, dtype=np.float32), device=self.predictor.device)
        t = self.predictor.transform.apply_boxes_torch(t, arr.shape[:2])
        masks, ious, _ = self.predictor.predict_torch(None, None, boxes=t, multimask_output=True)
        segments = choose_by_iou(masks.cpu().numpy(), ious.float().cpu().numpy())
        self.predictor.reset_image()
        return segments


#: ``masker.segmenter`` values: the paper's SAM (``impl`` picks HF or original) or SAM 2.1 (HF only).
SEGMENTERS = ("sam", "sam2")


def build_segmenter(impl: str, path: str, device, dtype, config_key: str, kind: str = "sam", offload: str = "none"):
    """The one place a segmenter is chosen: ``kind=sam2`` is :class:`~iiie.maskers.sam2.HFSam2`
    (transformers only, whatever ``impl`` says of the detector); ``kind=sam`` is ``HFSam`` for
    ``impl=transformers`` and ``OriginalSam`` for ``impl=original``. ``offload`` is the
    masker's (already checked against ``device``)."""
    if kind not in SEGMENTERS:
        raise ValueError(f"masker.segmenter must be 'sam' or 'sam2', got {kind!r}")
    if kind == "sam2":
        from iiie.maskers.sam2 import HFSam2  # sam2 builds on this module

        return HFSam2(path, device, dtype, config_key=config_key, offload=offload)
    if impl == "transformers":
        return HFSam(path, device, dtype, config_key=config_key, offload=offload)
    if impl == "original":
        return OriginalSam(path, device, dtype, config_key=config_key, offload=offload)
    raise ValueError(f"unknown SAM impl {impl!r}; expected 'transformers' or 'original'")
