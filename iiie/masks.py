"""Mask geometry shared by maskers and editors.

Every function here uses the public polarity: ``True`` = the region to change. Sizes are
``(width, height)`` like PIL; arrays are ``(height, width)`` like numpy.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from iiie.types import Box


def clamp_box(box: Box, size: tuple[int, int]) -> Box:
    """Clamp ``(x0, y0, x1, y1)`` to the image and order its corners."""
    w, h = size
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    return (min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(max(x1, 0.0), w), min(max(y1, 0.0), h))


def box_is_degenerate(box: Box, min_side: float = 1.0) -> bool:
    """True when a box (already clamped) has a side shorter than ``min_side`` pixels."""
    x0, y0, x1, y1 = box
    return (x1 - x0) < min_side or (y1 - y0) < min_side


def box_to_mask(box: Box, size: tuple[int, int], shape: str = "rectangle") -> np.ndarray:
    """Rasterise a box as a ``rectangle`` or the inscribed ``ellipse``.

    Pixel ``(x, y)`` is inside the rectangle when its centre ``(x+0.5, y+0.5)`` is, so
    integer boxes give exactly ``(x1-x0)*(y1-y0)`` pixels.
    """
    w, h = size
    x0, y0, x1, y1 = clamp_box(box, size)
    ys = np.arange(h, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float64)[None, :] + 0.5
    if shape == "rectangle":
        return (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    if shape == "ellipse":
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        rx, ry = max((x1 - x0) / 2, 1e-6), max((y1 - y0) / 2, 1e-6)
        return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
    raise ValueError(f"unknown box shape {shape!r}; expected 'rectangle' or 'ellipse'")


def mask_to_box(mask: np.ndarray) -> Box | None:
    """Tight box around the ``True`` pixels, or ``None`` for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def full_mask(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.ones((h, w), dtype=bool)


def empty_mask(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.zeros((h, w), dtype=bool)


def complement(mask: np.ndarray) -> np.ndarray:
    """The region outside ``mask`` (background edits change everything but the subject)."""
    return ~np.asarray(mask, dtype=bool)


def relative_radius(size: tuple[int, int], fraction: float) -> int:
    """A radius in pixels as a fraction of the image's long side (so configs are size-free)."""
    return int(round(max(size) * float(fraction)))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow the mask by ``radius`` pixels with a disc (Euclidean) structuring element.

    A negative radius erodes. ``radius=0`` returns a copy.
    """
    m = np.asarray(mask, dtype=bool)
    r = int(radius)
    if r == 0:
        return m.copy()
    yy, xx = np.mgrid[-abs(r) : abs(r) + 1, -abs(r) : abs(r) + 1]
    disc = ((xx**2 + yy**2) <= r * r).astype(np.uint8)
    src = m.astype(np.uint8)
    out = cv2.dilate(src, disc) if r > 0 else cv2.erode(src, disc, borderValue=1)
    return out.astype(bool)


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """Fill the convex hull of the ``True`` pixels (a mask-shape ablation)."""
    m = np.asarray(mask, dtype=bool)
    pts = cv2.findNonZero(m.astype(np.uint8))
    if pts is None:
        return m.copy()
    hull = cv2.convexHull(pts)
    out = np.zeros(m.shape, np.uint8)
    cv2.fillConvexPoly(out, hull, 1)
    return out.astype(bool) | m


def feather(mask: np.ndarray, blur_radius: int) -> np.ndarray:
    """The paste-back weight ``m' = 1 - (1 - m)(1 - blur(m))`` in ``[0, 1]``.

    ``m'`` is exactly 1 inside the mask and exactly 0 farther than ``blur_radius`` pixels
    from it in the max-norm (the blur has finite support), so content outside is preserved
    bit for bit.
    """
    m = np.asarray(mask, dtype=np.float32)
    r = int(blur_radius)
    if r <= 0:
        return m
    # A box blur applied twice (a triangle filter) has compact support: radius 2*half ~ r.
    half = max(r // 2, 1)
    kb = 2 * half + 1
    b = cv2.blur(m, (kb, kb), borderType=cv2.BORDER_REPLICATE)
    b = cv2.blur(b, (kb, kb), borderType=cv2.BORDER_REPLICATE)
    b[b < 1e-6] = 0.0
    return 1.0 - (1.0 - m) * (1.0 - b)


def paste_back(
    source: Image.Image, edited: Image.Image, mask: np.ndarray, blur_radius: int = 0
) -> Image.Image:
    """Blend ``edited`` into ``source`` with the feathered mask.

    Pixels whose feathered weight is 0 equal ``source`` exactly; ``edited`` is resized to the
    source size first (bicubic) if a model ran at another resolution.
    """
    src = np.asarray(source.convert("RGB"), dtype=np.float32)
    if edited.size != source.size:
        edited = edited.resize(source.size, Image.BICUBIC)
    edt = np.asarray(edited.convert("RGB"), dtype=np.float32)
    if mask.shape != src.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image size {source.size}")
    w = feather(mask, blur_radius)[..., None]
    out = src + w * (edt - src)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    keep = w[..., 0] == 0
    out[keep] = np.asarray(source.convert("RGB"))[keep]
    return Image.fromarray(out)


def mask_to_image(mask: np.ndarray) -> Image.Image:
    """``True`` -> white (255), ``False`` -> black, as a single-channel PNG-ready image."""
    return Image.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * 255, mode="L")


def image_to_mask(image: Image.Image, threshold: int = 128) -> np.ndarray:
    """White (>= threshold on luminance) -> ``True``."""
    return np.asarray(image.convert("L")) >= threshold


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union; two empty masks have IoU 1."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def model_resolution(size: tuple[int, int], long_side: int, multiple: int = 8) -> tuple[int, int]:
    """The (width, height) a model runs at: long side ``long_side``, both sides multiples of
    ``multiple``, aspect ratio kept as closely as those allow."""
    w, h = size
    scale = long_side / max(w, h)
    rw = max(multiple, int(math.floor(w * scale / multiple + 0.5)) * multiple)
    rh = max(multiple, int(math.floor(h * scale / multiple + 0.5)) * multiple)
    return rw, rh
