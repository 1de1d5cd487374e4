"""Verify-and-retry on the tiny profile with a scripted judge: exactly the samples the
judge fails are redone, the passing result is kept, every round is recorded, and a re-run
recomputes nothing."""
# ruff: noqa: F811  (pytest fixtures imported from openai_stub_server are parameters here)

from __future__ import annotations

import re
import threading

import pytest
from openai_stub_server import Fault, Reply, stub_server_factory  # noqa: F401 (fixture)

from iiie.pipeline import records as R
from iiie.pipeline.runner import Runner
from iiie.run import run_prepare

TINY = (
    "experiment=tiny", "data.n=5",
    # BrushNet on every route: one tiny model to generate, the retries are what is tested
    "editor@editor.remove=tiny/brushnet", "editor@editor.global=tiny/brushnet",
    "editor@editor.addition=tiny/brushnet", "editor.local.steps=2",
    "prepare=[{_target_:iiie.tiny_weights.brushnet.ensure,root:'${paths.cache}/tiny'}]",
    "metrics=synthetic", "verify=judge", "vlm.model=judge", "vlm.retries=0", "vlm.concurrency=2",
    f"vlm.min_pixels={4 * 28 * 28}", f"vlm.max_pixels={16 * 28 * 28}",
)


class Judge:
    """Scripted verdicts per instruction: ``script[instruction]`` is the list of replies
    for its 1st, 2nd, ... request (the last repeats); everything else passes."""

    def __init__(self, script: dict[str, list[tuple[str, str, int]]]):
        self.script, self.seen, self.lock = script, {}, threading.Lock()

    def __call__(self, req):
        if req.schema_properties != {"success", "failed_step", "score"}:
            return Fault(400, "not a verify request")
        instruction = re.search(r'"(.*)"', req.last_user_text).group(1)
        with self.lock:
            n = self.seen[instruction] = self.seen.get(instruction, 0) + 1
        replies = self.script.get(instruction, [("yes", "none", 8)])
        ok, step, score = replies[min(n, len(replies)) - 1]
        return Reply(f'{{"success": "{ok}", "failed_step": "{step}", "score": {score}}}')


def test_verify_retries_exactly_the_failed_samples_and_a_rerun_recomputes_nothing(make_cfg, stub_server_factory):
    probe = Runner(make_cfg(*TINY, "vlm.base_url=http://127.0.0.1:9"), show_progress=False)
    instr = {sid: probe.sample(sid).request.instruction for sid in probe.ids}
    assert len(set(instr.values())) == len(instr)  # the script is keyed by instruction
    ids = sorted(instr)
    reseed, dilate, hopeless = ids[0], ids[1], ids[2]
    judge = Judge({
        instr[reseed]: [("no", "inpaint", 2), ("yes", "none", 7)],
        instr[dilate]: [("no", "mask", 3), ("yes", "none", 6)],
        instr[hopeless]: [("no", "category", 1)],  # policy keep: judged once, not retried
    })
    server = stub_server_factory(model="judge", responder=judge)
    cfg = make_cfg(*TINY, f"vlm.base_url={server.base_url}")
    run_prepare(cfg)
    first = Runner(cfg, show_progress=False)
    manifest = first.run()
    v = first.counters["verify"]
    assert v.computed == 5 and v.errors == 0
    assert judge.seen == {**{instr[s]: 1 for s in ids}, instr[reseed]: 2, instr[dilate]: 2}

    def record(sid):
        return R.read_json(first.stage_dir("verify", first.plan_of(sid).category).record(sid))

    r = record(reseed)
    assert [x["action"] for x in r["rounds"]] == ["edit", "reseed"] and r["verified"] and r["kept_round"] == 1
    assert r["rounds"][1]["seed"] != r["rounds"][0]["seed"] and r["rounds"][1]["dilate_px"] == 0
    r = record(dilate)
    assert [x["action"] for x in r["rounds"]] == ["edit", "dilate"] and r["verified"] and r["rounds"][1]["dilate_px"] > 0
    r = record(hopeless)
    assert len(r["rounds"]) == 1 and not r["verified"] and r["rounds"][0]["verdict"]["failed_step"] == "category"
    for sid in ids[3:]:
        r = record(sid)
        assert len(r["rounds"]) == 1 and r["verified"] and r["kept_round"] == 0

    # the kept image is what was scored, and the table gains verified / rounds
    rows = {sid: first.sample_status(sid) for sid in ids}
    assert rows[reseed]["rounds"] == 2.0 and rows[reseed]["verified"] == 1.0
    assert rows[hopeless]["verified"] == 0.0 and rows[ids[4]]["rounds"] == 1.0
    kept = R.load_edit(first.stage_dir("verify", first.plan_of(reseed).category), reseed).image
    original = R.load_edit(first.stage_dir("edit", first.plan_of(reseed).category), reseed).image
    assert kept.tobytes() != original.tobytes()
    # the cost is visible in the manifest
    stats = manifest["stages"]["verify"]["backend"]
    final = max(stats.values(), key=lambda s: s.get("judge_calls", 0))  # one verifier: cumulative counts
    assert final["judge_calls"] == 7 and final["extra_edits"] == 2 and final["verified"] == 4

    second = Runner(cfg, show_progress=False)
    second.run()
    assert {s: c.computed for s, c in second.counters.items()} == dict.fromkeys(second.counters, 0)
    assert sum(judge.seen.values()) == 7


