"""What a statement's slots make of it, as decision tables: "the dog should be a cat",
"the man should have a hat", "let the cow graze in the alps" (and the causatives, wishes and
"give X Y" that read as statements). Row format: :class:`iiie.planners.rules_table.Decision`.

:func:`iiie.planners.rules_grammar._decide_statement` reads the subject and the verb first
("there ...", a new indefinite subject, "standing in a field"); then the verb picks the
table: a copula (:data:`BE_DECISIONS`), possession (:data:`HAVE_DECISIONS`) or any other
verb (:data:`ACTION_DECISIONS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_table import Decision
from iiie.planners.rules_tables_change import scenery_change
from iiie.planners.rules_text import (
    backdrop_behind,
    clean_np,
    find_phrase,
    gerund,
    is_adjectival,
    is_indefinite,
    np_head,
    np_kind,
    place_of,
    property_of,
    scene_in,
    split_np,
    strip_complement,
)
from iiie.types import Category

#: verbs that say what the subject is or becomes
BE_VERBS = frozenset(
    "be is are was were been become becomes became being get gets got turn turns look looks "
    "seem seems appear appears".split()
)


@dataclass
class StatementSlots:
    """A statement's slots: the subject (raw), its verb and the rest after the verb."""

    verb: str
    subj_raw: str
    rest: str
    subj: str = field(init=False)
    prop: str = field(init=False)
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        subj = clean_np(self.subj_raw)
        if np_kind(subj) != "background" and not re.search(r"\b(?:behind|around)\b",
                                                            self.subj_raw):
            subj = clean_np(split_np(self.subj_raw)[0])  # "the flowers in the vase" -> "flowers"
        self.prop, self.subj = property_of(subj)
        self.kind = np_kind(self.subj)
        self.rest = self.rest.strip()

    def cues(self, *more: str) -> list[str]:
        return [f"statement:{self.verb}", *more]

    @property
    def thing_raw(self) -> str:
        """What the subject has: "a red hat" of "a red hat on his head"."""
        return split_np(self.rest)[0]

    @property
    def thing(self) -> str:
        return clean_np(self.thing_raw)

    @property
    def scene_cue(self) -> str:
        return f"scene:{scene_in(self.rest)}"


B, G, L = Category.BACKGROUND, Category.GLOBAL, Category.LOCAL
_IN = (r"^(?:in|on|at|inside|into|under|in front of|among|by|near|surrounded "
       r"by|located in|placed in|set in|through|across|along|around|over|against)\b")


def _in_a_scene(s: StatementSlots) -> bool:
    return bool(scene_in(s.rest) or backdrop_behind(s.rest)) and s.kind == "thing"


#: "<subject> is/becomes/looks <rest>", in order; the last row always holds
BE_DECISIONS: tuple[Decision, ...] = (
    Decision("gone", Category.REMOVE, "statement_gone",
             lambda s: re.match(r"^(?:gone|removed|deleted|erased|missing|absent|invisible)\b",
                                s.rest),
             lambda s: dict(obj=s.subj, cues=s.cues()), (("the lamp should be invisible", "lamp"),)),
    Decision("in-scene", B, "subject_in_scene", lambda s: re.match(_IN, s.rest) and _in_a_scene(s),
             lambda s: dict(obj=s.subj, comp=place_of(s.rest), cues=s.cues(s.scene_cue)),
             (("the dog should be on a beach", "dog"),)),
    Decision("background-is", B, "background_is",
             lambda s: s.kind == "background"
             or (s.kind == "thing" and scenery_change(s.subj, "", strip_complement(s.rest))),
             lambda s: dict(obj="", comp=strip_complement(s.rest), anchor=np_head(s.subj),
                            cues=s.cues("background-noun")),
             (("the background should be a beach", "main subject"),)),
    Decision("picture-is", G, "image_is", lambda s: s.kind in ("image", "global", "time", "none"),
             lambda s: dict(comp=strip_complement(s.rest), cues=s.cues()),
             (("the image should be black and white", ""),)),
    Decision("thing-is", L, "thing_is", lambda s: True,
             lambda s: dict(obj=s.subj, comp=strip_complement(s.rest),
                            cues=s.cues(*([f"property:{s.prop}"] if s.prop else []))),
             (("the car should be red", "car"),)),
)


def _instead(s: StatementSlots) -> re.Match | None:
    return re.search(r"\binstead of\s+(?P<y>.+)$", s.rest)


def _part(s: StatementSlots) -> bool:
    """ "give the house a red roof", "the trees should have autumn leaves"."""
    w = s.thing.split()
    return (len(w) > 1 and w[-1] in lex.PART_NOUNS
            and all(x in lex.TIME_WEATHER or is_adjectival([x]) for x in w[:-1]))


#: parts all over the object: the object is grounded, not the part
_SPREAD = ("stripes", "spots", "scales", "leaves", "blossoms", "petals", "feathers", "mane")


