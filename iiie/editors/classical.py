"""``editor=classical*``: the embedded CPU editors (OpenCV / PIL, no weights).

They are the no-model baseline of the step-4 ablations and what ``make reproduce`` runs on
a machine without a GPU:

* :class:`ClassicalInpaintEditor` fills the mask from its surroundings (Telea or
  Navier-Stokes); right for removals, a weak stand-in for everything else.
* :class:`ColorFillEditor` recolours the mask with the colour named in the plan's prompt,
  keeping its shading (local recolouring, and additions of coloured objects); without a
  colour word it inpaints.
* :class:`FilterEditor` applies a photo filter named in the plan's target caption
  (grayscale, sepia, invert, blur, darker, brighter, ...); an unknown filter returns the
  input unchanged, marked ``EditResult.noop`` with the reason.

All of them finish with :func:`iiie.masks.paste_back`, so pixels outside the feathered mask
equal the input exactly.
"""

from __future__ import annotations

import re

import cv2
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from iiie import masks as M
from iiie.colors import NAMED_COLORS, find_color
from iiie.protocols import BaseEditor
from iiie.types import EditRequest, EditResult, MaskResult, Plan

_CV_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def cv_inpaint(image: Image.Image, mask: np.ndarray, method: str = "telea", radius: int = 5) -> Image.Image:
    """OpenCV inpainting of the ``True`` pixels of ``mask``."""
    if method not in _CV_METHODS:
        raise ValueError(f"unknown inpainting method {method!r}; expected one of {sorted(_CV_METHODS)}")
    arr = np.asarray(image.convert("RGB"))
    out = cv2.inpaint(arr, mask.astype(np.uint8) * 255, int(radius), _CV_METHODS[method])
    return Image.fromarray(out)


class ClassicalInpaintEditor(BaseEditor):
    """Fill the mask from its surroundings with OpenCV (``method``: telea | ns)."""

    name = "classical_inpaint"

    def __init__(self, method: str = "telea", radius: int = 5, blur: int = 2) -> None:
        if method not in _CV_METHODS:
            raise ValueError(f"editor.method must be one of {sorted(_CV_METHODS)}, got {method!r}")
        self.method, self.radius, self.blur = method, int(radius), int(blur)

    def edit(self, request: EditRequest, plan: Plan, mask: MaskResult, seed: int) -> EditResult:
        filled = cv_inpaint(request.image, mask.mask, self.method, self.radius)
        out = M.paste_back(request.image, filled, mask.mask, self.blur)
        params = {"method": self.method, "radius": self.radius, "blur": self.blur}
        return EditResult(out, self.name, params, seed)


