"""Benchmarks' own headline aggregations, beside our per-category table.

Our table averages each column over the samples of each IIIE category. Some benchmarks
publish a different aggregate; this module recomputes theirs from the per-sample rows
(which carry the labels it needs, see :func:`iiie.data.base.report_fields`), so the
headline number sits in the same table as the papers'.

GEdit-Bench (Step1X-Edit ``GEdit-Bench/calculate_statistics.py``, ``analyze_scores``):
per instruction language, each task type's mean over its samples, then the plain mean of
those task-type means (so a task type with few samples weighs as much as a large one);
once over all samples and once over the samples whose ``Intersection_exist`` is true.
``G_SC``/``G_PQ``/``G_O`` are those means of ``vie_sc``, ``vie_pq`` and ``vie_overall``
(``sqrt(SC * PQ)`` per sample, as the reference computes it before averaging).

The reference averages over all 11 task types and gives NaN when one has no samples (a
partial run); here the mean is over the task types present, and ``task_types`` says how
many that is (11 for the full benchmark, where both agree).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from iiie.data.categories import GEDIT_BENCH

#: headline column -> our per-sample column
GEDIT_COLUMNS = {"G_SC": "vie_sc", "G_PQ": "vie_pq", "G_O": "vie_overall"}
#: the reference's language order in its tables (others follow alphabetically)
LANGUAGE_ORDER = ("en", "cn")


def truthy(value: Any) -> bool:
    """``Intersection_exist`` as the reference's ``if intersection_exist:`` reads it
    (pandas parses the CSV's ``True``/``False`` back to booleans)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _number(row: dict[str, Any], column: str) -> float | None:
    v = row.get(column)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        return None
    return float(v)


def gedit_headline(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """GEdit-Bench's headline rows (``language``, ``subset``, ``G_SC``, ``G_PQ``, ``G_O``,
    ``n``, ``task_types``) from per-sample rows with ``task_type`` and ``language``;
    empty when no row is a scored GEdit-Bench sample."""
    rows = [
        r
        for r in rows
        if r.get("task_type") in GEDIT_BENCH
        and r.get("language") is not None
        and any(_number(r, c) is not None for c in GEDIT_COLUMNS.values())
    ]
    languages = sorted({str(r["language"]) for r in rows})
    languages = [x for x in LANGUAGE_ORDER if x in languages] + [
        x for x in languages if x not in LANGUAGE_ORDER
    ]
    out: list[dict[str, Any]] = []
    for lang in languages:
        in_lang = [r for r in rows if str(r["language"]) == lang]
        for subset in ("full", "intersection"):
            chosen = in_lang
            if subset == "intersection":
                chosen = [r for r in in_lang if truthy(r.get("intersection_exist"))]
            by_task: dict[str, list[dict[str, Any]]] = {}
            for r in chosen:
                by_task.setdefault(str(r["task_type"]), []).append(r)
            row: dict[str, Any] = {"language": lang, "subset": subset}
            for head, column in GEDIT_COLUMNS.items():
                task_means = [
                    m
                    for m in (
                        _mean([v for v in (_number(r, column) for r in group) if v is not None])
                        for group in by_task.values()
                    )
                    if m is not None
                ]
                row[head] = _mean(task_means)
            row["n"] = len(chosen)
            row["task_types"] = len(by_task)
            out.append(row)
    return out


#: benchmark name -> (title, headline function); :mod:`iiie.pipeline.report` writes each
#: non-empty one under the per-category table.
HEADLINES = {
    "gedit_bench": (
        "GEdit-Bench headline (per language: mean over task types of each task type's mean)",
        gedit_headline,
    ),
}
