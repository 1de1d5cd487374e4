"""Hydra callbacks: collect a sweep's variants into one comparison table at its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class CollectSweep(Callback):
    """After a multirun, write ``results/<experiment>/comparison.{md,csv,json}``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from iiie.pipeline.report import collect

        sweep = Path(config.paths.results) / str(config.experiment_name)
        if not sweep.exists():
            return
        collect(sweep)
        print((sweep / "comparison.md").read_text())
        print(f"comparison written to {sweep / 'comparison.md'}")
