"""Aggregation: per-category means over the samples that have each column."""

from __future__ import annotations

import json

import pytest

from iiie.pipeline.report import aggregate, collect, to_markdown, write_results


def test_aggregate_means_failures_and_missing_columns():
    rows = [
        {"id": "a", "category": "remove", "l1": 0.1, "psnr_out": 30.0},
        {"id": "b", "category": "remove", "l1": 0.3},
        {"id": "c", "category": "global", "l1": 0.5, "category_acc": 1.0},
        {"id": "d", "category": "global", "failed_stage": "plan", "error": "x"},
    ]
    table = {r["category"]: r for r in aggregate(rows)}
    assert list(table) == ["remove", "global", "overall"]
    assert table["remove"]["l1"] == pytest.approx(0.2)
    assert table["remove"]["psnr_out"] == pytest.approx(30.0)
    assert table["remove"]["category_acc"] is None
    assert table["global"]["n"] == 2 and table["global"]["failed"] == 1
    assert table["overall"]["l1"] == pytest.approx(0.3)
    assert table["overall"]["n"] == 4 and table["overall"]["failed"] == 1
    md = to_markdown(aggregate(rows))
    assert md.splitlines()[0].startswith("| category | n | failed | category_acc")


def test_collect_merges_variants(tmp_path):
    for name, l1, calls in (("v1", 0.1, 5), ("v2", 0.2, 0)):
        rows = [{"id": "a", "category": "remove", "l1": l1}]
        manifest = {"stages": {"plan": {"model_calls": calls}, "mask": {"model_calls": 1}, "edit": {"model_calls": 1}}}
        write_results(tmp_path / name, rows, manifest, name)
    rows = collect(tmp_path)
    assert [r["variant"] for r in rows] == ["v1", "v2"]
    assert [r["l1"] for r in rows] == [0.1, 0.2]
    data = json.loads((tmp_path / "comparison.json").read_text())
    assert data["totals"]["plan_calls"] == 5
    assert "plan_calls=5" in (tmp_path / "comparison.md").read_text()
    with pytest.raises(FileNotFoundError):
        collect(tmp_path / "nothing")
