"""The rule planner's grammar: ordered sentence frames and the category decisions.

A frame matches a sentence shape and binds slots (object, complement, location); the
``_decide_*`` functions then choose the category from what fills the slots, so one frame can
yield several categories ("remove the yellow cast" is global, "remove the lamp" is remove).
See :mod:`iiie.planners.rules` for the conventions on ambiguous phrasings.

Most frames and decisions are declarative tables (:mod:`iiie.planners.rules_table` and the
``rules_tables_*`` modules); what stays here is each table's action map (how a matched
row's slots become a :class:`Parse`) and the frames not yet converted.
"""

from __future__ import annotations

import re

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_table import (
    _BE,
    REMOVE_PATTERNS,
    Parse,
    Pattern,
    decide,
    first_match,
    run_table,
    slots,
)
from iiie.planners.rules_tables_add import ADD_DECISIONS, ADD_PATTERNS, FILL_PATTERNS, AddSlots
from iiie.planners.rules_tables_change import (
    BARE_PATTERNS,
    CHANGE_DECISIONS,
    CHANGE_PATTERNS,
    SEE_PATTERNS,
    VERB_RESULT,
    ChangeSlots,
)
from iiie.planners.rules_tables_global import (
    ADJUST_PATTERNS,
    GLOBAL_PHRASE_PATTERNS,
    adjust_reading,
)
from iiie.planners.rules_tables_remove import REMOVE_DECISIONS, RemoveSlots
from iiie.planners.rules_tables_statement import (
    ACTION_DECISIONS,
    BE_DECISIONS,
    BE_VERBS,
    HAVE_DECISIONS,
    StatementSlots,
)
from iiie.planners.rules_text import (
    NUMBER_WORDS,
    PREPOSITIONS,
    clean_np,
    find_phrase,
    gerund,
    is_adjectival,
    is_definite,
    is_indefinite,
    np_head,
    np_kind,
    property_of,
    scene_in,
    split_np,
    split_object_complement,
)
from iiie.planners.rules_text import anchor_from as _anchor_from
from iiie.planners.rules_text import locative_tail as _locative_tail
from iiie.planners.rules_text import place_of as _place
from iiie.types import Category

__all__ = ["Parse", "fallback_parse", "parse_clause"]  # Parse lives in rules_table

# --------------------------------------------------------------------------------------------
# deciding the category from the filled slots (additions and changes: decision tables in
# rules_tables_add / rules_tables_change)
# --------------------------------------------------------------------------------------------


def _decide_remove(obj_raw: str, verb: str = "remove") -> Parse:
    """A removal's category from its slots: the rows of
    :data:`~.rules_tables_remove.REMOVE_DECISIONS`."""
    return decide(REMOVE_DECISIONS, RemoveSlots(verb, obj_raw))


def _decide_change(obj_raw: str, comp: str, verb: str = "change") -> Parse:
    """A change's category from its slots: the rows of
    :data:`~.rules_tables_change.CHANGE_DECISIONS`."""
    return decide(CHANGE_DECISIONS, ChangeSlots(verb, obj_raw, comp))


def _decide_add(verb: str, np_raw: str, tail: str = "", anchor: str = "") -> Parse:
    """An addition's category from its slots: the rows of
    :data:`~.rules_tables_add.ADD_DECISIONS`."""
    return decide(ADD_DECISIONS, AddSlots(verb, np_raw, tail, anchor))


