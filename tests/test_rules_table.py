"""Per-row tests of the declarative pattern tables (iiie/planners/rules_table.py)."""

from __future__ import annotations

import pytest

from iiie.planners.rules import parse_instruction
from iiie.planners.rules_table import REMOVE_PATTERNS, first_match
from iiie.planners.rules_text import normalise

ROWS = [(row, sentence, obj) for row in REMOVE_PATTERNS for sentence, obj in row.examples]


def test_rows_have_unique_names_and_examples():
    names = [r.name for r in REMOVE_PATTERNS]
    assert len(names) == len(set(names))
    assert all(r.examples for r in REMOVE_PATTERNS)


@pytest.mark.parametrize("row,sentence,obj", ROWS, ids=[f"{r.name}:{s}" for r, s, _ in ROWS])
def test_row_is_the_first_to_match_its_example_and_fills_its_slots(row, sentence, obj):
    hit = first_match(normalise(sentence), REMOVE_PATTERNS)
    assert hit is not None and hit[0] is row, (hit[0].name if hit else None)
    plan = parse_instruction(sentence)
    assert (plan.category, plan.object) == (row.category, obj), plan.raw
