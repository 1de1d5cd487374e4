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
from iiie.vlm.schema import NEEDED, ReplyError, parse_reply, response_format

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
        self.transcript: list[dict[str, Any]] = []
        self.failure: tuple[str, str] | None = None
        self.box_original: tuple[float, float, float, float] | None = None
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
        except ReplyError as exc:
            entry["error"] = str(exc)
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
            self.failure = (reason, f"{turn.name}: {exc}")
            self._pending = None
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
        self.failure = (reason, f"{name}: {detail}" if detail else name)
        self._pending = None

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
            raw=raw,
        )
        return Outcome(plan, None, "", dict(self.answers), raw)


class BoxError(ReplyError):
    """A box that cannot be used; ``reason`` is the coordinate check's reason."""

    def __init__(self, reason: str | None, message: str) -> None:
        super().__init__(message)
        self.reason = reason or "box_invalid"
