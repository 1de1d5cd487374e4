"""Open a ``results/<experiment>`` folder from a notebook: tables as pandas DataFrames, one
record per sample, and a picture grid.

    from iiie.notebook import open_results
    res = open_results("results/smoke")
    res.table                  # per category + overall, as table.md
    res.grid(n=8, category="remove", sort="-l1")

Everything comes from the files a run writes (``results.json``, ``manifest.json``,
``cards.json`` and its thumbnails, via :mod:`iiie.report` and :mod:`iiie.gallery`), so what
the notebook shows is what the table and ``index.html`` were made from, and opening results
never loads a model or recomputes a stage. pandas and matplotlib come with the dev extras
(``make notebook`` installs them); they are imported only when used.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iiie.logs import LOG_NAME
from iiie.pipeline.report import metric_columns
from iiie.report import find_variants, load_run, report_run

#: The pictures of a grid row, left to right (keys of a card's ``images``).
GRID_COLUMNS = ("source", "mask", "result", "target")
LABELS = ("category", "n", "failed", "noop")


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # a base install has no pandas
        raise ImportError("iiie.notebook needs pandas: `make notebook` or "
                          "`pip install -c requirements/constraints.txt -e '.[dev]'`") from exc
    return pd


@dataclass(frozen=True)
class SampleRecord:
    """One sample as the run left it: its plan, scores, failure and picture paths.

    ``images`` are the gallery's thumbnails (source, mask drawn over the source, result,
    target; absolute paths); ``files`` the full-size mask and result PNGs in the stage
    cache under ``runs/``; ``row`` the sample's row of ``per_sample.csv``."""

    id: str
    category: str
    instruction: str
    plan: dict[str, Any] | None
    scores: dict[str, Any]
    failed: dict[str, Any] | None
    images: dict[str, Path]
    files: dict[str, Path]
    row: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # verify rounds, judge votes

    def score(self, column: str) -> float | None:
        v = self.scores.get(column, self.row.get(column))
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class RunResults:
    """One run's folder. ``table`` (per category + overall), ``per_category``,
    ``overall``, ``samples`` (DataFrames), ``records`` (:class:`SampleRecord`), ``log``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.manifest, self._results = load_run(self.folder)
        self.title: str = self._results.get("title", self.folder.name)
        cards_file = self.folder / "cards.json"
        if not cards_file.is_file():  # a run from before the gallery: build its cards now
            report_run(self.folder)
        cards = json.loads(cards_file.read_text())
        rows = {str(r["id"]): r for r in self._results.get("per_sample", [])}
        self.records: list[SampleRecord] = [self._record(c, rows.get(str(c["id"]), {})) for c in cards]

    def _record(self, card: dict[str, Any], row: dict[str, Any]) -> SampleRecord:
        def paths(d: dict[str, str]) -> dict[str, Path]:
            return {k: (self.folder / v).resolve() for k, v in (d or {}).items()}

        return SampleRecord(
            id=str(card["id"]), category=str(card.get("category") or "unknown"),
            instruction=card.get("instruction", ""), plan=card.get("plan"), scores=dict(card.get("scores") or {}),
            failed=card.get("failed"), images=paths(card.get("images")), files=paths(card.get("links")), row=row,
            extra={k: card[k] for k in ("verify", "judge", "provenance") if k in card},
        )

    # ---------------------------------------------------------------- tables

    @property
    def columns(self) -> list[str]:
        """The score columns of this run, in the table's order."""
        return metric_columns(self._results.get("per_sample", []))

    @property
    def table(self):
        """The results table (``table.md``): one row per category, then ``overall``."""
        pd = _pandas()
        rows = self._results["table"]
        order = [c for c in LABELS if any(c in r for r in rows)]
        order += [c for c in metric_columns(rows) if c not in order]
        return pd.DataFrame(rows, columns=order).set_index("category")

    @property
    def per_category(self):
        """The table without its ``overall`` row."""
        t = self.table
        return t.drop(index="overall", errors="ignore")

    @property
    def overall(self):
        return self.table.loc["overall"]

    @property
    def samples(self):
        """``per_sample.csv`` as a DataFrame indexed by sample id (scores, failed stage,
        error), for filtering and sorting with pandas."""
        pd = _pandas()
        return pd.DataFrame(self._results.get("per_sample", [])).set_index("id")

    @property
    def log(self) -> str:
        """``run.log``: one line per stage (computed / cached / failed, seconds)."""
        path = self.folder / LOG_NAME
        return path.read_text() if path.is_file() else ""

    # ---------------------------------------------------------------- pictures

    def select(self, category: str | None = None, failed: bool | None = None, sort: str | None = None) -> list[SampleRecord]:
        """Records filtered by ground-truth ``category`` and by ``failed`` (True: only
        failed samples, False: only scored ones), ordered by a score column: ``sort="l1"``
        ascending, ``"-l1"`` descending (as the gallery's ``?sort=``); samples without
        that score go last."""
        recs = self.records
        if category is not None:
            known = sorted({r.category for r in recs})
            if category not in known:
                raise ValueError(f"category {category!r} is not in this run; its categories: {', '.join(known)}")
            recs = [r for r in recs if r.category == category]
        if failed is not None:
            recs = [r for r in recs if (r.failed is not None) == bool(failed)]
        if sort:
            col, desc = sort.lstrip("-"), sort.startswith("-")
            if col not in self.columns:
                raise ValueError(f"sort={sort!r}: no score column {col!r}; columns: {', '.join(self.columns)}")
            have = [r for r in recs if r.score(col) is not None]
            have.sort(key=lambda r: r.score(col), reverse=desc)
            recs = have + [r for r in recs if r.score(col) is None]
        return recs

    def grid(self, n: int = 8, category: str | None = None, failed: bool | None = None, sort: str | None = None,
             columns: tuple[str, ...] = GRID_COLUMNS):
        """A matplotlib figure: one row per sample (the first ``n`` of :meth:`select`),
        ``source | mask | result | target``; a picture the sample lacks (a failed step, no
        target) is an empty cell saying so. It displays itself as a notebook cell's value
        and is not kept by pyplot (no duplicate, no figure pile-up in a loop)."""
        if int(n) < 1:
            raise ValueError(f"n={n}: show at least one sample")
        picked = self.select(category, failed, sort)[: int(n)]
        if not picked:
            raise ValueError(f"no sample of {self.folder} matches category={category!r}, failed={failed!r}")
        fig = _new_figure((2.3 * len(columns), 2.6 * len(picked)))
        axes = fig.subplots(len(picked), len(columns), squeeze=False)
        key = sort.lstrip("-") if sort else None
        for i, rec in enumerate(picked):
            for j, name in enumerate(columns):
                ax = axes[i][j]
                ax.set_xticks([])
                ax.set_yticks([])
                path = rec.images.get(name)
                if path is not None and path.is_file():
                    ax.imshow(_load(path))
                else:
                    ax.text(0.5, 0.5, f"no {name}", ha="center", va="center", color="0.5", transform=ax.transAxes)
                if i == 0:
                    ax.set_title(name, fontsize=10, fontweight="bold")
            label = f"{rec.id} [{rec.category}]"
            if rec.failed:
                label += f"\nfailed at {rec.failed.get('stage')}: {rec.failed.get('type') or 'error'}"
            elif key and rec.score(key) is not None:
                label += f"\n{key}={rec.score(key):.4g}"
            axes[i][0].set_ylabel(label, fontsize=8)
            axes[i][1].set_xlabel(textwrap.shorten(rec.instruction or "(no instruction)", 90), fontsize=7, loc="left")
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        failed = sum(r.failed is not None for r in self.records)
        return f"<RunResults {self.title!r}: {len(self.records)} samples, {failed} failed, {self.folder}>"


