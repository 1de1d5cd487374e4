"""Aggregation: per-category means over the samples that have each column."""

from __future__ import annotations

import json

import pytest

from iiie.pipeline.report import aggregate, collect, to_markdown, write_results


def test_aggregate_means_failures_and_missing_columns():
    rows = [
        {"id": "a", "category": "remove", "l1": 0.1, "psnr_out": 30.0},
        {"id": "b", "category": "remove", "l1": 0.3},
        {"id": "c", "category": "global", "l1": 0.5, "category_acc": 1.0, "noop": True},
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
    # a no-op edit is counted, never averaged as a score
    assert table["global"]["noop"] == 1 and table["remove"]["noop"] == 0 and table["overall"]["noop"] == 1
    md = to_markdown(aggregate(rows))
    assert md.splitlines()[0].startswith("| category | n | failed | noop | category_acc")


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


def test_paper_table_rows_columns_and_published_reference_rows(tmp_path):
    from iiie.pipeline.report import PAPER_COLUMNS, paper_table

    votes = {"iiie": (1.0, 0.0), "instructpix2pix": (0.0, 1.0)}
    for method, (ef_remove, ef_global) in votes.items():
        rows = [
            {"id": "a", "category": "remove", "edit_faithfulness": ef_remove, "content_preservation": 1.0,
             "overall": ef_remove, "emu_l1": 0.2},
            {"id": "b", "category": "global", "edit_faithfulness": ef_global, "content_preservation": 0.0,
             "overall": ef_global, "emu_l1": 0.4},
            {"id": "c", "category": "global", "failed_stage": "edit", "error": "x"},
        ]
        calls = 0 if method == "instructpix2pix" else 3
        manifest = {"config": {"method_name": method},
                    "stages": {"plan": {"model_calls": calls}, "mask": {"model_calls": calls}, "edit": {"model_calls": 2}}}
        write_results(tmp_path / f"method={method}", rows, manifest, method)
    published = [{"method": "IIIE", "edit_faithfulness": 0.51, "content_preservation": 0.78, "overall": 0.80}]
    rows = paper_table(tmp_path, published, "published, MAGIC, human raters")
    assert [r["method"] for r in rows] == ["iiie", "instructpix2pix", "IIIE"]
    assert list(rows[0])[:4] == ["method", "source", *PAPER_COLUMNS[:2]]
    assert list(rows[0])[4:7] == ["overall", "n", "failed"]
    ours = {r["method"]: r for r in rows}
    # means over the scored samples only; the failed one is counted, not averaged
    assert ours["iiie"]["edit_faithfulness"] == pytest.approx(0.5) and ours["iiie"]["n"] == 3
    assert ours["iiie"]["failed"] == 1 and ours["iiie"]["emu_l1"] == pytest.approx(0.3)
    assert ours["instructpix2pix"]["plan_calls"] == 0 and ours["iiie"]["plan_calls"] == 3
    assert ours["IIIE"]["source"] == "published, MAGIC, human raters" and ours["IIIE"]["n"] is None
    assert ours["iiie"]["source"] == "this run"
    md = (tmp_path / "table.md").read_text()
    assert "iiie: per category" in md and "instructpix2pix: per category" in md
    assert "published, MAGIC, human raters" in md
    assert json.loads((tmp_path / "table.json").read_text())["per_category"]["iiie"][0]["category"] == "remove"


@pytest.mark.parametrize(("predicted", "truth", "match"), [
    ("r", "horse", False),  # a letter inside the word is not the object
    ("the horse", "horse", True),
    ("horses", "horse", True),
    ("red circle", "the small red circle", True),
    ("boxes", "box", True),
    ("horse", "house", False),
    ("", "horse", False),
])
def test_object_match_is_word_level(predicted, truth, match):
    from iiie.metrics.pixel import object_matches

    assert object_matches(predicted, truth) is match


def test_methods_without_planner_or_masker_get_dashes_not_scores(tmp_path):
    """planner=none copies the true category and masker=none masks the whole image: their
    category_acc / object_match / mask_iou are not applicable (a dash), while a planner's
    and a masker's own plans and masks are scored."""
    from iiie.data.synthetic import SyntheticDataset
    from iiie.maskers.none import NoneMasker
    from iiie.maskers.oracle import OracleMasker
    from iiie.metrics.pixel import MaskIoU, PlanAccuracy
    from iiie.pipeline.report import paper_table
    from iiie.planners.none import NonePlanner
    from iiie.planners.rules import RulePlanner
    from iiie.protocols import Scored

    ds = SyntheticDataset(n=4, odd_inputs=False)
    samples = [ds.load(i) for i in ds.ids()]
    for method, planner, masker in (("iiie", RulePlanner(), OracleMasker()), ("magicbrush", NonePlanner(), NoneMasker())):
        plans = planner.plan_samples(samples) if method == "magicbrush" else [planner.plan(s.request) for s in samples]
        items = [Scored(s, p, masker.mask(s.request, p), None) for s, p in zip(samples, plans, strict=True)]
        scores = [{**a, **b} for a, b in zip(PlanAccuracy().score_batch(items), MaskIoU().score_batch(items), strict=True)]
        rows = [{"id": s.request.id, "category": s.truth.category.value, **sc} for s, sc in zip(samples, scores, strict=True)]
        write_results(tmp_path / method, rows, {"config": {"method_name": method}}, method)
    ours = {r["method"]: r for r in paper_table(tmp_path)}
    assert ours["iiie"]["category_acc"] == 1.0 and ours["iiie"]["object_match"] == 1.0
    assert 0.0 < ours["iiie"]["mask_iou"] <= 1.0
    assert all(ours["magicbrush"][c] is None for c in ("category_acc", "object_match", "mask_iou"))
    line = next(ln for ln in (tmp_path / "table.md").read_text().splitlines() if ln.startswith("| magicbrush |"))
    assert line.count("–") >= 3
    header = (tmp_path / "table.csv").read_text().splitlines()
    cells = dict(zip(header[0].split(","), next(h for h in header if h.startswith("magicbrush")).split(","), strict=True))
    assert cells["category_acc"] == cells["mask_iou"] == ""


def test_method_sweep_folders_are_the_methods_names():
    from iiie.run import variant_name

    assert variant_name(["method=tiny/iiie", "experiment=paper_tiny"], 0, method_name="iiie") == "iiie"
    assert variant_name(["method=magicbrush", "seed=1"], 3, method_name="magicbrush") == "magicbrush,seed=1"
    assert variant_name(["data.n=5", "method=tiny/iiie"], 0, method_name="iiie") == "iiie,data.n=5"
    assert variant_name(["editor.remove.method=ns"], 0, method_name="custom") == "editor.remove.method=ns"


def _two_variant_sweep(make_cfg, tmp_path):
    from iiie.gallery import write_comparison
    from iiie.run import execute

    sweep = tmp_path / "results" / "sweep"
    for name, method in (("telea", "telea"), ("ns", "ns")):
        execute(make_cfg("data.n=5", "data.odd_inputs=false", f"editor.remove.method={method}"), out=sweep / name)
    write_comparison(sweep, collect(sweep))
    return sweep


def test_a_sweep_folder_opens_on_its_comparison_page_linking_every_variant(make_cfg, tmp_path):
    import re

    sweep = _two_variant_sweep(make_cfg, tmp_path)
    page = (sweep / "index.html").read_text()
    assert page == (sweep / "comparison.html").read_text()
    links = set(re.findall(r'<a href="([^"$]+)/index.html">', page))
    assert links == {"telea", "ns"} and all((sweep / v / "index.html").is_file() for v in links)
