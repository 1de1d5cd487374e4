"""The VLM judges against a real local OpenAI-protocol server with scripted votes."""
# ruff: noqa: F811  (pytest fixtures imported from openai_stub_server are parameters here)

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from conftest import compose_config
from hydra.utils import instantiate
from openai_stub_server import Fault, Reply, stub_server_factory  # noqa: F401 (fixture)
from PIL import Image

from iiie.data.base import GroundTruth, Sample
from iiie.errors import BackendUnavailableError
from iiie.metrics.columns import COLUMN_DOCS
from iiie.metrics.judge import JudgeReplyError, MagicJudge, load_judge_prompts, parse_judge_reply
from iiie.metrics.viescore import VIEScore, combine
from iiie.protocols import Scored
from iiie.types import Category, EditRequest, EditResult, MaskResult, Plan
from iiie.vlm.settings import VLMSettings

MODEL = "judge-model"


def _settings(server, **kw) -> VLMSettings:
    base = dict(
        base_url=server.base_url,
        model=MODEL,
        min_pixels=56 * 56,
        max_pixels=112 * 112,
        image_format="PNG",
        retries=2,
        backoff=0.01,
        backoff_max=0.02,
        timeout=10,
    )
    base.update(kw)
    return VLMSettings(**base)


def _item(sid: str, instruction: str = "make the ball red") -> Scored:
    src = Image.new("RGB", (64, 48), (0, 0, 255))
    out = Image.new("RGB", (64, 48), (255, 0, 0))
    return Scored(
        sample=Sample(EditRequest(sid, src, instruction), GroundTruth()),
        plan=Plan(category=Category.LOCAL),
        mask=MaskResult(mask=np.zeros((48, 64), bool)),
        edit=EditResult(image=out, editor="test"),
    )


def _yn(ef, cp, ov) -> dict:
    return {
        "edit_faithfulness": "yes" if ef else "no",
        "content_preservation": "yes" if cp else "no",
        "overall": "yes" if ov else "no",
    }


class SeedScript:
    """Responder: replies chosen by the request's seed; a list is served in call order."""

    def __init__(self):
        self.by_seed: dict[int, list] = {}
        self.calls: dict[int, int] = {}
        self.lock = threading.Lock()

    def set(self, seed, *replies):
        self.by_seed[seed] = list(replies)

    def __call__(self, req):
        with self.lock:
            n = self.calls.get(req.seed, 0)
            self.calls[req.seed] = n + 1
        replies = self.by_seed.get(req.seed)
        if not replies:
            return Fault(400, f"unscripted seed {req.seed}")
        return replies[min(n, len(replies) - 1)]


# ------------------------------------------------------------------ parsing


def test_parse_judge_reply():
    f = {"a": "yesno", "s": "score10"}
    assert parse_judge_reply('{"a": "Yes", "s": 7}', f) == {"a": True, "s": 7}
    assert parse_judge_reply('```json\n{"a": false, "s": "3"}\n```', f) == {"a": False, "s": 3}
    assert parse_judge_reply('Sure: {"a": "no", "s": 10.0} done', f) == {"a": False, "s": 10}
    for bad in [
        "",
        "nope",
        "[1]",
        '{"a": "maybe", "s": 1}',
        '{"a": "yes"}',
        '{"a": "yes", "s": 11}',
        '{"a": "yes", "s": 2.5}',
    ]:
        with pytest.raises(JudgeReplyError):
            parse_judge_reply(bad, f)


def test_prompt_files_load_and_are_checked(tmp_path):
    p = load_judge_prompts("judge_magic_v1")
    assert p.questions[0].images == ("source", "edited")
    assert set(p.questions[0].fields) == {"edit_faithfulness", "content_preservation", "overall"}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "q.txt").write_text("Rate $instruction for $colour")
    (tmp_path / "bad" / "manifest.yaml").write_text(
        "questions:\n  - {name: q, prompt: q.txt, images: [source], fields: {a: yesno}}\n"
    )
    with pytest.raises(ValueError, match="unknown placeholders"):
        load_judge_prompts(str(tmp_path / "bad"))


def test_combine_viescore_by_hand():
    r = combine({"editing_success": 8, "over_editing": 6, "naturalness": 9, "artifacts": 4})
    assert r == {"vie_sc": 6.0, "vie_pq": 4.0, "vie_overall": pytest.approx(math.sqrt(24))}
    assert combine(
        {"editing_success": 8, "over_editing": None, "naturalness": 9, "artifacts": 4}
    ) == {"vie_pq": 4.0}


