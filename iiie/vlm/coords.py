"""VLM box coordinates -> absolute pixels of the original image, once, at the client boundary.

Model families answer boxes in different systems, and the prompt must tell the model which
one to use:

* ``absolute_resized`` -- Qwen2.5-VL: absolute pixels of the resized input it saw (the
  qwen-vl-utils grid), so the box scales by ``original / resized`` per axis;
* ``relative_1000`` -- Qwen2-VL, Qwen3-VL (and InternVL): ``0..1000`` of each side;
* ``relative_1`` -- ``0..1`` fractions (generic models, or prompts that ask for them).

Converted boxes are clamped to the image; a box that is empty or degenerate is rejected with
a reason rather than silently turned into a sliver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from iiie.masks import box_is_degenerate, clamp_box
from iiie.types import Box


class Coords(str, Enum):
    ABSOLUTE_RESIZED = "absolute_resized"
    RELATIVE_1000 = "relative_1000"
    RELATIVE_1 = "relative_1"

    @classmethod
    def parse(cls, value: str | Coords) -> Coords:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(c.value for c in cls)
            raise ValueError(
                f"unknown box coordinate convention {value!r} (vlm.coords); expected one of: {names}"
            ) from None


#: Default convention per model family (``vlm.family``); ``vlm.coords`` overrides it.
FAMILY_COORDS: dict[str, Coords] = {
    "qwen2_5_vl": Coords.ABSOLUTE_RESIZED,
    "qwen2_vl": Coords.RELATIVE_1000,
    "qwen3_vl": Coords.RELATIVE_1000,
    "internvl": Coords.RELATIVE_1000,
}

#: Vision patch size per family: qwen-vl-utils resizes to multiples of ``2 * patch``.
FAMILY_PATCH_SIZE: dict[str, int] = {
    "qwen2_5_vl": 14,
    "qwen2_vl": 14,
    "qwen3_vl": 16,
    "internvl": 14,
}


def coords_for(family: str, coords: str | None = None) -> Coords:
    """The convention for ``family`` unless ``coords`` names one explicitly."""
    if coords:
        return Coords.parse(coords)
    if family not in FAMILY_COORDS:
        known = ", ".join(sorted(FAMILY_COORDS))
        raise ValueError(
            f"no box coordinate convention known for vlm.family={family!r} (known: {known}); "
            f"set vlm.coords to one of: {', '.join(c.value for c in Coords)}"
        )
    return FAMILY_COORDS[family]


def box_hint(coords: Coords, resized: tuple[int, int]) -> str:
    """How the prompt tells the model which coordinates to answer in."""
    if coords is Coords.ABSOLUTE_RESIZED:
        w, h = resized
        return (
            f"absolute pixel coordinates of the image as you see it ({w}x{h} pixels; "
            "x grows to the right, y grows downwards, (0, 0) is the top-left corner)"
        )
    if coords is Coords.RELATIVE_1000:
        return (
            "coordinates relative to the image size, scaled to 0-1000 "
            "((0, 0) is the top-left corner, (1000, 1000) the bottom-right corner)"
        )
    return (
        "coordinates relative to the image size, as fractions from 0 to 1 "
        "((0, 0) is the top-left corner, (1, 1) the bottom-right corner)"
    )


@dataclass(frozen=True)
class BoxResult:
    """A converted box, or why there is none."""

    box: Box | None
    reason: str | None = None


def to_original(
    raw: tuple[float, float, float, float] | list[float],
    coords: Coords,
    original: tuple[int, int],
    resized: tuple[int, int],
    min_side: float = 1.0,
) -> BoxResult:
    """Convert a model box to original-image pixels, clamp it, and check it is usable.

    Reasons: ``box_invalid`` (not four finite numbers), ``box_degenerate`` (zero or negative
    width/height as answered), ``box_outside_image`` (nothing of it left after clamping).
    Corners given in the wrong order are accepted (reordered), as a model's only slip.
    """
    try:
        values = [float(v) for v in raw]
    except (TypeError, ValueError):
        return BoxResult(None, "box_invalid")
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        return BoxResult(None, "box_invalid")
    ow, oh = original
    if coords is Coords.ABSOLUTE_RESIZED:
        rw, rh = resized
        sx, sy = ow / rw, oh / rh
    elif coords is Coords.RELATIVE_1000:
        sx, sy = ow / 1000.0, oh / 1000.0
    else:
        sx, sy = float(ow), float(oh)
    x0, y0, x1, y1 = values
    box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
    if abs(box[2] - box[0]) < min_side or abs(box[3] - box[1]) < min_side:
        return BoxResult(None, "box_degenerate")
    clamped = clamp_box(box, original)
    if box_is_degenerate(clamped, min_side):
        return BoxResult(None, "box_outside_image")
    return BoxResult(clamped)