class SweepResults:
    """A sweep's folder (``make ablate``, the paper experiment): its comparison table and
    one :class:`RunResults` per variant (``variant(name)``)."""

    def __init__(self, folder: Path, variants: list[Path]) -> None:
        self.folder = Path(folder)
        self.variants = [v.name for v in variants]

    def variant(self, name: str) -> RunResults:
        if name not in self.variants:
            raise KeyError(f"{name!r} is not a variant of {self.folder}; variants: {', '.join(self.variants)}")
        return RunResults(self.folder / name)

    @property
    def table(self):
        """``table.json`` (one row per method) or else ``comparison.json`` (per variant)."""
        pd = _pandas()
        for name in ("table", "comparison"):
            if (self.folder / f"{name}.json").is_file():
                rows = json.loads((self.folder / f"{name}.json").read_text()).get("rows", [])
                frame = pd.DataFrame(rows)
                header = self.folder / f"{name}.csv"  # the JSON's keys are sorted; the CSV has the table's order
                if header.is_file():
                    order = header.read_text().splitlines()[0].split(",")
                    frame = frame[[c for c in order if c in frame] + [c for c in frame if c not in order]]
                return frame
        raise FileNotFoundError(f"{self.folder} has no table.json nor comparison.json (the sweep did not finish)")

    @property
    def per_category(self):
        """Every variant's per-category table, stacked, with a ``variant`` column."""
        pd = _pandas()
        parts = [self.variant(v).per_category.reset_index().assign(variant=v) for v in self.variants]
        return pd.concat(parts, ignore_index=True)

    def grid(self, *args, **kwargs):
        raise TypeError(f"{self.folder} is a sweep: pick a variant, e.g. "
                        f".variant({self.variants[0]!r}).grid(...); variants: {', '.join(self.variants)}")

    def __repr__(self) -> str:
        return f"<SweepResults {self.folder}: {len(self.variants)} variants>"


def open_results(path: str | Path) -> RunResults | SweepResults:
    """Open a run's folder (``results/smoke``) or a sweep's (``results/ablate_smoke``).

    A folder without a finished run is a clear error: it says whether the folder is
    missing, or what the run's ``run.log`` recorded when it stopped."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist: run the experiment first "
                                f"(`make reproduce EXPERIMENT={folder.name}`)")
    if (folder / "results.json").is_file():
        return RunResults(folder)
    variants = find_variants(folder)
    if variants:
        return SweepResults(folder, variants)
    log = folder / LOG_NAME
    stopped = [ln for ln in log.read_text().splitlines() if " ERROR " in ln] if log.is_file() else []
    why = f"; its run.log says: {stopped[-1]}" if stopped else ""
    raise FileNotFoundError(f"{folder} holds no finished run (no results.json) nor a sweep's "
                            f"*/manifest.json{why}")


def _load(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def _new_figure(size: tuple[float, float]):
    """A figure outside pyplot's registry; in IPython, Figures get a PNG repr if no
    backend has given them one, so the value of a cell shows as a picture."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("grid() needs matplotlib: `make notebook` or "
                          "`pip install -c requirements/constraints.txt -e '.[dev]'`") from exc
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is not None and Figure not in shell.display_formatter.formatters["image/png"].type_printers:
        select_figure_formats(shell, {"png"})
    return Figure(figsize=size)
