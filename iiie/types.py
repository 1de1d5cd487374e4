"""Typed records that flow between the four steps (plan -> mask -> edit -> score).

Conventions shared by every module (see docs/DESIGN.md):

* masks are ``HxW`` ``bool`` arrays, ``True`` = the region to change;
* images are PIL RGB, and every output has the input's size;
* boxes are ``(x0, y0, x1, y1)`` in absolute pixels of the original image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]


class Category(str, Enum):
    """The five IIIE edit categories; the pipeline routes on these."""

    LOCAL = "local"
    REMOVE = "remove"
    BACKGROUND = "background"
    ADDITION = "addition"
    GLOBAL = "global"

    @classmethod
    def parse(cls, value: str | Category) -> Category:
        """Parse a category name leniently (case, whitespace) with a clear error."""
        if isinstance(value, Category):
            return value
        text = str(value).strip().lower()
        try:
            return cls(text)
        except ValueError:
            names = ", ".join(c.value for c in cls)
            raise ValueError(f"unknown edit category {value!r}; expected one of: {names}") from None


@dataclass
class EditRequest:
    """One editing job: an image and an instruction.

    ``meta`` carries dataset side-information that some backends may use (for example the
    oracle masker reads ``meta["objects"]``: phrase -> HxW bool mask). Nothing in the
    real pipeline depends on it.
    """

    id: str
    image: Image.Image
    instruction: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the input image."""
        return self.image.size


@dataclass
class Plan:
    """Steps 1 and 2: what kind of edit, on which object, with which prompts.

    ``raw`` keeps what the planner saw or answered (a VLM reply, the parse trace of the
    rule planner) for provenance; ``fallback_reason`` is set when a backup planner had to
    answer instead of the configured one.
    """

    category: Category
    object: str = ""
    target_prompt: str = ""
    source_caption: str = ""
    target_caption: str = ""
    add_box: Box | None = None
    raw: Any = None
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "object": self.object,
            "target_prompt": self.target_prompt,
            "source_caption": self.source_caption,
            "target_caption": self.target_caption,
            "add_box": list(self.add_box) if self.add_box is not None else None,
            "raw": self.raw,
            "fallback_reason": self.fallback_reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        box = d.get("add_box")
        return cls(
            category=Category.parse(d["category"]),
            object=d.get("object") or "",
            target_prompt=d.get("target_prompt") or "",
            source_caption=d.get("source_caption") or "",
            target_caption=d.get("target_caption") or "",
            add_box=tuple(float(v) for v in box) if box is not None else None,
            raw=d.get("raw"),
            fallback_reason=d.get("fallback_reason"),
        )


@dataclass
class MaskResult:
    """Step 3: the region to change (``True`` = change), with its provenance.

    ``reason`` explains an empty or substituted mask (e.g. "no detection above 0.05; fell
    back to full image"), so a run can count and report such cases.
    """

    mask: np.ndarray
    boxes: list[Box] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    source: str = ""
    reason: str | None = None

    def __post_init__(self) -> None:
        m = np.asarray(self.mask)
        if m.ndim != 2:
            raise ValueError(f"mask must be HxW, got shape {m.shape}")
        self.mask = m.astype(bool, copy=False)

    @property
    def area(self) -> float:
        """Fraction of the image that will change."""
        return float(self.mask.mean()) if self.mask.size else 0.0


@dataclass
class EditResult:
    """Step 4: the edited image (same size as the input) and how it was made."""

    image: Image.Image
    editor: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    #: The editor did nothing (the output equals the input). Editors set it with
    #: ``noop_reason`` when they know why ("no known filter named"); the edit stage and
    #: ``iiie.edit`` also set it when the pixels came back unchanged.
    noop: bool = False
    noop_reason: str = ""


def mark_noop(source: Image.Image, result: EditResult) -> EditResult:
    """Set ``result.noop`` when the edited pixels equal the input's (whatever the editor
    believed), so a run and the CLI can say that nothing was edited."""
    if not result.noop:
        a, b = source.convert("RGB"), result.image.convert("RGB")
        if a.size == b.size and a.tobytes() == b.tobytes():
            result.noop = True
            result.noop_reason = result.noop_reason or "the output equals the input"
    return result
