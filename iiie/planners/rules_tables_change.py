"""The change, seeing and verbless frames as declarative tables: "change/turn/replace X
to/into/with Y", "make X look like Y", "let's see it in winter", "background to a city",
"dog on a beach" (row format: :mod:`iiie.planners.rules_table`).

These are where background and scene changes are asked for ("change the background to a
beach", "turn the warehouse into a forest", "convert to sepia"); a row only splits the
object from the complement, and :func:`iiie.planners.rules_grammar._decide_change` then
decides from their meaning whether the edit is local, background or global.
"""

from __future__ import annotations

import re

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_table import Pattern
from iiie.planners.rules_text import (
    clean_np,
    is_adjectival,
    is_indefinite,
    np_kind,
    scene_in,
    split_np,
    split_object_complement,
)
from iiie.types import Category

CHANGE_VERBS = (
    r"change|turn|transform|convert|switch|swap|replace|morph|alter|modify|recolor|"
    r"color|paint|dye|render|edit|update|set|upgrade|exchange|substitute|redo|restyle|"
    r"reshape|resize|shrink|enlarge|make|recreate|redraw|reimagine|rework|re-color|"
    r"tint|stain|fill|cover|dress up|age|evolve|mutate|adjust|fix|give|transfer|"
    r"reinterpret|repaint|stylize|stylise"
)
#: the verb (followed by a word; or, bare, one of the few that stand alone: "convert",
#: "makeover"), then an optional "up"/"down". Atomic: the verb is chosen once, as a
#: ``verb + rest`` split would choose it, and each row reads the rest.
_HEAD = (
    rf"^(?>(?P<v>(?:{CHANGE_VERBS})(?=\s+\S)|convert|change|turn|switch|transform|make)"
    r"\s*(?:(?:up|down)\s+)?)"
)
#: verbs whose result needs no complement: "enlarge the dog"
VERB_RESULT = {"enlarge": "larger", "shrink": "smaller", "age": "older", "resize": "resized"}
_REPLACE = frozenset({"replace", "swap", "switch", "exchange", "substitute"})
_NOT_MAKE = frozenset(re.sub(r"\s+", " ", CHANGE_VERBS).split("|")) - {"make"}


def _simile_qualifies(m: re.Match, _c: str) -> bool:
    """ "make the sky orange and pink like a sunset": the simile qualifies the colour."""
    words = [w for w in split_object_complement(m.group("obj"))[1].split() if w not in ("and", "or")]
    return bool(words) and is_adjectival(words)


def _verb_says_it(m: re.Match, _c: str) -> bool:
    """ "enlarge the dog", "recolor the car": the verb alone says what changes."""
    v = m.group("v")
    obj = split_object_complement(m.group("rest"))[0]
    return v in VERB_RESULT or (v != "make" and (not obj.strip() or obj in lex.DETERMINERS))


L = Category.LOCAL
_LOOK = r"\s+(?:look like|looks like|look|seem|appear|into|like|become|say|read|show|display)\s+"

#: "change X to Y" and kin, in match order; the default action is ``_decide_change``.
CHANGE_PATTERNS: tuple[Pattern, ...] = (
    Pattern("to-result", _HEAD + r"(?:to|into|in)\s+(?P<comp>.+)$", Category.GLOBAL,
            (("convert to sepia", ""), ("turn into a watercolor painting", "")),
            object_slot=None, comp_slot="comp", action="it"),
    Pattern("replace-with", _HEAD + r"(?P<obj>.+?)\s+(?:with|for|by|to|into|and)\s+(?P<comp>.+)$",
            L, (("replace the cat with a dog", "cat"),
                ("replace the sky with a sunset", "main subject", Category.BACKGROUND)), comp_slot="comp", verbs=_REPLACE),
    Pattern("replace-alone", _HEAD + r"(?P<obj>.*)$", L, (("swap the sofa", "sofa"),),
            verbs=_REPLACE, action="no_comp"),
    Pattern("change-into", _HEAD + r"(?P<obj>.+?)\s+(?:into|to be|to look like|to|as|so that|so|"
            r"with)\s+(?P<comp>.+)$", L, (("turn the cat into a tiger", "cat"),
                ("change the background to a beach", "main subject", Category.BACKGROUND),
                ("turn the room into a forest", "main subject", Category.BACKGROUND),
                ("change the season to winter", "", Category.GLOBAL)),
            comp_slot="comp", verbs=_NOT_MAKE),
    Pattern("look-like-qualified", _HEAD + rf"(?P<obj>.+?){_LOOK}(?P<comp>.+)$", L,
            (("paint the car red like a fire truck", "car"),), comp_slot="comp",
            guard=_simile_qualifies, action="simile"),
    Pattern("look-like", _HEAD + rf"(?P<obj>.+?){_LOOK}(?P<comp>.+)$", L,
            (("render the car like a cartoon", "car"), ("make the car into a boat", "car")), comp_slot="comp"),
    Pattern("verb-result", _HEAD + r"(?P<rest>.*)$", L, (("enlarge the dog", "dog"),),
            object_slot="rest", guard=_verb_says_it, action="result"),
    Pattern("object-complement", _HEAD + r"(?P<rest>.*)$", L,
            (("make the blue square green", "blue square"),), object_slot="rest", action="split"),
)

