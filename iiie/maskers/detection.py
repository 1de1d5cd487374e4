"""Grounding DINO detection and the box policy (threshold ladder, which boxes to keep).

The detector runs once per (image, phrase); every threshold of the ladder is then applied
to the same per-query scores, so lowering the threshold costs no extra forward pass.
Scores follow the original code: a query's score is its highest token probability
(sigmoid of the logits) over the caption; its phrase is the caption tokens whose
probability exceeds ``text_threshold``. Boxes come back in original-image pixels: the
model predicts ``(cx, cy, w, h)`` relative to the unpadded input, so scaling by the original
``(W, H)`` undoes the processor's resize exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from iiie import masks as M
from iiie.maskers.oracle import normalise_phrase
from iiie.offload import load_device, offload_module
from iiie.types import Box
from iiie.weights import load_once, require_files


@dataclass
class QueryScores:
    """All queries of one (image, caption) forward pass, in original pixels."""

    boxes: np.ndarray  # (Q, 4) xyxy
    scores: np.ndarray  # (Q,)
    phrases: list[str]  # per query, tokens above text_threshold


def preprocess_caption(phrase: str) -> str:
    """Grounding DINO's caption convention: lower case, ending with a period."""
    text = " ".join((phrase or "").lower().split())
    return text if text.endswith(".") else text + "."


