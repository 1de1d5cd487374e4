"""PIE-Bench's automatic metrics (``metrics=pie_bench``), as in PnPInversion's
``evaluation/matrics_calculator.py`` with its default metric list.

``src`` = the input image, ``tgt`` = the edited image, ``m`` = the benchmark mask
(border forced to 1, see :mod:`iiie.data.pie_bench`), images as float32 in [0, 1]:

* ``pie_structure_distance``: whole images (no mask). Each image as float32 *0..255*
  CHW, ``Resize(224, max_size=480)`` on the tensor (bilinear; ``antialias=False`` as
  torchvision < 0.17 did for tensors, configurable) and ImageNet ``Normalize`` applied to
  those 0..255 values (the reference's quirk, kept). Keys of DINO ViT-B/8 block 11
  (all tokens, heads concatenated), their cosine self-similarity matrix, and the MSE
  between the two images' matrices.
* ``pie_psnr``, ``pie_lpips``, ``pie_mse``, ``pie_ssim``: on ``src*(1-m)`` vs
  ``tgt*(1-m)``; PSNR with data range 1 (capped at 100 dB: identical backgrounds are +inf
  in the reference), LPIPS with the SqueezeNet backbone on inputs mapped to [-1, 1], MSE
  the plain mean, SSIM torchmetrics' default (Gaussian 11x11, sigma 1.5, data range 1).
  Absent when the mask covers the whole image.
* ``pie_clip_whole``: CLIPScore of ``tgt`` and the target prompt (brackets removed), with
  CLIP ViT-L/14: ``max(100 * cos, 0)``.
* ``pie_clip_edited``: the same on ``uint8(tgt * m)``; absent when the mask is empty.

The paper's tables scale these (structure x10^3, LPIPS x10^3, MSE x10^4, SSIM x10^2);
the columns here are unscaled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchmetrics.functional.image import structural_similarity_index_measure
from torchvision import transforms

from iiie.metrics.backbones import (
    CLIP_FILES,
    HF_MODEL_FILES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SQUEEZENET_FILES,
    Dino,
    cosine,
    load_clip,
    load_dino,
    load_lpips_squeeze,
)
from iiie.metrics.distances import psnr, to_unit
from iiie.metrics.pixel import PSNR_CAP
from iiie.protocols import Scored
from iiie.weights import require_files


def structure_input(image: np.ndarray, antialias: bool = False) -> torch.Tensor:
    """HxWx3 float32 0..255 -> the reference's (1, 3, h, w) DINO input."""
    t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    tf = transforms.Compose(
        [
            transforms.Resize(224, max_size=480, antialias=antialias),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    return tf(t).unsqueeze(0)


def self_similarity(keys: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of every token's key with every other's (T x T)."""
    norm = keys.norm(dim=1, keepdim=True)
    factor = torch.clamp(norm @ norm.T, min=eps)
    return (keys @ keys.T) / factor


def structure_distance(
    dino: Dino, src: np.ndarray, tgt: np.ndarray, layer: int = 11, antialias: bool = False
) -> float:
    """MSE between the key self-similarity matrices of two 0..255 float images."""
    a = self_similarity(dino.keys(structure_input(src, antialias), layer))
    b = self_similarity(dino.keys(structure_input(tgt, antialias), layer))
    return float(torch.nn.functional.mse_loss(b, a))


def clip_score(clip, images: Sequence[Image.Image], texts: Sequence[str]) -> list[float]:
    """torchmetrics CLIPScore per pair: ``max(100 * cos(image, text), 0)``."""
    sims = cosine(clip.image_features(images), clip.text_features(texts))
    return [max(100.0 * float(s), 0.0) for s in sims]


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).unsqueeze(0)


class PIEBenchMetric:
    name = "pie_bench"

    def __init__(
        self,
        clip: str | None,
        dino: str | None,
        lpips: str | None,
        device: str = "auto",
        dtype: str = "float32",
        structure_layer: int = 11,
        antialias: bool = False,
        psnr_cap: float | None = PSNR_CAP,
        clip_key: str = "metrics.pie_bench.clip",
        dino_key: str = "metrics.pie_bench.dino",
        lpips_key: str = "metrics.pie_bench.lpips",
    ) -> None:
        require_files(clip, CLIP_FILES, clip_key, "Expected: openai/clip-vit-large-patch14.")
        require_files(dino, HF_MODEL_FILES, dino_key, "Expected: facebook/dino-vitb8.")
        require_files(lpips, [SQUEEZENET_FILES], lpips_key, "Expected: torchvision squeezenet1_1.")
        self.paths = {"clip": clip, "dino": dino, "lpips": lpips}
        self.keys = {"clip": clip_key, "dino": dino_key, "lpips": lpips_key}
        self.device, self.dtype = device, dtype
        self.structure_layer = int(structure_layer)
        self.antialias = bool(antialias)
        self.psnr_cap = psnr_cap

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]:
        rows: list[dict[str, float]] = [{} for _ in items]
        if not items:
            return rows
        clip = load_clip(self.paths["clip"], self.keys["clip"], self.device, self.dtype)
        dino = load_dino(self.paths["dino"], self.keys["dino"], self.device, "float32")
        lpips = load_lpips_squeeze(self.paths["lpips"], self.keys["lpips"], self.device)
        whole: list[tuple[int, Image.Image, str]] = []
        edited: list[tuple[int, Image.Image, str]] = []
        for row, (k, it) in zip(rows, enumerate(items), strict=True):
            src_img = it.sample.request.image.convert("RGB")
            tgt_img = it.edit.image.convert("RGB")
            if tgt_img.size != src_img.size:
                tgt_img = tgt_img.resize(src_img.size)
            src255 = np.asarray(src_img).astype(np.float32)
            tgt255 = np.asarray(tgt_img).astype(np.float32)
            row["pie_structure_distance"] = structure_distance(
                dino, src255, tgt255, self.structure_layer, self.antialias
            )
            mask = it.sample.truth.mask
            caption = it.sample.truth.target_caption
            if mask is not None:
                m = np.asarray(mask, dtype=np.float32)[..., None].repeat(3, axis=2)
                if (1 - m).sum() > 0:
                    a, b = to_unit(src_img) * (1 - m), to_unit(tgt_img) * (1 - m)
                    row["pie_psnr"] = psnr(b, a, self.psnr_cap)
                    row["pie_mse"] = float(torch.mean((_tensor(b) - _tensor(a)) ** 2))
                    row["pie_ssim"] = float(
                        structural_similarity_index_measure(_tensor(b), _tensor(a), data_range=1.0)
                    )
                    with torch.no_grad():
                        dev = next(lpips.parameters()).device
                        row["pie_lpips"] = float(
                            lpips(_tensor(b).to(dev) * 2 - 1, _tensor(a).to(dev) * 2 - 1)
                        )
                if caption and m.sum() > 0:
                    masked = Image.fromarray(np.uint8(np.asarray(tgt_img) * m))
                    edited.append((k, masked, caption))
            if caption:
                whole.append((k, tgt_img, caption))
        for column, group in (("pie_clip_whole", whole), ("pie_clip_edited", edited)):
            if group:
                scores = clip_score(clip, [g[1] for g in group], [g[2] for g in group])
                for (k, _, _), s in zip(group, scores, strict=True):
                    rows[k][column] = s
        return rows
