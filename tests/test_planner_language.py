"""Any language in, a clear answer out: letters of every script survive normalisation,
and an instruction the English grammar cannot read is rejected naming planner=vlm."""

from __future__ import annotations

import pytest
from PIL import Image

from iiie.errors import InstructionError
from iiie.planners.rules import RulePlanner, parse_instruction
from iiie.planners.rules_language import UnsupportedLanguageError
from iiie.planners.rules_text import normalise
from iiie.types import EditRequest


@pytest.mark.parametrize(
    "text,expected",
    [("enlève le chat", "enlève le chat"), ("Ändere den Hintergrund", "ändere den hintergrund"),
     ("将背景改为森林", "将背景改为森林"), ("make the café red", "make the café red")],
)
def test_non_ascii_letters_are_kept(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize(
    "text", ["enlève le chat", "entferne die Katze", "将背景改为森林", "cambia el fondo a una playa"]
)
def test_uncovered_language_names_the_vlm_planner(text):
    with pytest.raises(UnsupportedLanguageError, match="planner=vlm") as info:
        parse_instruction(text)
    assert isinstance(info.value, InstructionError)  # a per-sample error, not a crash


@pytest.mark.parametrize(
    "text,category,obj",
    [("make the jalapeño green", "local", "jalapeño"), ("add a piñata", "addition", "piñata"),
     ("remove the café sign", "remove", "café sign")],
)
def test_english_with_accented_words_still_plans(text, category, obj):
    plan = parse_instruction(text)
    assert (plan.category.value, plan.object) == (category, obj)


def test_planner_reports_the_language_error_per_request():
    req = EditRequest("fr", Image.new("RGB", (32, 32)), "enlève le chat")
    with pytest.raises(UnsupportedLanguageError, match="English only"):
        RulePlanner().plan(req)
