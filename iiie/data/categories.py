"""Benchmark edit types -> the five IIIE categories, one documented table per benchmark.

The tables are data, not heuristics: every benchmark label is listed, and a label with
no single IIIE category maps to ``None`` (the sample then has no ground-truth category,
so category-accuracy columns skip it, while the per-category breakdown files it under
"unknown"). ``docs/EVALUATION.md`` shows the same tables; ``tests/test_loaders.py``
checks that the two agree.

Choices worth knowing:

* A change of an object's appearance, material, colour, pose or its replacement by
  another object is ``local``: the object's region is masked and repainted.
* A change of *style* or *tone* of the whole picture is ``global`` (InfEdit route).
* PIE-Bench type 0 ("random editing") mixes several kinds of edits per prompt, so it has
  no single category.
"""

from __future__ import annotations

from collections.abc import Mapping

from iiie.types import Category

L, R, B, A, G = (
    Category.LOCAL,
    Category.REMOVE,
    Category.BACKGROUND,
    Category.ADDITION,
    Category.GLOBAL,
)

#: PIE-Bench ``editing_type_id`` (string, as in mapping_file.json) -> category.
PIE_BENCH: dict[str, Category | None] = {
    "0": None,  # random editing: several edit kinds in one prompt
    "1": L,  # change object
    "2": A,  # add object
    "3": R,  # delete object
    "4": L,  # change attribute: content
    "5": L,  # change attribute: pose
    "6": L,  # change attribute: color
    "7": L,  # change attribute: material
    "8": B,  # change background
    "9": G,  # change style
}

#: PIE-Bench editing type names (for tables and reports).
PIE_BENCH_NAMES: dict[str, str] = {
    "0": "random",
    "1": "change object",
    "2": "add object",
    "3": "delete object",
    "4": "change content",
    "5": "change pose",
    "6": "change color",
    "7": "change material",
    "8": "change background",
    "9": "change style",
}

#: Emu Edit test set ``task`` -> category: the seven labels of the dataset card
#: ("background", "global", "style", "remove", "add", "local", "texture").
EMU_EDIT: dict[str, Category | None] = {
    "add": A,
    "background": B,
    "global": G,
    "local": L,
    "remove": R,
    "style": G,
    "texture": L,  # colour/texture alteration of an object: a local repaint
}

#: GEdit-Bench ``task_type`` -> category.
GEDIT_BENCH: dict[str, Category | None] = {
    "background_change": B,
    "color_alter": L,
    "material_alter": L,
    "motion_change": L,  # pose change of a subject, like PIE-Bench type 5
    "ps_human": L,  # portrait retouching of a person
    "style_change": G,
    "subject-add": A,
    "subject-remove": R,
    "subject-replace": L,
    "text_change": L,
    "tone_transfer": G,
}

TABLES: dict[str, Mapping[str, Category | None]] = {
    "pie_bench": PIE_BENCH,
    "emu_edit": EMU_EDIT,
    "gedit_bench": GEDIT_BENCH,
}


def lookup(table: Mapping[str, Category | None], label: object, benchmark: str) -> Category | None:
    """Map one benchmark label; an unknown label is an error, not a silent ``None``.

    A label that the table does not list means the data is not the benchmark version the
    table was written for, which should stop the run rather than quietly drop categories.
    """
    key = str(label).strip()
    if key not in table:
        known = ", ".join(sorted(table))
        raise ValueError(
            f"{benchmark}: unknown edit type {label!r}; the category table knows: {known}"
        )
    return table[key]