def _decide_statement(subj_raw: str, verb: str, rest: str) -> Parse:
    """ "the dog should be a cat", "the man had a hat", "the girl standing in a field"."""
    subj_raw = subj_raw.strip()
    if subj_raw == "there":
        return _decide_existential(rest)
    rest = re.sub(r"^(?:now|also|then|still|just|all|really)\s+", "", rest.strip())
    if is_indefinite(subj_raw) and verb not in lex.VANISH_VERBS:
        # "a small owl sitting on the fence", "make a bird fly in the sky": a new object
        np_raw = subj_raw
        tail = (
            rest
            if re.match(
                r"^(?:in|on|at|next|beside|near|above|under|below|behind|"
                r"over|to|inside)\b",
                rest,
            )
            else _locative_tail(rest)
        )
        p = _decide_add("exist", np_raw, tail)
        p.cues.append("indefinite-subject")
        if (
            p.category == Category.ADDITION
            and verb in lex.ACTION_VERBS | lex.POSTURE_VERBS
            and verb not in ("be", "is", "are", "was", "were")
        ):
            action = rest[: len(rest) - len(tail)].strip() if tail and rest.endswith(tail) else ""
            p.comp = " ".join(w for w in (subj_raw, gerund(verb), action) if w)
        return p
    if verb in BE_VERBS:
        # "standing in a field", "holding a balloon", "made of brick"
        m = re.match(r"^(?P<v>\w+ing)\b\s*(?P<r>.*)$", rest)
        located = bool(m) and bool(
            re.match(
                r"^(?:in|on|at|inside|under|through|across|along|"
                r"near|by|around|in front of)\b",
                m.group("r"),
            )
        )
        if m and m.group("v") in lex.POSSESSION_VERBS and not located:
            return _decide_statement(subj_raw, m.group("v"), m.group("r"))
        if m and (m.group("v") in lex.POSTURE_VERBS or located):
            rest = m.group("r")
        # "parked in front of the eiffel tower", "located on a mountaintop"
        rest = re.sub(
            r"^(?:parked|placed|located|situated|positioned|seated|set|standing|photographed|"
            r"shown|pictured|depicted|displayed)\s+(?=(?:in|on|at|inside|in front of|near|"
            r"by|among)\b)",
            "",
            rest,
        )
        return decide(BE_DECISIONS, StatementSlots(verb, subj_raw, rest))
    if verb in lex.POSSESSION_VERBS:
        return decide(HAVE_DECISIONS, StatementSlots(verb, subj_raw, rest))
    if verb in lex.VANISH_VERBS:  # the removal frame reads nearly all of these first
        slots_ = StatementSlots(verb, subj_raw, rest)
        return Parse(Category.REMOVE, "statement_gone", obj=slots_.subj, cues=slots_.cues())
    return decide(ACTION_DECISIONS, StatementSlots(verb, subj_raw, rest))


def _decide_existential(np_text: str) -> Parse:
    """ "there should be a boat in the water", "i want a snowy background"."""
    np_text = np_text.strip()
    m = re.match(r"^(?:no|none of the|zero|not any)\s+(?:more\s+)?(?P<o>.+)$", np_text)
    if m:
        return _decide_remove(m.group("o"), "no")
    np_raw, tail = split_np(np_text)
    p = _decide_add("exist", np_raw, tail)
    p.cues.append("existential")
    return p


# --------------------------------------------------------------------------------------------
# the grammar: ordered frames over a normalised clause
# --------------------------------------------------------------------------------------------

def _match_remove(c: str) -> Parse | None:
    """The removal frame: the first row of :data:`~iiie.planners.rules_table.REMOVE_PATTERNS`."""
    hit = first_match(c, REMOVE_PATTERNS)
    if hit is None:
        return None
    obj, _loc, verb = slots(*hit)
    return _decide_remove(obj, verb)


def _split_give(rest: str) -> tuple[str, str]:
    """ "the cat a crown" -> ("the cat", "a crown"); "her sunglasses" -> ("her", "sunglasses")."""
    words = rest.split()
    if not words:
        return "", ""
    if words[0] in lex.PRONOUN_OBJECTS or words[0] in ("it", "this", "me", "us", "everyone"):
        return words[0], " ".join(words[1:])
    for i in range(1, len(words)):
        if words[i] in lex.INDEFINITE or words[i] in NUMBER_WORDS:
            return " ".join(words[:i]), " ".join(words[i:])
    if words[0] in lex.DETERMINERS or words[0].endswith("'s"):
        return " ".join(words[:2]), " ".join(words[2:])
    return words[0], " ".join(words[1:])


