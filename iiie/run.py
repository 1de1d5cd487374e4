"""``python -m iiie.run [experiment=NAME] [overrides]``: run the four stages and write the
results table to ``results/<experiment>/`` (``results/<experiment>/<variant>/`` in a sweep).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from iiie.errors import IIIEError
from iiie.gallery import write_gallery
from iiie.logs import progress_enabled, run_log
from iiie.pipeline.cache import stable_hash
from iiie.pipeline.report import to_markdown, write_results
from iiie.pipeline.runner import Runner
from iiie.placement import check_config_offload
from iiie.weights import MissingWeightsError
from iiie.weights.needs import preflight

log = logging.getLogger("iiie")


def run_prepare(cfg: DictConfig) -> None:
    """Before the stages: call each ``prepare:`` entry, then write the tiny random-weight
    folders the config names (:func:`iiie.tiny_weights.ensure_referenced`)."""
    from iiie.tiny_weights import ensure_referenced

    for node in cfg.get("prepare") or []:
        instantiate(node, _convert_="all")
    ensure_referenced(cfg)


def results_dir(cfg: DictConfig) -> Path:
    base = Path(cfg.paths.results) / str(cfg.experiment_name)
    shards = int(cfg.runtime.get("num_shards", 1) or 1)
    if shards > 1:  # each data-parallel process reports its own shard only
        base = base / f"shard{int(cfg.runtime.shard_index)}-of-{shards}"
    try:
        hc = HydraConfig.get()
    except ValueError:  # not under @hydra.main (tests, notebooks)
        return base
    if hc.mode == RunMode.MULTIRUN:
        return base / variant_name(list(hc.overrides.task), int(hc.job.num), method_name=cfg.get("method_name"))
    return base


#: Overrides that do not change what a variant computes, left out of its folder name.
_NOT_IN_NAME = ("paths.", "runtime.", "hydra.", "experiment=", "experiment_name=")


def variant_name(overrides: list[str], job_num: int, max_len: int = 120, method_name: str | None = None) -> str:
    """Folder name of a sweep variant from its overrides ("editor.remove.method=ns,...").

    A ``method=`` override is written as the method's name (``method_name``, which
    conf/method/ sets): a sweep over methods gets ``results/paper/iiie/``, named as its
    table's rows, and the tiny twin's ``method=tiny/iiie`` the same ``iiie`` rather than
    ``method=tiny_iiie``; it comes first (``iiie,data.n=5``), then the other overrides."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith(_NOT_IN_NAME))
    if method_name and any(o.lstrip("+").startswith("method=") for o in kept):
        kept = [str(method_name), *(o for o in kept if not o.lstrip("+").startswith("method="))]
    name = ",".join(kept).replace("/", "_") or f"job{job_num}"
    if len(name) > max_len:
        name = f"job{job_num}-{stable_hash(kept, 8)}"
    return name


def overwrite_warning(cfg: DictConfig, out: Path) -> str | None:
    """The note for an ad-hoc run about to overwrite another run's tables: a run without
    ``experiment_name=`` writes to the experiment's folder (``results/smoke/``) each time."""
    if not (out / "results.json").is_file():
        return None
    try:
        hc = HydraConfig.get()
    except ValueError:  # not under @hydra.main
        return None
    overrides = list(hc.overrides.task)
    if hc.mode == RunMode.MULTIRUN or any(o.lstrip("+~").startswith("experiment_name=") for o in overrides):
        return None
    return (f"{out}/ already holds a run's tables and they are overwritten now; pass "
            "experiment_name=NAME to keep this run's tables apart")


def execute(cfg: DictConfig, out: Path | None = None) -> list[dict]:
    """Run one composed config end to end; returns the aggregated table.

    The tables go to ``out`` (default: ``results/<experiment_name>/``, or the variant's
    folder in a Hydra sweep), with the run's log ``run.log`` (:mod:`iiie.logs`)."""
    out = Path(out) if out is not None else results_dir(cfg)
    note = overwrite_warning(cfg, out)  # before run.log makes the folder
    with run_log(out):
        log.info("run %s -> %s", cfg.experiment_name, out)
        table = _execute(cfg, out, note)
        log.info("done: table.md (%d rows) and index.html written", len(table))
    return table


def _execute(cfg: DictConfig, out: Path, note: str | None) -> list[dict]:
    run_prepare(cfg)
    preflight(cfg)  # every missing weights folder in one message, before any stage
    check_config_offload(cfg)  # runtime.offload=model|sequential needs a GPU, for every component
    runner = Runner(cfg, show_progress=progress_enabled(cfg.runtime.get("progress", "auto")))
    log.info("%d samples, stages: %s", len(runner.ids), ", ".join(runner.stages))
    manifest = runner.run()
    method = str(cfg.get("method_name", "custom"))
    rows = [{**runner.sample_status(i), "method": method} for i in runner.ids]
    if note:
        print(f"warning: {note}", file=sys.stderr)
    title = f"{cfg.experiment_name} ({len(rows)} samples)"
    table = write_results(out, rows, manifest, title)
    write_gallery(out, runner, rows, table, title)
    stages = manifest["stages"]
    print(to_markdown(table, title))
    print(
        "stages: "
        + "; ".join(
            f"{s}: {c['computed']} computed, {c['cached']} cached, {c['errors']} errors"
            + (f", {c['failed_before']} failed earlier" if c["failed_before"] else "")
            for s, c in stages.items()
        )
    )
    print(f"results written to {out}/table.md (pictures: {out}/index.html)")
    if int(cfg.runtime.get("num_shards", 1) or 1) > 1:
        print("this was one shard: when all shards are done, the same command with "
              "runtime.num_shards=1 recomputes nothing and writes the full table")
    return table


def _shard_worker(fabric, config: dict) -> None:
    """One data-parallel process: run this rank's shard of every stage."""
    cfg = OmegaConf.create(config)
    cfg.runtime.num_shards = fabric.world_size
    cfg.runtime.shard_index = fabric.global_rank
    if str(cfg.runtime.device).startswith("cuda"):
        cfg.runtime.device = str(fabric.device)
    execute(cfg)
    fabric.barrier()


def execute_parallel(cfg: DictConfig) -> list[dict]:
    """``runtime.devices > 1``: one process per device through Lightning Fabric, each on
    every n-th sample; then this process writes the full table from the cache."""
    from lightning.fabric import Fabric

    devices = int(cfg.runtime.devices)
    accelerator = "cuda" if str(cfg.runtime.device).startswith("cuda") else "cpu"
    run_prepare(cfg)  # once, before the workers start
    preflight(cfg)
    check_config_offload(cfg)
    fabric = Fabric(accelerator=accelerator, devices=devices, strategy="ddp_spawn")
    # Unresolved, so that `device: ${runtime.device}` in every component follows the
    # device each worker sets for itself.
    config = OmegaConf.to_container(cfg, resolve=False)
    config["prepare"] = []
    fabric.launch(_shard_worker, config)
    whole = OmegaConf.create(config)
    whole.runtime.num_shards, whole.runtime.shard_index = 1, 0
    return execute(whole)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        if int(cfg.runtime.get("devices", 1) or 1) > 1:
            execute_parallel(cfg)
        else:
            execute(cfg)
    except (IIIEError, MissingWeightsError) as exc:  # configuration-level problems: one clear line
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
