"""Metrics against exact ground truth: plan accuracy, mask IoU and masked pixel scores.

These are the columns of the synthetic benchmark's table. Pixel values are on [0, 1] RGB;
PSNR and SSIM come from scikit-image (SSIM's per-pixel map averaged over the region), and
PSNR is capped at ``PSNR_CAP`` dB because an exact paste-back makes the outside region
identical to the source (infinite PSNR), which would make every mean infinite.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from iiie.maskers.oracle import normalise_phrase
from iiie.masks import iou
from iiie.protocols import Scored
from iiie.types import Category, MaskResult, Plan

PSNR_CAP = 100.0
SSIM_RADIUS = 3  # half of scikit-image's default 7x7 window


def as_float(image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """PIL -> HxWx3 float64 in [0, 1]; resized (bicubic) to ``size`` if given and different."""
    img = image.convert("RGB")
    if size is not None and img.size != tuple(size):
        img = img.resize(tuple(size), Image.BICUBIC)
    return np.asarray(img, dtype=np.float64) / 255.0


def masked_mse(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float | None:
    """Mean squared error over ``region`` (HxW bool; None = whole image); None if empty."""
    diff = (a - b) ** 2
    if region is not None:
        if not region.any():
            return None
        diff = diff[region]
    return float(diff.mean())


def masked_l1(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float | None:
    diff = np.abs(a - b)
    if region is not None:
        if not region.any():
            return None
        diff = diff[region]
    return float(diff.mean())


def masked_psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float | None:
    """PSNR in dB for data range 1, capped at :data:`PSNR_CAP`."""
    mse = masked_mse(a, b, region)
    if mse is None:
        return None
    if mse <= 10 ** (-PSNR_CAP / 10):
        return PSNR_CAP
    return float(10 * np.log10(1.0 / mse))


def masked_ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float | None:
    """Mean of scikit-image's SSIM map (7x7 window, data range 1) over ``region``.

    The region is first eroded by the 7x7 window (a square) so that only pixels whose
    whole window lies inside it count: otherwise a change just across the border lowers
    the score of a region that was preserved exactly. If erosion empties the region, the
    region itself is used.
    """
    if region is not None and not region.any():
        return None
    if min(a.shape[:2]) < 7:
        return None
    _, smap = structural_similarity(a, b, channel_axis=-1, data_range=1.0, full=True)
    smap = smap.mean(-1)
    if region is None:
        return float(smap.mean())
    k = 2 * SSIM_RADIUS + 1
    inner = cv2.erode(region.astype(np.uint8), np.ones((k, k), np.uint8), borderValue=1).astype(bool)
    use = inner if inner.any() else region
    return float(smap[use].mean())


#: Words that name no object ("the cup on the table" is about a cup and a table).
_FUNCTION_WORDS = frozenset("a an the this that these those of on in at with and or to from".split())


def _forms(word: str) -> set[str]:
    """A word and the singulars it may be the regular English plural of ("horses" ->
    horse, "boxes" -> box, "berries" -> berry); which one is right needs a dictionary, so
    two words name the same thing when their forms meet."""
    forms = {word}
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
    return forms


def content_words(phrase: str) -> list[str]:
    """The object words of a phrase: normalised (:func:`normalise_phrase`), split into
    words, function words ("the", "of", ...) dropped."""
    return [w for w in re.findall(r"[\w-]+", normalise_phrase(phrase)) if w not in _FUNCTION_WORDS]


def _all_named(words: list[str], other: list[str]) -> bool:
    return all(any(_forms(w) & _forms(v) for v in other) for w in words)


def object_matches(predicted: str, truth: str) -> bool:
    """The phrases name the same object: every content word of one is a word of the other,
    plurals included ("red circle" ~ "the small red circle", "horses" ~ "horse"). Whole
    words only: a planner that answers "r" does not match "horse" because "r" is inside it."""
    p, t = content_words(predicted), content_words(truth)
    return bool(p) and bool(t) and (_all_named(p, t) or _all_named(t, p))


def _put(row: dict[str, float], key: str, value: float | None) -> None:
    if value is not None and np.isfinite(value):
        row[key] = float(value)


def planner_made(plan: Plan) -> bool:
    """Whether a planner decided this plan. ``planner=none`` (the instruction-only methods)
    copies the benchmark's category and names no object, so scoring its plan against the
    ground truth would measure the benchmark, not a step the method has."""
    return not (isinstance(plan.raw, dict) and plan.raw.get("planner") == "none")


def masker_made(mask: MaskResult) -> bool:
    """Whether a masker chose this region. ``masker=none`` gives every sample the whole image
    (its source is ``none:...``, as each masker's sources start with its name), so its IoU
    would score the whole image, not a step the method has."""
    return mask.source.split(":", 1)[0] != "none"


class PlanAccuracy:
    """``category_acc`` and ``object_match`` against the dataset's labels.

    ``stage = "plan"``: it reads only the plan, so it also scores samples that failed
    later (a missed detection must not hide the planner's accuracy). A plan no planner made
    (:func:`planner_made`) gets neither column: not applicable, so the tables show a dash
    (the Metric protocol: a column that does not apply is absent), not a made-up 1.0.
    """

    name = "plan"
    stage = "plan"

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]:
        rows = []
        for it in items:
            row: dict[str, float] = {}
            truth = it.sample.truth
            if planner_made(it.plan):
                if truth.category is not None:
                    row["category_acc"] = float(it.plan.category == truth.category)
                if truth.object and truth.category is not Category.GLOBAL:
                    row["object_match"] = float(object_matches(it.plan.object, truth.object))
            rows.append(row)
        return rows


class MaskIoU:
    """``mask_iou`` of the predicted edit mask against the ground-truth change region; absent
    (a dash in the tables) where no masker chose the region (:func:`masker_made`)."""

    name = "mask"

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]:
        rows = []
        for it in items:
            gt = it.sample.truth.mask
            rows.append({"mask_iou": iou(it.mask.mask, gt)} if gt is not None and masker_made(it.mask) else {})
        return rows


class PixelScores:
    """L1/L2 to the target image, and preservation / fidelity split by the GT mask.

    * ``l1``, ``l2``: whole image vs the target (lower is better);
    * ``psnr_out``, ``ssim_out``: outside the GT change region vs the *source*
      (content preservation);
    * ``psnr_in``, ``ssim_in``: inside the GT change region vs the *target* (edit fidelity).
    """

    name = "pixel"

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]:
        rows = []
        for it in items:
            row: dict[str, float] = {}
            src_img = it.sample.request.image
            out = as_float(it.edit.image, src_img.size)
            truth = it.sample.truth
            if truth.target is not None:
                tgt = as_float(truth.target, src_img.size)
                _put(row, "l1", masked_l1(out, tgt))
                _put(row, "l2", masked_mse(out, tgt))
                if truth.mask is not None:
                    _put(row, "psnr_in", masked_psnr(out, tgt, truth.mask))
                    _put(row, "ssim_in", masked_ssim(out, tgt, truth.mask))
            if truth.mask is not None:
                outside = ~truth.mask
                src = as_float(src_img)
                _put(row, "psnr_out", masked_psnr(out, src, outside))
                _put(row, "ssim_out", masked_ssim(out, src, outside))
            rows.append(row)
        return rows
