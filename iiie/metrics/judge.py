"""A local VLM as rater: the MAGIC protocol (``metrics=judge_magic``) and its machinery.

The paper's Table 1 came from three human raters answering yes/no to *edit faithfulness*,
*content preservation* and *overall*, majority vote per image. Here a VLM served with the
OpenAI protocol (the planner's :class:`~iiie.vlm.client.VLMClient`: health check,
retries, concurrency) plays the raters: each vote is one request that shows the source
and edited images with the instruction and asks for a JSON-schema constrained reply;
``samples`` votes (default 3) are drawn at ``temperature > 0`` with distinct seeds, and
each question's majority is the sample's 0/1 column.

Prompts, image order and reply fields are files (``conf/prompts/judge_magic_v1/``, see
:func:`load_judge_prompts`). A malformed reply (not JSON, a missing field, a value outside
the schema) is asked again with a new seed up to ``parse_retries`` times; a vote that
still has no valid answer, or whose request was refused (a 4xx), is lost. Majority = more
than half of the *valid* votes say yes (a tie is "no"); a sample with no valid vote gets no
columns. A vote lost to a server *outage* (timeout, refused connection, 5xx after the
client's retries) is neither a "no" nor a lost vote: the sample's slot is a
:class:`~iiie.errors.TransientBackendError`, which the score stage records as retryable, so
the next run asks again instead of caching a score from fewer votes. Every reply, parsed vote and error is kept per sample in
:attr:`VLMJudge.details` (``{sample_id: record}``) for the score stage to store.

Engines: with ``vlm.engine=vllm|transformers`` the same requests go to an in-process model
instead of the server (:mod:`iiie.vlm.engines`); ``stats()`` names the engine and counts
malformed replies (``schema_failures``).

Serving note: these prompts attach two images, so vLLM must allow it
(``vlm.serve.limit_mm_per_prompt.image=2``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

from iiie.errors import BackendUnavailableError, TransientBackendError
from iiie.protocols import Scored
from iiie.seeding import sample_seed
from iiie.vlm.aio import BackgroundLoop
from iiie.vlm.client import RequestFailed, is_outage
from iiie.vlm.engines import make_client, serve_of
from iiie.vlm.images import prepare_image
from iiie.vlm.prompts import default_prompts_dir
from iiie.vlm.settings import VLMSettings

IMAGE_ROLES = ("source", "edited", "mask")
#: Which step of the pipeline an edit failed at (the verify stage's ``failed_step``).
STEPS = ("none", "category", "mask", "inpaint")
FIELD_TYPES = {
    "yesno": {"type": "string", "enum": ["yes", "no"]},
    "score10": {"type": "integer", "minimum": 0, "maximum": 10},
    "step": {"type": "string", "enum": list(STEPS)},
}
PLACEHOLDERS = frozenset({"instruction"})


class JudgeReplyError(ValueError):
    """A reply that does not follow the question's schema."""


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class JudgeQuestion:
    name: str
    template: Template
    images: tuple[str, ...]
    fields: dict[str, str]  # reply key -> field type

    def response_format(self) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {
                "name": re.sub(r"[^A-Za-z0-9_-]", "_", self.name)[:64] or "reply",
                "schema": {
                    "type": "object",
                    "properties": {k: dict(FIELD_TYPES[t]) for k, t in self.fields.items()},
                    "required": list(self.fields),
                    "additionalProperties": False,
                },
                "strict": True,
            },
        }


@dataclass(frozen=True)
class JudgePrompts:
    version: str
    system: str | None
    questions: tuple[JudgeQuestion, ...]


