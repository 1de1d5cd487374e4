"""JSON schemas the replies must follow, and pydantic parsing of the replies.

Schemas are written by hand from a small field table, using only standard, widely
supported features (``type``, ``enum``, ``required``, ``additionalProperties``,
``minItems``/``maxItems``, and ``anyOf`` with ``{"type": "null"}`` for the one nullable
field, the form pydantic writes for ``Optional``), so every vLLM structured-output backend
(xgrammar, guidance, outlines) and any OpenAI-protocol server accepts them. Pydantic then checks more than the
schema says (a non-empty object name where the category needs one), because a reply that
fits the schema can still be useless.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from iiie.types import Category

FIELDS: dict[str, dict[str, Any]] = {
    "category": {"type": "string", "enum": [c.value for c in Category]},
    "object": {"type": "string"},
    "target_prompt": {"type": "string"},
    "source_caption": {"type": "string"},
    "target_caption": {"type": "string"},
    "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
    # The box of the object a local/remove edit changes (the subject a background edit
    # keeps), for ``masker=vlm_box``; ``null`` when the model cannot see it.
    "object_box": {
        "anyOf": [
            {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
            {"type": "null"},
        ]
    },
}

#: Fields a plan can do without: a bad answer is recorded in ``Plan.raw``, never a reason
#: to replace the whole plan by the fallback's.
OPTIONAL_FIELDS = frozenset({"object_box"})

#: Categories whose ``object`` is found in the image, so it has a box worth asking for.
GROUNDED = frozenset({Category.LOCAL, Category.REMOVE, Category.BACKGROUND})

#: The fields a plan of each category cannot do without (empty strings are not answers).
NEEDED: dict[Category, frozenset[str]] = {
    Category.LOCAL: frozenset({"object", "target_prompt"}),
    Category.REMOVE: frozenset({"object"}),
    Category.BACKGROUND: frozenset({"object", "target_prompt"}),
    Category.ADDITION: frozenset({"object", "target_prompt", "box"}),
    Category.GLOBAL: frozenset({"source_caption", "target_caption"}),
}


class ReplyError(ValueError):
    """A reply that is not JSON, breaks the schema, or leaves a needed field empty."""


def check_fields(fields: Iterable[str]) -> tuple[str, ...]:
    names = tuple(fields)
    unknown = [f for f in names if f not in FIELDS]
    if unknown or not names:
        raise ValueError(
            f"unknown or missing reply fields {unknown or names!r}; known: {', '.join(FIELDS)}"
        )
    return names


def json_schema(fields: Sequence[str]) -> dict[str, Any]:
    """An object schema with exactly ``fields``, all required, nothing else allowed."""
    names = check_fields(fields)
    return {
        "type": "object",
        "properties": {f: dict(FIELDS[f]) for f in names},
        "required": list(names),
        "additionalProperties": False,
    }


def response_format(fields: Sequence[str], name: str) -> dict[str, Any]:
    """The OpenAI ``response_format`` block (``json_schema``, strict)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "reply"
    return {
        "type": "json_schema",
        "json_schema": {"name": safe, "schema": json_schema(fields), "strict": True},
    }


class _Reply(BaseModel):
    """Field types and normalisation shared by every per-turn model."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("category", mode="before", check_fields=False)
    @classmethod
    def _category(cls, value: Any) -> Category:
        return Category.parse(value)


_TYPES: dict[str, Any] = {
    "category": (Category, ...),
    "object": (str, ...),
    "target_prompt": (str, ...),
    "source_caption": (str, ...),
    "target_caption": (str, ...),
    "box": (list[float], Field(..., min_length=4, max_length=4)),
    # Required but untyped here: its shape is checked by the box conversion, which turns a
    # malformed box into a recorded reason instead of a schema failure of the whole reply.
    "object_box": (Any, ...),
}


@lru_cache(maxsize=64)
def reply_model(fields: tuple[str, ...]) -> type[BaseModel]:
    """A pydantic model requiring exactly ``fields`` (cached per field tuple)."""
    check_fields(fields)
    return create_model(
        "Reply_" + "_".join(fields), __base__=_Reply, **{f: _TYPES[f] for f in fields}
    )


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_reply(
    content: str | None, fields: Sequence[str], category: Category | None = None
) -> dict[str, Any]:
    """Parse and validate one reply; raise :class:`ReplyError` with a message fit for a
    repair prompt.

    ``category`` (known from an earlier turn, or read from this reply) decides which of the
    asked fields must be non-empty.
    """
    if content is None or not content.strip():
        raise ReplyError("the reply was empty")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReplyError(f"the reply is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, dict):
        raise ReplyError(f"the reply must be a JSON object, got {type(data).__name__}")
    try:
        parsed = reply_model(tuple(fields)).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors()
        )
        raise ReplyError(f"the reply does not match the schema ({problems})") from None
    values = parsed.model_dump()
    category = values.get("category", category)
    if category is not None:
        empty = [f for f in fields if f in NEEDED[category] and values.get(f) in ("", None)]
        if empty:
            raise ReplyError(
                f"for a {category.value!r} edit these fields must not be empty: {', '.join(empty)}"
            )
    return values
