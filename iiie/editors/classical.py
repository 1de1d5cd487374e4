"""``editor=classical*``: the embedded CPU editors (OpenCV / PIL, no weights).

They are the no-model baseline of the step-4 ablations and what ``make reproduce`` runs on
a machine without a GPU:

* :class:`ClassicalInpaintEditor` fills the mask from its surroundings (Telea or
  Navier-Stokes); right for removals, a weak stand-in for everything else.
* :class:`ColorFillEditor` paints the mask with the colour named in the plan's prompt
  (local recolouring, and additions of coloured objects); without a colour word it inpaints.
* :class:`FilterEditor` applies a photo filter named in the plan's target caption
  (grayscale, sepia, invert, blur, darker, brighter, ...); an unknown filter returns the
  input unchanged and says so in ``params``.

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


class ColorFillEditor(BaseEditor):
    """Paint the mask with the colour named in the plan (keeps the region's shading).

    ``shading`` in [0, 1] keeps that much of the original luminance variation, so texture
    under a recoloured object survives; 0 gives a flat fill.
    """

    name = "classical_color"

    def __init__(self, method: str = "telea", radius: int = 5, blur: int = 1, shading: float = 0.0) -> None:
        self.inpaint = ClassicalInpaintEditor(method, radius, blur)
        self.blur, self.shading = int(blur), float(shading)

    def edit(self, request: EditRequest, plan: Plan, mask: MaskResult, seed: int) -> EditResult:
        color = find_color(plan.target_prompt) or find_color(request.instruction)
        if color is None:
            result = self.inpaint.edit(request, plan, mask, seed)
            result.params["fallback"] = "no colour word in the prompt: inpainted instead"
            result.editor = self.name
            return result
        src = np.asarray(request.image.convert("RGB"), np.float32)
        rgb = np.array(NAMED_COLORS[color], np.float32)
        fill = np.broadcast_to(rgb, src.shape).copy()
        if self.shading > 0:
            lum = src.mean(-1, keepdims=True)
            region = lum[mask.mask] if mask.mask.any() else lum.reshape(-1)
            fill = fill + self.shading * (lum - float(region.mean()))
        edited = Image.fromarray(np.clip(np.rint(fill), 0, 255).astype(np.uint8))
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
            params = {"filter": None, "note": "no known filter named; image returned unchanged"}
            return EditResult(request.image.copy(), self.name, params, seed)
        filtered = apply_named_filter(request.image, name, self.strength)
        out = M.paste_back(request.image, filtered, mask.mask, self.blur)
        return EditResult(out, self.name, {"filter": name, "strength": self.strength}, seed)
