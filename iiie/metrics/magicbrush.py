"""MagicBrush's automatic metrics (``metrics=magicbrush``), as in its ``image_eval.py``.

Per sample with a ground-truth target image (columns prefixed ``mb_``):

* ``mb_l1`` / ``mb_l2``: mean absolute / squared error on [0, 1] RGB (``ToTensor``),
  after resizing the *output* to the target's size with PIL's default resample
  (``Image.resize(size)`` without a filter: bicubic since Pillow 7).
* ``mb_clip_i``: cosine of CLIP ViT-B/32 image embeddings, output vs target.
* ``mb_dino``: cosine of DINO ViT-S/16 final-norm CLS tokens, output vs target
  (Resize 256 bicubic, CenterCrop 224, ImageNet mean/std).
* ``mb_clip_t``: cosine of the output's CLIP image embedding and the CLIP text embedding
  of the target's *local* description (``truth.target_caption``).

Samples without a target get no columns. The benchmark averages over samples (per turn
in the independent setting).
"""

from __future__ import annotations

from collections.abc import Sequence

from iiie.metrics.backbones import cosine
from iiie.metrics.clip_dino import ClipDinoMetric, pair_scores
from iiie.metrics.distances import l1_l2_resized
from iiie.protocols import Scored


class MagicBrushMetric(ClipDinoMetric):
    name = "magicbrush"

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]:
        rows: list[dict[str, float]] = [{} for _ in items]
        idx = [i for i, it in enumerate(items) if it.sample.truth.target is not None]
        if not idx:
            return rows
        clip, dino = self.models()
        outs = [items[i].edit.image for i in idx]
        targets = [items[i].sample.truth.target for i in idx]
        for i, out, tgt in zip(idx, outs, targets, strict=True):
            rows[i]["mb_l1"], rows[i]["mb_l2"] = l1_l2_resized(out, tgt)
        f_out, _, clip_i, dino_s = pair_scores(clip, dino, outs, targets)
        for k, i in enumerate(idx):
            rows[i]["mb_clip_i"] = float(clip_i[k])
            rows[i]["mb_dino"] = float(dino_s[k])
        cap = [(k, i) for k, i in enumerate(idx) if items[i].sample.truth.target_caption]
        if cap:
            text = clip.text_features([items[i].sample.truth.target_caption for _, i in cap])
            sims = cosine(f_out[[k for k, _ in cap]], text)
            for j, (_, i) in enumerate(cap):
                rows[i]["mb_clip_t"] = float(sims[j])
        return rows
