"""Emu Edit's automatic metrics (``metrics=emu_edit``): input versus output.

Emu Edit's benchmark has no target images, so its metrics compare the edited image with
the *input* and with the captions (columns prefixed ``emu_``):

* ``emu_clip_dir``: cosine between the CLIP image-embedding change
  ``E(output) - E(input)`` and the caption change ``T(output_caption) - T(input_caption)``,
  embeddings unit-normalised first, as InstructPix2Pix's ``ClipSimilarity``
  (``metrics/clip_similarity.py``), the code the direction score comes from. By default
  it follows that code exactly: its own CLIP (``dir_clip``, ViT-L/14 there) and its image
  preprocessing (``dir_preprocess: squash``: the [0, 1] tensor interpolated bicubic to
  224 x 224, no crop), captions cut at 77 tokens with the end token kept
  (``clip.tokenize(truncate=True)``). ``dir_clip: null`` uses ``clip`` instead, and
  ``dir_preprocess: crop`` OpenAI's resize + centre crop.
* ``emu_clip_i``: cosine of CLIP image embeddings, input vs output.
* ``emu_clip_out``: cosine of the output's image embedding and ``T(output_caption)``.
* ``emu_l1``: mean absolute error on [0, 1] RGB, output resized to the input's size with
  PIL's default resample (MagicBrush's ``eval_distance``).
* ``emu_dino``: cosine of DINO ViT-S/16 CLS tokens, input vs output.

Emu Edit did not publish its evaluation code; for CLIP-I, CLIP-out, L1 and DINO the paper
follows MagicBrush's metric definitions, so the same CLIP ViT-B/32 (OpenAI preprocessing)
and DINO ViT-S/16 pipelines are the defaults there (all config values; see
docs/EVALUATION.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from iiie.metrics.backbones import CLIP_FILES, CLIP_PREPROCESS, cosine, load_clip
from iiie.metrics.clip_dino import ClipDinoMetric, pair_scores
from iiie.metrics.distances import l1_l2_resized
from iiie.protocols import Scored
from iiie.weights import require_files


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


class EmuEditMetric(ClipDinoMetric):
    name = "emu_edit"

    def __init__(
        self,
        clip: str | None,
        dino: str | None,
        device: str = "auto",
        dtype: str = "float32",
        clip_key: str | None = None,
        dino_key: str | None = None,
        dir_clip: str | None = None,
        dir_preprocess: str = "squash",
        dir_clip_key: str = "metrics.emu_edit.dir_clip",
    ) -> None:
        super().__init__(clip, dino, device, dtype, clip_key, dino_key)
        if dir_preprocess not in CLIP_PREPROCESS:
            raise ValueError(
                f"metrics.emu_edit.dir_preprocess must be one of {CLIP_PREPROCESS}, got {dir_preprocess!r}"
            )
        if dir_clip is not None:
            require_files(
                dir_clip, CLIP_FILES, dir_clip_key,
                "Expected: openai/clip-vit-large-patch14 (InstructPix2Pix's ClipSimilarity); null = use `clip`.",
            )  # fmt: skip
        self.dir_clip_path, self.dir_clip_key = dir_clip, dir_clip_key
        self.dir_preprocess = dir_preprocess

    def dir_model(self):
        """The CLIP of the direction score (``dir_clip``, or ``clip`` when null)."""
        if self.dir_clip_path is None:
            return self.models()[0]
        return load_clip(self.dir_clip_path, self.dir_clip_key, self.device, self.dtype)

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
        both = [k for k in out_cap if items[k].sample.truth.source_caption]
        if both:
            for k, d in zip(both, self.directions([items[k] for k in both]), strict=True):
                rows[k]["emu_clip_dir"] = d
        return rows

    def directions(self, items: Sequence[Scored]) -> list[float]:
        """CLIP-dir of samples that have both captions (ClipSimilarity's
        ``sim_direction``: unit-normalised features, then the cosine of the differences)."""
        model = self.dir_model()
        i0 = model.image_features([it.sample.request.image for it in items], self.dir_preprocess)
        i1 = model.image_features([it.edit.image for it in items], self.dir_preprocess)
        t0 = model.text_features([it.sample.truth.source_caption for it in items], "eos")
        t1 = model.text_features([it.sample.truth.target_caption for it in items], "eos")
        return [float(v) for v in cosine(_unit(i1) - _unit(i0), _unit(t1) - _unit(t0))]