def test_verify_none_keeps_the_open_loop_keys(make_cfg):
    """verify=none adds no stage and leaves every existing cache key as it was."""
    plain = Runner(make_cfg("data.n=2"), show_progress=False)
    assert "verify" not in plain.stages and plain.stages["score"].upstream == "edit"
    judged = Runner(make_cfg("data.n=2", "verify=judge"), show_progress=False)
    assert judged.stages["score"].upstream == "verify"
    assert judged.keys["edit"] == plain.keys["edit"] and judged.keys["score"] != plain.keys["score"]


def test_verify_rejects_a_bad_policy():
    from iiie.verify import EditVerifier

    with pytest.raises(ValueError, match="verify.policy"):
        EditVerifier(vlm={"base_url": "http://127.0.0.1:9", "model": "m"}, policy={"mask": "pray"})


def test_best_of_keeps_the_judges_favourite_and_an_outage_stays_retryable(make_cfg, stub_server_factory):
    probe = Runner(make_cfg(*TINY, "data.n=2", "vlm.base_url=http://127.0.0.1:9"), show_progress=False)
    a, b = sorted(probe.ids)
    ia, ib = (probe.sample(s).request.instruction for s in (a, b))
    script = {ia: [("yes", "none", 3), ("yes", "none", 9)], ib: [("yes", "none", 5)]}
    down = {"on": True}

    def responder(req):
        if down["on"] and ib in req.last_user_text:
            return Fault(503, "engine restarting")
        return judge(req)

    judge = Judge(script)
    server = stub_server_factory(model="judge", responder=responder)
    cfg = make_cfg(*TINY, "data.n=2", "verify.best_of=2", f"vlm.base_url={server.base_url}")
    run_prepare(cfg)
    first = Runner(cfg, show_progress=False)
    first.run()
    rec = R.read_json(first.stage_dir("verify", first.plan_of(a).category).record(a))
    assert [r["action"] for r in rec["rounds"]] == ["edit", "best_of"]
    assert max(r["verdict"]["score"] for r in rec["rounds"]) == 9
    kept = [r for r in rec["rounds"] if r["verdict"]["score"] == 9][0]
    assert kept["seed"] == R.load_edit(first.stage_dir("verify", first.plan_of(a).category), a).seed
    err = R.load_error(first.stage_dir("verify", first.plan_of(b).category), b)
    assert err["retryable"] and first.counters["verify"].retryable_errors == 1

    down["on"] = False  # the server is back: only the lost sample is verified again
    second = Runner(cfg, show_progress=False)
    second.run()
    assert second.counters["verify"].computed == 1 and second.counters["verify"].cached == 1
    assert "failed_stage" not in second.sample_status(b)
