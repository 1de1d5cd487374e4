"""Hydra callback: the weights preflight of a whole multirun, before its first job."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepPreflight(Callback):
    """Stop a sweep (e.g. ``experiment=paper``) with one message listing every weights
    folder any of its jobs lacks; single runs check in :func:`iiie.run.execute`."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from iiie.weights.needs import missing_message, sweep_needs

        missing, served = sweep_needs(config)
        if missing:
            fetch = [o for o in config.hydra.overrides.task if "," not in o] or [n.relpath for n in missing]
            print("error: " + missing_message(missing, fetch, served), file=sys.stderr)
            sys.exit(2)
