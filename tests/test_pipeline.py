"""The four stages end to end on the smoke profile: cache, resume, errors, routing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iiie.masks import dilate
from iiie.pipeline.runner import Runner
from iiie.run import execute

REPO = Path(__file__).resolve().parents[1]


def _counts(runner: Runner) -> dict[str, tuple[int, int, int]]:
    return {s: (c.computed, c.cached, c.errors) for s, c in runner.counters.items()}


def test_smoke_run_writes_tables_and_second_run_recomputes_nothing(make_cfg, tmp_path, capsys):
    cfg = make_cfg("data.n=15", "data.odd_inputs=true")
    table1 = execute(cfg)
    out = tmp_path / "results" / "smoke"
    for name in ("table.md", "table.csv", "results.json", "per_sample.csv", "manifest.json"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["plan"]["computed"] + manifest["stages"]["plan"]["errors"] == 19
    # the truncated PNG and the empty instruction fail at the plan stage, the run goes on
    per_sample = (out / "per_sample.csv").read_text()
    assert "odd_truncated" in per_sample and "ImageLoadError" in per_sample
    assert "InstructionError" in per_sample
    overall = table1[-1]
    assert overall["category"] == "overall" and overall["n"] == 19 and overall["failed"] == 2

    first_md = (out / "table.md").read_text()
    runner = Runner(cfg, show_progress=False)
    runner.run()
    assert all(c.computed == 0 for c in runner.counters.values()), _counts(runner)
    assert runner.counters["edit"].cached == 17
    table2 = execute(cfg)
    assert table2 == table1
    assert (out / "table.md").read_text() == first_md


def test_outputs_preserve_content_outside_masks(make_cfg, tmp_path):
    cfg = make_cfg("data.n=10", "data.odd_inputs=false")
    runner = Runner(cfg, show_progress=False)
    runner.run()
    from iiie.pipeline import records as R

    checked = 0
    for sid in runner.ids:
        plan = runner.plan_of(sid)
        mask = R.load_mask(runner.stage_dir("mask"), sid)
        edit = R.load_edit(runner.stage_dir("edit", plan.category), sid)
        src = np.asarray(runner.sample(sid).request.image)
        out = np.asarray(edit.image)
        assert out.shape == src.shape
        far = ~dilate(mask.mask, 8)
        assert (out[far] == src[far]).all(), sid
        checked += 1
    assert checked == 10


def test_changing_one_route_recomputes_only_that_route(make_cfg):
    Runner(make_cfg("data.n=10", "data.odd_inputs=false"), show_progress=False).run()
    runner = Runner(make_cfg("data.n=10", "data.odd_inputs=false", "editor.remove.method=ns"), show_progress=False)
    runner.run()
    assert runner.counters["plan"].computed == 0 and runner.counters["mask"].computed == 0
    n_remove = sum(runner.plan_of(i).category.value == "remove" for i in runner.ids)
    assert runner.counters["edit"].computed == n_remove > 0
    assert runner.counters["edit"].cached == 10 - n_remove


def test_masker_change_reuses_plans(make_cfg):
    Runner(make_cfg("data.n=10", "data.odd_inputs=false"), show_progress=False).run()
    runner = Runner(make_cfg("data.n=10", "data.odd_inputs=false", "masker.categories.remove.dilate=0.1"), show_progress=False)
    runner.run()
    assert runner.counters["plan"].cached == 10 and runner.counters["plan"].computed == 0
    assert runner.counters["mask"].computed == 10


def test_per_sample_backend_failure_is_recorded_and_run_continues(make_cfg, tmp_path):
    # An addition without a box cannot be masked: with a planner that never gives boxes,
    # every addition sample fails at the mask stage and all others finish.
    cfg = make_cfg("data.n=10", "data.odd_inputs=false")
    runner = Runner(cfg, show_progress=False)
    from iiie.pipeline import records as R

    runner.run_stage("plan")  # then overwrite the addition plans with box-less ones
    d = runner.stage_dir("plan")
    broken = []
    for sid in runner.ids:
        plan = runner.plan_of(sid)
        if plan.category.value == "addition":
            plan.add_box = None
            R.save_plan(d, sid, plan, {"planner": "test"})
            broken.append(sid)
    assert broken
    runner.run_stage("mask")
    runner.run_stage("edit")
    runner.run_stage("score")
    assert runner.counters["mask"].errors == len(broken)
    for sid in runner.ids:
        status = runner.sample_status(sid)
        if sid in broken:
            assert status["failed_stage"] == "mask" and "add_box" in status["error"]
        else:
            assert "failed_stage" not in status
    # a recorded failure is final on a plain re-run, and retried with runtime.retry_errors
    again = Runner(cfg, show_progress=False)
    again.run()
    assert again.counters["mask"].computed == 0
    for sid in broken:  # repair the plans, then retry
        plan = again.plan_of(sid)
        w, h = again.sample(sid).request.size
        plan.add_box = (0.0, 0.0, w / 2, h / 2)
        R.save_plan(d, sid, plan, {"planner": "test"})
    retry = Runner(make_cfg("data.n=10", "data.odd_inputs=false", "runtime.retry_errors=true"), show_progress=False)
    retry.run()
    assert retry.counters["mask"].computed == len(broken) and retry.counters["mask"].errors == 0
    assert all("failed_stage" not in retry.sample_status(sid) for sid in retry.ids)
    assert not list(retry.stage_dir("mask").path.glob("*.error.json"))


def _stage_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_finishes_each_sample_once(tmp_path):
    """Kill the real CLI with SIGKILL while it writes, re-run, and check the folders."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = [
        sys.executable, "-m", "iiie.run", "experiment=smoke", "data.n=150", "data.odd_inputs=false",
        "runtime.progress=false",
        f"paths.runs={tmp_path / 'runs'}", f"paths.results={tmp_path / 'results'}",
        f"hydra.run.dir={tmp_path / 'out'}",
    ]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs = tmp_path / "runs" / "smoke"
    deadline = time.time() + 300
    killed_in = None
    while time.time() < deadline and proc.poll() is None:
        edits = list((runs / "edit").rglob("*.png")) if (runs / "edit").exists() else []
        if len(edits) >= 20:
            proc.send_signal(signal.SIGKILL)
            killed_in = "edit"
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert killed_in == "edit", f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    assert not (tmp_path / "results" / "smoke" / "table.md").exists()

    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "results" / "smoke" / "table.md").exists()
    # every sample exactly once per stage, every file complete, no temp files left
    for stage in ("plan", "mask", "score"):
        records = [p for p in (runs / stage).rglob("*.json") if not p.name.startswith("_")]
        ids = [p.name.removesuffix(".error.json").removesuffix(".json") for p in records]
        assert len(ids) == len(set(ids)) == 150, stage
        for p in records:
            json.loads(p.read_text())
    edit_pngs = list((runs / "edit").rglob("*.png"))
    assert len(edit_pngs) == 150
    for p in edit_pngs:
        with Image.open(p) as im:
            im.load()
    assert not [p for p in _stage_files(runs) if p.name.endswith(".tmp")]
    results = json.loads((tmp_path / "results" / "smoke" / "results.json").read_text())
    assert len(results["per_sample"]) == 150
    assert all("failed_stage" not in r for r in results["per_sample"])
    # ...and the second run reused what the first finished: planning and masking were
    # complete before the kill, and the edits written before it were not redone
    stages = json.loads((tmp_path / "results" / "smoke" / "manifest.json").read_text())["stages"]
    assert stages["plan"]["cached"] == 150 and stages["plan"]["computed"] == 0
    assert stages["mask"]["cached"] == 150 and stages["mask"]["computed"] == 0
    assert stages["edit"]["cached"] >= 10 and stages["edit"]["cached"] + stages["edit"]["computed"] == 150