# ------------------------------------------------------------------ against the stub server


def test_magic_majority_and_request_shape(stub_server_factory):
    script = SeedScript()
    server = stub_server_factory(model=MODEL, responder=script)
    judge = MagicJudge(vlm=_settings(server), samples=3, temperature=0.7)
    votes = {
        "a": [_yn(1, 0, 1), _yn(1, 0, 0), _yn(0, 1, 1)],  # -> 1, 0, 1
        "b": [_yn(0, 1, 0), _yn(0, 1, 0), _yn(1, 1, 1)],  # -> 0, 1, 0
    }
    for sid, vs in votes.items():
        for k, v in enumerate(vs):
            script.set(judge.vote_seed(sid, "magic", k, 0), Reply(v))
    rows = judge.score_batch([_item("a"), _item("b", "add a hat")])
    assert rows == [
        {"edit_faithfulness": 1.0, "content_preservation": 0.0, "overall": 1.0},
        {"edit_faithfulness": 0.0, "content_preservation": 1.0, "overall": 0.0},
    ]
    assert len(server.requests) == 6
    req = next(r for r in server.requests if "add a hat" in r.last_user_text)
    assert req.temperature == 0.7
    assert req.schema_properties == {"edit_faithfulness", "content_preservation", "overall"}
    src, edited = req.images()
    assert src.convert("RGB").getpixel((5, 5)) == (0, 0, 255)  # source first
    assert edited.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    assert len({r.seed for r in server.requests}) == 6  # distinct votes
    d = judge.details["a"]
    assert d["model"] == MODEL and d["prompts"] == "judge_magic_v1" and len(d["votes"]) == 3
    assert d["result"] == rows[0]
    assert all(v["attempts"][0]["reply"] for v in d["votes"])
    judge.close()


def test_malformed_replies_are_reasked_then_dropped(stub_server_factory):
    script = SeedScript()
    server = stub_server_factory(model=MODEL, responder=script)
    judge = MagicJudge(vlm=_settings(server), samples=3, temperature=0.7, parse_retries=1)
    s = judge.vote_seed
    script.set(s("x", "magic", 0, 0), Reply("I think yes"))  # malformed...
    script.set(s("x", "magic", 0, 1), Reply(_yn(1, 1, 1)))  # ...re-asked with a new seed
    script.set(s("x", "magic", 1, 0), Reply({"edit_faithfulness": "yes"}))  # missing fields
    script.set(s("x", "magic", 1, 1), Reply("still not json"))  # lost
    script.set(s("x", "magic", 2, 0), Reply(_yn(1, 0, 1)))
    row = judge.score_batch([_item("x")])[0]
    # two valid votes: yes+yes -> 1; yes+no is a tie -> 0
    assert row == {"edit_faithfulness": 1.0, "content_preservation": 0.0, "overall": 1.0}
    votes = judge.details["x"]["votes"]
    assert [len(v["attempts"]) for v in votes] == [2, 2, 1]
    assert votes[1]["answer"] is None and "malformed" in votes[1]["attempts"][1]["error"]
    judge.close()


def test_transient_server_errors_are_retried(stub_server_factory):
    script = SeedScript()
    server = stub_server_factory(model=MODEL, responder=script)
    judge = MagicJudge(vlm=_settings(server, retries=2), samples=1, temperature=0.0)
    script.set(judge.vote_seed("r", "magic", 0, 0), Fault(503), Fault(500), Reply(_yn(1, 1, 0)))
    assert judge.score_batch([_item("r")]) == [
        {"edit_faithfulness": 1.0, "content_preservation": 1.0, "overall": 0.0}
    ]
    assert len(server.requests) == 3
    assert judge.stats()["retries"] == 2
    judge.close()


def test_a_vote_lost_to_an_outage_is_retryable_not_a_no(stub_server_factory):
    from iiie.errors import TransientBackendError

    script = SeedScript()
    server = stub_server_factory(model=MODEL, responder=script)
    judge = MagicJudge(vlm=_settings(server, retries=1), samples=3, temperature=0.7)
    for k in range(3):
        script.set(judge.vote_seed("ok", "magic", k, 0), Reply(_yn(1, 1, 1)))
        # sample "down": two good votes, one lost to a 503 storm (both attempts)
        good = Reply(_yn(0, 0, 0))
        script.set(judge.vote_seed("down", "magic", k, 0), *([Fault(503), Fault(503)] if k == 2 else [good]))
    rows = judge.score_batch([_item("ok"), _item("down")])
    assert rows[0] == {"edit_faithfulness": 1.0, "content_preservation": 1.0, "overall": 1.0}
    assert isinstance(rows[1], TransientBackendError) and "outage" in str(rows[1])
    assert "down" not in judge.details  # nothing kept for a sample that will be asked again
    judge.close()


