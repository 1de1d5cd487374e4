"""iiie.notebook.open_results on a tiny smoke run: tables, records with real picture paths,
the grid; clear errors for folders without a run; notebook 03 is clean and uses it (it is
executed by tests/test_notebooks.py)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import matplotlib
import nbformat
import pytest

from iiie.notebook import RunResults, SweepResults, open_results
from iiie.run import execute
from tests.conftest import compose_config

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("nb")
    cfg = compose_config([f"paths.runs={tmp / 'runs'}", f"paths.results={tmp / 'results'}",
                          f"paths.cache={tmp / 'cache'}", "runtime.progress=false",
                          "data.n=5", "data.odd_inputs=true"])  # 5 + 4 odd inputs, 2 of them fail
    execute(cfg)
    return tmp / "results" / "smoke"


def test_tables_and_records(run):
    res = open_results(run)
    assert isinstance(res, RunResults)
    table = res.table
    assert table.index[-1] == "overall" and "overall" not in res.per_category.index
    assert int(table.loc["overall", "n"]) == len(res.records) == len(res.samples) == 9
    assert int(res.per_category["n"].sum()) == 9
    assert res.overall["failed"] == sum(r.failed is not None for r in res.records) == 2
    assert list(table.columns[:3]) == ["n", "failed", "noop"] and "l1" in table.columns
    scored = [r for r in res.records if r.failed is None]
    assert scored and all(r.plan and r.score("category_acc") is not None for r in scored)
    for r in scored:
        for name in ("source", "mask", "result"):
            assert r.images[name].is_file(), (r.id, name)
        assert r.files["result"].is_file() and r.files["result"].suffix == ".png"
    assert "stage edit:" in res.log


def test_select_and_grid(run):
    res = open_results(run)
    worst = [r.score("l1") for r in res.select(sort="-l1") if r.score("l1") is not None]
    assert worst == sorted(worst, reverse=True) and len(worst) == sum(r.score("l1") is not None for r in res.records) > 3
    assert {r.category for r in res.select(category="remove")} == {"remove"}
    assert all(r.failed for r in res.select(failed=True))
    fig = res.grid(n=3, sort="l1")
    assert len(fig.axes) == 3 * 4
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:4] == b"\x89PNG"
    assert len(res.grid(n=8, failed=True).axes) == 2 * 4  # failed samples: cells say what is missing
    with pytest.raises(ValueError, match="its categories"):
        res.grid(category="nope")
    with pytest.raises(ValueError, match="no score column"):
        res.grid(sort="-nope")


def test_folders_without_a_run(run, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_results(tmp_path / "missing")
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    (stopped / "run.log").write_text("2026-01-01 INFO iiie: run x\n2026-01-01 ERROR iiie: run stopped: Boom: no\n")
    with pytest.raises(FileNotFoundError, match="run stopped: Boom"):
        open_results(stopped)
    sweep = tmp_path / "sweep"
    shutil.copytree(run, sweep / "v1")
    res = open_results(sweep)
    assert isinstance(res, SweepResults) and res.variants == ["v1"]
    assert len(res.variant("v1").records) == 9
    with pytest.raises(TypeError, match="pick a variant"):
        res.grid()
    with pytest.raises(FileNotFoundError, match="did not finish"):
        res.table  # noqa: B018 - no comparison.json yet


def test_notebook_03_is_clean_and_uses_the_helper():
    nb = nbformat.read(REPO / "notebooks" / "03_looking_at_results.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)  # committed with outputs cleared
    assert "from iiie.notebook import open_results" in code[0].source
