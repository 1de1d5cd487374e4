"""The change, seeing and verbless frames as declarative tables: "change/turn/replace X
to/into/with Y", "make X look like Y", "let's see it in winter", "background to a city",
"dog on a beach" (row format: :mod:`iiie.planners.rules_table`).

These are where background and scene changes are asked for ("change the background to a
beach", "turn the warehouse into a forest", "convert to sepia"); a row only splits the
object from the complement, and :func:`iiie.planners.rules_grammar._decide_change` then
decides from their meaning whether the edit is local, background or global, row by row in
:data:`CHANGE_DECISIONS` ("the warehouse -> a beach": a place into another place, a new
setting; "the car -> red": local; "it -> a watercolor": global).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_table import EXCEPT, Decision, Pattern
from iiie.planners.rules_text import (
    anchor_from,
    clean_np,
    find_phrase,
    is_adjectival,
    is_definite,
    is_indefinite,
    is_place,
    np_head,
    np_kind,
    property_of,
    scene_in,
    split_np,
    split_object_complement,
    strip_complement,
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
B = Category.BACKGROUND
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


# --------------------------------------------------------------------------------------------
# what the filled slots make of a change
# --------------------------------------------------------------------------------------------

_NOT_SUBJECT = frozenset(
    "entire whole new current old existing plain boring bland ugly busy "
    "empty dull original real".split()
)


def bg_subject(obj: str, tail: str) -> str:
    """Subject to keep named around a background noun.

    "behind the woman" (in the tail) or a modifier noun: "the garage surroundings".
    """
    anchor = anchor_from(tail)
    if anchor:
        return anchor
    if " of " in obj:  # "the background of the dog"
        right = clean_np(obj.split(" of ", 1)[1])
        if np_kind(right) == "thing":
            return right
    words = obj.split(" of ")[0].split()
    mods = [
        w
        for w in words[:-1]
        if w not in lex.COLORS
        and w not in lex.ADJECTIVES
        and w not in lex.MATERIALS
        and w not in lex.TIME_WEATHER
        and w not in _NOT_SUBJECT
        and w not in lex.BACKGROUND_NOUNS
        and not w.endswith(("y", "ed", "ful"))
    ]
    return " ".join(mods)


def scenery_change(obj: str, tail: str, comp: str) -> bool:
    """Is changing ``obj`` into ``comp`` really a new backdrop?

    True for scenery "in the background" ("the mountains in the background -> a city") and
    for a scene-sized region turned into a place ("the room -> a forest").
    """
    if re.match(r"^in the (?:background|distance|back)\b", tail) and (
        scene_in(obj) or find_phrase(obj, lex.BACKDROP_NOUNS)
    ):
        return True
    if find_phrase(comp, lex.STYLE_WORDS):
        return False
    if np_head(obj) in lex.SCENERY_REGIONS and scene_in(comp):
        return True
    # a place turned into another place ("the warehouse -> a beach"): the setting changes
    return is_place(obj) and is_place(split_np(comp)[0])


def time_is_head(comp: str) -> bool:
    """Does a time/weather word carry ``comp`` ("a snowy night"), rather than only modify
    the place in it ("a snowy mountain", a place: background)?"""
    tw = find_phrase(comp, lex.TIME_WEATHER)
    if not tw:
        return False
    place = scene_in(comp)
    if not tw.endswith("y"):  # "a winter wonderland", "a night city": a season/time look
        return True
    return not re.search(rf"\b{re.escape(tw)}\s+(?:\w+\s+)?{re.escape(place)}\b", comp)


@dataclass
class ChangeSlots:
    """A change's slots: the verb, what changes (raw: "the wall behind the dog") and into
    what (``comp``, tidied). Read from them: the object, a property of it ("the color of
    the car"), the object's kind and the tail after it."""

    verb: str
    obj_raw: str
    comp: str
    np_text: str = field(init=False)
    tail: str = field(init=False)
    obj: str = field(init=False)
    prop: str = field(init=False)
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        np_text, tail = split_np(self.obj_raw)
        self.tail = re.sub(r"^(?:is|are)\s+", "", tail)
        self.np_text = np_text if np_text.strip() else "it"
        self.prop, self.obj = property_of(clean_np(self.np_text))
        self.kind = np_kind(self.obj)
        mp = re.search(r"\b(?P<o>[a-z]+)'s\s+\w+", self.np_text)
        if self.kind in ("image", "global") and mp and np_kind(mp.group("o")) == "thing":
            # "the bike's frame", "the dog's filter": a part of an object, not of the picture
            self.obj, self.kind = mp.group("o"), "thing"
        m = re.match(r"^(?:on|of|shown on)\s+(?P<t>.+)$", self.tail)
        if self.kind == "time" and m and np_kind(clean_np(split_np(m.group("t"))[0])) == "thing":
            # "the time on the clock": a reading of an object, not the time of day
            self.obj, self.kind = clean_np(split_np(m.group("t"))[0]), "thing"
        self.comp = strip_complement(self.comp)

    def cues(self, *more: str) -> list[str]:
        return [f"verb:{self.verb}"] + ([f"property:{self.prop}"] if self.prop else []) + list(more)

    @property
    def head(self) -> str:
        return np_head(self.obj)


_WHOLE = ("everything", "all", "rest", "image", "picture", "scene", "photo")
_AROUND_REGION = ("everything", "all", "rest", "scene", "image", "picture")
_WALLS = ("wall", "walls", "room", "area", "everything", "what", "stuff", "space", "scene", "all",
          "rest", "image", "picture")
_IN_SCENE = (r"^(?:like |as if |as though )?(?P<s>.+?) (?:is|are|was|were|be) "
             r"(?:\w+ )?(?:in|on|at|inside|under|through|across|along|over|into|near|by) "
             r"(?P<p>.+)$")


def _except(s: ChangeSlots) -> re.Match | None:
    return re.match(EXCEPT + r"\s*(?P<r>.+)$", s.comp)


def _kept_and_new(s: ChangeSlots) -> tuple[str, str]:
    """ "except the dog black and white" -> ("the dog", "black and white")."""
    kept, new = split_np(_except(s).group("r"))
    return (kept, new) if new else split_object_complement(_except(s).group("r"))


def _subject_in(s: ChangeSlots) -> re.Match | None:
    m = re.match(_IN_SCENE, s.comp)
    ok = m and scene_in(m.group("p")) and np_kind(clean_np(m.group("s"))) in ("thing", "image")
    return m if ok else None


def _around(s: ChangeSlots) -> bool:
    """The background noun, or the region behind/around a subject ("the wall behind the
    dog", "everything except the woman")."""
    return s.kind == "background" or bool(
        s.tail
        and (
            re.match(r"^(?:behind|around)\b", s.tail)
            or re.match(EXCEPT, s.tail)
            and s.head in _AROUND_REGION
        )
        and s.head in _WALLS
    )


def _to_place(s: ChangeSlots) -> bool:
    """ "change the scene to a desert": a new place around whatever is in the picture."""
    place = scene_in(s.comp)
    return bool(s.kind == "image" and place and place != "underwater"
                and not find_phrase(s.comp, lex.STYLE_WORDS) and not time_is_head(s.comp))


def _nothing(s: ChangeSlots) -> bool:
    return s.comp in ("nothing", "empty", "empty space", "nothing at all") or s.comp.startswith(
        "nothing")


def _around_fields(s: ChangeSlots) -> dict[str, Any]:
    bg = s.kind == "background"
    return dict(obj=bg_subject(s.obj, s.tail) if bg else anchor_from(s.tail), comp=s.comp,
                verb=s.verb, cues=s.cues("background-noun"),
                anchor=s.head if bg else "background")


#: a change's category from its slots, in order; the last row always holds
CHANGE_DECISIONS: tuple[Decision, ...] = (
    # "make everything except the dog black and white": the dog is kept, the rest changes
    Decision("except-subject", B, "change_background",
             lambda s: _except(s) and s.head in _WHOLE,
             lambda s: dict(obj=clean_np(_kept_and_new(s)[0]),
                            comp=strip_complement(_kept_and_new(s)[1]), verb=s.verb,
                            cues=s.cues("except-subject"), anchor="background"),
             (("make everything except the dog black and white", "dog", "except-subject"),)),
    # "make it look like the man is in tokyo": a subject placed in a scene
    Decision("subject-in-scene", B, "subject_in_scene", _subject_in,
             lambda s: dict(obj=(lambda subj: subj if np_kind(subj) == "thing" else "")(
                 clean_np(_subject_in(s).group("s"))), comp=_subject_in(s).group("p"),
                 verb=s.verb, cues=s.cues("scene")),
             (("change it so the man is standing in tokyo", "man"),)),
    Decision("background-noun", B, "change_background", _around, _around_fields,
             (("change the background to a beach", "main subject", "background-noun"),
              ("change the wall behind the dog to white", "dog", "background-noun"))),
    # "replace the city behind the man with mountains": the man is kept
    Decision("scenery-behind", B, "change_background",
             lambda s: s.kind == "thing" and re.match(r"^behind\s", s.tail)
             and is_definite(s.tail[len("behind "):])
             and (scene_in(s.obj) or find_phrase(s.obj, lex.BACKDROP_NOUNS)),
             lambda s: dict(obj=anchor_from(s.tail), comp=s.comp, verb=s.verb,
                            cues=s.cues(f"scenery:{s.obj}"), anchor="background"),
             (("replace the city behind the man with mountains", "man", "scenery:city"),)),
    # "replace the ocean in the background with a desert", "the room should be a forest"
    Decision("scenery", B, "change_scenery",
             lambda s: s.kind == "thing" and scenery_change(s.obj, s.tail, s.comp),
             lambda s: dict(obj="", comp=s.comp, verb=s.verb, cues=s.cues(f"scenery:{s.obj}")),
             (("turn the room into a forest", "main subject"),
              ("replace the ocean in the background with a desert", "main subject"))),
    Decision("into-nothing", Category.REMOVE, "replace_with_nothing", _nothing,
             lambda s: dict(obj=s.obj, verb=s.verb),
             (("replace the lamp with nothing", "lamp"),)),
    Decision("image-to-place", B, "image_to_place", _to_place,
             lambda s: dict(obj="", comp=s.comp, verb=s.verb,
                            cues=s.cues(f"scene:{scene_in(s.comp)}")),
             (("change the scene to a desert", "main subject"),)),
    Decision("whole-image", Category.GLOBAL, "change_image",
             lambda s: s.kind in ("image", "global", "time"),
             lambda s: dict(obj="", comp=s.comp or s.obj, verb=s.verb,
                            cues=s.cues(f"whole-image:{s.obj}")),
             (("change the season to winter", "", "whole-image:season"),
              ("convert to sepia", "", "whole-image:it"))),
    Decision("nothing-named", Category.GLOBAL, "change_image", lambda s: s.kind == "none",
             lambda s: dict(comp=s.comp, verb=s.verb, confidence="low"),
             (("make this into a cartoon", ""),)),
    Decision("change-object", L, "change", lambda s: True,
             lambda s: dict(obj=s.obj, comp=s.comp, verb=s.verb, cues=s.cues()),
             (("make the blue square green", "blue square"), ("recolor the car", "car"))),
)