#: "let's see it in winter", "what would it look like at night": a look of the object.
SEE_PATTERNS: tuple[Pattern, ...] = (
    Pattern("see-it", r"^(?:let (?:us|me) )?(?:see|show|view|show me|picture|imagine)\s+"
            r"(?P<obj>it|this|that|the (?:image|photo|picture|scene|view)|everything)"
            r"\s+(?P<comp>.+)$", Category.GLOBAL, (("let's see it in winter", ""),),
            comp_slot="comp"),
    Pattern("what-would-look", r"^(?:what|how)\s+(?:would|will|does|might|could|should)\s+"
            r"(?P<obj>.+?)\s+look(?:\s+like)?\s*(?P<comp>.*)$", L,
            (("what would the car look like in red", "car"),), comp_slot="comp"),
)


def _np(c: str) -> tuple[str, str, str]:
    """(raw noun phrase, its clean form, the tail) of a verbless clause."""
    np_raw, tail = split_np(c)
    return np_raw, clean_np(np_raw), tail


def _in_scene(_m: re.Match, c: str) -> bool:
    """ "dog on a beach", "the man standing in front of the eiffel tower"."""
    _, obj, tail = _np(c)
    return bool(obj) and bool(
        re.match(r"^(?:\w+ing\s+)?(?:in|on|at|inside|in front of)\b", tail) and scene_in(tail)
    )


_WORDS = r"[a-z'\-]+(?:\s+[a-z'\-]+)?"

#: verbless requests, in match order; the default action is ``_decide_change`` ("bare")
BARE_PATTERNS: tuple[Pattern, ...] = (
    Pattern("picture-to", r"^(?P<obj>.+?)\s+(?:to|into|as|should be|:)\s+(?P<comp>.+)$",
            Category.BACKGROUND, (("background to a city", "main subject"),
                                  ("image to black and white", "", Category.GLOBAL)),
            comp_slot="comp",
            guard=lambda m, _c: np_kind(clean_np(m.group("obj"))) in ("background", "image", "time")),
    Pattern("x-to-y", rf"^(?P<obj>(?:the\s+)?{_WORDS})\s+(?:to|into|->|:)\s+"
            rf"(?P<comp>(?:a\s+|an\s+)?{_WORDS})$", L,
            (("cat to dog", "cat"), ("horse into a unicorn", "horse")), comp_slot="comp",
            guard=lambda m, _c: not scene_in(m.group("comp"))),
    Pattern("bare-background", r"^(?P<rest>.+)$", Category.BACKGROUND,
            (("background of a sunny beach", "main subject"),), object_slot="rest",
            guard=lambda _m, c: np_kind(_np(c)[1]) == "background", action="background"),
    Pattern("bare-new-thing", r"^(?P<rest>.+)$", Category.ADDITION,
            (("a bird on the branch", "bird"),), object_slot="rest", action="add",
            guard=lambda _m, c: bool(_np(c)[1]) and is_indefinite(_np(c)[0])),
    Pattern("bare-in-scene", r"^(?P<rest>.+)$", Category.BACKGROUND,
            (("the dog on a beach", "dog"),), object_slot="rest", guard=_in_scene,
            action="scene"),
    Pattern("bare-located", r"^(?P<rest>.+)$", Category.ADDITION,
            (("hat on the dog", "hat"),), object_slot="rest", action="add",
            guard=lambda _m, c: bool(_np(c)[1]) and bool(_np(c)[2])),
)
