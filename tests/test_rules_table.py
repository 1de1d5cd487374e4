"""Per-row tests of the declarative pattern tables (iiie/planners/rules_table*.py).

Each row's examples must reach that row first in its table, and the planner must answer
with the row's category and object from the frame the table backs; a declining row's
examples name the later frame that answers instead.
"""

from __future__ import annotations

import pytest

from iiie.planners.rules import parse_instruction
from iiie.planners.rules_table import DECLINE, REMOVE_PATTERNS, Decision, Pattern, first_match
from iiie.planners.rules_tables_add import ADD_DECISIONS, ADD_PATTERNS, FILL_PATTERNS
from iiie.planners.rules_tables_change import (
    BARE_PATTERNS,
    CHANGE_DECISIONS,
    CHANGE_PATTERNS,
    SEE_PATTERNS,
)
from iiie.planners.rules_tables_global import (
    ADJUST_PATTERNS,
    GLOBAL_PHRASE_PATTERNS,
    adjust_reading,
)
from iiie.planners.rules_tables_remove import REMOVE_DECISIONS
from iiie.planners.rules_tables_statement import ACTION_DECISIONS, BE_DECISIONS, HAVE_DECISIONS
from iiie.planners.rules_text import normalise
from iiie.types import Category

#: frame name (the planner's "frame:<name>" cue) -> its table
TABLES = {
    "global_phrase": GLOBAL_PHRASE_PATTERNS,
    "remove": REMOVE_PATTERNS,
    "see": SEE_PATTERNS,
    "adjust": ADJUST_PATTERNS,
    "fill": FILL_PATTERNS,
    "add": ADD_PATTERNS,
    "change": CHANGE_PATTERNS,
    "bare": BARE_PATTERNS,
}
#: frames whose rows read the clause through a head reading first
READINGS = {"adjust": adjust_reading}


def _examples(tables, third):
    """One case per example of every row: (table name, row, sentence, object, third), the
    third field being the example's own or ``third(row)`` when it gives none."""
    return [
        (name, row, ex[0], ex[1], ex[2] if len(ex) > 2 else third(row))
        for name, table in tables.items()
        for row in table
        for ex in row.examples
    ]


def _assert_unique_names(table):
    names = [r.name for r in table]
    assert len(names) == len(set(names)), names


ROWS = _examples(TABLES, lambda row: row.category)


@pytest.mark.parametrize("frame", TABLES)
def test_rows_have_unique_names_and_examples(frame):
    _assert_unique_names(TABLES[frame])
    assert all(r.examples for r in TABLES[frame])


@pytest.mark.parametrize(
    "frame,row,sentence,obj,category", ROWS, ids=[f"{f}:{r.name}:{s}" for f, r, s, *_ in ROWS]
)
def test_row_is_the_first_to_match_its_example_and_fills_its_slots(
    frame, row, sentence, obj, category
):
    hit = first_match(READINGS.get(frame, str)(normalise(sentence)), TABLES[frame])
    assert hit is not None and hit[0] is row, (hit[0].name if hit else None)
    plan = parse_instruction(sentence)
    if row.action == DECLINE:  # the example names the frame that answers instead
        assert plan.raw["cues"][0] == f"frame:{obj}" != f"frame:{frame}", plan.raw
        return
    assert plan.raw["cues"][0] == f"frame:{frame}", plan.raw
    assert (plan.category, plan.object) == (category, obj), plan.raw


#: decision tables -> their rows' examples
DECISIONS = {
    "remove": REMOVE_DECISIONS,
    "add": ADD_DECISIONS,
    "change": CHANGE_DECISIONS,
    "be": BE_DECISIONS,
    "have": HAVE_DECISIONS,
    "action": ACTION_DECISIONS,
}
DECIDED = _examples(DECISIONS, lambda row: None)


@pytest.mark.parametrize("name", DECISIONS)
def test_decision_rows_have_unique_names_and_the_last_always_holds(name):
    _assert_unique_names(DECISIONS[name])
    assert DECISIONS[name][-1].when(None)


@pytest.mark.parametrize(
    "name,row,sentence,obj,cue", DECIDED, ids=[f"{n}:{r.name}:{s}" for n, r, s, *_ in DECIDED]
)
def test_decision_row_decides_its_example(name, row, sentence, obj, cue):
    plan = parse_instruction(sentence)
    assert (plan.raw["frame"], plan.category, plan.object) == (row.frame, row.category, obj), (
        plan.raw
    )
    if cue:  # rows that share a frame are told apart by the cue only they emit
        assert cue in plan.raw["cues"], plan.raw


def test_adjust_reading_maps_turn_up_and_drops_degree_words():
    assert adjust_reading("turn up the contrast a lot") == "increase the contrast"
    assert adjust_reading("sharpen") == "sharpen "
    assert adjust_reading("paint the wall") is None


def test_a_row_without_category_must_decline_and_every_row_needs_examples():
    with pytest.raises(ValueError, match="category"):
        Pattern("x", r"^x$", None, (("x", "x"),))
    with pytest.raises(ValueError, match="examples"):
        Pattern("x", r"^x$", Category.LOCAL, ())
    with pytest.raises(ValueError, match="no group 'obj'"):
        Pattern("x", r"^x$", Category.LOCAL, (("x", "x"),))
    with pytest.raises(ValueError, match="no examples"):
        Decision("x", Category.LOCAL, "x", bool, dict, ())