def _match_give(c: str) -> Parse | None:
    m = re.match(r"^give\s+(?P<rest>.+)$", c)
    if not m:
        m = re.match(
            r"^(?:get|buy|hand)\s+(?P<rest>(?:him|her|them|the \w+|his \w+|her \w+)\s+"
            r"(?:a|an|some|two|three)\s+.+)$",
            c,
        )
    if not m:
        return None
    rest = m.group("rest")
    mt = re.match(r"^(?P<thing>.+?)\s+to\s+(?P<who>.+)$", rest)  # "give a hat to the dog"
    if mt and is_indefinite(mt.group("thing")):
        who, thing = mt.group("who"), mt.group("thing")
    else:
        who, thing = _split_give(rest)
    if not thing:
        return None
    # "give X Y" reads as "X has Y": an addition, a change ("a haircut") or a look ("it")
    return _decide_statement(who, "have", thing)


def _match_dress(c: str) -> Parse | None:
    """ "dress the man in a tie", "dress her up as a witch"."""
    m = re.match(r"^dress\s+(?P<who>.+?)\s+(?:up\s+)?(?:in|with)\s+(?P<thing>.+)$", c)
    if m:
        return _decide_statement(m.group("who"), "wear", m.group("thing"))
    m = re.match(r"^dress\s+(?P<who>.+?)\s+(?:up\s+)?as\s+(?P<thing>.+)$", c)
    if m:
        return _decide_change(m.group("who"), m.group("thing"), "dress")
    return None


_CAUSE_VERB_SET = (
    lex.POSSESSION_VERBS | lex.ACTION_VERBS | lex.POSTURE_VERBS | lex.VANISH_VERBS
) - {"look", "looking", "turn", "face", "with"}


def _split_subject_verb(text: str) -> tuple[str, str, str] | None:
    """ "the dog wear a hat" -> ("the dog", "wear", "a hat"); first verb after a noun."""
    words = text.split()
    for i in range(1, len(words)):
        w = words[i]
        if w in ("be", "become", "look", "looks", "seem") or w in _CAUSE_VERB_SET:
            if words[i - 1] in lex.DETERMINERS:
                continue
            return " ".join(words[:i]), w, " ".join(words[i + 1 :])
    # an unknown verb after "the <noun>" followed by a location: "the cow graze in the alps"
    if (
        len(words) >= 4
        and words[0] in lex.DETERMINERS
        and words[3] in PREPOSITIONS
        and words[2] not in PREPOSITIONS
    ):
        return " ".join(words[:2]), words[2], " ".join(words[3:])
    return None


def _match_causative(c: str) -> Parse | None:
    """make/have/let/get X <verb> ...; what if ...; i want X to ...; can X be ..."""
    m = re.match(
        r"^(?:what if|imagine if|imagine|suppose|pretend|how about if|what would "
        r"happen if|i wish|if only|(?:what|how) would (?:it|this|that|the \w+) look(?: like)? "
        r"if|show me what (?:it|this) would look like if)\s+(?P<s>.+)$",
        c,
    )
    if m:
        return _parse_statement(m.group("s"), lenient=True)
    m = re.match(
        r"^(?:i want|i would like|i need|we want|i would love|i wish|i prefer|"
        r"i would prefer|i want to see|i would like to see|id like)\s+"
        r"(?P<s>.+?)\s+to\s+(?P<v>be|look|have|wear|hold|become|\w+)\b\s*(?P<r>.*)$",
        c,
    )
    if m and m.group("v") not in ("the", "a", "an"):
        subj, verb, rest = m.group("s"), m.group("v"), m.group("r")
        if verb in ("look", "become", "seem", "appear"):
            return _decide_change(subj, rest, verb)
        if verb == "be":
            return _decide_statement(subj, "be", rest)
        return _decide_statement(subj, verb, rest)
    m = re.match(r"^(?:can|could|should|would|will|may|might|does|is|are)\s+(?P<s>.+)$", c)
    if m and not re.match(r"^(?:you|we|i|u)\b", m.group("s")):
        p = _parse_statement(m.group("s"), lenient=True)
        if p is not None:
            return p
    m = re.match(r"^(?P<cause>make|have|let|get)\s+(?P<s>.+)$", c)
    if m:
        s = m.group("s")
        if re.match(r"^there\s+(?:be|is|are)\s+", s):
            return _decide_existential(re.sub(r"^there\s+(?:be|is|are)\s+", "", s))
        if m.group("cause") in ("have", "get") and is_indefinite(s):
            sv0 = _split_subject_verb(s)
            if sv0 is None or sv0[1] not in lex.ACTION_VERBS | lex.POSTURE_VERBS:
                return _decide_existential(s)
        sv = _split_subject_verb(s)
        if sv is not None:
            subj, verb, rest = sv
            if verb in ("look", "looks", "seem", "become"):
                return _decide_change(subj, rest, "look")
            return _decide_statement(subj, verb, rest)
    return None


