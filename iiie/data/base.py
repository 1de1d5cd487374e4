"""The dataset contract: ids first, samples loaded one at a time.

Loading is lazy and per id so that one corrupt image is one recorded per-sample error,
not a crashed run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from iiie.types import Category, EditRequest


@dataclass
class GroundTruth:
    """Whatever a benchmark knows about the right answer; every field is optional."""

    category: Category | None = None
    object: str | None = None
    mask: np.ndarray | None = None  # HxW bool, True = region that should change
    target: Image.Image | None = None  # the reference edited image
    source_caption: str | None = None
    target_caption: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    request: EditRequest
    truth: GroundTruth = field(default_factory=GroundTruth)


def oracle_meta(mask: np.ndarray | None, phrase: str | None = None) -> dict[str, Any]:
    """``request.meta`` entries that let ``masker=oracle`` use a ground-truth mask.

    ``objects`` = ``{phrase: mask}`` when the dataset names the edited object, and
    ``edit_mask`` = the mask whenever it marks any pixel (see :mod:`iiie.maskers.oracle`
    for how the two are used). Empty when there is no usable mask.
    """
    if mask is None:
        return {}
    region = np.asarray(mask, dtype=bool)
    if not region.any():
        return {}
    meta: dict[str, Any] = {"edit_mask": region}
    if phrase and str(phrase).strip():
        meta["objects"] = {str(phrase).strip(): region}
    return meta


class Dataset:
    """Base class: subclasses implement :meth:`ids`, :meth:`load` and :meth:`fingerprint`."""

    name = "dataset"

    def ids(self) -> list[str]:
        raise NotImplementedError

    def load(self, sample_id: str) -> Sample:
        """Load one sample; raise :class:`iiie.imageio.ImageLoadError` for a bad image."""
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this dataset's content, for the plan stage's cache key."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.ids())
