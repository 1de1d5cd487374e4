"""The addition frames as declarative tables: "add/put/place X <location>" and
"fill/decorate X with Y" (see :mod:`iiie.planners.rules_table` for the row format).

The surface rows bind the slots; what fills them then decides the category, row by row in
:data:`ADD_DECISIONS` ("put the dog on a beach" moves a named subject into a scene:
background; "add heavy rain" is weather: global). Rows that share the verb regex split by
``verbs``;
:data:`~iiie.planners.rules_table.DECLINE` rows hand verbs that also mean "change" or "show"
to the later frames ("paint the wall yellow", "show the dog").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_table import DECLINE, Decision, Pattern
from iiie.planners.rules_text import (
    ING_NOUNS,
    anchor_from,
    backdrop_behind,
    clean_np,
    find_phrase,
    is_definite,
    is_indefinite,
    is_place,
    locative_tail,
    np_head,
    np_kind,
    place_of,
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


# --------------------------------------------------------------------------------------------
# what the filled slots make of an addition
# --------------------------------------------------------------------------------------------

#: verbs that can move a named subject somewhere ("put the dog on a beach")
MOVING_VERBS = frozenset(
    "put place set move transport teleport send relocate bring seat position drop take show "
    "depict portray picture".split()
)


@dataclass
class AddSlots:
    """An addition's slots: the verb, the thing (raw), where (``tail``) and an anchor
    object; ``tail`` empty: split from the thing ("a hat on the dog")."""

    verb: str
    np_raw: str
    tail: str = ""
    anchor: str = ""
    obj: str = field(init=False)
    kind: str = field(init=False)
    head: str = field(init=False)
    instead: re.Match | None = field(init=False)

    def __post_init__(self) -> None:
        if not self.tail:
            self.np_raw, self.tail = split_np(self.np_raw)
        self.obj = clean_np(self.np_raw)
        self.kind = np_kind(self.obj)
        self.head = np_head(self.obj)
        self.instead = re.search(r"\binstead of\s+(?P<y>.+)$", self.tail)

    @property
    def cue(self) -> str:
        return f"verb:{self.verb}"

    @property
    def moves_named(self) -> bool:
        """A moving verb on a named (not new) thing: "put the dog ..."."""
        return self.verb in MOVING_VERBS and not is_indefinite(self.np_raw)

    def replaced(self) -> str:
        """Y of "instead of Y"."""
        return clean_np(split_np(self.instead.group("y"))[0]) if self.instead else ""

    def before_instead(self) -> str:
        return self.tail[: self.instead.start()] if self.instead else self.tail


_WEATHER_MODS = (r"^(?:bit of|little|light|heavy|thick|gentle|soft|steady|torrential|"
                 r"falling|fresh|dense|violent|raging|big|huge|massive)\s+")
_WHOLE = (r"^(?:to|in|on|over|across|onto|into|throughout|all over) (?:the )?(?:whole |entire )?"
          r"(?:image|photo|picture|scene|it|everything|landscape|city|town|street)$")


def _weather(s: AddSlots) -> str:
    """ "a heavy snow storm" -> "snow storm"."""
    return re.sub(_WEATHER_MODS, "", re.sub(r"^(?:a|an|some)\s+", "", s.obj))


def _behind(s: AddSlots) -> re.Match | None:
    return re.match(r"^behind\s+(?P<s>.+)$", s.tail)


def _scenic(s: AddSlots) -> bool:
    return bool(scene_in(s.obj) or find_phrase(s.obj, lex.BACKDROP_NOUNS))


def _added(s: AddSlots) -> dict[str, Any]:
    """A new thing; an action after it ("a kite flying above the beach") joins the prompt
    and leaves only the location in the tail."""
    comp, tail = s.np_raw, s.tail
    m = re.match(r"^(?P<v>\w+ing)\b", tail)
    if m and m.group("v") not in ING_NOUNS:
        loc = locative_tail(tail[len(m.group("v")) :])
        action = tail[: len(tail) - len(loc)].strip() if loc else tail
        comp, tail = f"{s.np_raw} {action}".strip(), loc
    return dict(obj=s.obj, comp=comp, location=tail, anchor=s.anchor, verb=s.verb, cues=[s.cue])


B = Category.BACKGROUND

#: an addition's category from its slots, in order; the last row always holds
ADD_DECISIONS: tuple[Decision, ...] = (
    # "put them in a library instead of the office": the subject gets a new setting
    Decision("instead-of-place", B, "move_subject",
             lambda s: s.instead and is_place(s.replaced()) and scene_in(s.before_instead()),
             lambda s: dict(obj=s.obj if s.kind == "thing" else "",
                            comp=place_of(s.before_instead().strip()), verb=s.verb,
                            cues=[s.cue, "instead-of-place"]),
             (("put them in a library instead of the office", "people", "instead-of-place"),)),
    # "put a dog instead of the cat": the cat is changed into a dog
    Decision("instead-of-thing", Category.LOCAL, "replace_item",
             lambda s: s.replaced() and np_kind(s.replaced()) == "thing",
             lambda s: dict(obj=s.replaced(), comp=s.np_raw, verb=s.verb,
                            cues=[s.cue, "instead-of"]),
             (("put a dog instead of the cat", "cat"),)),
    Decision("background-noun", B, "add_background", lambda s: s.kind == "background",
             lambda s: dict(obj=anchor_from(s.tail), comp=s.np_raw, verb=s.verb,
                            cues=[s.cue, "background-noun"], anchor=s.head),
             (("add a new background", "main subject"),)),
    Decision("scene-in-background", B, "scene_in_background",
             lambda s: re.search(r"\bin the (?:background|distance|back)\b", s.tail) and (
                 scene_in(s.obj) or s.head in ("scenery", "landscape", "view", "skyline")),
             lambda s: dict(comp=s.np_raw, verb=s.verb, cues=[s.cue, "scene"]),
             (("add mountains in the distance", "main subject"),)),
    Decision("filter", Category.GLOBAL, "add_filter",
             lambda s: s.head in lex.GLOBAL_ADDABLES or s.kind == "global"
             or s.obj in lex.GLOBAL_ADJECTIVES,
             lambda s: dict(comp=s.np_raw, verb=s.verb, cues=[s.cue, f"filter:{s.obj}"]),
             (("add a vintage filter", ""),)),
    # weather over the whole scene: "add heavy rain", "add fog over the city"
    Decision("weather", Category.GLOBAL, "add_weather",
             lambda s: _weather(s) in lex.WEATHER_EVENTS and (not s.tail
                                                             or re.match(_WHOLE, s.tail)),
             lambda s: dict(comp=s.obj, verb=s.verb, cues=[s.cue, "weather"]),
             (("add heavy rain", ""), ("add a snow storm", ""))),
    # "put everything on a beach": the whole picture into a scene
    Decision("move-scene", B, "move_scene",
             lambda s: s.verb in MOVING_VERBS
             and (s.kind == "image" or s.obj in ("", "this", "everything", "all this",
                                                  "all of this", "them all"))
             and scene_in(s.tail) and re.match(r"^(?:in|on|at|to|into|onto|inside)\b", s.tail),
             lambda s: dict(comp=place_of(s.tail), verb=s.verb,
                            cues=[s.cue, f"scene:{scene_in(s.tail)}"]),
             (("put everything on a beach", "main subject"),)),
    Decision("move-before-backdrop", B, "move_subject",
             lambda s: s.moves_named and s.kind == "thing" and backdrop_behind(s.tail),
             lambda s: dict(obj=s.obj, comp=place_of(s.tail), verb=s.verb,
                            cues=[s.cue, "backdrop"]),
             (("put the dog in front of a brick wall", "dog", "backdrop"),)),
    # "a brick wall behind the man": a new backdrop for a named subject
    Decision("backdrop-behind", B, "backdrop_behind",
             lambda s: _behind(s) and is_definite(_behind(s).group("s")) and _scenic(s),
             lambda s: dict(obj=clean_np(_behind(s).group("s")), comp=s.np_raw, verb=s.verb,
                            cues=[s.cue, "backdrop"]),
             (("add a brick wall behind the man", "man"),)),
    Decision("move-into-scene", B, "move_subject",
             lambda s: s.moves_named and scene_in(s.tail) and s.kind == "thing",
             lambda s: dict(obj=s.obj, comp=place_of(s.tail), verb=s.verb,
                            cues=[s.cue, f"scene:{scene_in(s.tail)}"]),
             (("put the dog on a beach", "dog", "scene:beach"),)),
    Decision("move-object", Category.LOCAL, "move_object",
             lambda s: s.verb in ("move", "relocate", "shift") and not is_indefinite(s.np_raw),
             lambda s: dict(obj=s.obj, comp=s.tail, verb=s.verb, cues=[s.cue]),
             (("move the cat to the left", "cat"),)),
    Decision("new-thing", A, "add", lambda s: True, _added,
             (("add a kite flying above the beach", "kite"), ("add a cat on the sofa", "cat"))),
)
