"""``python -m iiie.report results/<experiment>``: write the HTML pages for results that
already exist: ``index.html`` for a run's folder (its ``manifest.json`` says which config
made it, so the stage records under ``runs/`` are found again), and for a sweep's folder
one ``index.html`` per variant plus ``comparison.html`` (also written as the sweep's
``index.html``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from iiie.gallery import write_comparison, write_gallery
from iiie.pipeline.runner import Runner


def load_run(folder: Path) -> tuple[dict, dict]:
    """A run folder's ``manifest.json`` and ``results.json`` (the pages here and
    :mod:`iiie.notebook` read a run through this one function)."""
    folder = Path(folder)
    missing = [n for n in ("manifest.json", "results.json") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} holds no {' nor '.join(missing)}: not the folder of a finished run")
    return json.loads((folder / "manifest.json").read_text()), json.loads((folder / "results.json").read_text())


def find_variants(folder: Path) -> list[Path]:
    """The run folders of a sweep's folder (``<folder>/<variant>/manifest.json``)."""
    return sorted(p.parent for p in Path(folder).glob("*/manifest.json"))


def report_run(folder: Path) -> Path:
    """Rebuild one run's page from its ``manifest.json`` and ``results.json``."""
    manifest, results = load_run(folder)
    runner = Runner(OmegaConf.create(manifest["config"]), show_progress=False)
    return write_gallery(folder, runner, results["per_sample"], results["table"], results.get("title", folder.name))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args and args[0] in ("-h", "--help") else 2
    folder = Path(args[0])
    if (folder / "manifest.json").exists():
        print(f"written: {report_run(folder)}")
        return 0
    variants = find_variants(folder)
    if not variants:
        print(f"error: {folder} holds no manifest.json (a run) nor */manifest.json (a sweep)", file=sys.stderr)
        return 2
    for v in variants:
        print(f"written: {report_run(v)}")
    comparison = folder / "comparison.json"
    rows = json.loads(comparison.read_text()).get("rows", []) if comparison.exists() else []
    print(f"written: {write_comparison(folder, rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