def cxcywh_to_xyxy(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Relative ``(cx, cy, w, h)`` -> absolute ``(x0, y0, x1, y1)`` for an image of ``size=(W, H)``."""
    w, h = size
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx, cy, bw, bh = b.T
    return np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], axis=1)


def xyxy_to_cxcywh(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`cxcywh_to_xyxy`."""
    w, h = size
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = b.T
    return np.stack([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h], axis=1)


def threshold_ladder(values: Sequence[float], config_key: str) -> list[float]:
    """A masker's score ladder as floats, highest first; a clear error (naming
    ``config_key``) for an empty list or a threshold outside ``[0, 1)``."""
    ladder = [float(t) for t in values]
    if not ladder or any(not 0.0 <= t < 1.0 for t in ladder):
        raise ValueError(f"{config_key} must be a non-empty list in [0, 1), got {values!r}")
    return sorted(ladder, reverse=True)


def apply_ladder(q: QueryScores, ladder: Sequence[float]) -> tuple[list[int], float | None]:
    """Indices of the queries above the first threshold (highest first) that keeps at least one.

    Returns ``([], None)`` when even the last threshold keeps nothing.
    """
    for t in sorted((float(x) for x in ladder), reverse=True):
        keep = np.nonzero(q.scores > t)[0]
        if len(keep):
            return [int(i) for i in keep[np.argsort(-q.scores[keep], kind="stable")]], t
    return [], None


def phrase_matches(found: str, wanted: str) -> bool:
    """A detection's phrase matches the query when one contains the other (normalised)."""
    a, b = normalise_phrase(found), normalise_phrase(wanted)
    return bool(a) and bool(b) and (a == b or a in b or b in a)


def select(q: QueryScores, kept: list[int], keep: str, wanted: str) -> tuple[list[int], str | None]:
    """Apply the ``keep`` policy to the ladder's survivors (sorted by score).

    ``best``: the top box; ``all``: every survivor; ``phrase``: survivors whose phrase
    matches ``wanted`` (falls back to ``best`` with a note when none does).
    """
    if not kept:
        return [], None
    if keep == "best":
        return kept[:1], None
    if keep == "all":
        return kept, None
    if keep == "phrase":
        hits = [i for i in kept if phrase_matches(q.phrases[i], wanted)]
        if hits:
            return hits, None
        return kept[:1], f"no detected phrase matches {wanted!r}; kept the best box"
    raise ValueError(f"unknown box keep policy {keep!r}; expected best, all or phrase")


#: The blocks ``offload=sequential`` streams in one at a time (Swin, BERT, encoder and
#: decoder layers: nearly all the weights); transformers gives Grounding DINO no
#: ``_no_split_modules``.
DINO_BLOCKS = ("SwinLayer", "BertLayer", "GroundingDinoEncoderLayer", "GroundingDinoDecoderLayer")


class GroundingDinoDetector:
    """``GroundingDinoForObjectDetection`` + processor, from HF folders or the original ``.pth``.

    ``offload`` (``runtime.offload``, checked by the masker): ``model`` keeps the weights in
    host memory and moves them to ``device`` for each :meth:`score_batch` only.
    """

    def __init__(self, impl: str, path: str, bert: str | None = None, device="cpu", dtype=torch.float32,
                 text_threshold: float = 0.25, batch_size: int = 4, num_heads: int = 8,
                 config_key: str = "masker.dino", bert_key: str = "masker.bert", offload: str = "none") -> None:
        self.device, self.dtype = torch.device(device), dtype
        host = load_device(self.device, offload)
        self.text_threshold = float(text_threshold)
        self.batch_size = max(1, int(batch_size))
        if impl == "transformers":
            from transformers import AutoProcessor, GroundingDinoForObjectDetection

            folder = require_files(path, ["config.json", ("model.safetensors", "pytorch_model.bin"), ("preprocessor_config.json", "processor_config.json")],
                                   config_key, hint="A local copy of IDEA-Research/grounding-dino-base (or -tiny).")
            self.placement, self.processor = load_once(
                ("dino-hf", str(folder), str(device), str(dtype), offload),
                lambda: (offload_module(GroundingDinoForObjectDetection.from_pretrained(folder, dtype=dtype).to(host),
                                        offload, self.device, DINO_BLOCKS, "masker.offload"),
                         AutoProcessor.from_pretrained(folder)),
                label="grounding_dino",
            )
        elif impl == "original":
            from iiie.models.grounding_dino import load_original_grounding_dino

            def load():
                model, processor = load_original_grounding_dino(path, bert, device=host, dtype=dtype, num_heads=num_heads,
                                                                checkpoint_key=config_key, bert_key=bert_key)
                return offload_module(model, offload, self.device, DINO_BLOCKS, "masker.offload"), processor

            self.placement, self.processor = load_once(
                ("dino-original", str(path), str(bert), str(device), str(dtype), num_heads, offload),
                load, label="grounding_dino",
            )
        else:
            raise ValueError(f"unknown Grounding DINO impl {impl!r}; expected 'transformers' or 'original'")
        self.model = self.placement.module
        tok = self.processor.tokenizer
        self._skip_ids = {i for i in (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) if i is not None}
        self._skip_ids |= set(tok.convert_tokens_to_ids([".", "?"]))

    @torch.no_grad()
    def score_batch(self, images: Sequence[Image.Image], phrases: Sequence[str], min_score: float = 0.0) -> list[QueryScores]:
        """Score (image, phrase) pairs, ``batch_size`` pairs per forward pass.

        Only images of the same size share a forward pass: the Swin backbone sees the zero
        padding that a mixed-size batch needs, which shifts the scores (measured up to 0.1
        on the tiny model), whereas captions pad exactly thanks to the attention mask.
        Phrases are decoded only for queries scoring above ``min_score`` (the ladder's floor).
        """
        out: list[QueryScores | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.size, []).append(i)
        with self.placement.running():  # offload=model: on the GPU for this batch only
            for idx in groups.values():
                for s in range(0, len(idx), self.batch_size):
                    chunk = idx[s : s + self.batch_size]
                    for i, q in zip(chunk, self._forward([images[i] for i in chunk], [phrases[i] for i in chunk],
                                                         min_score), strict=True):
                        out[i] = q
        return out

    def _forward(self, images: Sequence[Image.Image], phrases: Sequence[str], min_score: float) -> list[QueryScores]:
        imgs = [im.convert("RGB") for im in images]
        caps = [preprocess_caption(p) for p in phrases]
        enc = self.processor(images=imgs, text=caps, return_tensors="pt", padding="longest")
        enc = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device)) for k, v in enc.items()}
        res = self.model(**enc)
        probs = res.logits.float().sigmoid().cpu()  # (B, Q, max_text_len)
        boxes = res.pred_boxes.float().cpu().numpy()
        ids = enc["input_ids"].cpu()
        out = []
        for b, im in enumerate(imgs):
            p = probs[b]
            scores = p.max(dim=-1).values.numpy()
            n = ids.shape[1]
            phrases_b = []
            for qi in range(p.shape[0]):
                if scores[qi] <= min_score:
                    phrases_b.append("")
                    continue
                tok = [int(t) for t, v in zip(ids[b], p[qi, :n] > self.text_threshold, strict=True)
                       if bool(v) and int(t) not in self._skip_ids]
                phrases_b.append(self.processor.tokenizer.decode(tok).strip() if tok else "")
            out.append(QueryScores(cxcywh_to_xyxy(boxes[b], im.size), scores, phrases_b))
        return out


def clamp_boxes(boxes: Sequence[Box], size: tuple[int, int]) -> list[Box]:
    """Clamp each box to the image and drop degenerate ones."""
    out = []
    for b in boxes:
        c = M.clamp_box(b, size)
        if not M.box_is_degenerate(c):
            out.append(c)
    return out
