"""Results you can look at: ``results/<experiment>/index.html`` per run and
``comparison.html`` per sweep (static pages, Jinja2 templates, thumbnails next to them).

``write_gallery`` is called at the end of every run; ``python -m iiie.report DIR`` writes
the pages for results that already exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from iiie.gallery.cards import build_cards
from iiie.gallery.page import write_comparison, write_index

if TYPE_CHECKING:
    from iiie.pipeline.runner import Runner

__all__ = ["build_cards", "write_comparison", "write_gallery", "write_index"]


def write_gallery(out_dir: Path, runner: Runner, rows: list[dict[str, Any]], table: list[dict[str, Any]], title: str) -> Path:
    """Thumbnails, ``cards.json`` and ``index.html`` for one run's results folder."""
    cards = build_cards(runner, rows, Path(out_dir))
    return write_index(Path(out_dir), title, table, cards)