def test_vlm_server_settings_do_not_change_the_plan_key_and_secrets_stay_off_disk(make_cfg, tmp_path):
    a = Runner(make_cfg("data.n=5", "planner=vlm", "vlm.base_url=http://127.0.0.1:1/v1", "vlm.api_key=s3cret"), show_progress=False)
    b = Runner(make_cfg("data.n=5", "planner=vlm", "vlm.concurrency=4"), show_progress=False)
    c = Runner(make_cfg("data.n=5", "planner=vlm", "vlm.temperature=0.5"), show_progress=False)
    assert a.keys["plan"] == b.keys["plan"] != c.keys["plan"]
    manifest = json.dumps(a.manifest(time.time()))
    assert "s3cret" not in manifest and "***" in manifest


def test_missing_weights_is_one_clear_error_naming_the_route(make_cfg, tmp_path):
    from iiie.weights import MissingWeightsError

    cfg = make_cfg("data.n=5", "data.odd_inputs=false", "editor@editor.remove=brushnet", f"paths.weights={tmp_path / 'none'}")
    with pytest.raises(MissingWeightsError, match=r"editor\.remove\.base_path"):
        Runner(cfg, show_progress=False).run()
    # plans and masks made before the failure stay on disk for the next attempt
    runner = Runner(cfg, show_progress=False)
    runner.run_stage("plan")
    assert runner.counters["plan"].cached == 5


def test_data_parallel_shards_cover_the_dataset_once(make_cfg, tmp_path):
    shards = [Runner(make_cfg("data.n=10", "data.odd_inputs=false", "runtime.num_shards=3", f"runtime.shard_index={k}"), show_progress=False) for k in range(3)]
    ids = [i for r in shards for i in r.ids]
    assert sorted(ids) == sorted(shards[0].dataset.ids()) and len(ids) == len(set(ids)) == 10
    for r in shards:
        r.run()
    table = execute(make_cfg("data.n=10", "data.odd_inputs=false"))
    whole = Runner(make_cfg("data.n=10", "data.odd_inputs=false"), show_progress=False)
    whole.run()
    assert all(c.computed == 0 for c in whole.counters.values())
    assert table[-1]["n"] == 10 and table[-1]["failed"] == 0
    with pytest.raises(ValueError, match="shard_index"):
        Runner(make_cfg("data.n=10", "runtime.num_shards=2", "runtime.shard_index=2"), show_progress=False)


