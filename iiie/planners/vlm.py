"""Steps 1+2 by a VLM behind an OpenAI-compatible server (vLLM): ``planner=vlm``.

(``vlm.engine=vllm|transformers`` swaps the server for an in-process model behind the same
client interface, :mod:`iiie.vlm.engines`; everything below holds unchanged.)

For each request the planner preprocesses the image on the qwen-vl-utils grid, runs the
configured prompt strategy (:mod:`iiie.vlm.dialogue`) with structured output, converts the
box to original pixels, and returns a :class:`~iiie.types.Plan`. Many samples are in flight
at once (``vlm.concurrency``); ``plan_batch`` is synchronous for the stages and also works
inside a running event loop (Jupyter), see :mod:`iiie.vlm.aio`.

Fault policy (never a silent wrong plan, never an outage cached as a result): a sample
the VLM cannot plan because of the sample (``schema`` after a failed repair, ``image`` for
an image the VLM grid rejects, a 4xx the server will always give) is planned by the
``fallback`` planner (the rule planner by default) and ``Plan.fallback_reason`` records
why. A server outage after the client's retries (``timeout``, ``connection``, 5xx, 429...,
see :func:`iiie.vlm.client.is_outage`) says nothing about the sample: its slot in the
batch is a :class:`~iiie.errors.TransientBackendError`, which the runner records as a
retryable error that the next run recomputes; with ``fallback_on_outage=true`` it is a
fallback plan marked ``raw["provisional"]``, used by this run and recomputed by the next. An addition whose box stays unusable after a repair keeps the VLM's category,
object and prompt and takes only the box from the fallback (reason ``box_degenerate``,
``box_outside_image`` or ``box_invalid``). :meth:`VLMPlanner.stats` counts it all for the
run manifest.

Grounding (``planner.ground_objects``, default on): for local/remove/background edits the
VLM is also asked for the box of ``plan.object`` (the subject kept, for background), which
lands in ``plan.raw["object_box"]`` in original-image pixels for ``masker=vlm_box``. An
unusable box never replaces the plan by the fallback's: ``object_box`` is then ``None`` and
``plan.raw["object_box_reason"]`` says why. Off, ``multi_turn`` saves that extra turn.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from iiie.errors import BackendUnavailableError, InstructionError, TransientBackendError
from iiie.protocols import first_plan
from iiie.seeding import sample_seed
from iiie.types import Category, EditRequest, Plan
from iiie.vlm.aio import BackgroundLoop
from iiie.vlm.client import RequestFailed, is_outage
from iiie.vlm.dialogue import Outcome, PlanDialogue
from iiie.vlm.engines import make_client, serve_of
from iiie.vlm.images import prepare_image
from iiie.vlm.prompts import load_prompts
from iiie.vlm.settings import VLMSettings
from iiie.vlm.stats import Stats
from iiie.weights import MissingWeightsError

#: Longer instructions are rejected as a per-sample error rather than sent.
MAX_INSTRUCTION_CHARS = 4000


def _memo_key(request: EditRequest) -> tuple[str, str, tuple[int, int]]:
    return (request.id, str(request.instruction), tuple(request.image.size))


def _outage_of(outcome: Outcome) -> str | None:
    """The outage reason behind an outcome, if a server outage (not the sample) is why it
    has no plan, or why its plan lacks the object box it asked for."""
    if outcome.plan is None:
        return outcome.failure if is_outage(outcome.failure) else None
    reason = outcome.plan.raw.get("object_box_reason")
    return reason if is_outage(reason) else None


def default_fallback() -> Any:
    """The rule planner (imported lazily: it is another module's job)."""
    from iiie.planners.rules import RulePlanner

    return RulePlanner()


class VLMPlannerBase:
    """What the server and offline planners share: settings, prompts, images, fallback."""

    name = "vlm"

    def __init__(
        self,
        vlm: Mapping[str, Any] | VLMSettings | None = None,
        strategy: str = "multi_turn",
        prompt_version: str = "v2",
        prompts_dir: str | None = None,
        fallback: Any = None,
        ground_objects: bool = True,
        fallback_on_outage: bool = False,
    ) -> None:
        self.fallback_on_outage = bool(fallback_on_outage)
        self.settings = vlm if isinstance(vlm, VLMSettings) else VLMSettings.from_config(vlm)
        self.serve = serve_of(vlm)  # what the in-process engines load (vlm.serve)
        self.ground_objects = bool(ground_objects)
        self.prompts = load_prompts(strategy, prompt_version, prompts_dir, self.ground_objects)
        if self.ground_objects and not self.prompts.asks_object_box:
            raise ValueError(
                f"planner.ground_objects=true, but prompt set {prompt_version!r} "
                f"({strategy}) asks no object_box; use planner.prompt_version=v2 (or later) "
                "or set planner.ground_objects=false"
            )
        self.coords = self.settings.coord_convention
        self.fallback = fallback if fallback is not None else default_fallback()
        if not hasattr(self.fallback, "plan_batch"):
            raise TypeError(f"fallback planner {self.fallback!r} has no plan_batch()")
        self._stats = Stats()
        self._memo: dict[tuple[str, str, tuple[int, int]], Outcome] = {}
        # qwen-vl-utils imports torch (seconds): pay for it here, not inside the first batch.
        import qwen_vl_utils.vision_process  # noqa: F401

    # ----------------------------------------------------------------- shared steps

    def stats(self) -> dict[str, int]:
        """Counters for the run manifest: samples, requests, retries (per reason), repairs,
        fallbacks (per reason), replies that broke their schema (``schema_failures``, repaired
        or not), and which engine answered (``engine``)."""
        return {"engine": self.engine_name, "schema_failures": 0, **self._stats.snapshot()}

    @property
    def engine_name(self) -> str:
        return self.settings.engine

    def provenance(self) -> dict[str, Any]:
        return {
            "planner": self.name,
            "model": self.settings.model,
            "engine": self.engine_name,
            "strategy": self.prompts.strategy,
            "prompt_version": self.prompts.version,
            "prompts_sha": self.prompts.sha,
            "ground_objects": self.ground_objects,
        }

    def request_seed(self, request: EditRequest) -> int | None:
        if self.settings.seed is None:
            return None
        return sample_seed(int(self.settings.seed), request.id)

    def start_dialogue(self, request: EditRequest) -> PlanDialogue:
        """Preprocess the image and open the conversation; ``ValueError`` for a bad image."""
        s = self.settings
        image = prepare_image(
            request.image,
            s.min_pixels,
            s.max_pixels,
            s.vision_patch_size,
            s.image_format,
            s.image_quality,
        )
        return PlanDialogue(request, self.prompts, image, self.coords)

    def check_instruction(self, request: EditRequest) -> InstructionError | None:
        """An instruction no planner should be asked about (the VLM would answer anyway)."""
        text = request.instruction
        if not isinstance(text, str) or not text.strip():
            return InstructionError("instruction is empty")
        if len(text) > MAX_INSTRUCTION_CHARS:
            return InstructionError(
                f"instruction is {len(text)} characters long; the limit is {MAX_INSTRUCTION_CHARS}"
            )
        return None

    def remembered(self, request: EditRequest) -> Outcome | None:
        """The outcome of ``request`` from a batch that failed on another sample's error."""
        return self._memo.pop(_memo_key(request), None)

    def finish(
        self, requests: Sequence[EditRequest], outcomes: Sequence[Outcome]
    ) -> list[Plan | TransientBackendError]:
        """Apply the fault policy: fallback plans (or boxes) where the VLM failed, a
        :class:`TransientBackendError` in the slot of a sample lost to a server outage
        (unless ``fallback_on_outage``: then a fallback plan marked provisional).

        A sample with an error of its own (a bad instruction, or one the fallback rejects)
        fails the batch with that error, as a per-sample error should; the other samples'
        VLM outcomes are remembered, so when the caller retries them one by one (the stages
        do) no request is sent twice.
        """
        errors = {i: o.error for i, o in enumerate(outcomes) if o.error is not None}
        outages = {i: reason for i, o in enumerate(outcomes) if o.error is None and (reason := _outage_of(o))}
        failed = [
            i for i, o in enumerate(outcomes)
            if o.plan is None and o.error is None and (i not in outages or self.fallback_on_outage)
        ]
        backups: dict[int, Plan] = {}
        if failed:
            try:
                planned = self.fallback.plan_batch([requests[i] for i in failed])
                backups = dict(zip(failed, planned, strict=True))
            except (BackendUnavailableError, MissingWeightsError):
                raise
            except Exception:  # find which sample the fallback rejects
                for i in failed:
                    try:
                        backups[i] = self.fallback.plan_batch([requests[i]])[0]
                    except (BackendUnavailableError, MissingWeightsError):
                        raise
                    except Exception as exc:  # noqa: BLE001 - re-raised below
                        errors[i] = exc
        if errors:
            if len(requests) > 1:
                self._memo = {
                    _memo_key(r): o for i, (r, o) in enumerate(zip(requests, outcomes, strict=True))
                    if i not in errors
                }
            raise errors[min(errors)]
        plans: list[Plan | TransientBackendError] = []
        self._stats.add("samples", len(outcomes))
        for i, outcome in enumerate(outcomes):
            if i in outages:
                self._stats.add("outages")
                self._stats.add(f"outage.{outages[i]}")
                if not self.fallback_on_outage:
                    plans.append(TransientBackendError(
                        f"VLM server outage ({outages[i]}: {outcome.detail or 'object box turn'}); "
                        "not cached: the next run asks again (planner.fallback_on_outage=true "
                        "uses a provisional rule plan meanwhile)"
                    ))
                    continue
            if outcome.plan is not None:
                plan = outcome.plan
                self._count_object_box(plan)
            else:
                reason = outcome.failure or "unknown"
                self._stats.add("fallbacks")
                self._stats.add(f"fallback.{reason}")
                plan = self._fallback_plan(outcome, backups[i])
            if i in outages:
                plan.raw["provisional"] = True
            plans.append(plan)
        return plans

    def _count_object_box(self, plan: Plan) -> None:
        """``object_boxes`` found, ``object_box_missing.<reason>`` not (grounding on)."""
        if not self.ground_objects or "object_box" not in plan.raw:
            return
        if plan.raw["object_box"] is not None:
            self._stats.add("object_boxes")
            return
        self._stats.add("object_box_missing")
        self._stats.add(f"object_box_missing.{plan.raw.get('object_box_reason', 'unknown')}")

    @staticmethod
    def _fallback_plan(outcome: Outcome, backup: Plan) -> Plan:
        reason = outcome.failure or "unknown"
        raw = {"vlm": {**outcome.raw, "failure": reason, "detail": outcome.detail}}
        answers = outcome.answers
        if reason.startswith("box_") and answers.get("category") is Category.ADDITION:
            box = backup.add_box if backup.category is Category.ADDITION else None
            raw["fallback"] = {"field": "add_box", "planner_raw": backup.raw}
            return Plan(
                category=Category.ADDITION,
                object=answers.get("object", ""),
                target_prompt=answers.get("target_prompt", ""),
                add_box=box,
                raw=raw,
                fallback_reason=reason,
            )
        raw["fallback"] = {"field": "plan", "planner_raw": backup.raw}
        return Plan(
            category=backup.category,
            object=backup.object,
            target_prompt=backup.target_prompt,
            source_caption=backup.source_caption,
            target_caption=backup.target_caption,
            add_box=backup.add_box,
            raw=raw,
            fallback_reason=reason,
        )

    def count(self, key: str, n: int = 1) -> None:
        self._stats.add(key, n)


class VLMPlanner(VLMPlannerBase):
    """``planner=vlm``: an async OpenAI-protocol client with many requests in flight."""

    name = "vlm"

    def __init__(
        self,
        vlm: Mapping[str, Any] | VLMSettings | None = None,
        strategy: str = "multi_turn",
        prompt_version: str = "v2",
        prompts_dir: str | None = None,
        fallback: Any = None,
        health_check: bool = True,
        ground_objects: bool = True,
        fallback_on_outage: bool = False,
    ) -> None:
        super().__init__(vlm, strategy, prompt_version, prompts_dir, fallback, ground_objects, fallback_on_outage)
        self.health_check = health_check
        self._loop = BackgroundLoop()
        self._client: Any = None  # VLMClient, or EngineClient for vlm.engine=vllm|transformers
        self._served: list[str] | None = None
        # Image preprocessing: a few threads, so images come out in request order and the
        # event loop is not starved of the GIL by a crowd of encoders.
        self._image_pool = ThreadPoolExecutor(
            max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="iiie-vlm-image"
        )

    # ----------------------------------------------------------------- public API

    def check(self) -> list[str]:
        """Run the health check now (it also runs before the first batch); returns the
        served model ids or raises :class:`BackendUnavailableError`."""
        return self._loop.run(self._ensure_healthy(force=True))

    def plan(self, request: EditRequest) -> Plan:
        return first_plan(self.plan_batch([request]))

    def plan_batch(self, requests: Sequence[EditRequest]) -> list[Plan]:
        """Plan all ``requests`` concurrently; blocks until every plan is ready."""
        if not requests:
            return []
        return self._loop.run(self._plan_all(list(requests)))

    async def aplan_batch(self, requests: Sequence[EditRequest]) -> list[Plan]:
        """``await planner.aplan_batch(...)`` from an async caller (e.g. a notebook)."""
        if not requests:
            return []
        return await self._loop.arun(self._plan_all(list(requests)))

    def close(self) -> None:
        """Close the HTTP client and stop the private event loop."""
        if self._client is not None:
            try:
                self._loop.run(self._client.aclose())
            except RuntimeError:
                pass
            self._client = None
        self._loop.close()
        self._image_pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> VLMPlanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; the loop thread is a daemon anyway
        try:
            self._loop.close()
        except Exception:
            pass

    # ----------------------------------------------------------------- internals

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.settings, self.serve, self._stats)
        return self._client

    async def _ensure_healthy(self, force: bool = False) -> list[str]:
        if self._served is None or force:
            try:
                self._served = await self.client.health_check()
            except BackendUnavailableError:
                self.count("health_check_failures")
                raise
        return self._served

    async def _plan_all(self, requests: list[EditRequest]) -> list[Plan]:
        if self.health_check:
            await self._ensure_healthy()
        outcomes = await asyncio.gather(*(self._plan_one(r) for r in requests))
        return self.finish(requests, outcomes)

    async def _plan_one(self, request: EditRequest) -> Outcome:
        provenance = self.provenance()
        if (known := self.remembered(request)) is not None:
            return known
        if (error := self.check_instruction(request)) is not None:
            return Outcome(None, raw=provenance, error=error)
        try:
            loop = asyncio.get_running_loop()
            dialogue = await loop.run_in_executor(self._image_pool, self.start_dialogue, request)
        except (ValueError, OSError) as exc:
            return Outcome(None, "image", f"{type(exc).__name__}: {exc}", {}, provenance)
        seed = self.request_seed(request)
        while (call := dialogue.next_call()) is not None:
            if call.repair:
                self.count("repairs")
            try:
                result = await self.client.chat(call.messages, call.response_format, seed)
            except RequestFailed as exc:
                dialogue.fail(exc.reason, exc.detail)  # ends it, unless the turn was optional
                continue
            dialogue.feed(result)
        self.count("schema_failures", dialogue.schema_errors)
        return dialogue.outcome(provenance)