def _parse_statement(s: str, lenient: bool = False) -> Parse | None:
    """A declarative clause: "<subject> (modal) <verb> <rest>"."""
    s = re.sub(r"^(?:only|just)\s+", "", s)
    m = re.match(
        r"^there\s+(?:(?:should|must|could|would|will|can|might|needs to)\s+be|"
        r"is|are|was|were|be)\s+(?P<r>.+)$",
        s,
    )
    if m:
        return _decide_existential(m.group("r"))
    m = re.match(
        rf"^(?P<s>.+?)\s+{_BE}(?:be\s+)?(?:turn|turns|turned|change|changes|changed|transform|"
        r"transforms|transformed|morph|morphs|morphed)\s+(?:into|to)\s+(?P<r>.+)$",
        s,
    )
    if m:  # "the living room should turn into a forest clearing": a change of the subject
        return _decide_change(m.group("s"), m.group("r"), "turn")
    m = re.match(
        rf"^(?P<s>.+?)\s+{_BE}(?P<v>be|become|becomes|became|is|are|was|were|been|"
        r"being|gets|got|turns|turned|look|looks|looked|seem|seems|appears|had|has|"
        r"have|having|wore|wears|wear|wearing|held|holds|hold|holding|carry|carries|"
        r"carrying|carried|with|sporting|sat|sits|sitting|stood|stands|standing|"
        r"lay|lies|lying|disappear|disappears|vanish|vanishes)\b\s*(?P<r>.*)$",
        s,
    )
    if m:
        subj, verb, rest = m.group("s"), m.group("v"), m.group("r")
        if verb in (
            "look",
            "looks",
            "looked",
            "seem",
            "seems",
            "appears",
            "turns",
            "turned",
            "gets",
            "got",
            "becomes",
            "became",
            "become",
        ):
            return _decide_change(subj, rest, "look")
        base = {
            "had": "have",
            "has": "have",
            "having": "have",
            "wore": "wear",
            "wears": "wear",
            "held": "hold",
            "holds": "hold",
            "carries": "carry",
            "carried": "carry",
            "sat": "sit",
            "sits": "sit",
            "stood": "stand",
            "stands": "stand",
            "lies": "lie",
        }.get(verb, verb)
        if base in ("is", "are", "was", "were", "been", "being"):
            base = "be"
        return _decide_statement(subj, base, rest)
    m = re.match(
        r"^(?P<s>.+?)\s+(?:should|must|would|could|can|will|needs? to|has to|have to|"
        r"ought to)\s+(?P<v>[a-z]+)\b\s*(?P<r>.*)$",
        s,
    )
    if m and m.group("v") in ("say", "read", "display") and not is_indefinite(m.group("s")):
        # "the cake should say happy birthday": new text on the object
        return _decide_change(m.group("s"), f"saying {m.group('r')}", m.group("v"))
    if m and m.group("v") in _CAUSE_VERB_SET and not is_indefinite(m.group("s")):
        # "the lamp should glow", "the dog must sit": an action of a named object
        return _decide_statement(m.group("s"), m.group("v"), m.group("r"))
    m = re.match(
        r"^(?P<s>.+?)\s+(?:needs|need|could use|deserves|is missing|are missing|lacks|lack)"
        r"\s+(?P<r>.+)$",
        s,
    )
    if m and is_indefinite(m.group("r")):  # "the table needs a vase": it should have one
        return _decide_statement(m.group("s"), "have", m.group("r"))
    if lenient:
        sv = _split_subject_verb(s)
        if sv is not None:
            return _decide_statement(*sv)
    return None


