"""``python -m iiie.plan input=IN.jsonl output=OUT.jsonl [planner=...]``: steps 1-2 only.

Writes one output line per input line (the input fields plus the :class:`Plan` fields, or
an ``error``), and when inputs carry ``category`` prints per-class and overall accuracy
and the confusion matrix, so planners can be compared on the same file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue
from PIL import Image
from tqdm.auto import tqdm

from iiie.batching import chunks, guarded_batch
from iiie.errors import IIIEError
from iiie.imageio import load_image
from iiie.logs import progress_enabled
from iiie.pipeline.cache import atomic_write_bytes
from iiie.pipeline.runner import build
from iiie.types import Category, EditRequest


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSONL file; a malformed line becomes an entry with an ``error``."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("line is not a JSON object")
            except ValueError as exc:
                rows.append({"id": f"line{n}", "error": f"line {n}: invalid JSON ({exc})"})
                continue
            obj.setdefault("id", f"line{n}")
            obj["id"] = str(obj["id"])
            rows.append(obj)
    return rows


def make_request(row: dict[str, Any], base: Path, placeholder: tuple[int, int]) -> EditRequest:
    """Build the request of one line; the image path is absolute or relative to ``base``."""
    if "instruction" not in row:
        raise IIIEError("line has no 'instruction' field")
    meta: dict[str, Any] = {}
    if row.get("image"):
        p = Path(row["image"])
        image = load_image(p if p.is_absolute() else base / p)
    else:
        image = Image.new("RGB", tuple(placeholder), (128, 128, 128))
        meta["placeholder_image"] = True
    return EditRequest(row["id"], image, str(row["instruction"] or ""), meta)


def accuracy_report(rows: list[dict[str, Any]]) -> str:
    """Per-class / overall accuracy and a confusion matrix (rows = truth)."""
    labelled = [r for r in rows if r.get("gold_category")]
    if not labelled:
        return ""
    cats = [c.value for c in Category]
    conf = {t: {p: 0 for p in cats + ["error"]} for t in cats}
    unknown = sorted({r["gold_category"] for r in labelled if r["gold_category"] not in conf})
    for r in labelled:
        t = r["gold_category"]
        if t not in conf:
            continue
        conf[t][r.get("category") if r.get("category") in cats else "error"] += 1
    lines = ["", "category accuracy (rows: truth, columns: predicted)", ""]
    lines.append("| truth | " + " | ".join(cats + ["error"]) + " | n | accuracy |")
    lines.append("|---" * (len(cats) + 4) + "|")
    correct = total = 0
    for t in cats:
        n = sum(conf[t].values())
        if n == 0:
            continue
        ok = conf[t][t]
        correct, total = correct + ok, total + n
        lines.append(f"| {t} | " + " | ".join(str(conf[t][p]) for p in cats + ["error"]) + f" | {n} | {ok / n:.3f} |")
    lines.append(f"\noverall accuracy: {correct / max(total, 1):.3f} ({correct}/{total})")
    if unknown:
        lines.append(f"ignored lines whose category is not one of {', '.join(cats)}: {', '.join(unknown)}")
    return "\n".join(lines)


def run_plan_cli(cfg: DictConfig) -> list[dict[str, Any]]:
    src, dst = Path(cfg.input), Path(cfg.output)
    if not src.is_file():
        raise IIIEError(f"input file not found: {src}")
    rows = read_jsonl(src)
    planner = build("planner", cfg.planner)
    pending: list[tuple[dict, EditRequest]] = []
    for row in rows:
        if "category" in row:
            row["gold_category"] = str(row.pop("category")).strip().lower()
        if "error" in row:
            continue
        try:
            pending.append((row, make_request(row, src.parent, tuple(cfg.placeholder_size))))
        except (IIIEError, OSError) as exc:
            row["error"] = str(exc)

    def ok(item, plan, _seconds):
        item[0].update(plan.to_dict())

    def err(item, exc):
        item[0]["error"] = f"{type(exc).__name__}: {exc}"

    bar = tqdm(total=len(pending), desc="plan", disable=not progress_enabled(cfg.runtime.get("progress", "auto")))
    for chunk in chunks(pending, cfg.runtime.plan_batch_size):
        guarded_batch(lambda items: planner.plan_batch([r for _, r in items]), list(chunk), ok, err)
        bar.update(len(chunk))
    bar.close()
    text = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    atomic_write_bytes(dst, text.encode())
    errors = sum("error" in r for r in rows)
    print(f"planned {len(rows) - errors} of {len(rows)} lines with planner={getattr(planner, 'name', '?')}; "
          f"{errors} errors; wrote {dst}")
    report = accuracy_report(rows)
    if report:
        print(report)
    return rows


@hydra.main(version_base="1.3", config_path="../conf", config_name="plan")
def main(cfg: DictConfig) -> None:
    try:
        run_plan_cli(cfg)
    except MissingMandatoryValue as exc:
        print(f"error: {exc.full_key} is required\n"
              "usage: python -m iiie.plan input=IN.jsonl output=OUT.jsonl [planner=rules|vlm]", file=sys.stderr)
        sys.exit(2)
    except IIIEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
