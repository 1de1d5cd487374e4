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

Outputs of another size: PnPInversion's released outputs are side-by-side panels (e.g.
2048x512: source, reconstructions, edit), and ``evaluate.py`` crops the bottom-right
512x512 tile whenever the output is not square. ``panel_crop: bottom_right`` (default)
does the same for an output that differs from the source's size and is not square,
cropping a source-sized tile from the bottom-right corner; any other size mismatch (or
``panel_crop: none``) resizes the whole output to the source's size (the reference would
stop on the shape mismatch there). See :func:`fit_output`.

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

from iiie.errors import SampleError
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

PANEL_CROPS = ("bottom_right", "none")


def fit_output(
    output: Image.Image, source_size: tuple[int, int], panel_crop: str = "bottom_right"
) -> Image.Image:
    """The part of ``output`` that is scored against a ``source_size`` source.

    Same size: as is. ``panel_crop="bottom_right"`` and a non-square output of another
    size (the reference's test, ``tgt.size[0] != tgt.size[1]``): the bottom-right
    ``source_size`` tile, as PnPInversion ``evaluate.py`` crops its 512x512 edit tile
    (PIE-Bench sources are all 512x512, so its fixed 512 is the source's size). A panel
    smaller than the source is an error. Anything else: resized to ``source_size``.
    """
    if panel_crop not in PANEL_CROPS:
        raise ValueError(f"panel_crop must be one of {PANEL_CROPS}, got {panel_crop!r}")
    if output.size == tuple(source_size):
        return output
    w, h = output.size
    sw, sh = source_size
    if panel_crop == "bottom_right" and w != h:
        if w < sw or h < sh:
            raise SampleError(
                f"output {w}x{h} is not square (a panel) but smaller than the {sw}x{sh} "
                "source: cannot crop its bottom-right tile (set metrics.pie_bench.panel_crop=none "
                "to resize instead)"
            )
        return output.crop((w - sw, h - sh, w, h))
    return output.resize((sw, sh))


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
    # torchmetrics cuts captions over 77 tokens by slicing the ids (no end token kept)
    sims = cosine(clip.image_features(images), clip.text_features(texts, truncation="slice"))
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
        panel_crop: str = "bottom_right",
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
        if panel_crop not in PANEL_CROPS:
            raise ValueError(f"metrics.pie_bench.panel_crop must be one of {PANEL_CROPS}, got {panel_crop!r}")
        self.panel_crop = panel_crop

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
            tgt_img = fit_output(it.edit.image.convert("RGB"), src_img.size, self.panel_crop)
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
