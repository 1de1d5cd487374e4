"""The addition frames as declarative tables: "add/put/place X <location>" and
"fill/decorate X with Y" (see :mod:`iiie.planners.rules_table` for the row format).

The surface shape is all a row decides; what fills the slots still decides the category in
:func:`iiie.planners.rules_grammar._decide_add` ("put the dog on a beach" moves a named
subject into a scene: background). Rows that share the verb regex split by ``verbs``;
:data:`~iiie.planners.rules_table.DECLINE` rows hand verbs that also mean "change" or "show"
to the later frames ("paint the wall yellow", "show the dog").
"""

from __future__ import annotations

import re

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_table import DECLINE, Pattern
from iiie.planners.rules_text import (
    backdrop_behind,
    clean_np,
    is_definite,
    is_indefinite,
    is_place,
    np_head,
    np_kind,
    scene_in,
    split_np,
)
from iiie.types import Category

ADD_VERBS = (
    r"add|insert|include|draw|put|place|stick|hang|put up|build|attach|plant|sketch|"
    r"create|introduce|generate|spawn|position|install|mount|sprinkle|scatter|stack|park|"
    r"paste|overlay|superimpose|drop|lay|seat|bring|move|transport|teleport|send|"
    r"relocate|pop|throw in|carve|write|get|set|paint|grow|station|land|release|toss|"
    r"float|fly|shift|show|depict|portray"
)
#: verb, optional particle ("put up", "add in"); atomic, so a row's longer tail regex
#: splits exactly the text the plain ``(?P<rest>.+)`` row would see.
_HEAD = rf"^(?>(?P<v>{ADD_VERBS})\s+(?:in\s+|up\s+|down\s+)?)"
_ADD = rf"^(?P<v>{ADD_VERBS})\s+(?:in\s+|up\s+|down\s+)?(?P<rest>.+)$"
_TEXT_WORDS = r"^(?:the\s+|some\s+)?(?:text|words?|caption|writing|title|label|letters)\b"
_POSITION = r"\b(?:top|bottom|left|right|corner|center|centre|middle)\b"


def _np(m: re.Match, group: str = "rest") -> tuple[str, str]:
    return split_np(m.group(group))


def _shows_nothing_new(m: re.Match, _c: str) -> bool:
    np_raw, tail = _np(m)
    return not (scene_in(tail) or is_indefinite(np_raw))


def _means_change(m: re.Match, _c: str) -> bool:
    """ "paint the wall yellow", "set the background to x", "get the bus out": the verb
    adds nothing new unless its object is indefinite or "set" moves a subject to a scene."""
    v = m.group("v")
    np_raw, tail = _np(m)
    scene_move = v == "set" and (
        (scene_in(tail) and re.match(r"^(?:in|on|at)\b", tail)) or backdrop_behind(tail)
    )
    if is_indefinite(np_raw) or scene_move:
        return False
    return v in ("paint", "set", "grow", "get") or np_kind(clean_np(np_raw)) != "thing"


def _is_text(m: re.Match, _c: str) -> bool:
    return m.group("v") == "write" or bool(re.match(_TEXT_WORDS, m.group("rest")))


def _surrounds_with_scene(m: re.Match, _c: str) -> bool:
    thing = clean_np(_np(m, "y")[0]).split(" of ")[0]
    return is_definite(m.group("o")) and (
        is_place(thing)
        or np_head(thing) in ("field", "fields", "landscape", "scenery", "sea", "meadow")
    )


def _countable(m: re.Match, _c: str) -> bool:
    """Countable things are added; a substance ("cover the car with snow") is a change."""
    np_raw = _np(m, "y")[0]
    thing = clean_np(np_raw)
    head = np_head(thing)
    countable = is_indefinite(np_raw) or (
        head.endswith("s") and not head.endswith("ss") and np_kind(thing) == "thing"
    )
    return countable and head not in lex.GLOBAL_ADDABLES and head not in lex.WEATHER_EVENTS


A = Category.ADDITION

#: "add/put/place X <location>", in match order; the default action is ``_decide_add``.
ADD_PATTERNS: tuple[Pattern, ...] = (
    Pattern("show-nothing-new", _ADD, None, (("show the dog in black and white", "bare"),),
            object_slot="rest", verbs=frozenset({"show", "depict", "portray"}),
            guard=_shows_nothing_new, action=DECLINE),
    Pattern("verb-means-change", _ADD, None, (("paint the wall yellow", "change"),),
            object_slot="rest", verbs=frozenset({"paint", "set", "get", "fly", "float", "shift",
                                                 "grow", "land"}),
            guard=_means_change, action=DECLINE),
    Pattern("put-background-as", _HEAD + r"(?P<rest>(?P<obj>.+?)\s+(?:to|as)\s+(?P<comp>.+))$",
            Category.BACKGROUND, (("put the background as a beach", "main subject"),),
            verbs=frozenset({"put", "place", "set"}), comp_slot="comp", action="change",
            guard=lambda m, _c: np_kind(clean_np(_np(m)[0])) == "background"),
    Pattern("write-on", _HEAD + r"(?P<rest>(?P<words>.*?)\b(?:on|onto|across)\s+"
            r"(?P<surface>(?:the|his|her|their|its)\s+.+))$", Category.LOCAL,
            (("write hello on the wall", "wall"),), object_slot="surface",
            verbs=frozenset({"write", "add", "put", "place", "insert"}), action="write_on",
            guard=lambda m, c: _is_text(m, c) and not re.search(_POSITION, m.group("surface"))),
    Pattern("add-text", _HEAD + r"(?P<rest>(?P<words>.*?)(?P<loc>\s(?:at|on|in|to|near|across|"
            r"along|above|below|under|over)\s+.*)?)$", A,
            (("add the text hello at the top", "text"),), object_slot="words",
            location_slot="loc", verbs=frozenset({"write", "add", "put", "place", "insert"}),
            guard=_is_text, action="add_text"),
    Pattern("add", _ADD, A, (("add a cat on the sofa", "cat"), ("put up a sign", "sign"),
                 ("put the dog on a beach", "dog", Category.BACKGROUND),
                 ("add snow to the image", "", Category.GLOBAL)),
            object_slot="rest"),
)

_FILL = (r"^(?P<v>fill|surround|decorate|top|garnish|adorn|cover|line|dot|stuff|load|deck)\s+"
         r"(?P<o>.+?)\s+(?:with|in)\s+(?P<y>.+)$")

#: "fill/decorate X with Y": things added onto or around X; the default action adds.
FILL_PATTERNS: tuple[Pattern, ...] = (
    Pattern("surround-with-scene", _FILL, Category.BACKGROUND,
            (("surround the boy with a field of sunflowers", "boy"),), object_slot="o",
            comp_slot="y", verbs=frozenset({"surround"}), guard=_surrounds_with_scene,
            action="surround"),
    Pattern("fill-with-things", _FILL, A, (("decorate the tree with lights", "lights"),),
            object_slot="y", location_slot="o", guard=_countable),
)