def load_judge_prompts(name_or_dir: str, prompts_dir: str | None = None) -> JudgePrompts:
    """Load ``<prompts_dir>/<name>/manifest.yaml`` (or a folder path) and check it.

    Unknown placeholders, image roles or field types are errors here, not mid-run.
    """
    folder = Path(name_or_dir)
    if not folder.is_dir():
        folder = Path(prompts_dir) if prompts_dir else default_prompts_dir()
        folder = folder / name_or_dir
    manifest = folder / "manifest.yaml"
    if not manifest.is_file():
        raise FileNotFoundError(f"judge prompt manifest not found: {manifest}")
    spec = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    system = (
        (folder / spec["system"]).read_text(encoding="utf-8").strip()
        if spec.get("system")
        else None
    )
    questions = []
    for q in spec.get("questions") or []:
        where = f"{manifest} question {q.get('name')!r}"
        text = (folder / q["prompt"]).read_text(encoding="utf-8")
        template = Template(text)
        used = {m.group("named") or m.group("braced") for m in template.pattern.finditer(text)} - {
            None
        }
        if used - PLACEHOLDERS:
            raise ValueError(f"{where}: unknown placeholders {sorted(used - PLACEHOLDERS)}")
        images = tuple(q.get("images") or ())
        if not images or set(images) - set(IMAGE_ROLES):
            raise ValueError(f"{where}: images must be a non-empty list of {IMAGE_ROLES}")
        fields = dict(q.get("fields") or {})
        bad = {k: v for k, v in fields.items() if v not in FIELD_TYPES}
        if not fields or bad:
            raise ValueError(
                f"{where}: fields need types from {sorted(FIELD_TYPES)}, got {bad or 'none'}"
            )
        questions.append(JudgeQuestion(str(q["name"]), template, images, fields))
    if not questions:
        raise ValueError(f"{manifest}: no questions")
    return JudgePrompts(folder.name, system, tuple(questions))


