"""Score a folder of already-edited images against a benchmark, without running the pipeline.

::

    python -m iiie.score_folder edited=DIR data=pie_bench metrics=pie_bench \\
        [pattern='{image_path}'] [out=results/scored/NAME] [any Hydra override]

Use it to put another method's published outputs, or an older run's images, in the same
table as ours: the benchmark loader and metric code are exactly those of ``iiie.run``.
Re-scoring a method whose numbers a paper printed is also the end-to-end check that our
metric implementations match the published ones on real data.

``pattern`` maps a sample to its edited file, relative to ``edited``: a ``str.format``
template over ``id`` and the sample's string ground-truth extras (PIE-Bench:
``{image_path}``; GEdit-Bench: ``fullset/{task_type}/{language}/{key}.png``); default
``{id}.png``. A few benchmarks name outputs by a rule no template expresses:
``pattern=magicbrush`` follows MagicBrush's ``image_eval.py`` (``<id>/<id>_1.png`` for
turn 1, ``<id>_inde_<t>.png`` later, ``<id>_iter_<t>.png`` for the final turn; see
:mod:`iiie.metrics.output_names`).
A missing or unreadable file is that sample's recorded error, with ``failed_stage`` =
``edit`` (the edited file: missing, unreadable, or ``pattern`` names a field the sample
lacks) or ``load`` (the benchmark's own sample: its source image or mask). There is no
plan and no predicted mask here, so metrics that score the pipeline's plan or mask
(``metrics=synthetic``'s ``plan`` and ``mask`` entries: ``category_acc``,
``object_match``, ``mask_iou``) are left out rather than filled with made-up values; the
manifest lists them under ``skipped_metrics``. The results are written like
a run's (``table.md``, ``per_sample.csv``, ``results.json``, ``manifest.json``), plus
``judge_details.json`` when a VLM judge is among the metrics. The default experiment's
synthetic-only data keys are not applied (``~experiment``) unless ``experiment=`` is given.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from iiie.data.base import report_fields
from iiie.errors import IIIEError, SampleError
from iiie.imageio import load_image
from iiie.metrics.output_names import NAMED_PATTERNS
from iiie.pipeline.cache import atomic_write_json
from iiie.pipeline.report import aggregate, to_markdown, write_results
from iiie.protocols import Scored
from iiie.types import Category, EditResult, MaskResult, Plan

OWN_KEYS = ("edited", "pattern", "out")


def compose(overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from iiie.vlm.prompts import default_prompts_dir

    conf = default_prompts_dir().parent
    if not any(o.split("=", 1)[0].lstrip("+~") == "experiment" for o in overrides):
        overrides = ["~experiment", *overrides]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def reads_pipeline_outputs(metric: Any) -> bool:
    """Whether ``metric`` scores the pipeline's own plan or predicted mask (which an
    external folder of edited images does not have)."""
    from iiie.metrics.pixel import MaskIoU, PlanAccuracy

    return isinstance(metric, (PlanAccuracy, MaskIoU)) or getattr(metric, "stage", None) in ("plan", "mask")


def build_metrics(cfg: DictConfig) -> list[Any]:
    from hydra.utils import instantiate

    node = cfg.metrics
    if "_target_" in node:
        return [instantiate(node)]
    return [instantiate(v) for v in node.values() if v is not None and "_target_" in v]


def edited_path(edited: Path, pattern: str, sample) -> Path:
    if pattern in NAMED_PATTERNS:  # a benchmark's own naming rule (output_names.py)
        return NAMED_PATTERNS[pattern](edited, sample)
    fields = {k: v for k, v in sample.truth.extra.items() if isinstance(v, str)}
    fields["id"] = sample.request.id
    try:
        return edited / pattern.format(**fields)
    except KeyError as exc:
        raise SampleError(f"pattern {pattern!r} names {exc} which this sample lacks") from None


def score_folder(
    cfg: DictConfig, edited: str | Path, pattern: str = "{id}.png", out: str | Path | None = None
) -> list[dict[str, Any]]:
    """Score every sample of ``cfg.data`` whose edited image is under ``edited``; returns the
    aggregated table (and writes it when ``out`` is given)."""
    from hydra.utils import instantiate


    edited = Path(edited).expanduser()
    if not edited.is_dir():
        raise FileNotFoundError(f"edited images folder not found: {edited}")
    dataset = instantiate(cfg.data)
    built = build_metrics(cfg)
    metrics = [m for m in built if not reads_pipeline_outputs(m)]
    skipped = [getattr(m, "name", type(m).__name__) for m in built if reads_pipeline_outputs(m)]
    if not metrics:
        raise IIIEError(
            f"no metric left to score edited images: {skipped} score the pipeline's own plan "
            "or mask, which a folder of edited images does not have"
        )
    decode = getattr(dataset, "decode", "friendly")
    batch_size = int(cfg.runtime.get("score_batch_size", 32))
    rows: list[dict[str, Any]] = []
    pending: list[Scored] = []

    def flush() -> None:
        if not pending:
            return
        merged: list[dict[str, Any]] = [{} for _ in pending]
        try:
            for metric in metrics:
                for row, extra in zip(merged, metric.score_batch(pending), strict=True):
                    row.update(extra)
        except SampleError as exc:
            for it in pending:
                rows.append(_failed(it.sample, "score", exc))
        else:
            for it, scores in zip(pending, merged, strict=True):
                truth = it.sample.truth.category
                rows.append(
                    {
                        "id": it.sample.request.id,
                        "category": truth.value if truth else None,
                        **report_fields(it.sample),
                        **scores,
                    }
                )
        pending.clear()

    for sid in dataset.ids():
        try:
            sample = dataset.load(sid)
        except SampleError as exc:  # the benchmark's own source image or mask
            rows.append(_failed(None, "load", exc, sid))
            continue
        try:
            # outputs are decoded like the benchmark's own images (``data.decode``)
            image = load_image(edited_path(edited, pattern, sample), decode=decode)
        except SampleError as exc:
            rows.append(_failed(sample, "edit", exc, sid))
            continue
        w, h = sample.request.image.size
        pending.append(
            Scored(
                sample=sample,
                # placeholders for the Scored contract; no remaining metric reads them
                plan=Plan(category=sample.truth.category or Category.LOCAL),
                mask=MaskResult(mask=np.zeros((h, w), bool), source="none"),
                edit=EditResult(image=image, editor="external", params={"folder": str(edited)}),
            )
        )
        if len(pending) >= batch_size:
            flush()
    flush()

    title = f"{dataset.name}: {edited.name} ({len(rows)} samples)"
    if out is None:

        return aggregate(rows)
    manifest = {
        "tool": "iiie.score_folder",
        "edited": str(edited.resolve()),
        "pattern": pattern,
        "skipped_metrics": skipped,
        "dataset": dataset.fingerprint(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    table = write_results(Path(out), rows, manifest, title)
    details = {
        getattr(m, "name", type(m).__name__): m.details
        for m in metrics
        if getattr(m, "details", None)
    }
    if details:

        atomic_write_json(Path(out) / "judge_details.json", details)
    for m in metrics:
        close = getattr(m, "close", None)
        if callable(close):
            close()
    return table


def _failed(sample, stage: str, exc: BaseException, sid: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": sample.request.id if sample is not None else sid,
        "failed_stage": stage,
        "error": str(exc),
        "error_type": type(exc).__name__,
    }
    if sample is not None and sample.truth.category is not None:
        row["category"] = sample.truth.category.value
    if sample is not None:
        row.update(report_fields(sample))
    return row


def main(argv: list[str] | None = None) -> int:
    from hydra.errors import InstantiationException


    args = list(sys.argv[1:] if argv is None else argv)
    own = {k: None for k in OWN_KEYS}
    overrides = []
    for a in args:
        key = a.split("=", 1)[0]
        if key in own and "=" in a:
            own[key] = a.split("=", 1)[1]
        else:
            overrides.append(a)
    if not own["edited"]:
        print(__doc__, file=sys.stderr)
        print("error: give edited=DIR", file=sys.stderr)
        return 2
    try:
        cfg = compose(overrides)
        out = own["out"] or str(Path(cfg.paths.results) / "scored" / Path(own["edited"]).name)
        table = score_folder(cfg, own["edited"], own["pattern"] or "{id}.png", out)
    except (IIIEError, FileNotFoundError, ValueError, InstantiationException) as exc:
        cause = exc.__cause__ if isinstance(exc, InstantiationException) and exc.__cause__ else exc
        print(f"error: {cause}", file=sys.stderr)
        return 1
    print(to_markdown(table))
    print(f"results written to {out}/table.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
