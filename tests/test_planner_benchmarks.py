"""Rule-planner accuracy on benchmark instructions it was not tuned on.

Two kinds of data:

* ``tests/data/dev_written.jsonl``: sentences written for this issue in the phrasings the
  hidden benchmark set is known to miss (scene changes, style transfer, tone, time of day,
  weather) plus controls of the other classes; the grammar is developed against it.
* benchmark splits built from ComplexBench-Edit's public instructions (its edit types
  mapped like PIE-Bench's: colour/material/pose/content/text/change object -> local, add
  -> addition, delete -> remove, change background -> background, change style -> global):
  ``dev_benchmarks.jsonl`` (develop against it) and ``untouched_benchmarks.jsonl`` (scored
  once before and once after a change, never fixed against), in
  ``tests/data/planner_benchmarks/`` with their source, licence and ``build_splits.py``.

Measure: ``python -m iiie.plan input=FILE output=/tmp/out.jsonl planner=rules``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from iiie.planners.rules import parse_instruction

DATA = Path(__file__).parent / "data"


BENCHMARKS = DATA / "planner_benchmarks"


def _load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _accuracy(rows: list[dict]) -> tuple[float, dict[str, float]]:
    total, correct = Counter(), Counter()
    for row in rows:
        total[row["category"]] += 1
        correct[row["category"]] += parse_instruction(row["instruction"]).category.value == row["category"]
    return sum(correct.values()) / sum(total.values()), {c: correct[c] / total[c] for c in total}


def test_dev_written_is_well_formed():
    rows = _load(DATA / "dev_written.jsonl")
    assert len({r["id"] for r in rows}) == len(rows) >= 100
    assert set(Counter(r["category"] for r in rows)) == {"local", "remove", "background", "addition", "global"}


def test_dev_written_accuracy():
    """First-run scores, each before the fixes it prompted: ``dw*`` (100 lines, before
    any change of this issue) 0.88 overall, background 0.73, global 0.90 (the kinds of
    miss the hidden set showed); ``dw2_*`` (60 lines, written after the first fixes)
    0.83, background 0.65, global 0.88. Both are developed against now: a guard."""
    overall, per_class = _accuracy(_load(DATA / "dev_written.jsonl"))
    assert overall >= 0.95 and min(per_class.values()) >= 0.9, per_class


@pytest.mark.parametrize("name", ["dev_benchmarks.jsonl", "untouched_benchmarks.jsonl"])
def test_benchmark_split_meets_issue_bar(name):
    """The issue's bar (overall >= 0.88, every class >= 0.80) on benchmark splits.

    ``untouched_benchmarks.jsonl`` scored 0.993 before and after this issue's changes
    (background 0.957, every other class 1.00); ComplexBench-Edit's phrasing is plainer
    than the hidden set's, so this is a floor check, not an estimate of the hidden score."""
    overall, per_class = _accuracy(_load(BENCHMARKS / name))
    assert overall >= 0.88 and min(per_class.values()) >= 0.80, per_class


def test_plans_do_not_depend_on_the_hash_seed():
    """Vocabulary lookups once iterated a set, so a scene cue (and what follows from it)
    changed with ``PYTHONHASHSEED``; two seeds must give byte-identical plans."""
    import subprocess
    import sys

    code = (
        "import json,sys; from iiie.planners.rules import parse_instruction\n"
        "for f in sys.argv[1:]:\n"
        "    for line in open(f):\n"
        "        print(json.dumps(parse_instruction(json.loads(line)['instruction']).to_dict(), sort_keys=True, default=str))\n"
    )
    files = [str(DATA / "dev_written.jsonl"), *map(str, sorted(BENCHMARKS.glob("*.jsonl")))]
    outs = [
        subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    ]
    assert outs[0].count("\n") > 800 and outs[0] == outs[1]
