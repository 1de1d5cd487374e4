"""The comparison table of one step's ablation sweep (``experiment=ablate_<step>[_tiny]``).

What a reader of an ablation wants is what each choice costs or buys against the paper's
default, so the table has one row per variant (the default marked), every numeric cell
followed by its difference from the default, the same per category, the variants that were
not run with the reason (``ablation.skipped`` in the experiment YAML), and the stage
counters summed over the sweep: since the variants share one run folder, a stage is
computed once per distinct config (``distinct`` keys), not once per variant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iiie.pipeline.cache import atomic_write_bytes, atomic_write_json
from iiie.pipeline.report import STAGE_CALLS, _csv_bytes, _fmt, metric_columns

#: Marker of the default row in the Markdown table.
DEFAULT_MARK = "**default**"


def variant_label(folder: str) -> str:
    """A variant's name from its folder when its config does not say (``ablation.variant``,
    set by every file of conf/ablate/<step>/): ``ablate_mask=local_box`` -> ``local_box``,
    a tiny twin's ``ablate_edit=tiny_steps_2`` -> ``steps_2``."""
    label = folder.split("=", 1)[1] if "=" in folder else folder
    return label.removeprefix("tiny_")


def _load(sweep_dir: Path) -> list[dict[str, Any]]:
    runs = []
    for res in sorted(sweep_dir.glob("*/results.json")):
        man_path = res.parent / "manifest.json"
        man = json.loads(man_path.read_text()) if man_path.exists() else {}
        named = (man.get("config", {}).get("ablation") or {}).get("variant")
        runs.append({
            "variant": str(named) if named else variant_label(res.parent.name),
            "results": json.loads(res.read_text()),
            "manifest": man,
        })
    if not runs:
        raise FileNotFoundError(f"no */results.json under {sweep_dir}: did the sweep run?")
    return runs


def _numeric(row: dict[str, Any]) -> list[str]:
    return [k for k, v in row.items() if k not in ("variant", "category", "default", "status") and isinstance(v, (int, float)) and not isinstance(v, bool)]