def parse_judge_reply(text: str | None, fields: Mapping[str, str]) -> dict[str, Any]:
    """Parse one reply into ``{field: bool | int}``; :class:`JudgeReplyError` if malformed.

    Tolerates a Markdown code fence and surrounding prose around one JSON object (a
    server without guided decoding), "Yes"/true for yes, and integral numbers or
    numeric strings for scores; anything else is malformed.
    """
    if not text or not text.strip():
        raise JudgeReplyError("empty reply")
    body = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", body, flags=re.S)
    if fence:
        body = fence.group(1).strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        brace = re.search(r"\{.*\}", body, flags=re.S)
        try:
            data = json.loads(brace.group(0)) if brace else None
        except json.JSONDecodeError:
            data = None
        if data is None:
            raise JudgeReplyError(f"not JSON: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise JudgeReplyError(f"expected a JSON object, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, kind in fields.items():
        if key not in data:
            raise JudgeReplyError(f"missing field {key!r}")
        value = data[key]
        if kind == "yesno":
            if isinstance(value, bool):
                out[key] = value
            elif isinstance(value, str) and value.strip().lower() in ("yes", "no"):
                out[key] = value.strip().lower() == "yes"
            else:
                raise JudgeReplyError(f"{key}: expected yes/no, got {value!r}")
        elif kind == "step":
            if not isinstance(value, str) or value.strip().lower() not in STEPS:
                raise JudgeReplyError(f"{key}: expected one of {STEPS}, got {value!r}")
            out[key] = value.strip().lower()
        else:
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None or number != int(number) or not 0 <= number <= 10:
                raise JudgeReplyError(f"{key}: expected an integer 0..10, got {value!r}")
            out[key] = int(number)
    return out


# --------------------------------------------------------------------------- base judge


class VLMJudge:
    """Shared machinery: settings, one client on a private loop, votes with re-asks."""

    name = "judge"
    default_prompts = ""

    def __init__(
        self,
        vlm: Mapping[str, Any] | VLMSettings | None = None,
        prompts: str | None = None,
        prompts_dir: str | None = None,
        samples: int = 3,
        temperature: float = 0.7,
        parse_retries: int = 1,
        health_check: bool = True,
    ) -> None:
        base = vlm if isinstance(vlm, VLMSettings) else VLMSettings.from_config(vlm)
        self.samples = int(samples)
        if self.samples < 1:
            raise ValueError(f"{self.name}.samples must be >= 1, got {samples}")
        if self.samples > 1 and float(temperature) <= 0:
            raise ValueError(
                f"{self.name}: {self.samples} votes at temperature {temperature} would all be "
                "the same answer; set temperature > 0 or samples: 1"
            )
        self.settings = dataclasses.replace(base, temperature=float(temperature))
        self.serve = serve_of(vlm)  # what vlm.engine=vllm|transformers loads
        self.prompts = load_judge_prompts(prompts or self.default_prompts, prompts_dir)
        self.parse_retries = int(parse_retries)
        self.health_check = bool(health_check)
        self.details: dict[str, dict[str, Any]] = {}
        self._loop = BackgroundLoop(f"iiie-{self.name}-loop")
        self._client: Any = None  # VLMClient, or EngineClient (vlm.engine, iiie/vlm/engines.py)
        self._healthy = False

    # ------------------------------------------------------------------ public

    def check(self) -> list[str]:
        """Run the server health check now (an in-process engine loads its model);
        raises BackendUnavailableError (MissingWeightsError for a bad model folder)."""
        return self._loop.run(self._client_().health_check())

    def provenance(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "model": self.settings.model,
            "engine": self.settings.engine,
            "prompts": self.prompts.version,
            "samples": self.samples,
            "temperature": self.settings.temperature,
        }

    def stats(self) -> dict[str, Any]:
        """Requests, retries, malformed replies (``schema_failures``) and the ``engine``."""
        return {
            "engine": self.settings.engine,
            "schema_failures": 0,
            **self._client_().stats.snapshot(),
        }

    def vote_seed(self, sample_id: str, question: str, vote: int, attempt: int) -> int | None:
        """The request seed of one vote attempt (None when ``vlm.seed`` is null)."""
        if self.settings.seed is None:
            return None
        return sample_seed(int(self.settings.seed), f"{sample_id}/{question}/{vote}/{attempt}")

    def ask_all(
        self, items: Sequence[Scored]
    ) -> list[dict[str, list[dict[str, Any] | None]] | TransientBackendError]:
        """All votes for all items: per item, ``{question: [answer or None per vote]}``, or
        a :class:`TransientBackendError` for an item that lost a vote to a server outage.

        Also fills :attr:`details` with every reply.
        """
        if not items:
            return []
        votes = self._loop.run(self._ask_items(list(items)))
        out: list[dict[str, list[dict[str, Any] | None]] | TransientBackendError] = []
        for item, v in zip(items, votes, strict=True):
            lost = self._outage_errors(item.sample.request.id)
            if lost:
                self.details.pop(item.sample.request.id, None)
                out.append(TransientBackendError(
                    f"{self.name}: {len(lost)} vote(s) lost to a VLM server outage ({lost[0]}); "
                    "not scored, the next run asks again"
                ))
            else:
                out.append(v)
        return out

    def _outage_errors(self, sample_id: str) -> list[str]:
        """The request errors of a sample's votes that were server outages."""
        return [
            a["error"]
            for v in self.details.get(sample_id, {}).get("votes", [])
            for a in v["attempts"]
            if a.get("outage")
        ]

    def close(self) -> None:
        if self._client is not None:
            try:
                self._loop.run(self._client.aclose())
            except RuntimeError:
                pass
            self._client = None
        self._loop.close()

    def __del__(self) -> None:
        try:
            self._loop.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ internals

    def _client_(self) -> Any:
        if self._client is None:
            self._client = make_client(self.settings, self.serve)
        return self._client

    async def _ask_items(self, items: list[Scored]):
        if self.health_check and not self._healthy:
            await self._client_().health_check()
            self._healthy = True
        results = await asyncio.gather(*(self._ask_item(it) for it in items))
        self._raise_if_all_rejected(items)
        return results

    def _raise_if_all_rejected(self, items: list[Scored]) -> None:
        """Every request of the batch refused with the same 4xx: a setup problem (most often
        a server that allows one image per prompt), not per-sample bad luck. Stop with a
        fix instead of writing a table of empty judge columns."""
        errors = [
            a.get("error") or ""
            for it in items
            for v in self.details.get(it.sample.request.id, {}).get("votes", [])
            for a in v["attempts"]
        ]
        if not errors or not all(e.startswith("request: http_4") for e in errors):
            return
        codes = {e.split(":")[1].strip() for e in errors}
        if len(codes) != 1:
            return
        raise BackendUnavailableError(
            f"the VLM server rejected every {self.name} request ({errors[0][9:200]}). These "
            "prompts attach up to two images: if vLLM was started with one image per prompt, "
            "restart it with vlm.serve.limit_mm_per_prompt.image=2 (make serve-vlm)."
        )

    def _pictures(self, item: Scored) -> dict[str, Any]:
        """The images a prompt can attach, by role (a subclass adds the mask)."""
        return {"source": item.sample.request.image, "edited": item.edit.image}

    def _images(self, item: Scored) -> dict[str, str]:
        s = self.settings
        used = {role for q in self.prompts.questions for role in q.images}
        pics = {role: img for role, img in self._pictures(item).items() if role in used}
        missing = used - set(pics)
        if missing:
            raise ValueError(f"{self.name}: no {sorted(missing)} image for this sample")
        return {
            role: prepare_image(
                img,
                s.min_pixels,
                s.max_pixels,
                s.vision_patch_size,
                s.image_format,
                s.image_quality,
            ).data_url
            for role, img in pics.items()
        }

    async def _ask_item(self, item: Scored) -> dict[str, list[dict[str, Any] | None]]:
        sid = item.sample.request.id
        record: dict[str, Any] = {**self.provenance(), "votes": []}
        self.details[sid] = record
        try:
            urls = await asyncio.to_thread(self._images, item)
        except (ValueError, OSError) as exc:
            record["error"] = f"image: {type(exc).__name__}: {exc}"
            return {q.name: [None] * self.samples for q in self.prompts.questions}
        jobs = [
            self._vote(sid, item.sample.request.instruction, urls, q, k)
            for q in self.prompts.questions
            for k in range(self.samples)
        ]
        results = await asyncio.gather(*jobs)
        record["votes"] = [r for r in results]
        out: dict[str, list[dict[str, Any] | None]] = {q.name: [] for q in self.prompts.questions}
        for r in results:
            out[r["question"]].append(r["answer"])
        return out

    async def _vote(
        self, sid: str, instruction: str, urls: dict[str, str], q: JudgeQuestion, k: int
    ):
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": urls[role]}} for role in q.images
        ]
        content.append({"type": "text", "text": q.template.substitute(instruction=instruction)})
        messages: list[dict[str, Any]] = []
        if self.prompts.system:
            messages.append({"role": "system", "content": self.prompts.system})
        messages.append({"role": "user", "content": content})
        attempts = []
        answer = None
        for attempt in range(self.parse_retries + 1):
            seed = self.vote_seed(sid, q.name, k, attempt)
            entry: dict[str, Any] = {"seed": seed, "reply": None, "error": None}
            attempts.append(entry)
            try:
                result = await self._client_().chat(messages, q.response_format(), seed)
            except RequestFailed as exc:
                entry["error"] = f"request: {exc}"
                entry["outage"] = is_outage(exc.reason)
                break  # the client already retried transport faults
            entry["reply"] = result.content
            try:
                answer = parse_judge_reply(result.content, q.fields)
                break
            except JudgeReplyError as exc:
                entry["error"] = f"malformed: {exc}"
                self._client_().stats.add("schema_failures")
        return {"question": q.name, "vote": k, "answer": answer, "attempts": attempts}


