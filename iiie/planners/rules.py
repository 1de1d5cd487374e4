"""The rule planner (``planner=rules``): an instruction parser with no model.

It is the no-VLM baseline of the step-1/2 ablations and the fallback when the VLM fails,
so it has to handle the way people actually phrase edits ("get rid of the background
behind the woman", "what if the man had a hat", "let's see it in winter").

How it works (one pass, no scoring of keywords):

1. **normalise** — lower case, quotes and punctuation, contractions, frequent typos;
2. **split clauses** — on sentence marks and on "and/but/then" that start a new command;
   a "keep X" clause names the subject to keep for a background edit;
3. **strip lead-ins** — "could you", "please", "let's", "i want you to", ...;
4. **match a frame** — an ordered grammar of sentence shapes, each binding slots:
   removal ("remove X", "take X out", "X should be gone", "no X", "without X"),
   giving ("give X Y"), causatives and counterfactuals ("make/have/let X <verb>",
   "what if X had Y", "i want X to be Y"), addition ("add/put/place X <location>"),
   change ("change/turn/replace X to/into/with Y", "make X Y"), seeing ("let's see it
   in winter"), existentials ("there should be X", "a bird on the branch"), plain
   statements ("the dog should be a cat"), adjustments ("increase the contrast");
5. **decide the category from the slots' meaning** — the same frame yields different
   categories depending on what fills it: "remove the yellow cast" (an image artefact:
   global), "remove the background behind the woman" (background, keep the woman),
   "remove the lamp" (remove); "put the dog on a beach" (a definite subject moved into a
   scene: background) vs "put a cat on the sofa" (addition);
6. **build prompts** — target prompt, global captions, and for additions a box
   (:mod:`iiie.planners.rules_boxes`).

Conventions for ambiguous phrasings, applied consistently:

* the sky counts as background: "make the sky cloudy", "replace the sky with a sunset"
  are background edits (the subject is kept, the backdrop changes). Things *in* the sky
  ("add a bird in the sky") are additions/removals;
* weather, season and time of day of the whole scene are global ("make it winter");
* "blur the background" is background; "blur the image" is global;
* styles and media of the whole picture are global; a style on one object is local
  ("make the car look like a cartoon");
* a multi-clause instruction is categorised by its first actionable clause.

Instructions that match no frame still get a best guess from word meaning, marked
``confidence: "low"`` in ``Plan.raw``.

Modules: :mod:`~iiie.planners.rules_text` (reading: normalisation, clauses, noun phrases),
:mod:`~iiie.planners.rules_grammar` (frames and category decisions),
:mod:`~iiie.planners.rules_table` and ``rules_tables_*`` (frames and decisions as
declarative tables, one tested row per pattern),
:mod:`~iiie.planners.rules_prompts` (target prompts, captions),
:mod:`~iiie.planners.rules_boxes` (addition boxes), :mod:`~iiie.planners.rules_lexicon`
(word lists). Accuracy on the labelled sets in ``tests/data`` is measured by
``python -m iiie.plan input=tests/data/regression_holdout.jsonl output=OUT.jsonl``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from iiie.errors import InstructionError
from iiie.planners.rules_boxes import locate
from iiie.planners.rules_grammar import Parse, fallback_parse, parse_clause
from iiie.planners.rules_language import check_english
from iiie.planners.rules_prompts import (
    DEFAULT_SUBJECT,
    REMOVE_PROMPT,
    background_target,
    global_captions,
    local_target,
    object_or_default,
)
from iiie.planners.rules_text import (
    clean_np,
    normalise,
    split_clauses,
    split_np,
    strip_complement,
    strip_lead_ins,
)
from iiie.protocols import BasePlanner
from iiie.types import Category, EditRequest, Plan

__all__ = [
    "DEFAULT_SUBJECT",
    "MAX_INSTRUCTION_CHARS",
    "REMOVE_PROMPT",
    "RulePlanner",
    "parse_instruction",
]

MAX_INSTRUCTION_CHARS = 2000


_DESCRIPTION = re.compile(
    r"^(?:(?:the|a|an|this|that|his|her|their|there|it|he|she|they|i|we)\b.*?\s)?"
    r"(?:is|are|has|have|wears|holds|sits|stands|see|can see|shows)\b"
)
_REQUEST_WORDS = re.compile(
    r"\b(?:should|must|needs? to|has to|have to|want|would|could|can "
    r"you|please|instead|make|let|now)\b"
)


def _topic_only(clause: str) -> bool:
    """A clause that is only a definite noun phrase ("the woman's shirt, make it ...")."""
    words = clause.split()
    return (
        1 < len(words) <= 5
        and bool(re.match(r"^(?:the|this|that|these|those|his|her|their|my|our|your)\s", clause))
        and not split_np(clause)[1]
        and not _DESCRIPTION.match(clause)
        and not any(w in _VERB_WORDS for w in words)
    )


_VERB_WORDS = frozenset(
    "is are was were be has have had should must can could would will make do does".split()
)


def _described_object(clause: str, parse: Parse) -> str:
    """The thing a describing clause introduces: "there is a random guy in the corner"."""
    m = re.search(r"\bthere (?:is|are|was|were) (?P<np>.+)$", clause)
    if m:
        return clean_np(split_np(m.group("np"))[0])
    # "... but the background is messy": the noun the complaint is about
    m = re.search(
        r"\b(?:the|this|that|my|his|her|their)\s+(?P<np>[a-z]+(?:\s[a-z]+)?)\s+"
        r"(?:is|are|looks|look|seems|seem)\s+(?!\w+ing\b)(?!(?:a|an|the|in|on|at)\b)",
        clause,
    )
    if m and m.group("np").split()[-1] not in ("photo", "picture", "image", "pic", "shot"):
        return clean_np(m.group("np"))
    return parse.obj


def _describes(clause: str) -> bool:
    """True for a clause that describes the picture rather than asking for an edit."""
    return bool(_DESCRIPTION.match(clause)) and not _REQUEST_WORDS.search(clause)


def _validate(instruction: Any) -> str:
    if not isinstance(instruction, str):
        raise InstructionError(f"instruction must be text, got {type(instruction).__name__}")
    if not instruction.strip():
        raise InstructionError("instruction is empty")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise InstructionError(
            f"instruction is {len(instruction)} characters long; the limit is "
            f"{MAX_INSTRUCTION_CHARS}"
        )
    if not re.search(r"[^\W\d_]", instruction):
        raise InstructionError(f"instruction has no words: {instruction[:80]!r}")
    return instruction


def parse_instruction(
    instruction: str,
    size: tuple[int, int] = (512, 512),
    objects: Mapping[str, np.ndarray] | None = None,
    default_add_box_frac: float = 0.3,
    unnamed_subject: str = DEFAULT_SUBJECT,
) -> Plan:
    """Turn an editing instruction into a :class:`Plan` without any model.

    ``size`` is the image's (width, height), used for the addition box; ``objects``
    (phrase -> HxW bool mask, e.g. ``request.meta["objects"]``) lets a location like
    "right of the dog" be placed relative to the dog.

    Raises :class:`InstructionError` for empty, non-text or over-long instructions.
    """
    text = _validate(instruction)
    norm = normalise(text)
    check_english(text, norm)
    clauses = [strip_lead_ins(c) for c in split_clauses(norm)]
    clauses = [c for c in clauses if c]
    if not clauses:
        raise InstructionError(f"instruction has no content: {instruction[:80]!r}")
    keep = ""
    parses: list[tuple[str, Parse]] = []
    for clause in clauses:
        mk = re.match(
            r"^(?:keep|leave(?!\s+out\b)(?!.*\s(?:out|out of\s.+)$)|preserve|retain|"
            r"don't change|do not change|"
            r"do not touch|don't touch)\s+(?P<s>.+?)(?:\s+(?:as it is|as is|the same|"
            r"unchanged|intact|untouched))?$",
            clause,
        )
        if mk and not keep:
            keep = clean_np(split_np(mk.group("s"))[0])
            continue
        if parses and _topic_only(parses[-1][0]) and re.search(r"\b(?:it|them)\b", clause):
            # "the woman's shirt, make it polka dot": the first clause only names the topic
            topic, _ = parses.pop()
            clause = re.sub(r"\b(?:it|them)\b", topic, clause, count=1)
        elif parses and _describes(parses[-1][0]) and _described_object(*parses[-1]):
            # "The woman wears a red dress. Make it blue.": "it" is the described object;
            # "there's a random guy in the corner, can you remove him": so is "him"
            clause = re.sub(
                r"\b(?:it|them|him)\b|\bher$",
                f"the {_described_object(*parses[-1])}",
                clause,
                count=1,
            )
        elif parses and parses[-1][1].frame == "remove_background":
            # "remove the background and replace it with a forest" (it = the background);
            # "remove the background behind the dog, then put it on a beach" (it = the dog)
            moved = re.match(r"^(?:put|place|move|set|show)\b", clause) and parses[-1][1].obj
            ref = f"the {parses[-1][1].obj}" if moved else "the background"
            clause = re.sub(r"\b(?:it|them)\b", ref, clause, count=1)
        parses.append((clause, parse_clause(clause)))
    if not parses:
        clause = clauses[0]
        parses.append((clause, fallback_parse(clause)))
    # the first confident request decides; a clause that only describes the picture
    # ("there is a dog on the sofa.") yields to a later one that asks for something
    ranked = sorted(
        enumerate(parses),
        key=lambda ip: (ip[1][1].confidence != "high", _describes(ip[1][0]), ip[0]),
    )
    clause, p = ranked[0][1] if len(parses) > 1 else parses[0]
    if p.frame == "remove_background":
        # a later clause may say what the new background is: take its scene
        later = [q for _, q in parses if q.category == Category.BACKGROUND and q.comp]
        if later:
            later[0].obj = later[0].obj or p.obj
            p = later[0]
    category = p.category
    if keep and category == Category.BACKGROUND:
        p.obj = keep
    obj = object_or_default(p.obj, category, unnamed_subject)
    plan = Plan(category=category, object=obj)
    if category == Category.LOCAL:
        plan.target_prompt = local_target(p)
    elif category == Category.REMOVE:
        plan.target_prompt = REMOVE_PROMPT
    elif category == Category.BACKGROUND:
        plan.target_prompt = background_target(p)
    elif category == Category.ADDITION:
        target = strip_complement(p.comp) if p.frame != "add_text" else p.comp
        plan.target_prompt = target if target else obj
        box, trace = locate(
            p.location,
            obj,
            size,
            dict(objects) if objects else None,
            anchor_hint=p.anchor,
            default_frac=default_add_box_frac,
        )
        plan.add_box = box
        p.cues.append(f"box:{trace.rule}")
        box_trace = trace.to_dict()
    else:
        plan.source_caption, plan.target_caption = global_captions(p, clause)
        plan.target_prompt = plan.target_caption
    plan.raw = {
        "planner": "rules",
        "normalised": norm,
        "clause": clause,
        "frame": p.frame,
        "cues": p.cues,
        "confidence": p.confidence,
        "n_clauses": len(clauses),
    }
    if keep:
        plan.raw["keep"] = keep
    if category == Category.BACKGROUND:
        plan.raw["subject_named"] = obj != unnamed_subject
    if p.location:
        plan.raw["location"] = p.location
    if category == Category.ADDITION:
        plan.raw["box"] = box_trace
    return plan


class RulePlanner(BasePlanner):
    """Planner backed by :func:`parse_instruction` (no model, no network, pure Python).

    ``default_add_box_frac``: side of an addition box as a fraction of the image's sides
    (also the scale of boxes placed from location phrases).
    ``use_object_masks``: read ``request.meta["objects"]`` to place boxes relative to
    named objects (turn off to measure the phrase-only behaviour).
    ``unnamed_subject``: the object of a background plan whose instruction names no subject
    to keep. ``"main subject"`` works with the oracle masker and gives a detector a phrase;
    ``""`` leaves the choice to the masker (``masker.unnamed_subject`` of grounded_sam).
    """

    name = "rules"

    def __init__(
        self,
        default_add_box_frac: float = 0.3,
        use_object_masks: bool = True,
        unnamed_subject: str = DEFAULT_SUBJECT,
    ) -> None:
        if not 0.0 < float(default_add_box_frac) <= 1.0:
            raise ValueError(f"default_add_box_frac must be in (0, 1], got {default_add_box_frac}")
        self.default_add_box_frac = float(default_add_box_frac)
        self.use_object_masks = bool(use_object_masks)
        self.unnamed_subject = str(unnamed_subject or "")

    def plan(self, request: EditRequest) -> Plan:
        objects = request.meta.get("objects") if self.use_object_masks else None
        if not isinstance(objects, Mapping):  # only phrase -> mask tables can anchor boxes
            objects = None
        return parse_instruction(
            request.instruction,
            size=request.size,
            objects=objects,
            default_add_box_frac=self.default_add_box_frac,
            unnamed_subject=self.unnamed_subject,
        )
