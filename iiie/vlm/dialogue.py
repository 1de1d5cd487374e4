"""One sample's conversation with the VLM, as a small state machine.

The same questions, schemas, repairs and box checks serve the async server client and the
offline ``vllm.LLM`` batch engine: each asks :meth:`PlanDialogue.next_call` for the
request to send, sends it however it sends things, and gives the reply (or the transport
failure) back to :meth:`PlanDialogue.feed` / :meth:`PlanDialogue.fail`.

Policy, per turn: parse the reply against the turn's fields; a reply that is not JSON,
breaks the schema, leaves a needed field empty, or gives an unusable box gets ONE repair
request (the bad reply and the error are shown to the model); a second bad reply ends the
dialogue with a failure reason. Only the accepted reply of each turn stays in the context
of later turns.

The object box (``object_box``, for ``masker=vlm_box``) is optional: a turn that asks only
for it gets the same one repair, but when it still fails (bad box, broken reply, transport
error) the plan keeps every other answer and ``Plan.raw`` says why the box is missing. In a
turn that asks for more (``single_call``) an unusable object box is recorded, not repaired,
so it can neither cost a repair of the whole plan nor send it to the fallback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from iiie.types import Category, EditRequest, Plan
from iiie.vlm.client import ChatResult
from iiie.vlm.coords import Coords, box_hint, to_original
from iiie.vlm.images import PreparedImage
from iiie.vlm.prompts import PromptSet, Turn
from iiie.vlm.schema import GROUNDED, NEEDED, ReplyError, parse_reply, response_format

BOX_PROBLEMS = {
    "box_invalid": "it is not four finite numbers",
    "box_degenerate": "its width or height is zero",
    "box_outside_image": "it lies outside the image",
}


@dataclass
class Call:
    """One chat request to send: messages, the structured-output block, and provenance."""

    messages: list[dict[str, Any]]
    response_format: dict[str, Any]
    turn: str
    repair: bool = False

    @property
    def schema(self) -> dict[str, Any]:
        return self.response_format["json_schema"]["schema"]


@dataclass
class Outcome:
    """What a finished dialogue produced: the plan (when usable) and/or why not."""

    plan: Plan | None
    failure: str | None = None
    detail: str = ""
    answers: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    #: a per-sample error (bad instruction) that no planner can answer
    error: Exception | None = None


class PlanDialogue:
    """The conversation for one request: turns from the prompt set, one repair per turn,
    the box checked against the image; :meth:`outcome` assembles the plan."""

    def __init__(
        self,
        request: EditRequest,
        prompts: PromptSet,
        image: PreparedImage,
        coords: Coords,
        min_box_side: float = 1.0,
    ) -> None:
        self.request = request
        self.prompts = prompts
        self.image = image
        self.coords = coords
        self.min_box_side = min_box_side
        w, h = image.size
        self.context: dict[str, Any] = {
            "instruction": request.instruction,
            "width": w,
            "height": h,
            "box_hint": box_hint(coords, image.size),
        }
        self.answers: dict[str, Any] = {}
        #: replies that broke the turn's schema (not JSON, off-schema, a needed field empty);
        #: unusable boxes are not counted here
        self.schema_errors = 0
        self.transcript: list[dict[str, Any]] = []
        self.failure: tuple[str, str] | None = None
        self.box_original: tuple[float, float, float, float] | None = None
        self.object_box: tuple[float, float, float, float] | None = None
        self.object_box_raw: Any = None
        #: (reason, detail) when the object box was asked for and is unusable
        self.object_box_missing: tuple[str, str] | None = None
        self._queue: list[Turn] = list(prompts.first)
        self._history: list[dict[str, Any]] = []
        if prompts.system:
            self._history.append({"role": "system", "content": prompts.system})
        self._turn: Turn | None = None
        self._turn_messages: list[dict[str, Any]] = []
        self._pending: Call | None = None
        self._repaired = False
        self._first_user = True

    # ----------------------------------------------------------------- driving

    @property
    def done(self) -> bool:
        return self.failure is not None or (self._pending is None and not self._queue)

    def next_call(self) -> Call | None:
        """The request to send now, or ``None`` when the dialogue is over."""
        if self.failure is not None:
            return None
        if self._pending is None:
            if not self._queue:
                return None
            self._turn = turn = self._queue.pop(0)
            self._repaired = False
            text = turn.render(self.context)
            if self._first_user:
                content: Any = [
                    {"type": "image_url", "image_url": {"url": self.image.data_url}},
                    {"type": "text", "text": text},
                ]
                self._first_user = False
            else:
                content = text
            self._turn_messages = [*self._history, {"role": "user", "content": content}]
            self._pending = Call(
                self._turn_messages, response_format(turn.fields, turn.name), turn.name
            )
        return self._pending

    def feed(self, result: ChatResult) -> None:
        """Take the reply to the last :meth:`next_call`."""
        call, turn = self._pending, self._turn
        if call is None or turn is None:
            raise RuntimeError("feed() without a pending call")
        entry: dict[str, Any] = {"turn": turn.name, "reply": result.content, "repair": call.repair}
        if result.finish_reason not in (None, "stop"):
            entry["finish_reason"] = result.finish_reason
        try:
            values = parse_reply(result.content, turn.fields, self.answers.get("category"))
            self._check_box(values)
            self._take_object_box(values, strict=turn.optional)
        except ReplyError as exc:
            entry["error"] = str(exc)
            if not isinstance(exc, BoxError):
                self.schema_errors += 1
            self.transcript.append(entry)
            if not self._repaired:
                self._repaired = True
                schema_text = json.dumps(call.schema, separators=(",", ":"))
                repair = self.prompts.render_repair(
                    {**self.context, **self.answers}, str(exc), schema_text
                )
                self._pending = Call(
                    [
                        *self._turn_messages,
                        {"role": "assistant", "content": result.content or ""},
                        {"role": "user", "content": repair},
                    ],
                    call.response_format,
                    turn.name,
                    repair=True,
                )
                return
            reason = exc.reason if isinstance(exc, BoxError) else "schema"
            self._pending = None
            if turn.optional:  # the plan goes on without this answer
                self.object_box_missing = (reason, f"{turn.name}: {exc}")
                return
            self.failure = (reason, f"{turn.name}: {exc}")
            return
        self.transcript.append(entry)
        self.answers.update(values)
        self.context.update(values)
        self._history = [
            *self._turn_messages,
            {"role": "assistant", "content": result.content or ""},
        ]
        if "category" in values:
            self._queue.extend(self.prompts.turns_after(values["category"]))
        self._pending = None

    def fail(self, reason: str, detail: str = "") -> None:
        """The last call could not be answered (transport failure after retries)."""
        name = self._turn.name if self._turn is not None else "?"
        self.transcript.append({"turn": name, "reply": None, "error": f"{reason}: {detail}"})
        self._pending = None
        if self._turn is not None and self._turn.optional:  # keep the plan, note the gap
            self.object_box_missing = (reason, f"{name}: {detail}" if detail else name)
            return
        self.failure = (reason, f"{name}: {detail}" if detail else name)

    def _check_box(self, values: dict[str, Any]) -> None:
        category = values.get("category", self.answers.get("category"))
        if "box" not in values or category is not Category.ADDITION:
            return
        result = to_original(
            values["box"], self.coords, self.image.original_size, self.image.size,
            self.min_box_side,
        )
        if result.box is None:
            raise BoxError(
                result.reason,
                f"the box {values['box']} is unusable ({BOX_PROBLEMS[result.reason]}): give "
                f"[x0, y0, x1, y1] with x0 < x1 and y0 < y1, inside the image, in "
                f"{self.context['box_hint']}",
            )
        self.box_original = result.box

    def _take_object_box(self, values: dict[str, Any], strict: bool) -> None:
        """Convert the object box to original pixels; ``strict`` (a turn asking only for
        it) raises :class:`BoxError` so the turn is repaired, otherwise the problem is
        recorded and the rest of the reply stands."""
        if "object_box" not in values:
            return
        category = values.get("category", self.answers.get("category"))
        if category not in GROUNDED:  # single_call: no object to ground for this category
            return
        raw = self.object_box_raw = values["object_box"]
        if raw is None:
            self.object_box, self.object_box_missing = None, (
                "box_not_found", "the model answered null (it does not see the object)")
            return
        result = to_original(
            raw, self.coords, self.image.original_size, self.image.size, self.min_box_side
        )
        if result.box is None:
            reason = result.reason or "box_invalid"
            message = (
                f"the object box {raw!r} is unusable ({BOX_PROBLEMS[reason]}): give "
                f"[x0, y0, x1, y1] with x0 < x1 and y0 < y1, inside the image, in "
                f"{self.context['box_hint']}"
            )
            if strict:
                raise BoxError(reason, message)
            self.object_box, self.object_box_missing = None, (reason, message)
            return
        self.object_box, self.object_box_missing = result.box, None

    # ----------------------------------------------------------------- result

    def outcome(self, provenance: dict[str, Any] | None = None) -> Outcome:
        raw = {
            **(provenance or {}),
            "image_size": list(self.image.size),
            "coords": self.coords.value,
            "turns": self.transcript,
        }
        if "box" in self.answers:
            raw["box_raw"] = self.answers["box"]
        if self.failure is not None:
            reason, detail = self.failure
            return Outcome(None, reason, detail, dict(self.answers), raw)
        category: Category = self.answers["category"]
        need = NEEDED[category]
        plan = Plan(
            category=category,
            object=self.answers.get("object", "") if "object" in need else "",
            target_prompt=self.answers.get("target_prompt", "") if "target_prompt" in need else "",
            source_caption=self.answers.get("source_caption", "")
            if "source_caption" in need
            else "",
            target_caption=self.answers.get("target_caption", "")
            if "target_caption" in need
            else "",
            add_box=self.box_original if category is Category.ADDITION else None,
            raw={**raw, **self._object_box_raw(category)},
        )
        return Outcome(plan, None, "", dict(self.answers), raw)

    def _object_box_raw(self, category: Category) -> dict[str, Any]:
        """``object_box`` in original pixels for ``masker=vlm_box``, or ``None`` and why
        (``object_box_reason``: a box check reason, ``box_not_found``, ``schema``, a
        transport reason, or ``disabled`` with ``planner.ground_objects=false``)."""
        if category not in GROUNDED:
            return {}
        out: dict[str, Any] = {"object_box": None}
        if self.object_box_raw is not None:
            out["object_box_raw"] = self.object_box_raw
        if self.object_box is not None:
            out["object_box"] = [float(v) for v in self.object_box]
        elif self.object_box_missing is not None:
            out["object_box_reason"], out["object_box_detail"] = self.object_box_missing
        elif not self.prompts.ground_objects:
            out["object_box_reason"] = "disabled"
            out["object_box_detail"] = "planner.ground_objects=false"
        else:
            out["object_box_reason"] = "not_asked"
            out["object_box_detail"] = (
                f"prompt set {self.prompts.version}/{self.prompts.strategy} asks no "
                f"object_box for {category.value!r}"
            )
        return out


class BoxError(ReplyError):
    """A box that cannot be used; ``reason`` is the coordinate check's reason."""

    def __init__(self, reason: str | None, message: str) -> None:
        super().__init__(message)
        self.reason = reason or "box_invalid"
