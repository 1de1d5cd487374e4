"""One small protocol per step, each with a batch method so stages can batch.

Backends subclass the ``Base*`` helpers when they only want to implement the
single-sample method; model-backed backends override the batch method instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

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