@pytest.mark.slow
def test_fabric_data_parallel_processes_share_the_cache(make_cfg, tmp_path):
    from iiie.run import execute_parallel

    cfg = make_cfg("data.n=8", "data.odd_inputs=false", "runtime.devices=2")
    table = execute_parallel(cfg)
    assert table[-1]["n"] == 8 and table[-1]["failed"] == 0
    out = tmp_path / "results" / "smoke"
    shard_tables = sorted(p.parent.name for p in out.glob("shard*/table.md"))
    assert shard_tables == ["shard0-of-2", "shard1-of-2"]
    shard_n = [json.loads((out / s / "results.json").read_text())["table"][-1]["n"] for s in shard_tables]
    assert shard_n == [4, 4]
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(st["computed"] == 0 for st in manifest["stages"].values())  # the final pass only aggregates


def test_temp_cleanup_spares_live_writers(tmp_path):
    import tempfile

    from iiie.pipeline.cache import _HOST, StageDir

    d = StageDir(tmp_path, "plan", "k")
    live = tempfile.mkstemp(prefix=f".a.json.{_HOST}.{os.getpid()}.", suffix=".tmp", dir=d.path)[1]
    dead = d.path / f".b.json.{_HOST}.999999999.abc.tmp"
    dead.write_text("x")
    legacy = d.path / ".c.json.xyz.tmp"
    legacy.write_text("x")
    assert d.clean_tmp() == 2
    assert Path(live).exists() and not dead.exists() and not legacy.exists()


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    from iiie.pipeline.cache import atomic_save_png, atomic_write_json

    old = os.umask(0o027)
    try:
        atomic_write_json(tmp_path / "r.json", {"a": 1})
        atomic_save_png(tmp_path / "r.png", Image.new("RGB", (2, 2)))
    finally:
        os.umask(old)
    assert {(tmp_path / n).stat().st_mode & 0o777 for n in ("r.json", "r.png")} == {0o640}


def test_failures_after_planning_keep_category_and_plan_scores(make_cfg):
    cfg = make_cfg("data.n=10", "data.odd_inputs=false", "masker.on_missing=skip")
    runner = Runner(cfg, show_progress=False)
    runner.run_stage("plan")
    d = runner.stage_dir("plan")
    from iiie.pipeline import records as R

    victim = next(i for i in runner.ids if runner.plan_of(i).category.value == "remove")
    plan = runner.plan_of(victim)
    plan.object = "purple elephant"  # the oracle masker cannot find it
    R.save_plan(d, victim, plan, {"planner": "test"})
    runner.run()
    status = runner.sample_status(victim)
    assert status["failed_stage"] == "mask"
    assert status["category"] == "remove" and status["category_acc"] == 1.0 and status["object_match"] == 0.0
    # a re-run reports the recorded failure apart from the cached samples, and retries nothing
    again = Runner(cfg, show_progress=False)
    again.run()
    assert again.counters["mask"].failed_before == 1 and again.counters["mask"].cached == 9
    assert again.counters["mask"].model_calls == 0


def test_metrics_are_checked_before_any_stage_runs(make_cfg, tmp_path):
    from iiie.weights import MissingWeightsError

    cfg = make_cfg("data.n=5", "data.odd_inputs=false", "metrics=magicbrush", f"paths.weights={tmp_path / 'none'}")
    runner = Runner(cfg, show_progress=False)
    with pytest.raises(MissingWeightsError):
        runner.run()
    assert not list(runner.stage_dir("plan").path.glob("syn*.json"))


def test_editor_route_given_as_a_string_is_a_clear_error(make_cfg):
    from iiie.errors import IIIEError

    with pytest.raises(IIIEError, match=r"editor@editor\.remove=<name>"):
        Runner(make_cfg("data.n=5", "editor.remove=powerpaint"), show_progress=False)


def test_device_is_not_part_of_cache_keys(make_cfg):
    a = Runner(make_cfg("data.n=5", "+masker.device=cuda:0", "+editor.local.device=cuda:0"), show_progress=False)
    b = Runner(make_cfg("data.n=5", "+masker.device=cuda:1", "+editor.local.device=cuda:1"), show_progress=False)
    assert a.keys == b.keys


def test_isolating_a_bad_sample_counts_retries_apart(make_cfg):
    cfg = make_cfg("data.n=6", "data.odd_inputs=true")
    runner = Runner(cfg, show_progress=False)
    runner.run_stage("plan")
    c = runner.counters["plan"]
    # the truncated image fails at loading; the empty instruction fails inside the batch,
    # which is then retried item by item
    assert c.model_calls == 9 and c.retried == 9 and c.errors == 2
