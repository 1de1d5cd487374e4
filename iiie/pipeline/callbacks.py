"""Hydra callbacks: collect a sweep's variants into one comparison table at its end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class CollectSweep(Callback):
    """After a multirun, write ``results/<experiment>/comparison.{md,csv,json}`` (and, for
    an experiment with an ``ablation`` node, the step's table of
    :mod:`iiie.pipeline.ablation`; for one with a ``paper_table`` node, the paper's ``table.{md,csv,json}``)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.paths.results) / str(config.experiment_name)
        if int(config.runtime.get("num_shards", 1) or 1) > 1:
            # A sweep over shards (conf/hydra/launcher/slurm.yaml): each job holds a part of
            # the samples; the full table is the collect step's, not a comparison of parts.
            print("shards done: write the full table with the same command, without -m and the "
                  "shard overrides, and runtime.num_shards=1 runtime.collect_only=true")
            return
        if not sweep.exists():
            return
        self._tables(config, sweep)
        from iiie.gallery import write_comparison  # the side-by-side pictures of every variant

        rows = json.loads((sweep / "comparison.json").read_text()).get("rows", []) if (sweep / "comparison.json").exists() else []
        print(f"comparison page: {write_comparison(sweep, rows)} (also {sweep / 'index.html'})")

    def _tables(self, config: DictConfig, sweep: Path) -> None:
        from iiie.pipeline.report import collect, paper_table

        ablation = config.get("ablation")
        if ablation is not None:  # one step's ablation: default marked, deltas, skipped variants
            from iiie.pipeline.ablation import ablation_table

            skipped = {str(k): str(v) for k, v in (ablation.get("skipped") or {}).items()}
            ablation_table(sweep, str(ablation.get("default", "default")), skipped, str(config.experiment_name))
            print((sweep / "comparison.md").read_text())
            print(f"comparison written to {sweep / 'comparison.md'}")
            return
        collect(sweep)
        paper = config.get("paper_table")
        if paper is not None:  # a sweep over methods: the paper's table too
            paper_table(sweep, list(paper.get("published") or []), str(paper.get("published_note", "published")))
            print((sweep / "table.md").read_text())
            print(f"results table written to {sweep / 'table.md'}")
            return
        print((sweep / "comparison.md").read_text())
        print(f"comparison written to {sweep / 'comparison.md'}")
