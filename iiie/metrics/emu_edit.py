"""Emu Edit's automatic metrics (``metrics=emu_edit``): input versus output.

Emu Edit's benchmark has no target images, so its metrics compare the edited image with
the *input* and with the captions (columns prefixed ``emu_``):

* ``emu_clip_dir``: cosine between the CLIP image-embedding change
  ``E(output) - E(input)`` and the caption change ``T(output_caption) - T(input_caption)``,
  embeddings unit-normalised first (InstructPix2Pix's ``ClipSimilarity``).
* ``emu_clip_i``: cosine of CLIP image embeddings, input vs output.
* ``emu_clip_out``: cosine of the output's image embedding and ``T(output_caption)``.
* ``emu_l1``: mean absolute error on [0, 1] RGB, output resized to the input's size with
  PIL's default resample (MagicBrush's ``eval_distance``).
* ``emu_dino``: cosine of DINO ViT-S/16 CLS tokens, input vs output.

Emu Edit did not publish its evaluation code; the paper follows MagicBrush's metric
definitions, so the same CLIP ViT-B/32 and DINO ViT-S/16 pipelines are the defaults here
(both are config values; see docs/EVALUATION.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from iiie.metrics.backbones import cosine
from iiie.metrics.clip_dino import ClipDinoMetric, pair_scores
from iiie.metrics.distances import l1_l2_resized
from iiie.protocols import Scored


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


class EmuEditMetric(ClipDinoMetric):
    name = "emu_edit"

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]:
        rows: list[dict[str, float]] = [{} for _ in items]
        if not items:
            return rows
        clip, dino = self.models()
        inputs = [it.sample.request.image for it in items]
        outputs = [it.edit.image for it in items]
        for row, a, b in zip(rows, outputs, inputs, strict=True):
            row["emu_l1"] = l1_l2_resized(a, b)[0]
        f_in, f_out, clip_i, dino_s = pair_scores(clip, dino, inputs, outputs)
        for k, row in enumerate(rows):
            row["emu_clip_i"] = float(clip_i[k])
            row["emu_dino"] = float(dino_s[k])
        out_cap = [k for k, it in enumerate(items) if it.sample.truth.target_caption]
        if out_cap:
            t_out = clip.text_features([items[k].sample.truth.target_caption for k in out_cap])
            sims = cosine(f_out[out_cap], t_out)
            for j, k in enumerate(out_cap):
                rows[k]["emu_clip_out"] = float(sims[j])
            both = [(j, k) for j, k in enumerate(out_cap) if items[k].sample.truth.source_caption]
            if both:
                t_in = clip.text_features([items[k].sample.truth.source_caption for _, k in both])
                ks = [k for _, k in both]
                # Unit-normalise before differencing, as InstructPix2Pix's ClipSimilarity
                # (the origin of CLIP-dir) does.
                d_img = _unit(f_out[ks]) - _unit(f_in[ks])
                d_txt = _unit(t_out[[j for j, _ in both]]) - _unit(t_in)
                dirs = cosine(d_img, d_txt)
                for m, k in enumerate(ks):
                    rows[k]["emu_clip_dir"] = float(dirs[m])
        return rows