def _match_desire(c: str) -> Parse | None:
    """ "i want a brick wall behind the cat", "can we have some ducks", "how about a hat"."""
    m = re.match(
        r"^(?:i want|i would like|i need|we need|we want|i would love|can we have|"
        r"could we have|can we get|could we get|can i get|can i have|how about|"
        r"what about|give me|show me|i wish for|i would prefer|i prefer|let us have|"
        r"it needs|it should have|it needs to have)\s+(?P<np>.+)$",
        c,
    )
    if not m:
        return None
    m2 = re.match(
        r"^(?P<o>it|this|that|everything|the (?:image|photo|picture|scene))\s+"
        r"(?:as|in|to be|to look like|like|into)\s+(?P<c>.+)$",
        m.group("np"),
    )
    if m2:  # "i'd like it as an anime"
        return _decide_change(m2.group("o"), m2.group("c"), "want")
    if is_indefinite(m.group("np")) or not is_definite(m.group("np")):
        return _decide_existential(m.group("np"))
    m3 = re.match(
        r"^(?P<o>.+?)(?:\s+(?:recolou?red|repainted|painted|colou?red|dyed|changed|turned|"
        r"made|done|redone|rendered))?\s+(?P<p>in|as|painted|colored|coloured)\s+"
        r"(?P<c>.+)$",
        m.group("np"),
    )
    if m3 and not (m3.group("p") == "in" and scene_in(m3.group("c"))):
        # "i'd prefer the couch in green", "i want the cat as a lion"
        return _decide_change(m3.group("o"), m3.group("c"), "want")
    if m3:  # "i want the dog in a park": the subject in a new scene
        return _decide_statement(m3.group("o"), "be", f"in {m3.group('c')}")
    o, c2 = split_object_complement(m.group("np"))
    if o and c2 and is_adjectival([w for w in c2.split() if w not in ("and", "or")]):
        return _decide_change(o, c2, "want")  # "i want the tulips purple"
    return None


def _quoted(words: str) -> str:
    """ "the text hello" / "the words happy birthday" -> "hello" / "happy birthday"."""
    w = re.sub(
        r"^(?:the\s+|some\s+)?(?:text|words?|caption|writing|title|label|letters)"
        r"(?:\s+(?:that\s+)?(?:says?|saying|reading|reads))?\s*",
        "",
        words.strip(),
    )
    return w.strip()


def _fill_things(row: Pattern, m: re.Match) -> Parse | None:
    """Countable things added onto or around the named object."""
    where = m.group(row.location_slot)
    p = _decide_add(m.group("v"), split_np(m.group(row.object_slot))[0], f"on {where}",
                    anchor=clean_np(where))
    return p if p.category == Category.ADDITION else None


_FILL_ACTIONS = {
    "": _fill_things,
    # "surround the boy with a field of sunflowers": a new setting around the subject
    "surround": lambda row, m: Parse(
        Category.BACKGROUND, "surround_with_scene", obj=clean_np(m.group(row.object_slot)),
        comp=m.group(row.comp_slot), verb="surround", cues=["verb:surround", "scene"]),
}


def _match_fill(c: str) -> Parse | None:
    """ "fill the sky with balloons", "decorate the tree with lights": the rows of
    :data:`~iiie.planners.rules_tables_add.FILL_PATTERNS` (a substance, "cover the car with
    snow", is a change of the object, left to the change frame)."""
    return run_table(c, FILL_PATTERNS, _FILL_ACTIONS)


def _write_on(row: Pattern, m: re.Match) -> Parse:
    """Text on a named surface repaints that surface (Emu Edit's "text" task is local)."""
    surface = clean_np(split_np(m.group(row.object_slot))[0])
    return Parse(Category.LOCAL, "write_on", obj=surface,
                 comp=f"{surface} with the text {_quoted(m.group('words'))}",
                 verb=m.group("v"), cues=["text"])


_ADD_ACTIONS = {
    "": lambda row, m: _decide_add(m.group("v"), *split_np(m.group(row.object_slot))),
    "change": lambda row, m: _decide_change(m.group(row.object_slot), m.group(row.comp_slot),
                                            m.group("v")),
    "write_on": _write_on,
    # free-standing text needs a region, like any addition
    "add_text": lambda row, m: Parse(
        Category.ADDITION, "add_text", obj="text",
        comp=f"the text {_quoted(m.group(row.object_slot))}",
        location=(m.group(row.location_slot) or "").strip(), verb=m.group("v"), cues=["text"]),
}


