"""Results tables: per-category and overall means, as Markdown, CSV and JSON.

Each metric column is averaged over the samples that have it (a column that does not apply
to a sample is absent, not zero). ``n`` counts the samples of a category, ``failed`` those
that stopped before being scored (their error is in ``per_sample.csv``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from iiie.data.base import REPORT_FIELDS
from iiie.metrics.columns import COLUMN_DOCS as BENCHMARK_COLUMN_DOCS
from iiie.metrics.columns import COLUMN_ORDER as BENCHMARK_COLUMN_ORDER
from iiie.metrics.headlines import HEADLINES
from iiie.pipeline.cache import atomic_write_bytes, atomic_write_json
from iiie.types import Category

#: Preferred column order (synthetic columns, then the benchmark / judge columns of
#: :mod:`iiie.metrics.columns`); other metric columns follow alphabetically.
COLUMN_ORDER = [
    "category_acc", "object_match", "mask_iou", "l1", "l2", "psnr_in", "ssim_in", "psnr_out", "ssim_out",
    *BENCHMARK_COLUMN_ORDER,
]
#: What each column means (README and the Markdown table's footer use this).
COLUMN_DOCS = {
    "method": "the editing system (conf/method/)",
    "source": "\"this run\": measured here; otherwise where a reference row comes from",
    "plan_calls": "samples sent to the planner's model in this run (0: planner=none, or every plan cached, e.g. shared with an earlier method of the sweep)",
    "mask_calls": "samples sent to the masker in this run (0: masker=none, or every mask cached)",
    "edit_calls": "samples sent to the editors",
    "n": "samples in the row",
    "failed": "samples that stopped with an error before scoring",
    "noop": "samples whose editor returned the input unchanged (nothing was edited)",
    "category_acc": "planner's category = ground truth (step 1)",
    "object_match": "planner's object phrase names the ground-truth object, word by word (step 2)",
    "mask_iou": "IoU of the edit mask with the ground-truth change region (step 3)",
    "l1": "mean |output - target| on [0,1] RGB, whole image (lower is better)",
    "l2": "mean (output - target)^2 on [0,1] RGB, whole image (lower is better)",
    "psnr_in": "PSNR (dB, capped at 100) inside the GT change region vs the target: edit fidelity",
    "ssim_in": "SSIM inside the GT change region vs the target: edit fidelity",
    "psnr_out": "PSNR (dB, capped at 100) outside the GT change region vs the source: content preservation",
    "ssim_out": "SSIM outside the GT change region vs the source: content preservation",
    **BENCHMARK_COLUMN_DOCS,
}
#: Row keys that are labels, not scores (with the benchmark labels of ``report_fields``).
NON_METRIC = {"id", "category", "plan_category", "failed_stage", "error", "error_type", "method", "noop",
              *REPORT_FIELDS}
#: The paper's Table-1 columns (MAGIC protocol), first in the paper table.
PAPER_COLUMNS = ("edit_faithfulness", "content_preservation", "overall")
STAGE_CALLS = ("plan", "mask", "edit")
ROW_ORDER = [c.value for c in Category] + ["unknown"]


def metric_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    found: set[str] = set()
    for r in rows:
        found.update(k for k, v in r.items() if k not in NON_METRIC and isinstance(v, (int, float)))
    ordered = [c for c in COLUMN_ORDER if c in found]
    return ordered + sorted(found - set(ordered))


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per category present (ground-truth category when known) plus ``overall``."""
    cols = metric_columns(rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get("category") or "unknown", []).append(r)
    order = [g for g in ROW_ORDER if g in groups] + sorted(set(groups) - set(ROW_ORDER))
    table = [_summarise(g, groups[g], cols) for g in order]
    table.append(_summarise("overall", rows, cols))
    return table


def _summarise(name: str, rows: list[dict[str, Any]], cols: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"category": name, "n": len(rows), "failed": sum(1 for r in rows if "failed_stage" in r),
                           "noop": sum(1 for r in rows if r.get("noop") is True)}
    for c in cols:
        vals = [float(r[c]) for r in rows if isinstance(r.get(c), (int, float)) and math.isfinite(float(r[c]))]
        out[c] = sum(vals) / len(vals) if vals else None
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}"
    return str(v)


def to_markdown(table: list[dict[str, Any]], title: str | None = None, key: str = "category") -> str:
    if not table:
        return "(no rows)\n"
    cols = list(table[0].keys())
    for row in table[1:]:
        cols += [k for k in row if k not in cols]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" if c == key else "---:" for c in cols) + "|")
    for row in table:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue().encode()


