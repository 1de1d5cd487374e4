"""Declarative pattern tables of the rule grammar: pattern -> category, object slot,
location slot, with the sentences each row is tested on.

A row is data: an anchored regex over a normalised clause, the named group that holds the
object (``object_slot``) and, where the pattern has one, the location (``location_slot``),
an optional guard (a small predicate on the match) and ``examples`` (sentence, expected
object) that ``tests/test_rules_table.py`` checks row by row. Rows are tried in order and
the first whose regex and guard pass wins, so the next fix is a row, not a branch.

A row may also restrict its verb (``verbs``: the words group ``v`` may hold, so rows can
share one verb regex and still split by verb), name the complement group (``comp_slot``)
and name the ``action`` its frame takes with the match (a key of the frame's action map in
:mod:`iiie.planners.rules_grammar`; ``""`` is the frame's default). The action
:data:`DECLINE` says "this shape is not this frame's": the frame answers nothing and the
later frames read the clause ("paint the wall yellow" is not an addition). Such rows have
no category; their examples name the later frame that answers instead.

A frame's surface rows only bind slots; a :class:`Decision` table then says what the
slots' meaning makes of them (``when`` -> category and Parse frame), so a category fix is
a row too.

Surface tables: the removal frame (here), the addition frames (:mod:`.rules_tables_add`),
the change, seeing and verbless frames (:mod:`.rules_tables_change`), the global frames:
style phrases and adjustments (:mod:`.rules_tables_global`). Decision tables: removals
(:mod:`.rules_tables_remove`), additions, changes (in their frames' modules), statements
(:mod:`.rules_tables_statement`). The giving, dressing, causative, desire and statement
frames' surface shapes still live in :mod:`iiie.planners.rules_grammar`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_text import (
    clean_np,
    is_adjectival,
    is_definite,
    is_indefinite,
    np_kind,
    split_np,
)
from iiie.types import Category

_REMOVE_VERBS = (
    r"remove|delete|erase|eliminate|ditch|lose|hide|exclude|omit|scrub|cut out|cut away|"
    r"cut down|chop down|clean up|clean off|clean out|clean away|clear away|clear out|"
    r"clear off|wipe out|wipe away|wipe off|get rid of|do away with|take out|take away|"
    r"take off|take down|pull out|rip out|strip away|strip off|edit out|crop out|"
    r"paint out|photoshop out|rid (?:it|the image|the picture|the photo|this) of|"
    r"free (?:it|the image) of|knock down|tear down|erase away|extract|throw away|"
    r"throw out|discard|kill|destroy|vanish|unclutter|declutter|clear|leave out|cut off|"
    r"nix|scrap|axe|zap|banish|purge"
)
_BE = (
    r"(?:(?:should|must|would|could|can|will|shall|might|may|needs? to|has to|have to|"
    r"ought to|to|is going to|are going to)\s+)?(?:(?:not|never)\s+)?"
)
#: "everything except the woman": the rest of the picture around a kept subject.
EXCEPT = r"^(?:except(?: for)?|but|apart from|other than|besides|aside from)\b"
#: Lead-ins stripped before the rows marked ``after_wish`` ("i want the dog gone").
WISH = re.compile(
    r"^(?:what if|imagine if|imagine|suppose|i want|i would like|i need|i wish|"
    r"we want|i would prefer|i prefer)\s+"
)


@dataclass
class Parse:
    """What one clause says, before prompts and boxes are built."""

    category: Category
    frame: str
    obj: str = ""
    comp: str = ""
    location: str = ""
    anchor: str = ""
    verb: str = ""
    confidence: str = "high"
    cues: list[str] = field(default_factory=list)


#: The action of a row that hands the clause on to the later frames.
DECLINE = "decline"


@dataclass(frozen=True)
class Pattern:
    """One row: ``regex`` -> ``category`` with the object in group ``object_slot``."""

    name: str
    regex: str
    category: Category | None  # None only for DECLINE rows
    #: (sentence, object) or (sentence, object, category) where the slots' meaning gives
    #: another category than the row's ("change the background to a beach": background)
    examples: tuple[tuple[str, str] | tuple[str, str, Category], ...]
    object_slot: str | None = "obj"  # None: the object is the whole picture ("it")
    location_slot: str | None = None
    guard: Callable[[re.Match, str], bool] | None = None
    verb: Callable[[re.Match, str], str] | None = None  # the cue's verb; default: ``name``
    clean: Callable[[str], str] | None = None  # tidy the object text
    after_wish: bool = False
    verbs: frozenset[str] | None = None  # the row applies only when group "v" is one of these
    comp_slot: str | None = None
    action: str = ""

    def __post_init__(self) -> None:
        if (self.category is None) != (self.action == DECLINE):
            raise ValueError(f"row {self.name!r}: a category is required unless it declines")
        if not self.examples:
            raise ValueError(f"row {self.name!r} has no examples")
        groups = re.compile(self.regex).groupindex
        for slot in (self.object_slot, self.location_slot, self.comp_slot):
            if slot is not None and slot not in groups:
                raise ValueError(f"row {self.name!r}: its regex has no group {slot!r}")
        if self.verbs is not None and "v" not in groups:
            raise ValueError(f"row {self.name!r} restricts verbs but has no group 'v'")

    def match(self, clause: str) -> re.Match | None:
        text = WISH.sub("", clause) if self.after_wish else clause
        m = re.match(self.regex, text)
        if not m or (self.verbs is not None and m.group("v") not in self.verbs):
            return None
        return m if self.guard is None or self.guard(m, text) else None


def _not_image(group: str) -> Callable[[re.Match, str], bool]:
    return lambda m, _c: np_kind(clean_np(m.group(group))) not in ("image", "none")


def _is_image(group: str) -> Callable[[re.Match, str], bool]:
    return lambda m, _c: np_kind(clean_np(m.group(group))) in ("image", "none")


def _particle_guard(m: re.Match, c: str) -> bool:
    particle = r"\b(?:out|away|from)\b" if m.group("v") == "drop" else r"\b(?:out|away)\b"
    return not (m.group("v") in ("move", "leave", "drop") and not re.search(particle, c))


#: "show ...", "i want ...": asking to see the picture some way ("i want it without the bag")
_WANT_WORDS = r"show|i want|i would like|i need|give me|can i see|let me see|i prefer|i would prefer"
_WANT = rf"^(?:{_WANT_WORDS})\s"


def _without_guard(m: re.Match, c: str) -> bool:
    return not re.match(r"^\w+ing\b", m.group("obj")) and bool(
        np_kind(clean_np(m.group("x"))) in ("image", "none")
        or re.match(_WANT, c)
        or re.search(r"\b(?:better|nicer|cleaner|best|prettier)\s+without\b", c)
    )


def _not_an_attribute(m: re.Match, _c: str) -> bool:
    """ "the man should not have long hair" changes the hair; "... a beard" removes it."""
    words = clean_np(split_np(m.group("thing"))[0]).split()
    return not (len(words) > 1 and words[-1] in lex.BODY_PARTS
                and not is_indefinite(m.group("thing")) and is_adjectival(words[:-1]))


_GONE = (r"(?:gone|removed|deleted|erased|eliminated|taken out|taken away|cleared|wiped out|"
         r"disappear|disappears|disappeared|vanish|vanishes|vanished|go away|missing|absent)\b")
R = Category.REMOVE

#: The removal frame, in match order.
REMOVE_PATTERNS: tuple[Pattern, ...] = (
    Pattern("clear-of", r"^(?:clear|rid|free|empty|strip|clean|cleanse|purge)\s+(?P<x>.+?)\s+of\s+"
            r"(?:all\s+|any\s+|the\s+)?(?P<obj>.+)$", R, (("clear the sky of birds", "birds"),),
            guard=_not_image("obj")),
    Pattern("do-not-have", r"^(?:do not|never|not)\s+(?:have|include|show|keep|put|add|want)\s+(?:any\s+)?"
            r"(?P<obj>.+?)(?:\s+(?:there|here|in it|anymore|any more))?$", R,
            (("don't include the dog", "dog"),)),
    Pattern("do-not-want", r"^(?:i|we)\s+(?:do not|did not|would not|never)\s+(?:want|like|need)\s+"
            r"(?:to see\s+)?(?:any\s+)?(?P<obj>.+)$", R, (("i don't want the car", "car"),)),
    Pattern("remove-verb", rf"^(?:{_REMOVE_VERBS})\s+(?P<obj>.+)$", R,
            (("remove the red circle", "red circle"), ("get rid of the lamp", "lamp")),
            guard=lambda m, _c: not re.match(r"^(?:up|down)$", m.group("obj")),
            verb=lambda m, c: c[: m.start("obj")].strip()),
    Pattern("verb-particle", r"^(?P<v>take|get|clear|wipe|pull|cut|clean|rip|strip|edit|crop|photoshop|"
            r"paint|knock|throw|toss|kick|chase|erase|delete|remove|move|brush|scrub|leave|drop|"
            r"pluck|yank|pick|lift|wash|rub)\s+(?P<obj>.+?)\s+(?:out of|off of|away from|out|away|off|from)"
            r"(?:\s+(?P<r>.*))?$", R, (("take the glasses off the man", "glasses"),),
            guard=_particle_guard, verb=lambda m, _c: m.group("v")),
    Pattern("free-of", rf"^(?P<x>.+?)\s+{_BE}(?:be\s+|is\s+|are\s+)?(?:free|clear|empty|devoid|rid)\s+of\s+"
            r"(?:all\s+|any\s+)?(?P<obj>.+)$", R, (("the wall should be free of graffiti", "graffiti"),),
            guard=_not_image("obj")),
    Pattern("drop", r"^drop\s+(?P<obj>.+)$", R, (("drop the dog", "dog"),),
            guard=lambda m, _c: is_definite(m.group("obj")) and not split_np(m.group("obj"))[1]),
    Pattern("not-wear", r"^(?:make|have|let|get)\s+(?P<who>.+?)\s+(?:not|never|no longer|stop)\s+"
            r"(?:wear|wearing|have|having|hold|holding|carry|carrying)\s+(?:any\s+)?(?P<obj>.+)$", R,
            (("have the woman not wear glasses", "glasses"),)),
    Pattern("without", rf"^(?:(?:{_WANT_WORDS}|make)\s+)?(?P<x>.+?)\s+(?:would|will|could|might)?\s*"
            r"(?:look|looks|be|is)?\s*(?:better|nicer|cleaner|best|prettier)?\s*"
            r"without\s+(?:any\s+|all\s+)?(?P<obj>.+)$", R,
            (("it would look better without the bag", "bag"),), guard=_without_guard),
    Pattern("make-disappear", r"^(?:make|let|have)\s+(?P<obj>.+?)\s+(?:be\s+)?(?:disappear|vanish|go away|"
            r"invisible|gone|leave|(?:fly|walk|run|swim|drive|sail|move|hop|wander)\s+"
            r"(?:away|off)(?:$|\s+(?:from|out)))\b", R, (("make the cat disappear", "cat"),)),
    Pattern("gone", rf"^(?P<obj>.+?)\s+{_BE}(?:be\s+|get\s+|being\s+)?{_GONE}", R,
            (("i want the dog gone", "dog"),), after_wish=True,
            guard=lambda m, _c: not re.match(r"^(?:there|it)$", m.group("obj"))),
    Pattern("must-go", r"^(?P<obj>.+?)\s+(?:needs? to|has to|have to|must|should|can|could)\s+"
            r"(?:go|leave|be gone|go away|(?:come|be taken) off(?:\s+.+)?|(?:come|be taken) out"
            r"(?:\s+of\s+(?:the|this)\s+(?:picture|image|photo|shot|scene|frame))?)$", R,
            (("the trash can needs to go", "trash can"),), after_wish=True, verb=lambda m, _c: "gone",
            guard=lambda m, _c: not re.match(r"^(?:there|it)$", m.group("obj"))),
    Pattern("not-there", r"^(?P<obj>.+?)\s+(?:(?:should|must|would|could|can|will|does|do|did|was|were|is|are|"
            r"needs? to|has to|have to|ought to)\s+){1,2}(?:not|never)\s+(?:be\s*)?(?:there|here|"
            r"in (?:the|this) (?:picture|image|photo|scene|shot|frame)|visible|present|"
            r"exist|appear|be seen|show|$|(?:on|in|at|under|by|near|inside) (?:the|this|that|"
            r"his|her|their|its) (?!(?:left|right|top|bottom|side|middle|center|centre)$)[a-z]+$)", R,
            (("the bird should not be there", "bird"),), after_wish=True,
            clean=lambda o: re.sub(r"\s+(?:was|were|is|are|should|would|could|must|does|did|do)$", "", o)),
    Pattern("not-have", r"^(?P<obj>.+?)\s+(?:(?:should|must|would|could|can|will|does|do|did)\s+)?(?:not|never)"
            r"\s+(?:have|has|contain|include|show)\s+(?:any\s+)?(?P<thing>.+)$", R,
            (("the picture should not have any people", "people"),), object_slot="thing",
            after_wish=True, guard=_is_image("obj")),
    Pattern("not-have-worn", r"^(?P<obj>.+?)\s+(?:(?:should|must|would|could|can|will|does|do|did|is|are|was|were)"
            r"\s+)?(?:not|never|no longer)\s+(?:be\s+)?(?:have|has|wear|wears|wearing|hold|holds|holding|"
            r"carry|carries|carrying)\s+(?:any\s+)?(?P<thing>.+)$", R,
            (("the man should not wear a hat", "hat"),), object_slot="thing", after_wish=True,
            guard=_not_an_attribute, verb=lambda m, _c: "not-have"),
    Pattern("there-should-not-be", r"^there\s+(?:should|must|can|would|will|could)\s+(?:not|never)\s+be\s+"
            r"(?:any\s+)?(?P<obj>.+)$", R, (("there should not be any clouds", "clouds"),), after_wish=True,
            verb=lambda m, _c: "no"),
    Pattern("no", r"^(?:(?:there (?:should|must|can|would|will) be|there is|there are|"
            r"there was|there were|let there be|i want|i would like|have|leave|with|"
            r"show) )?(?:no|none of the|zero)\s+(?:more\s+)?(?P<obj>.+)$", R,
            (("no more cars", "cars"),), after_wish=True),
    Pattern("bare-without", r"^(?:without|minus|sans)\s+(?:any\s+)?(?P<obj>.+)$", R,
            (("without the fence", "fence"),), after_wish=True, verb=lambda m, _c: "without"),
)


def first_match(clause: str, table: tuple[Pattern, ...]) -> tuple[Pattern, re.Match] | None:
    """The first row of ``table`` whose regex and guard accept ``clause``."""
    for row in table:
        m = row.match(clause)
        if m:
            return row, m
    return None


def run_table(
    clause: str,
    table: tuple[Pattern, ...],
    actions: Mapping[str, Callable[[Pattern, re.Match], Any]],
) -> Any:
    """The generic matcher of a frame: the first matching row's action on its match, or
    None when no row matches or the row declines. ``m.string`` is the text matched."""
    hit = first_match(clause, table)
    if hit is None or hit[0].action == DECLINE:
        return None
    row, m = hit
    return actions[row.action](row, m)


@dataclass(frozen=True)
class Decision:
    """One row of a decision table: when the filled slots satisfy ``when``, the clause is
    the edit ``build`` makes of them (a :class:`Parse` of ``category`` and ``frame``).

    A frame's surface rows only bind slots; its decision rows say what the slots' meaning
    makes of them ("put the dog on a beach": a named subject moved into a scene is a
    background edit), tried in order, the first whose ``when`` holds wins. ``examples``
    (sentence, planner object) are checked row by row in ``tests/test_rules_table.py``.
    """

    name: str
    category: Category
    frame: str
    when: Callable[[Any], bool]
    build: Callable[[Any], dict[str, Any]]  # the Parse's other fields
    #: (sentence, planner object) or (sentence, object, a cue only this row emits)
    examples: tuple[tuple[str, str] | tuple[str, str, str], ...]

    def __post_init__(self) -> None:
        if not self.examples:
            raise ValueError(f"decision {self.name!r} has no examples")


def decide(table: tuple[Decision, ...], filled: Any) -> Parse:
    """The Parse of the first row of ``table`` whose ``when`` accepts the slots ``filled``."""
    for row in table:
        if row.when(filled):
            return Parse(row.category, row.frame, **row.build(filled))
    raise ValueError(f"no row of the decision table accepts {filled!r}")


def slots(row: Pattern, m: re.Match) -> tuple[str, str, str]:
    """(object, location, verb cue) of a match of ``row`` (:meth:`Pattern.match`'s: its
    ``m.string`` is the text the row read, the wish lead-in already stripped)."""
    obj = m.group(row.object_slot)
    if row.clean:
        obj = row.clean(obj)
    loc = m.group(row.location_slot) or "" if row.location_slot else ""
    verb = row.verb(m, m.string) if row.verb else row.name
    return obj, loc, verb
