"""The global frames as declarative tables: bare style, weather, time-of-day and tone
phrases ("in the style of monet", "sepia tone", "a bit brighter") and adjustments
("increase the contrast", "blur the background", "brighten it a lot") (row format:
:mod:`iiie.planners.rules_table`).

The adjustment frame first reads its head (:func:`adjust_reading`: the verb, "turn up" as
"increase", degree adverbs dropped) and its rows then read ``"<verb> <rest>"``: what the
rest names (the picture, the background, a thing) decides the row, so these rows are
guards over the object's meaning rather than over word order.
"""

from __future__ import annotations

import re

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_table import DECLINE, EXCEPT, Pattern
from iiie.planners.rules_text import clean_np, find_phrase, np_head, np_kind, split_np
from iiie.types import Category

G = Category.GLOBAL

#: words a verbless style request may consist of ("grayscale", "a bit warmer please")
STYLE_VOCAB = (
    lex.STYLE_WORDS
    | lex.GLOBAL_ADJECTIVES
    | lex.TIME_WEATHER
    | lex.GLOBAL_VERBS
    | lex.GLOBAL_PROPERTIES
    | frozenset(
        "more less and a an the style effect version filter look mode tone toned please very "
        "much of in image photo picture "
        # intensifiers: "a bit brighter", "slightly warmer", "way more vivid"
        "bit little tad touch slightly somewhat way lot even too really super extra so".split()
    )
)


def _names_a_look(_m: re.Match, c: str) -> bool:
    return bool(find_phrase(c, lex.STYLE_WORDS) or find_phrase(c, lex.TIME_WEATHER))


#: verbless style requests, in match order
GLOBAL_PHRASE_PATTERNS: tuple[Pattern, ...] = (
    Pattern("style-phrase", r"^(?P<comp>(?:in|as|into|like|with)\s+.*)$", G,
            (("in the style of van gogh", ""), ("as a watercolor painting", "")),
            object_slot=None, comp_slot="comp", guard=_names_a_look, action="style_phrase"),
    # an adjustment verb: the adjust frame reads it
    Pattern("adjust-verb", r"^(?P<v>\S+)(?:\s|$)", None, (("brighten the image", "adjust"),),
            object_slot=None, verbs=lex.GLOBAL_VERBS | lex.ADJUST_VERBS, action=DECLINE),
    Pattern("style-words", r"^(?P<comp>.+)$", G, (("sepia tone", ""), ("watercolor style", ""), ("a bit warmer please", "")),
            object_slot=None, comp_slot="comp", action="style_words",
            guard=lambda m, c: len(c.split()) <= 6 and all(w in STYLE_VOCAB for w in c.split())),
)

_DEGREE = (
    r"(?<=\w)\s+(?:a lot|a bit|a little|a little bit|a touch|a tad|slightly|considerably|"
    r"significantly|dramatically|heavily|substantially|somewhat)(?=\s|$)(?! of)"
)


def adjust_reading(c: str) -> str | None:
    """ "turn up the contrast a bit" -> "increase the contrast"; None without an
    adjustment verb. Degree adverbs are not part of the object: "brighten it a lot"."""
    words = c.split()
    if not words:
        return None
    verb = words[0]
    if verb == "turn" and len(words) > 1 and words[1] in ("up", "down"):
        verb = "increase" if words[1] == "up" else "decrease"
    elif verb not in lex.GLOBAL_VERBS and verb not in lex.ADJUST_VERBS and verb != "apply":
        return None
    rest = " ".join(words[1:])
    rest = re.sub(r"^(?:up|down|out|in)\s+", "", rest)
    rest = re.sub(_DEGREE, "", rest).strip()
    rest = re.sub(
        r"^(it|this|everything|the (?:image|photo|picture|scene))\s+(?:up|down)\b", r"\1", rest
    )
    return f"{verb} {rest}"


def _obj(m: re.Match) -> tuple[str, str]:
    """(object, tail) of the rest: "the background behind the dog" -> ("background", ...)."""
    np_raw, tail = split_np(m.group("rest"))
    return clean_np(np_raw), tail


def _a_thing(m: re.Match, _c: str) -> bool:
    obj = _obj(m)[0]
    return bool(obj) and np_kind(obj) == "thing"


_AROUND = rf"^(?:behind|around\b|{EXCEPT[1:]})"
_REGION = ("everything", "area", "stuff", "space", "rest", "scene", "image", "picture", "all")


def _the_background(m: re.Match, _c: str) -> bool:
    """ "blur the background", "darken everything behind the dog"."""
    obj, tail = _obj(m)
    return np_kind(obj) == "background" or bool(
        re.match(_AROUND, tail) and np_head(obj) in _REGION
    )


def _the_picture(m: re.Match, _c: str) -> bool:
    """No object, the picture, a global property, or a tonal range ("lighten the shadows")."""
    obj, tail = _obj(m)
    return (
        not obj
        or np_kind(obj) in ("image", "global", "time")
        or np_head(obj) in lex.GLOBAL_ADDABLES
        or (obj in lex.TONAL_RANGES and not tail)
    )


_READ = r"^(?P<v>\S+) (?P<rest>.*)$"  # the head's reading: "<verb> <rest>"

#: adjustments over :func:`adjust_reading`'s text, in match order
ADJUST_PATTERNS: tuple[Pattern, ...] = (
    Pattern("more-things", _READ, Category.ADDITION, (("more clouds", "clouds"),),
            object_slot="rest", verbs=frozenset({"more"}), guard=_a_thing, action="more"),
    Pattern("fewer-things", _READ, Category.REMOVE, (("fewer people", "people"),),
            object_slot="rest", verbs=frozenset({"less", "fewer"}), guard=_a_thing,
            action="fewer"),
    Pattern("adjust-background", _READ, Category.BACKGROUND,
            (("blur the background", "main subject"), ("blur the background behind the dog", "dog")),
            object_slot="rest", guard=_the_background, action="background"),
    Pattern("adjust-image", _READ, G,
            (("increase the contrast", ""), ("turn up the brightness a lot", ""),
             ("brighten it a lot", "")),
            object_slot="rest", guard=_the_picture, action="image"),
    Pattern("adjust-object", _READ, Category.LOCAL, (("brighten the car", "car"),),
            object_slot="rest", verbs=lex.GLOBAL_VERBS, action="object"),
)
