"""The metric contract used by the score stage.

A metric turns finished samples into one flat ``{column: float}`` dict each. Columns that
do not apply to a sample (no ground-truth target, say) are simply absent, and aggregation
averages each column over the samples that have it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from iiie.data.base import Sample
from iiie.types import EditResult, MaskResult, Plan


@dataclass
class Scored:
    """Everything the score stage knows about one finished sample."""

    sample: Sample
    plan: Plan
    mask: MaskResult | None  # None only for plan-stage metrics of samples that failed later
    edit: EditResult | None


@runtime_checkable
class Metric(Protocol):
    name: str

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]: ...