def with_deltas(rows: list[dict[str, Any]], default: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Add ``delta_<col>`` = row - default for every numeric column (None when either is
    missing, e.g. no default row)."""
    out = []
    for r in rows:
        d = dict(r)
        for c in _numeric(r):
            base = default.get(c) if default else None
            d[f"delta_{c}"] = (r[c] - base) if isinstance(base, (int, float)) and r[c] is not None else None
        out.append(d)
    return out


def _cell(row: dict[str, Any], c: str, is_default: bool) -> str:
    v, d = row.get(c), row.get(f"delta_{c}")
    if v is None or is_default or d is None:
        return _fmt(v)
    return f"{_fmt(v)} ({'+' if d >= 0 else ''}{_fmt(d)})"


def _markdown(rows: list[dict[str, Any]], cols: list[str], default: str, key: str = "variant") -> str:
    lines = ["| " + " | ".join([key, *cols]) + " |", "|---|" + "|".join("---:" for _ in cols) + "|"]
    for r in rows:
        is_def = r[key] == default
        name = f"{r[key]} {DEFAULT_MARK}" if is_def else str(r[key])
        lines.append("| " + " | ".join([name, *(_cell(r, c, is_def) for c in cols)]) + " |")
    return "\n".join(lines) + "\n"


def stage_totals(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stage over the sweep: distinct cache keys (configs) among the variants, and the
    summed computed / cached / model-call counters of their manifests."""
    stages: dict[str, dict[str, Any]] = {}
    for run in runs:
        man = run["manifest"]
        for name, c in man.get("stages", {}).items():
            t = stages.setdefault(name, {"stage": name, "keys": set(), "computed": 0, "cached": 0, "errors": 0, "model_calls": 0})
            key = man.get("keys", {}).get(name)
            t["keys"].update(key.values() if isinstance(key, dict) else [key])
            for k in ("computed", "cached", "errors", "model_calls"):
                t[k] += int(c.get(k) or 0)
    out = []
    for t in stages.values():
        keys = t.pop("keys") - {None}
        out.append({"stage": t.pop("stage"), "distinct_configs": len(keys), **t})
    return out


def ablation_spec(sweep_dir: Path) -> dict[str, Any] | None:
    """``default`` and ``skipped`` of the ``ablation`` node a sweep's variants ran with
    (from a manifest), or None for a sweep that is not a step's ablation."""
    for man_path in sorted(Path(sweep_dir).glob("*/manifest.json")):
        node = json.loads(man_path.read_text()).get("config", {}).get("ablation")
        if node:
            return {"default": str(node.get("default", "default")),
                    "skipped": {str(k): str(v) for k, v in (node.get("skipped") or {}).items()},
                    "title": str(Path(sweep_dir).name)}
    return None


def ablation_table(sweep_dir: Path, default: str = "default", skipped: dict[str, str] | None = None,
                   title: str | None = None, out_dir: Path | None = None) -> dict[str, Any]:
    """Write ``comparison.{md,csv,json}`` (and ``per_category.csv``) for an ablation sweep;
    return what ``comparison.json`` holds."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir or sweep_dir)
    runs = _load(sweep_dir)
    calls = [f"{s}_calls" for s in STAGE_CALLS]
    overall, per_cat = [], []
    for run in runs:
        table = run["results"]["table"]
        stages = run["manifest"].get("stages", {})
        call_cols = {f"{s}_calls": stages.get(s, {}).get("model_calls") for s in STAGE_CALLS}
        for r in table:
            row = {"variant": run["variant"], **{k: v for k, v in r.items() if k != "category"}}
            if r["category"] == "overall":
                overall.append({**row, **call_cols})
            else:
                per_cat.append({"category": r["category"], **row})
    metrics = [c for c in metric_columns(overall) if c not in calls and c not in ("n", "failed")]
    counts = ["n", "failed", "noop"]  # noop: samples returned unedited (as in every results table)
    cols = [*counts, *metrics, *calls]
    overall = [{"variant": r["variant"], "default": r["variant"] == default, **{c: r.get(c) for c in cols}} for r in overall]
    overall.sort(key=lambda r: not r["default"])  # the default first, the rest as found
    per_cat.sort(key=lambda r: r["variant"] != default)
    base = next((r for r in overall if r["default"]), None)
    overall = with_deltas(overall, base)
    cat_rows = []
    for cat in dict.fromkeys(r["category"] for r in per_cat):
        rows = [r for r in per_cat if r["category"] == cat]
        cbase = next((r for r in rows if r["variant"] == default), None)
        cat_rows += with_deltas([{"category": cat, "variant": r["variant"], **{c: r.get(c) for c in [*counts, *metrics]}} for r in rows], cbase)
    skipped = dict(skipped or {})
    totals = stage_totals(runs)

    name = title or sweep_dir.name
    md = [f"### Ablation: {name}", "",
          f"One row per variant; `{default}` {DEFAULT_MARK} is the paper's configuration. "
          "Other cells: value (difference from the default)." + ("" if base else
          f" No `{default}` row ran, so there are no differences."), "",
          _markdown(overall, cols, default)]
    if skipped:
        md += ["#### Variants not run", "", "| variant | reason |", "|---|---|",
               *[f"| {k} | {v} |" for k, v in skipped.items()], ""]
    md += ["#### Per category", ""]
    for cat in dict.fromkeys(r["category"] for r in cat_rows):
        md += [f"`{cat}`", "", _markdown([r for r in cat_rows if r["category"] == cat], [*counts, *metrics], default)]
    md += ["#### Stage calls over the sweep", "",
           "Variants share one run folder: a stage is computed once per distinct config "
           "(`distinct_configs`); every other variant finds it cached.", "",
           "| stage | distinct_configs | computed | cached | errors | model_calls |", "|---|---:|---:|---:|---:|---:|",
           *[f"| {t['stage']} | {t['distinct_configs']} | {t['computed']} | {t['cached']} | {t['errors']} | {t['model_calls']} |" for t in totals], ""]
    atomic_write_bytes(out_dir / "comparison.md", "\n".join(md).encode())
    atomic_write_bytes(out_dir / "comparison.csv", _csv_bytes(overall + [{"variant": k, "status": f"skipped: {v}"} for k, v in skipped.items()]))
    atomic_write_bytes(out_dir / "per_category.csv", _csv_bytes(cat_rows))
    data = {"step": name, "default": default, "rows": overall, "per_category": cat_rows, "skipped": skipped,
            "stages": totals, "totals": {c: sum(r.get(c) or 0 for r in overall) for c in calls}}
    atomic_write_json(out_dir / "comparison.json", data)
    return data
