"""The per-step ablations (conf/experiment/ablate_<step>[_tiny].yaml): every variant
composes and changes something, the tiny twins cover the full variants (run or skipped with
a reason), and a tiny sweep writes its table with the default marked and shared stages
computed once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CONF, REPO, compose_config
from omegaconf import OmegaConf

STEPS = ("plan", "mask", "edit", "route")
#: On tiny the rule planner stands in for the VLM, so `rules` is the default's own config.
SAME_AS_DEFAULT = {("plan", "_tiny", "rules")}


def _spec(step: str, suffix: str):
    node = OmegaConf.load(CONF / "experiment" / f"ablate_{step}{suffix}.yaml")
    variants = str(node.hydra.sweeper.params[f"ablate/{step}"]).split(",")
    return variants, dict(node.ablation.skipped or {}), node


def _label(v: str) -> str:
    return v.removeprefix("tiny/")


@pytest.mark.parametrize("suffix", ["", "_tiny"])
@pytest.mark.parametrize("step", STEPS)
def test_every_variant_composes_and_differs_from_the_default(step, suffix):
    variants, skipped, node = _spec(step, suffix)
    assert node.ablation.default in variants and not set(map(_label, variants)) & set(skipped)

    def cfg(v):
        c = OmegaConf.to_container(compose_config([f"experiment=ablate_{step}{suffix}", f"ablate/{step}={v}"]), resolve=False)
        assert c["ablation"].pop("variant") == _label(v)  # the table's name of the variant
        return c

    base = cfg("default")
    assert base["method_name"] == "iiie"
    for v in variants:
        if v != "default" and (step, suffix, _label(v)) not in SAME_AS_DEFAULT:
            assert cfg(v) != base, f"ablate/{step}={v} composes to the default config: its overrides did not apply"


@pytest.mark.parametrize("step", STEPS)
def test_tiny_twin_runs_or_explains_every_full_variant(step):
    full, full_skipped, _ = _spec(step, "")
    tiny, tiny_skipped, _ = _spec(step, "_tiny")
    missing = (set(full) | set(full_skipped)) - set(map(_label, tiny)) - set(tiny_skipped)
    assert not missing, f"ablate_{step}_tiny neither runs nor lists {sorted(missing)}"
    assert all(str(r).strip() for r in tiny_skipped.values())


@pytest.mark.slow
def test_tiny_route_sweep_marks_default_shows_deltas_and_plans_once(tmp_path):
    n = 5
    res = subprocess.run(
        [sys.executable, "-m", "iiie.run", "experiment=ablate_route_tiny", f"data.n={n}", "runtime.progress=false",
         f"paths.runs={tmp_path / 'runs'}", f"paths.results={tmp_path / 'results'}",
         f"paths.cache={tmp_path / 'cache'}", f"hydra.sweep.dir={tmp_path / 'multirun'}"],
        cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "results" / "ablate_route_tiny"
    md = (out / "comparison.md").read_text()
    data = json.loads((out / "comparison.json").read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    assert set(rows) == {"default", "one_inpainter"} and rows["default"]["default"] is True
    assert "| default **default** |" in md and "#### Per category" in md and "`remove`" in md
    assert "| variant | n | failed | noop |" in md and isinstance(rows["default"]["noop"], int)
    one = rows["one_inpainter"]
    assert one["delta_l1"] == pytest.approx(one["l1"] - rows["default"]["l1"])
    assert f"{one['delta_l1']:+.4f}" in md
    stages = {s["stage"]: s for s in data["stages"]}
    # one planner and one masker config over the sweep: computed once, found cached by the other variant
    assert stages["plan"]["distinct_configs"] == 1 and stages["plan"]["computed"] == n and stages["plan"]["cached"] == n
    assert stages["mask"]["computed"] == n
    # the routes that are BrushNet in both variants (local, background) are edited once
    assert n < stages["edit"]["computed"] < 2 * n and stages["edit"]["cached"] == 2 * n - stages["edit"]["computed"]
    # redoing the table by hand (python -m iiie.collect) gives the same table
    again = subprocess.run([sys.executable, "-m", "iiie.collect", str(out)], cwd=REPO, capture_output=True, text=True,
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert again.returncode == 0, again.stderr
    assert (out / "comparison.md").read_text() == md
