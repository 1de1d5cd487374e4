"""``planner=none``: the plan of an end-to-end editor, which needs none.

End-to-end methods (InstructPix2Pix, MagicBrush, FLUX Kontext, Qwen-Image-Edit) take the
instruction as given, so no model is asked anything. The pipeline still routes on a
category, and the report groups rows by it, so the plan's category is the benchmark's
ground-truth category (``sample.truth.category``) when the loader knows it, and a neutral
default (``default_category``, ``global``: the whole image, no object) when it does not.
``calls_model = False`` makes the stage engine count 0 planner calls in the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iiie.protocols import BasePlanner
from iiie.types import Category, EditRequest, Plan


class NonePlanner(BasePlanner):
    """No model call: the ground-truth category (or ``default_category``), the instruction
    as the target prompt, no object."""

    name = "none"
    calls_model = False

    def __init__(self, default_category: str = "global") -> None:
        self.default_category = Category.parse(default_category)
        self._stats = {"truth": 0, "default": 0}

    def stats(self) -> dict[str, int]:
        """How many plans took the benchmark's category and how many the default."""
        return dict(self._stats)

    def _plan(self, request: EditRequest, truth: Category | None) -> Plan:
        source = "truth" if truth is not None else "default"
        self._stats[source] += 1
        return Plan(
            category=truth if truth is not None else self.default_category,
            target_prompt=request.instruction,
            raw={"planner": "none", "category_source": source},
        )

    def plan(self, request: EditRequest) -> Plan:
        """A bare request carries no ground truth: the default category."""
        return self._plan(request, None)

    def plan_samples(self, samples: Sequence[Any]) -> list[Plan]:
        """The stage engine's entry point: whole samples, so ``truth.category`` is known."""
        return [self._plan(s.request, getattr(getattr(s, "truth", None), "category", None)) for s in samples]
