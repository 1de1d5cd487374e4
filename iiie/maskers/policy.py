"""Per-category mask post-processing shared by every masker.

The raw region (an object's segmentation, a box, the whole image) is turned into the mask
the editor fills: optional reshaping (box / ellipse / convex hull), then dilation relative
to the image size, and for background edits the complement. Keeping this in one place makes
every choice a config value, so step-3 ablations compare maskers on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iiie import masks as M
from iiie.types import Category


@dataclass(frozen=True)
class CategoryMaskPolicy:
    """How to finish the mask for one category.

    ``dilate`` is a fraction of the image's long side (0.02 on a 512 px image = 10 px);
    ``shape`` is ``mask`` (keep the segmentation), ``box``, ``ellipse`` or ``hull``.
    """

    dilate: float = 0.0
    shape: str = "mask"


DEFAULT_POLICIES: dict[Category, CategoryMaskPolicy] = {
    Category.LOCAL: CategoryMaskPolicy(dilate=0.015),
    Category.REMOVE: CategoryMaskPolicy(dilate=0.03),
    Category.BACKGROUND: CategoryMaskPolicy(dilate=0.0),
    Category.ADDITION: CategoryMaskPolicy(dilate=0.0, shape="box"),
    Category.GLOBAL: CategoryMaskPolicy(),
}


def policies_from_config(cfg: dict | None) -> dict[Category, CategoryMaskPolicy]:
    """Build the policy table from ``{category: {dilate:, shape:}}`` (missing -> default)."""
    out = dict(DEFAULT_POLICIES)
    for name, values in (cfg or {}).items():
        cat = Category.parse(name)
        out[cat] = CategoryMaskPolicy(**dict(values))
    return out


def reshape(mask: np.ndarray, shape: str) -> np.ndarray:
    """Replace a region by its box, inscribed ellipse or convex hull (``mask`` = as is)."""
    if shape == "mask":
        return mask
    if shape == "hull":
        return M.convex_hull(mask)
    box = M.mask_to_box(mask)
    if box is None:
        return mask
    size = (mask.shape[1], mask.shape[0])
    if shape == "box":
        return M.box_to_mask(box, size, "rectangle")
    if shape == "ellipse":
        return M.box_to_mask(box, size, "ellipse")
    raise ValueError(f"unknown mask shape {shape!r}; expected mask, box, ellipse or hull")


def finish_object_mask(
    region: np.ndarray, category: Category, policy: CategoryMaskPolicy
) -> np.ndarray:
    """Turn a found object region into the mask to edit for ``category``.

    For ``background`` the region is the subject to keep: it is dilated (a margin that
    protects its outline; a negative value shrinks it instead) and the complement returned.
    """
    size = (region.shape[1], region.shape[0])
    shaped = reshape(np.asarray(region, bool), policy.shape)
    grown = M.dilate(shaped, M.relative_radius(size, policy.dilate))
    if category is Category.BACKGROUND:
        return M.complement(grown)
    return grown
