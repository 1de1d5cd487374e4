"""Sharded runs through hydra-submitit-launcher, for real: submitit's local executor starts
each shard as its own process (as SLURM array tasks would be), all write the same stage
folders, then ``runtime.collect_only=true`` writes the full table without computing."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE = ["experiment=smoke", "data.n=6", "runtime.progress=false"]


def _launcher_installed() -> None:
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        message = "hydra-submitit-launcher is not installed (the dev / cluster extra)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI requires it", pytrace=False)
        pytest.skip(message)


def _run(tmp: Path, name: str, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    args = [sys.executable, "-m", "iiie.run", *overrides, *BASE,
            f"paths.runs={tmp / name / 'runs'}", f"paths.results={tmp / name / 'results'}",
            f"hydra.run.dir={tmp / name / 'hydra'}", f"hydra.sweep.dir={tmp / name / 'multirun'}"]
    return subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _ids(folder: Path) -> list[str]:
    with open(folder / "per_sample.csv", newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


def test_two_submitit_shards_then_collect_equal_one_process(tmp_path):
    _launcher_installed()
    single = _ok(_run(tmp_path, "single"))
    assert "this was one shard" not in single.stdout
    one = tmp_path / "single" / "results" / "smoke"
    all_ids = _ids(one)
    n = len(all_ids)

    sweep = _ok(_run(tmp_path, "cluster", "-m", "hydra/launcher=submitit_local",
                     "runtime.num_shards=2", "runtime.shard_index=0,1"))
    assert "shards done" in sweep.stdout
    # submitit ran two jobs, each its own process (a local job's id is its pid)
    jobs = [p for p in (tmp_path / "cluster" / "multirun" / ".submitit").iterdir() if p.name.isdigit()]
    assert len(jobs) == 2 and all(list(j.glob("*_result.pkl")) for j in jobs)

    results = tmp_path / "cluster" / "results" / "smoke"
    passes: dict[str, int] = {}  # per stage: samples computed, failed or skipped, over both shards
    computed: dict[str, int] = {}
    for k in (0, 1):
        (shard,) = (results / f"shard{k}-of-2").glob("*/manifest.json")
        assert _ids(shard.parent) == all_ids[k::2]  # sample index % num_shards == shard_index
        for stage, c in json.loads(shard.read_text())["stages"].items():
            assert c["cached"] == 0  # the other shard computed none of this shard's samples
            passes[stage] = passes.get(stage, 0) + c["computed"] + c["errors"] + c["skipped_upstream"]
            computed[stage] = computed.get(stage, 0) + c["computed"]
    assert set(passes) == {"plan", "mask", "edit", "score"} and all(v == n for v in passes.values())
    # one record per computed sample in the shared stage folder
    plan_dirs = [d for d in (tmp_path / "cluster" / "runs" / "smoke" / "plan").iterdir() if d.is_dir()]
    assert len(plan_dirs) == 1  # both shards wrote the same content-addressed folder
    records = [p for p in plan_dirs[0].glob("*.json") if not p.name.startswith("_") and ".error." not in p.name]
    assert len(records) == computed["plan"] > 0

    collect = _ok(_run(tmp_path, "cluster", "runtime.num_shards=1", "runtime.collect_only=true"))
    assert "0 computed" in collect.stdout
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["samples"] == n
    assert all(c["computed"] == 0 and c["errors"] == 0 for c in manifest["stages"].values())
    full = json.loads((results / "results.json").read_text())
    ref = json.loads((one / "results.json").read_text())
    assert full["table"] == ref["table"]
    assert full["per_sample"] == ref["per_sample"]


def test_collect_only_refuses_to_compute(tmp_path):
    proc = _run(tmp_path, "empty", "runtime.collect_only=true")
    assert proc.returncode == 2
    assert "runtime.collect_only=true but" in proc.stderr and "not finished" in proc.stderr
    assert not list((tmp_path / "empty" / "runs").glob("smoke/plan/*/*.json"))