def _body_part(s: StatementSlots) -> bool:
    """ "the man should have long hair": the hair changes (an indefinite "a beard" is new)."""
    w = s.thing.split()
    return (len(w) > 1 and w[-1] in lex.BODY_PARTS and not is_indefinite(s.thing_raw)
            and is_adjectival(w[:-1]))


#: "<subject> has/wears/holds <thing>", in order; the last row always holds
HAVE_DECISIONS: tuple[Decision, ...] = (
    # "wear a suit instead of a t-shirt": the t-shirt is changed
    Decision("instead-of", L, "replace_item", _instead,
             lambda s: dict(obj=clean_np(split_np(_instead(s).group("y"))[0]), comp=s.thing_raw,
                            cues=s.cues()),
             (("the man should wear a suit instead of a t-shirt", "t-shirt"),)),
    Decision("has-background", B, "has_background", lambda s: np_kind(s.thing) == "background",
             lambda s: dict(comp=s.thing_raw, obj=s.subj if s.kind == "thing" else "",
                            anchor=np_head(s.thing), cues=s.cues("background-noun")),
             (("the dog should have a beach background", "dog"),)),
    Decision("background-has", B, "background_has", lambda s: s.kind == "background",
             lambda s: dict(comp=s.rest, anchor=np_head(s.subj), cues=s.cues("background-noun")),
             (("the background should have mountains", "main subject"),)),
    Decision("picture-has", G, "image_has",
             lambda s: s.kind in ("image", "none") and (
                 np_head(s.thing) in lex.GLOBAL_ADDABLES or find_phrase(s.thing, lex.STYLE_WORDS)),
             lambda s: dict(comp=s.thing_raw, cues=s.cues()),
             (("the image should have a vintage filter", ""),)),
    # "a haircut", "a new coat of paint": the object changes
    Decision("given-change", L, "given_change",
             lambda s: s.thing in lex.CHANGE_ITEMS or np_head(s.thing) in lex.CHANGE_ITEMS
             or re.match(r"^(?:\w+\s+)?(?:coat|coats|layer|lick|shade) of\b", s.thing),
             lambda s: dict(obj=s.subj, comp=s.thing_raw, cues=s.cues()),
             (("give the man a haircut", "man"),)),
    Decision("part", L, "has_attribute", _part,
             lambda s: dict(obj=s.subj if s.thing.split()[-1] in _SPREAD or s.kind != "thing"
                            else s.thing.split()[-1], comp=s.thing, cues=s.cues()),
             (("give the house a red roof", "roof"), ("the trees should have autumn leaves",
                                                      "trees"))),
    Decision("body-part", L, "has_attribute", _body_part,
             lambda s: dict(obj=(lambda p: p if p in ("hair", "eyes", "skin", "fur", "lips",
                                                      "beard") else s.subj)(s.thing.split()[-1]),
                            comp=s.thing, cues=s.cues()),
             (("the man should have long hair", "hair"),)),
    Decision("item", Category.ADDITION, "has_item", lambda s: True,
             lambda s: dict(obj=s.thing, comp=s.thing_raw, location=split_np(s.rest)[1],
                            anchor=s.subj if s.kind == "thing" else "", verb=s.verb,
                            cues=s.cues()),
             (("the man should have a hat", "hat"), ("give the cat a crown", "crown"))),
)

#: "<subject> <any other verb> <rest>", in order; the last row always holds (a vanishing
#: verb, "the dog should disappear", is read before: the removal frame takes nearly all)
ACTION_DECISIONS: tuple[Decision, ...] = (
    # "let the cow graze in the alps": any verb that places the subject in a scene
    Decision("in-scene", B, "subject_in_scene",
             lambda s: (s.verb in lex.POSTURE_VERBS or re.match(
                 r"^(?:in|on|at|inside|through|across|along|around|among)\b", s.rest))
             and _in_a_scene(s),
             lambda s: dict(obj=s.subj, comp=place_of(s.rest), cues=s.cues(s.scene_cue)),
             (("let the cow graze in the alps", "cow"),)),
    Decision("picture-acts", G, "image_action",
             lambda s: s.kind in ("image", "none", "time") or s.subj in ("it", "everything"),
             lambda s: dict(comp=f"{s.verb} {s.rest}".strip(), cues=s.cues()),
             (("make it glow", ""),)),
    Decision("background-acts", B, "background_action", lambda s: s.kind == "background",
             lambda s: dict(comp=f"{s.verb} {s.rest}".strip(), anchor=np_head(s.subj),
                            cues=s.cues()),
             (("make the background glow", "main subject"),)),
    Decision("thing-acts", L, "action", lambda s: True,
             lambda s: dict(obj=s.subj, comp=f"{gerund(s.verb)} {s.rest}".strip(), verb=s.verb,
                            cues=s.cues()),
             (("make the dog jump", "dog"),)),
)