def recolor(image: Image.Image, mask: np.ndarray, rgb: tuple[int, int, int], shading: float = 1.0) -> Image.Image:
    """Give the masked region the hue and chroma of ``rgb`` while keeping its shading.

    In CIE Lab the region takes the target's a*/b* (its colour) and the target's mean
    lightness plus ``shading`` times the region's own lightness variation, so folds,
    highlights and texture survive a recolour ("make the cup red" stays a shaded cup);
    ``shading=0`` is a flat fill of the target colour.
    """
    src = np.asarray(image.convert("RGB"))
    lab = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    target = cv2.cvtColor(np.array([[rgb]], np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)[0, 0]
    region = lab[..., 0][mask] if mask.any() else lab[..., 0].reshape(-1)
    out = np.empty_like(lab)
    out[..., 0] = target[0] + float(shading) * (lab[..., 0] - float(region.mean()))
    out[..., 1], out[..., 2] = target[1], target[2]
    rgb_out = cv2.cvtColor(np.clip(np.rint(out), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return Image.fromarray(rgb_out)


class ColorFillEditor(BaseEditor):
    """Recolour the mask with the colour named in the plan, keeping the region's shading.

    ``shading`` in [0, 1] keeps that much of the original lightness variation (1: all of
    it, the default; 0: a flat fill), see :func:`recolor`.
    """

    name = "classical_color"

    def __init__(self, method: str = "telea", radius: int = 5, blur: int = 1, shading: float = 1.0) -> None:
        if not 0.0 <= float(shading) <= 1.0:
            raise ValueError(f"editor.shading must be in [0, 1], got {shading}")
        self.inpaint = ClassicalInpaintEditor(method, radius, blur)
        self.blur, self.shading = int(blur), float(shading)

    def edit(self, request: EditRequest, plan: Plan, mask: MaskResult, seed: int) -> EditResult:
        color = find_color(plan.target_prompt) or find_color(request.instruction)
        if color is None:
            result = self.inpaint.edit(request, plan, mask, seed)
            result.params["fallback"] = "no colour word in the prompt: inpainted instead"
            result.editor = self.name
            return result
        edited = recolor(request.image, mask.mask, tuple(NAMED_COLORS[color]), self.shading)
        out = M.paste_back(request.image, edited, mask.mask, self.blur)
        return EditResult(out, self.name, {"color": color, "blur": self.blur, "shading": self.shading}, seed)


def _sepia(img: Image.Image) -> Image.Image:
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
    arr = np.asarray(img, np.float32) @ m.T
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


#: keyword pattern -> filter. Order matters: the first match wins.
FILTERS: list[tuple[str, str]] = [
    (r"\b(gr[ae]y ?scale|black and white|black-and-white|b&w|desaturat\w*|monochrome|colou?rless)\b", "grayscale"),
    (r"\bsepia\b|\bvintage\b|\bold photo\b", "sepia"),
    (r"\binvert\w*\b|\bnegative\b", "invert"),
    (r"\bblur\w*\b|\bout of focus\b|\bsoft focus\b", "blur"),
    (r"\bdark\w*\b|\bnight\b|\bdusk\b|\bdim\w*\b|\blower the brightness\b", "darken"),
    (r"\bbright\w*\b|\bsunn\w*\b|\blighter\b|\blighten\w*\b", "brighten"),
    (r"\bsharp\w*\b", "sharpen"),
]


#: The filters :class:`FilterEditor` can apply, in match order.
FILTER_NAMES = tuple(dict.fromkeys(name for _, name in FILTERS))


def detect_filter(text: str) -> str | None:
    low = (text or "").lower()
    for pattern, name in FILTERS:
        if re.search(pattern, low):
            return name
    return None


def apply_named_filter(img: Image.Image, name: str, strength: float = 1.0) -> Image.Image:
    """Standard definitions: ITU-R 601 luma, the common sepia matrix, PIL enhancers."""
    if name == "grayscale":
        return ImageOps.grayscale(img).convert("RGB")
    if name == "sepia":
        return _sepia(img)
    if name == "invert":
        return ImageOps.invert(img.convert("RGB"))
    if name == "blur":
        return img.filter(ImageFilter.GaussianBlur(2.0 * strength))
    if name == "darken":
        return ImageEnhance.Brightness(img).enhance(1.0 - 0.45 * strength)
    if name == "brighten":
        return ImageEnhance.Brightness(img).enhance(1.0 + 0.4 * strength)
    if name == "sharpen":
        return img.filter(ImageFilter.UnsharpMask(2, 150, 2))
    raise ValueError(f"unknown filter {name!r}")


class FilterEditor(BaseEditor):
    """Global route without a model: a photo filter named in the plan's caption."""

    name = "classical_filter"

    def __init__(self, strength: float = 1.0, blur: int = 0) -> None:
        self.strength, self.blur = float(strength), int(blur)

    def edit(self, request: EditRequest, plan: Plan, mask: MaskResult, seed: int) -> EditResult:
        text = " ".join([plan.target_caption, plan.target_prompt, request.instruction])
        name = detect_filter(text)
        if name is None:
            reason = (f"no filter this CPU editor knows is named (it knows {', '.join(FILTER_NAMES)}); "
                      "the image is returned unchanged: a style or scene change needs `editor@editor.global=infedit` (weights)")
            params = {"filter": None, "note": reason}
            return EditResult(request.image.copy(), self.name, params, seed, noop=True, noop_reason=reason)
        filtered = apply_named_filter(request.image, name, self.strength)
        out = M.paste_back(request.image, filtered, mask.mask, self.blur)
        return EditResult(out, self.name, {"filter": name, "strength": self.strength}, seed)
