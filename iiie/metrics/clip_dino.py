"""Shared part of the metrics built on MagicBrush's CLIP ViT-B/32 + DINO ViT-S/16 pair.

MagicBrush scores output vs target, Emu Edit (which follows MagicBrush's definitions)
output vs input; both take the same two weight folders and compute the same CLIP-image and
DINO cosines for a list of image pairs. :class:`ClipDinoMetric` holds the folders and
:func:`pair_scores` does that computation; the benchmark modules choose the pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from iiie.metrics.backbones import (
    CLIP_FILES,
    HF_MODEL_FILES,
    Clip,
    Dino,
    cosine,
    load_clip,
    load_dino,
)
from iiie.weights import require_files


class ClipDinoMetric:
    """Checks the CLIP and DINO folders at construction (a clear error before any work)
    and loads them once, on first use. ``clip_key``/``dino_key`` (the config keys named in
    errors) default to ``metrics.<name>.clip`` / ``metrics.<name>.dino``."""

    name = "clip_dino"

    def __init__(
        self,
        clip: str | None,
        dino: str | None,
        device: str = "auto",
        dtype: str = "float32",
        clip_key: str | None = None,
        dino_key: str | None = None,
    ) -> None:
        clip_key = clip_key or f"metrics.{self.name}.clip"
        dino_key = dino_key or f"metrics.{self.name}.dino"
        require_files(clip, CLIP_FILES, clip_key, "Expected: openai/clip-vit-base-patch32.")
        require_files(dino, HF_MODEL_FILES, dino_key, "Expected: facebook/dino-vits16.")
        self.clip_path, self.dino_path = clip, dino
        self.clip_key, self.dino_key = clip_key, dino_key
        self.device, self.dtype = device, dtype

    def models(self) -> tuple[Clip, Dino]:
        """The (CLIP, DINO) models, loaded once per process."""
        return (load_clip(self.clip_path, self.clip_key, self.device, self.dtype),
                load_dino(self.dino_path, self.dino_key, self.device, self.dtype))


def pair_scores(
    clip: Clip, dino: Dino, a: Sequence[Image.Image], b: Sequence[Image.Image]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """CLIP image features of ``a`` and ``b`` (kept for caption scores), and the per-pair
    cosines of CLIP image features and of DINO CLS tokens."""
    f_a, f_b = clip.image_features(a), clip.image_features(b)
    return f_a, f_b, cosine(f_a, f_b), cosine(dino.cls_features(a), dino.cls_features(b))
