"""The dataset contract: ids first, samples loaded one at a time.

Loading is lazy and per id so that one corrupt image is one recorded per-sample error,
not a crashed run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from iiie.errors import ConfigurationError
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


def oracle_meta(
    mask: np.ndarray | None, phrase: str | None = None, category: Category | None = None
) -> dict[str, Any]:
    """``request.meta`` entries that let ``masker=oracle`` use a ground-truth mask.

    ``edit_mask`` = the mask (True = change) whenever it marks any pixel. ``objects``
    (phrase -> the object's pixels in the *source* image) only where the category says
    which pixels the named object covers: ``local``/``remove`` -> the mask itself,
    ``background`` -> its complement (the subject that is kept). An ``addition`` object
    is not in the source yet, and without a category the relation is unknown, so those get
    no ``objects`` entry (the rule planner also reads ``objects`` to anchor new boxes).
    See :mod:`iiie.maskers.oracle` for how the two are used. Empty without a usable mask.
    """
    if mask is None:
        return {}
    region = np.asarray(mask, dtype=bool)
    if not region.any():
        return {}
    meta: dict[str, Any] = {"edit_mask": region}
    name = str(phrase or "").strip()
    if name and category in (Category.LOCAL, Category.REMOVE):
        meta["objects"] = {name: region}
    elif name and category is Category.BACKGROUND and not region.all():
        meta["objects"] = {name: ~region}
    return meta


#: ``truth.extra`` entries copied into every result row (``per_sample.csv``): the labels a
#: benchmark's own headline aggregation groups by (GEdit-Bench: task type, instruction
#: language, ``Intersection_exist``; see :mod:`iiie.metrics.headlines`).
REPORT_FIELDS = ("task_type", "language", "intersection_exist")


def report_fields(sample: Sample) -> dict[str, Any]:
    """The :data:`REPORT_FIELDS` this sample has, for its result row."""
    extra = sample.truth.extra
    return {k: extra[k] for k in REPORT_FIELDS if k in extra}


class Dataset:
    """Base class: subclasses implement :meth:`ids`, :meth:`load` and :meth:`fingerprint`."""

    name = "dataset"

    def ids(self) -> list[str]:
        raise NotImplementedError

    def previous(self, sample_id: str) -> str | None:
        """The sample whose *edited output* is this sample's input (multi-turn editing,
        each turn on the method's own previous result), or None. The runner then runs the
        turns in order and substitutes the image; see :class:`iiie.pipeline.runner.Runner`."""
        return None

    def load(self, sample_id: str) -> Sample:
        """Load one sample; raise :class:`iiie.imageio.ImageLoadError` for a bad image."""
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this dataset's content, for the plan stage's cache key."""
        raise NotImplementedError

    def known_category(self, sample_id: str) -> Category | None:
        """The ground-truth category without decoding the image, for a sample whose input
        cannot be loaded (so its failure is still filed under its category). ``None``
        where a dataset only knows it after loading."""
        return None

    def __len__(self) -> int:
        return len(self.ids())


def check_n(value: Any, key: str = "data.n") -> int | None:
    """``data.n`` as a count: a whole number >= 0, or None for all samples.

    Raises :class:`~iiie.errors.ConfigurationError` naming the key for anything else
    (``data.n=abc`` gave a bare ``TypeError`` deep inside a loader before).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(f"{key} must be a whole number or null, got {value!r}")
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"{key} must be a whole number or null, got {value!r}") from None
    if n < 0:
        raise ConfigurationError(f"{key} must be >= 0, got {n}")
    return n
