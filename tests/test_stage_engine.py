"""The stage engine's guarantees: code-aware keys, outages that stay retryable, and
out-of-memory handled as a batch-size problem rather than a sample failure."""

from __future__ import annotations

import dataclasses
import shutil
import threading

import pytest
from openai_stub_server import Drop, follow_schema, free_port, server_pool
from PIL import ImageOps

from iiie.batching import guarded_batch
from iiie.errors import DeviceError
from iiie.pipeline import fingerprint
from iiie.pipeline import records as R
from iiie.pipeline.runner import Runner

SMOKE = ("data.n=6", "data.odd_inputs=false")


def computed(runner: Runner) -> dict[str, int]:
    return {s: c.computed for s, c in runner.counters.items()}


@pytest.fixture
def code_copy(tmp_path, monkeypatch):
    """Fingerprints read from a temp copy of the package's sources, which a test edits."""
    copy = tmp_path / "src" / "iiie"
    shutil.copytree(fingerprint.ROOT, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

    def refresh() -> None:
        fingerprint._source_tree.cache_clear()
        fingerprint.module_fingerprint.cache_clear()

    monkeypatch.setattr(fingerprint, "ROOT", copy)
    refresh()
    yield copy, refresh
    refresh()


def _append(path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_editing_code_recomputes_its_stage_and_everything_downstream_only(make_cfg, code_copy):
    copy, refresh = code_copy
    cfg = make_cfg(*SMOKE)
    first = Runner(cfg, show_progress=False)
    first.run()
    assert computed(first) == {"plan": 6, "mask": 6, "edit": 6, "score": 6}
    again = Runner(cfg, show_progress=False)
    again.run()
    assert computed(again) == {"plan": 0, "mask": 0, "edit": 0, "score": 0}

    # a real code change in the rule planner (comments and formatting would not count)
    _append(copy / "planners" / "rules.py", "CACHE_TEST_CONSTANT = 1")
    refresh()
    edited = Runner(cfg, show_progress=False)
    assert edited.keys["plan"] != again.keys["plan"]
    edited.run()
    assert computed(edited) == {"plan": 6, "mask": 6, "edit": 6, "score": 6}

    # a metric-only change: plans, masks and edits stay cached
    metric_target = cfg.metrics.values() if "_target_" not in cfg.metrics else [cfg.metrics]
    module = fingerprint.module_of(next(iter(metric_target))["_target_"])
    _append(copy.joinpath(*module.split(".")[1:]).with_suffix(".py"), "CACHE_TEST_CONSTANT = 2")
    refresh()
    scored = Runner(cfg, show_progress=False)
    assert scored.keys["plan"] == edited.keys["plan"] and scored.keys["edit"] == edited.keys["edit"]
    scored.run()
    assert computed(scored) == {"plan": 0, "mask": 0, "edit": 0, "score": 6}


def test_comments_do_not_change_keys_and_cache_code_false_ignores_code(make_cfg, code_copy):
    copy, refresh = code_copy
    cfg = make_cfg(*SMOKE)
    before = Runner(cfg, show_progress=False).keys
    _append(copy / "planners" / "rules.py", "# a comment only")
    refresh()
    assert Runner(cfg, show_progress=False).keys == before
    off = make_cfg(*SMOKE, "runtime.cache_code=false")
    off_before = Runner(off, show_progress=False).keys
    _append(copy / "planners" / "rules.py", "CACHE_TEST_CONSTANT = 3")
    refresh()
    assert Runner(cfg, show_progress=False).keys["plan"] != before["plan"]
    assert Runner(off, show_progress=False).keys == off_before


def _vlm_cfg(make_cfg, base_url: str, *extra: str):
    return make_cfg(
        *SMOKE, "planner=vlm", f"vlm.base_url={base_url}", "vlm.model=test-vlm",
        f"vlm.min_pixels={4 * 28 * 28}", f"vlm.max_pixels={64 * 28 * 28}", "vlm.retries=0",
        "vlm.concurrency=1", "runtime.plan_batch_size=2", *extra,
    )


def _crashing_then_healthy(port: int, crash_after: int):
    """A responder that answers ``crash_after`` requests, then drops every connection and
    stops the server (a vLLM crash mid-run)."""
    state = {"n": 0}
    holder: dict = {}

    def respond(req):
        state["n"] += 1
        if state["n"] > crash_after:
            if "stopper" not in holder:
                holder["stopper"] = threading.Thread(target=holder["server"].stop, daemon=True)
                holder["stopper"].start()
            return Drop()
        return follow_schema(req.schema, {"category": "remove", "object": "object", "object_box": [0, 0, 28, 28]})

    return respond, holder


def _healthy(req):
    return follow_schema(req.schema, {"category": "remove", "object": "object", "object_box": [0, 0, 28, 28]})


@pytest.mark.parametrize("bridge", [False, True], ids=["retryable_error", "provisional_fallback"])
def test_vlm_outage_mid_run_is_redone_after_restart(make_cfg, bridge):
    port = free_port()
    with server_pool() as make:
        respond, holder = _crashing_then_healthy(port, crash_after=4)
        holder["server"] = make(model="test-vlm", port=port, responder=respond)
        cfg = _vlm_cfg(make_cfg, holder["server"].base_url, f"planner.fallback_on_outage={str(bridge).lower()}")
        first = Runner(cfg, show_progress=False)
        first.run()
        holder["stopper"].join(10)
        plan = first.counters["plan"]
        if bridge:  # rule plans bridged the outage and went all the way through
            assert plan.computed == 6 and first.counters["score"].computed == 6
            provisional = [i for i in first.ids if first.plan_of(i).raw.get("provisional")]
            assert provisional and first.manifest(0)["stages"]["plan"]["backend"]["outages"] == len(provisional)
        else:  # the samples lost to the outage are retryable errors, not plans
            assert plan.errors == plan.retryable_errors > 0 and plan.computed == 6 - plan.errors
            lost = [i for i in first.ids if not first.stage_dir("plan").is_done(i)]
            assert all(R.load_error(first.stage_dir("plan"), i)["retryable"] for i in lost)

        make(model="test-vlm", port=port, responder=_healthy)  # the server is back
        second = Runner(cfg, show_progress=False)
        second.run()
        redo = len(provisional) if bridge else len(lost)
        assert second.counters["plan"].computed == redo and second.counters["plan"].cached == 6 - redo
        if bridge:  # what was built on the provisional plans is redone too
            assert second.counters["mask"].computed == redo and second.counters["score"].computed == redo
        for sid in second.ids:
            p = second.plan_of(sid)
            assert p.fallback_reason is None and not p.raw.get("provisional"), sid
            assert "failed_stage" not in second.sample_status(sid)
        third = Runner(cfg, show_progress=False)
        third.run()
        assert sum(computed(third).values()) == 0


def _oom_over(limit: int):
    import torch

    calls: list[int] = []

    def fn(items):
        calls.append(len(items))
        if len(items) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in items]

    return fn, calls


def test_out_of_memory_halves_the_batch_and_records_no_failure():
    fn, calls = _oom_over(2)
    done, failed = {}, []
    sent, retried = guarded_batch(fn, list(range(8)), lambda it, out, s: done.__setitem__(it, out),
                                  lambda it, exc: failed.append(it), "runtime.edit_batch_size")
    assert done == {i: i * 10 for i in range(8)} and not failed
    # 8 OOM -> 4 OOM -> 2, 2 ; 4 OOM -> 2, 2: the 16 items re-sent count as retried
    assert calls == [8, 4, 2, 2, 4, 2, 2] and sent == 8 and retried == 16


def test_out_of_memory_at_batch_one_stops_the_run_naming_the_key():
    fn, _ = _oom_over(0)
    failed = []
    with pytest.raises(DeviceError, match=r"runtime\.edit_batch_size"):
        guarded_batch(fn, [1, 2], lambda *a: None, lambda it, exc: failed.append(it), "runtime.edit_batch_size")
    assert not failed


def test_a_cuda_error_stops_the_run_and_other_errors_stay_per_sample():
    def cuda(items):
        raise RuntimeError("CUDA error: device-side assert triggered")

    with pytest.raises(DeviceError, match="CUDA error"):
        guarded_batch(cuda, [1], lambda *a: None, lambda *a: None)

    def bad_two(items):
        if 2 in items:
            raise ValueError("sample 2 is bad")
        return items

    ok, failed = [], []
    guarded_batch(bad_two, [1, 2, 3], lambda it, out, s: ok.append(it), lambda it, exc: failed.append(it))
    assert ok == [1, 3] and failed == [2]


def test_sequential_multi_turn_edits_each_turn_on_the_previous_output(make_cfg, tmp_path):
    """MagicBrush's reference protocol: turn 2 edits the method's own turn-1 result, turns
    run in order, each is cached, and a changed turn 1 recomputes turn 2."""
    from test_loaders import _magicbrush

    root = _magicbrush(tmp_path)
    cfg = make_cfg("data=magicbrush", f"data.root={root}", "data.setting=sequential", "metrics=synthetic")
    runner = Runner(cfg, show_progress=False)
    runner.run()
    assert computed(runner) == {"plan": 2, "mask": 2, "edit": 2, "score": 2}
    t1 = R.load_edit(runner.stage_dir("edit", runner.plan_of("327726-t1").category), "327726-t1").image
    fresh = Runner(cfg, show_progress=False)
    assert fresh.sample("327726-t2").request.image.tobytes() == t1.tobytes()  # not the GT output1
    plan2 = R.read_json(fresh.stage_dir("plan").record("327726-t2"))
    edit1_dir = fresh.stage_dir("edit", fresh.plan_of("327726-t1").category)
    assert plan2["upstream"] == edit1_dir.digest("327726-t1")
    fresh.run()
    assert sum(computed(fresh).values()) == 0
    edit1_dir.record("327726-t1").unlink()  # turn 1 redone identically -> turn 2 kept
    again = Runner(cfg, show_progress=False)
    again.run()
    assert computed(again) == {"plan": 0, "mask": 0, "edit": 1, "score": 0}
    first = R.load_edit(edit1_dir, "327726-t1")  # turn 1 came out differently -> turn 2 redone
    changed = dataclasses.replace(first, image=ImageOps.invert(first.image))
    kept = R.read_json(edit1_dir.record("327726-t1"))
    R.save_edit(edit1_dir, "327726-t1", changed, {k: kept[k] for k in ("route", "upstream", "seconds")})
    third = Runner(cfg, show_progress=False)
    third.run()
    assert computed(third) == {"plan": 1, "mask": 1, "edit": 1, "score": 2}
    assert third.sample("327726-t2").request.image.tobytes() == changed.image.tobytes()