def headline_tables(per_sample: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Benchmarks' own aggregates (:mod:`iiie.metrics.headlines`) that these rows allow:
    ``{benchmark: {"title": ..., "rows": [...]}}``, empty for other data."""
    out = {}
    for name, (title, fn) in HEADLINES.items():
        rows = fn(per_sample)
        if rows:
            out[name] = {"title": title, "rows": rows}
    return out


def write_results(out_dir: Path, per_sample: list[dict[str, Any]], manifest: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """Write ``table.md``, ``table.csv``, ``results.json``, ``per_sample.csv``,
    ``manifest.json`` into ``out_dir``; return the aggregated table."""
    out_dir = Path(out_dir)
    table = aggregate(per_sample)
    md = to_markdown(table, title)
    legend = [f"- `{c}`: {COLUMN_DOCS[c]}" for c in table[0] if c in COLUMN_DOCS]
    headlines = headline_tables(per_sample)  # the benchmark's own aggregate first, ours below
    head_md = "".join(to_markdown(h["rows"], h["title"], key="language") + "\n" for h in headlines.values())
    atomic_write_bytes(out_dir / "table.md", (head_md + md + "\n" + "\n".join(legend) + "\n").encode())
    atomic_write_bytes(out_dir / "table.csv", _csv_bytes(table))
    atomic_write_bytes(out_dir / "per_sample.csv", _csv_bytes(per_sample))
    results = {"title": title, "table": table, "per_sample": per_sample}
    if headlines:
        results["headline"] = headlines
    atomic_write_json(out_dir / "results.json", results)
    atomic_write_json(out_dir / "manifest.json", manifest)
    return table


def collect(sweep_dir: Path, out_dir: Path | None = None) -> list[dict[str, Any]]:
    """Merge the variants of a sweep (``<sweep_dir>/<variant>/results.json``) into one
    comparison table (overall row of each variant), written as ``comparison.{md,csv,json}``.

    ``planner_calls`` etc. come from each variant's manifest; their sum over the sweep is
    printed too, so the reuse of cached stages across variants is visible.
    """
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir or sweep_dir)
    rows: list[dict[str, Any]] = []
    for res in sorted(sweep_dir.glob("*/results.json")):
        data = json.loads(res.read_text())
        overall = next(r for r in data["table"] if r["category"] == "overall")
        man_path = res.parent / "manifest.json"
        man = json.loads(man_path.read_text()) if man_path.exists() else {}
        stages = man.get("stages", {})
        row = {"variant": res.parent.name}
        row.update({k: v for k, v in overall.items() if k != "category"})
        row.update(_stage_calls(stages))
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no */results.json under {sweep_dir}: did the sweep run?")
    calls = [f"{s}_calls" for s in STAGE_CALLS]
    order = ["variant", "n", "failed", "noop"] + [c for c in metric_columns(rows) if c not in calls and c not in ("n", "failed")] + calls
    rows = [{k: r.get(k) for k in order} for r in rows]
    totals = {c: sum(r.get(c) or 0 for r in rows) for c in calls}
    md = to_markdown(rows, f"Comparison: {sweep_dir.name}", key="variant")
    md += "\nTotal backend calls over the sweep: " + ", ".join(f"{k}={v}" for k, v in totals.items()) + "\n"
    atomic_write_bytes(out_dir / "comparison.md", md.encode())
    atomic_write_bytes(out_dir / "comparison.csv", _csv_bytes(rows))
    atomic_write_json(out_dir / "comparison.json", {"rows": rows, "totals": totals})
    return rows


def _stage_calls(stages: dict[str, Any]) -> dict[str, Any]:
    """``plan_calls``, ``mask_calls``, ``edit_calls``: backend calls of one run (0 for a
    stage whose backend calls no model, e.g. ``planner=none``)."""
    return {f"{s}_calls": stages.get(s, {}).get("model_calls") for s in STAGE_CALLS}


def paper_table(
    sweep_dir: Path,
    published: Iterable[dict[str, Any]] = (),
    published_note: str = "published",
    out_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """The paper's results table from a sweep over methods: one row per method (the
    Table-1 columns first, then ``n``, ``failed``, the automatic metrics and the stage
    calls), then the ``published`` rows marked with ``published_note`` so that nobody takes
    them for ours, then a per-category table per method. Written as
    ``table.{md,csv,json}`` in ``out_dir`` (default: ``sweep_dir``)."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir or sweep_dir)
    ours: list[dict[str, Any]] = []
    per_category: dict[str, list[dict[str, Any]]] = {}
    for res in sorted(sweep_dir.glob("*/results.json")):
        data = json.loads(res.read_text())
        man_path = res.parent / "manifest.json"
        man = json.loads(man_path.read_text()) if man_path.exists() else {}
        method = str(man.get("config", {}).get("method_name") or res.parent.name)
        overall = next(r for r in data["table"] if r["category"] == "overall")
        row = {"method": method, "source": "this run"}
        row.update({c: overall.get(c) for c in PAPER_COLUMNS})
        row.update(n=overall.get("n"), failed=overall.get("failed"), noop=overall.get("noop"))
        row.update({c: overall.get(c) for c in metric_columns([overall]) if c not in PAPER_COLUMNS})
        row.update(_stage_calls(man.get("stages", {})))
        ours.append(row)
        per_category[method] = data["table"]
    if not ours:
        raise FileNotFoundError(f"no */results.json under {sweep_dir}: did the sweep run?")
    reference = [
        {"method": str(p["method"]), "source": published_note, **{c: p.get(c) for c in PAPER_COLUMNS}}
        for p in published
    ]
    cols: list[str] = []
    for r in ours + reference:
        cols += [k for k in r if k not in cols]
    rows = [{k: r.get(k) for k in cols} for r in ours + reference]
    md = to_markdown(rows, f"Results: {sweep_dir.name}", key="method")
    if reference:
        md += (f"\nRows marked \"{published_note}\" are the paper's Table 1 for reference; they "
               "were judged by people on another test set and are not comparable one-to-one.\n")
    for method, table in per_category.items():
        md += "\n" + to_markdown(table, f"{method}: per category")
    legend = [f"- `{c}`: {COLUMN_DOCS[c]}" for c in cols if c in COLUMN_DOCS]
    atomic_write_bytes(out_dir / "table.md", (md + "\n" + "\n".join(legend) + "\n").encode())
    atomic_write_bytes(out_dir / "table.csv", _csv_bytes(rows))
    atomic_write_json(out_dir / "table.json", {"rows": rows, "per_category": per_category})
    return rows