def _match_add(c: str) -> Parse | None:
    """The addition frame: the rows of :data:`~iiie.planners.rules_tables_add.ADD_PATTERNS`."""
    return run_table(c, ADD_PATTERNS, _ADD_ACTIONS)


def _simile(row: Pattern, m: re.Match) -> Parse:
    """ "make the sky orange and pink like a sunset": the simile joins the colour."""
    obj, comp = split_object_complement(m.group(row.object_slot))
    like = m.string[m.end(row.object_slot) :].strip()
    return _decide_change(obj, f"{comp} {like}", m.group("v"))


_CHANGE_ACTIONS = {
    "": lambda row, m: _decide_change(m.group(row.object_slot), m.group(row.comp_slot),
                                      m.group("v")),
    "it": lambda row, m: _decide_change("it", m.group(row.comp_slot), m.group("v")),
    "no_comp": lambda row, m: _decide_change(m.group(row.object_slot), "", m.group("v")),
    "simile": _simile,
    "result": lambda row, m: _decide_change(
        m.group(row.object_slot), VERB_RESULT.get(m.group("v"), m.group("v")), m.group("v")),
    "split": lambda row, m: _decide_change(
        *split_object_complement(m.group(row.object_slot)), m.group("v")),
}


def _match_change(c: str) -> Parse | None:
    """The change frame: the rows of :data:`~.rules_tables_change.CHANGE_PATTERNS`."""
    return run_table(c, CHANGE_PATTERNS, _CHANGE_ACTIONS)


def _match_see(c: str) -> Parse | None:
    """ "let's see it in winter": the rows of :data:`~.rules_tables_change.SEE_PATTERNS`."""
    return run_table(c, SEE_PATTERNS, {"": lambda row, m: _decide_change(
        m.group(row.object_slot), m.group(row.comp_slot), "see")})


def _adjust_slots(row: Pattern, m: re.Match) -> tuple[str, str, str, str]:
    """(verb, raw object, object, tail) of an adjustment row's match."""
    np_raw, tail = split_np(m.group(row.object_slot))
    return m.group("v"), np_raw, clean_np(np_raw), tail


def _adjust_background(row: Pattern, m: re.Match) -> Parse:
    verb, _, obj, tail = _adjust_slots(row, m)
    return Parse(Category.BACKGROUND, "adjust_background", obj=_anchor_from(tail), comp=verb,
                 anchor=np_head(obj), verb=verb, cues=[f"verb:{verb}"])


def _adjust_image(row: Pattern, m: re.Match) -> Parse:
    verb, _, obj, _ = _adjust_slots(row, m)
    comp = "" if np_kind(obj) == "image" else obj.split(" of ")[0]
    return Parse(Category.GLOBAL, "adjust", comp=comp, verb=verb, cues=[f"verb:{verb}"])


def _adjust_object(row: Pattern, m: re.Match) -> Parse:
    verb, _, obj, _ = _adjust_slots(row, m)
    return Parse(Category.LOCAL, "adjust_object", obj=property_of(obj)[1], comp=verb, verb=verb,
                 cues=[f"verb:{verb}"])


_ADJUST_ACTIONS = {
    "more": lambda row, m: _decide_add("more", *split_np(m.group(row.object_slot))),
    "fewer": lambda row, m: _decide_remove(m.group(row.object_slot), m.group("v")),
    "background": _adjust_background,
    "image": _adjust_image,
    "object": _adjust_object,
}


def _match_adjust(c: str) -> Parse | None:
    """ "increase the contrast", "blur the background", "sharpen", "more saturation": the
    rows of :data:`~.rules_tables_global.ADJUST_PATTERNS` over the head's reading."""
    reading = adjust_reading(c)
    return None if reading is None else run_table(reading, ADJUST_PATTERNS, _ADJUST_ACTIONS)


