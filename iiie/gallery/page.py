"""Write ``index.html`` (one run) and ``comparison.html`` (a sweep) from Jinja2 templates.

The pages are static files that open from disk: the cards are embedded as JSON and drawn
by a small script page by page (``PAGE_SIZE`` per page), so a 5,000-sample run stays fast;
filters and sort order live in the URL query (``?category=remove&status=failed&sort=l1``),
so a filtered view can be linked and is what the browser test opens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from iiie.pipeline.cache import atomic_write_bytes

PAGE_SIZE = 50

_env = Environment(loader=PackageLoader("iiie.gallery", "templates"), autoescape=select_autoescape(["html"]))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "–" if v is None else str(v)


_env.filters["fmt"] = _fmt


def _json(obj: Any) -> str:
    # safe inside <script>: no "</" can close the tag early
    return json.dumps(obj, ensure_ascii=False, default=str).replace("</", "<\\/")


def write_index(out_dir: Path, title: str, table: list[dict[str, Any]], cards: list[dict[str, Any]]) -> Path:
    """``out_dir/index.html`` (and ``cards.json``, which the comparison page reads)."""
    out_dir = Path(out_dir)
    columns = list(table[0]) if table else []
    score_cols = sorted({k for c in cards for k in c.get("scores", {})})
    html = _env.get_template("index.html.j2").render(
        title=title, table=table, columns=columns, cards_json=_json(cards), score_cols=score_cols,
        categories=sorted({c["category"] for c in cards}), page_size=PAGE_SIZE,
    )
    atomic_write_bytes(out_dir / "cards.json", json.dumps(cards, ensure_ascii=False, default=str).encode())
    atomic_write_bytes(out_dir / "index.html", html.encode())
    return out_dir / "index.html"


def write_comparison(sweep_dir: Path, rows: list[dict[str, Any]], key: str = "variant", title: str | None = None) -> Path:
    """``sweep_dir/comparison.html``: the comparison table on top, then one row per sample
    with every variant's result and scores side by side (from each ``<variant>/cards.json``),
    each variant's name linking to its own ``<variant>/index.html``.

    The same page is the sweep folder's ``index.html``, so that a sweep's folder opens like
    a run's (``results/<experiment>/index.html``) on the page that leads to every variant."""
    sweep_dir = Path(sweep_dir)
    variants: dict[str, list[dict[str, Any]]] = {}
    for cards_file in sorted(sweep_dir.glob("*/cards.json")):
        prefix = cards_file.parent.name + "/"
        cards = json.loads(cards_file.read_text())
        for c in cards:  # paths relative to the sweep folder
            c["images"] = {k: prefix + v for k, v in c.get("images", {}).items()}
            c["links"] = {k: prefix + v for k, v in c.get("links", {}).items()}
        variants[cards_file.parent.name] = cards
    names = list(variants)
    by_id: dict[str, dict[str, Any]] = {}
    for name, cards in variants.items():
        for c in cards:
            entry = by_id.setdefault(c["id"], {"id": c["id"], "instruction": c.get("instruction", ""),
                                               "category": c["category"], "source": c["images"].get("source"),
                                               "variants": {}})
            entry["variants"][name] = {k: c.get(k) for k in ("images", "links", "scores", "failed", "plan", "verify")}
    samples = [by_id[k] for k in sorted(by_id)]
    columns = list(rows[0]) if rows else []
    score_cols = sorted({k for s in samples for v in s["variants"].values() for k in (v.get("scores") or {})})
    html = _env.get_template("comparison.html.j2").render(
        title=title or f"Comparison: {sweep_dir.name}", table=rows, columns=columns, key=key, variants=names,
        samples_json=_json(samples), score_cols=score_cols, page_size=PAGE_SIZE,
        categories=sorted({s["category"] for s in samples}),
    )
    atomic_write_bytes(sweep_dir / "comparison.html", html.encode())
    atomic_write_bytes(sweep_dir / "index.html", html.encode())
    return sweep_dir / "comparison.html"