def majority(answers: Sequence[dict[str, Any] | None], field: str) -> float | None:
    """1.0 if more than half of the valid votes say yes, 0.0 otherwise, None if none valid."""
    valid = [a[field] for a in answers if a is not None]
    if not valid:
        return None
    return 1.0 if sum(bool(v) for v in valid) * 2 > len(valid) else 0.0


class MagicJudge(VLMJudge):
    """``metrics=judge_magic``: columns ``edit_faithfulness``, ``content_preservation``,
    ``overall`` (0/1 majority per sample)."""

    name = "judge_magic"
    default_prompts = "judge_magic_v1"
    COLUMNS = ("edit_faithfulness", "content_preservation", "overall")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields = {f for q in self.prompts.questions for f in q.fields}
        missing = set(self.COLUMNS) - fields
        if missing:
            raise ValueError(
                f"judge_magic prompts {self.prompts.version} lack fields {sorted(missing)}"
            )

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]:
        rows: list[dict[str, float]] = []
        for item, votes in zip(items, self.ask_all(items), strict=True):
            if isinstance(votes, Exception):
                rows.append(votes)
                continue
            row: dict[str, float] = {}
            for q in self.prompts.questions:
                for field in q.fields:
                    if field in self.COLUMNS:
                        value = majority(votes[q.name], field)
                        if value is not None:
                            row[field] = value
            self.details[item.sample.request.id]["result"] = dict(row)
            rows.append(row)
        return rows