def test_failed_votes_give_no_columns(stub_server_factory):
    def responder(req):
        if "broken" in req.last_user_text:
            return Fault(400, "bad request")
        return _yn(1, 1, 1)

    server = stub_server_factory(model=MODEL, responder=responder)
    judge = MagicJudge(vlm=_settings(server), samples=3, temperature=0.7)
    rows = judge.score_batch([_item("f", "broken instruction"), _item("g")])
    assert rows[0] == {} and rows[1]["overall"] == 1.0
    errors = [v["attempts"][0]["error"] for v in judge.details["f"]["votes"]]
    assert len(errors) == 3 and all("http_400" in e for e in errors)
    judge.close()


def test_every_request_rejected_is_a_setup_error(stub_server_factory):
    server = stub_server_factory(
        model=MODEL, responder=lambda req: Fault(400, "At most 1 image(s) may be provided")
    )
    judge = MagicJudge(vlm=_settings(server), samples=3, temperature=0.7)
    with pytest.raises(BackendUnavailableError, match="limit_mm_per_prompt"):
        judge.score_batch([_item("f"), _item("g")])
    judge.close()


def test_health_check_names_the_problem(stub_server_factory):
    server = stub_server_factory(model="other-model")
    judge = MagicJudge(vlm=_settings(server), samples=1, temperature=0.0)
    with pytest.raises(BackendUnavailableError, match="judge-model"):
        judge.score_batch([_item("h")])
    judge.close()


def test_zero_temperature_with_several_votes_is_refused(stub_server_factory):
    server = stub_server_factory(model=MODEL)
    with pytest.raises(ValueError, match="temperature"):
        MagicJudge(vlm=_settings(server), samples=3, temperature=0.0)


def test_viescore(stub_server_factory):
    def responder(req):
        if "naturalness" in req.schema_properties:
            return {"naturalness": 9, "artifacts": 4}
        return {"editing_success": 8, "over_editing": 6}

    server = stub_server_factory(model=MODEL, responder=responder)
    judge = VIEScore(vlm=_settings(server))
    row = judge.score_batch([_item("v")])[0]
    assert row == {"vie_sc": 6.0, "vie_pq": 4.0, "vie_overall": pytest.approx(math.sqrt(24))}
    assert set(row) <= set(COLUMN_DOCS) and set(MagicJudge.COLUMNS) <= set(COLUMN_DOCS)
    pq = next(r for r in server.requests if "naturalness" in r.schema_properties)
    sc = next(r for r in server.requests if "editing_success" in r.schema_properties)
    assert len(pq.images()) == 1 and len(sc.images()) == 2
    assert judge.details["v"]["subscores"]["artifacts"] == 4
    judge.close()


def test_configs_compose_and_instantiate(stub_server_factory):
    server = stub_server_factory(model=MODEL)
    for name, cls in (("judge_magic", MagicJudge), ("viescore", VIEScore)):
        cfg = compose_config(
            [f"metrics={name}", f"vlm.base_url={server.base_url}", f"vlm.model={MODEL}"]
        )
        judge = instantiate(cfg.metrics[name])
        assert isinstance(judge, cls)
        assert judge.settings.base_url == server.base_url
        judge.close()


def test_judge_in_a_pipeline_run(stub_server_factory, make_cfg, tmp_path):
    """metrics=[synthetic,judge_magic] through the run driver: judge columns in the table."""
    from iiie.run import execute

    server = stub_server_factory(model=MODEL, responder=lambda req: _yn(1, 1, 0))
    cfg = make_cfg(
        "data.n=3",
        "data.odd_inputs=false",
        "metrics=[synthetic,judge_magic]",
        f"vlm.base_url={server.base_url}",
        f"vlm.model={MODEL}",
        "vlm.min_pixels=3136",
        "vlm.max_pixels=12544",
        "experiment_name=judged",
    )
    table = execute(cfg)
    overall = table[-1]
    assert overall["edit_faithfulness"] == 1.0 and overall["overall"] == 0.0
    assert "mask_iou" in overall  # the synthetic columns are still there
    assert len(server.requests) == 3 * 3
