"""One small protocol per step (and for the metrics that score them), each with a batch method so stages can batch.

Backends subclass the ``Base*`` helpers when they only want to implement the
single-sample method; model-backed backends override the batch method instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from iiie.data.base import Sample
from iiie.types import EditRequest, EditResult, MaskResult, Plan


@runtime_checkable
class Planner(Protocol):
    """Steps 1+2: instruction (+ image) -> :class:`Plan`."""

    name: str

    def plan_batch(self, requests: Sequence[EditRequest]) -> list[Plan]: ...


@runtime_checkable
class Masker(Protocol):
    """Step 3: (request, plan) -> :class:`MaskResult` (``True`` = change)."""

    name: str

    def mask_batch(
        self, requests: Sequence[EditRequest], plans: Sequence[Plan]
    ) -> list[MaskResult]: ...


@runtime_checkable
class Editor(Protocol):
    """Step 4: (request, plan, mask, seed) -> :class:`EditResult` at the input's size."""

    name: str

    def edit_batch(
        self,
        requests: Sequence[EditRequest],
        plans: Sequence[Plan],
        masks: Sequence[MaskResult],
        seeds: Sequence[int],
    ) -> list[EditResult]: ...


@dataclass
class Scored:
    """Everything the score stage knows about one finished sample."""

    sample: Sample
    plan: Plan
    mask: MaskResult | None  # None only for plan-stage metrics of samples that failed later
    edit: EditResult | None


@runtime_checkable
class Metric(Protocol):
    """Step 5 (scoring): finished samples -> one flat ``{column: float}`` dict each.

    Columns that do not apply to a sample (no ground-truth target, say) are simply absent;
    aggregation averages each column over the samples that have it. A metric with
    ``stage = "plan"`` reads only the plan, so it also scores samples that failed later.
    """

    name: str

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]: ...


def first_plan(plans: Sequence[Plan | Exception]) -> Plan:
    """The plan of a one-request batch; raises the error a batch may return in a sample's
    slot (a :class:`~iiie.errors.TransientBackendError` for a server outage)."""
    if isinstance(plans[0], Exception):
        raise plans[0]
    return plans[0]


class BasePlanner:
    """Planner whose batch method loops over :meth:`plan`."""

    name = "planner"

    def plan(self, request: EditRequest) -> Plan:
        raise NotImplementedError

    def plan_batch(self, requests: Sequence[EditRequest]) -> list[Plan]:
        return [self.plan(r) for r in requests]


class BaseMasker:
    """Masker whose batch method loops over :meth:`mask`."""

    name = "masker"

    def mask(self, request: EditRequest, plan: Plan) -> MaskResult:
        raise NotImplementedError

    def mask_batch(
        self, requests: Sequence[EditRequest], plans: Sequence[Plan]
    ) -> list[MaskResult]:
        return [self.mask(r, p) for r, p in zip(requests, plans, strict=True)]


class BaseEditor:
    """Editor whose batch method loops over :meth:`edit`."""

    name = "editor"

    def edit(self, request: EditRequest, plan: Plan, mask: MaskResult, seed: int) -> EditResult:
        raise NotImplementedError

    def edit_batch(
        self,
        requests: Sequence[EditRequest],
        plans: Sequence[Plan],
        masks: Sequence[MaskResult],
        seeds: Sequence[int],
    ) -> list[EditResult]:
        return [
            self.edit(r, p, m, s) for r, p, m, s in zip(requests, plans, masks, seeds, strict=True)
        ]