_GLOBAL_PHRASE_ACTIONS = {
    "style_phrase": lambda row, m: Parse(Category.GLOBAL, "style_phrase",
                                         comp=m.group(row.comp_slot), cues=["style"]),
    "style_words": lambda row, m: Parse(Category.GLOBAL, "style_words",
                                        comp=m.group(row.comp_slot), cues=["style"]),
}


def _match_global_phrase(c: str) -> Parse | None:
    """Bare style/adjustment requests: "in the style of monet", "grayscale", "sepia tone":
    the rows of :data:`~.rules_tables_global.GLOBAL_PHRASE_PATTERNS`."""
    return run_table(c, GLOBAL_PHRASE_PATTERNS, _GLOBAL_PHRASE_ACTIONS)


def _bare_background(row: Pattern, m: re.Match) -> Parse:
    np_raw, tail = split_np(m.group(row.object_slot))
    obj = clean_np(np_raw)
    return Parse(Category.BACKGROUND, "bare_background", comp=m.group(row.object_slot),
                 anchor=np_head(obj), obj=_anchor_from(tail), cues=["background-noun"])


def _bare_in_scene(row: Pattern, m: re.Match) -> Parse:
    np_raw, tail = split_np(m.group(row.object_slot))
    return Parse(Category.BACKGROUND, "subject_in_scene", obj=clean_np(np_raw),
                 comp=_place(tail), cues=[f"scene:{scene_in(tail)}"])


_BARE_ACTIONS = {
    "": lambda row, m: _decide_change(m.group(row.object_slot), m.group(row.comp_slot), "bare"),
    "background": _bare_background,
    "add": lambda row, m: _decide_add("bare", *split_np(m.group(row.object_slot))),
    "scene": _bare_in_scene,
}


def _match_bare(c: str) -> Parse | None:
    """Verbless requests: "a bird on the branch", "dog on a beach", "background to a city":
    the rows of :data:`~.rules_tables_change.BARE_PATTERNS`."""
    return run_table(c, BARE_PATTERNS, _BARE_ACTIONS)


def fallback_parse(c: str) -> Parse:
    """No frame matched: guess from word meaning, flagged as low confidence."""
    cues = ["fallback"]
    if find_phrase(c, lex.STYLE_WORDS) or find_phrase(c, lex.TIME_WEATHER):
        return Parse(Category.GLOBAL, "fallback", comp=c, confidence="low", cues=cues)
    if re.search(r"\b(?:background|backdrop|surroundings|scenery|sky)\b", c):
        return Parse(Category.BACKGROUND, "fallback", comp=c, confidence="low", cues=cues)
    if re.search(r"\b(?:remove|gone|delete|erase|rid|without|no)\b", c):
        obj = clean_np(
            split_np(re.sub(r"^.*?\b(?:remove|delete|erase|rid of|without|no)\s+", "", c))[0]
        )
        return Parse(Category.REMOVE, "fallback", obj=obj, confidence="low", cues=cues)
    if re.search(r"\b(?:add|put|place|insert|there)\b", c):
        obj = clean_np(split_np(re.sub(r"^.*?\b(?:add|put|place|insert|be)\s+", "", c))[0])
        return Parse(Category.ADDITION, "fallback", obj=obj, comp=obj, confidence="low", cues=cues)
    obj = clean_np(split_np(c)[0])
    if np_kind(obj) in ("image", "none"):
        return Parse(Category.GLOBAL, "fallback", comp=c, confidence="low", cues=cues)
    return Parse(Category.LOCAL, "fallback", obj=obj, comp="", confidence="low", cues=cues)


_FRAMES = (
    ("global_phrase", _match_global_phrase),
    ("remove", _match_remove),
    ("give", _match_give),
    ("dress", _match_dress),
    ("causative", _match_causative),
    ("see", _match_see),
    ("adjust", _match_adjust),
    ("desire", _match_desire),
    ("fill", _match_fill),
    ("add", _match_add),
    ("change", _match_change),
    ("statement", lambda c: _parse_statement(c)),
    ("bare", _match_bare),
)


def parse_clause(clause: str) -> Parse:
    """Parse one normalised clause with the first frame that matches."""
    for name, matcher in _FRAMES:
        p = matcher(clause)
        if p is not None:
            p.cues.insert(0, f"frame:{name}")
            return p
    return fallback_parse(clause)
