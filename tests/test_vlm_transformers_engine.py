"""``vlm.engine=transformers``: the tiny random Qwen2.5-VL answers the planner's and the
judge's schemas through Hugging Face ``generate`` + xgrammar, with no server and no vLLM.

The tiny model writes no JSON on its own (checked below), so every reply that parses here
parses because decoding is constrained by the very schema the server path sends.
"""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("xgrammar")

from test_judge import _item  # noqa: E402
from test_vlm_planner import FakeFallback, make_request  # noqa: E402

from iiie.metrics.judge import MagicJudge, parse_judge_reply  # noqa: E402
from iiie.pipeline.runner import Runner  # noqa: E402
from iiie.planners.vlm import VLMPlanner  # noqa: E402
from iiie.planners.vlm_offline import VLMOfflinePlanner  # noqa: E402
from iiie.types import Category  # noqa: E402
from iiie.vlm.dialogue import Call  # noqa: E402
from iiie.vlm.engines import EngineClient  # noqa: E402
from iiie.vlm.hf_engine import TransformersEngine  # noqa: E402
from iiie.vlm.images import prepare_image  # noqa: E402
from iiie.vlm.schema import parse_reply, response_format  # noqa: E402
from iiie.vlm.settings import VLMSettings  # noqa: E402
from iiie.weights import MissingWeightsError  # noqa: E402

SINGLE = ("category", "object", "target_prompt", "source_caption", "target_caption", "box", "object_box")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from iiie.tiny_weights import qwen2_5_vl

    return qwen2_5_vl.ensure(tmp_path_factory.mktemp("tiny"))


def _vlm(folder, **kw) -> dict:
    """The tiny config's values (conf/vlm/tiny_qwen2_5_vl.yaml), as a plain ``vlm`` node."""
    node = {
        "model": "tiny_qwen2_5_vl", "family": "qwen2_5_vl", "engine": "transformers",
        "min_pixels": 3136, "max_pixels": 12544, "max_tokens": 192, "concurrency": 4,
        "serve": {"model_path": str(folder), "dtype": "float32"},
    }
    node.update(kw)
    return node


def _messages(text: str = "remove the cup") -> list[dict]:
    from PIL import Image

    image = prepare_image(Image.new("RGB", (64, 48), (200, 30, 30)), 3136, 12544)
    return [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image.data_url}}, {"type": "text", "text": text},
    ]}]


def test_engine_replies_follow_the_schema_only_when_constrained(tiny):
    vlm = _vlm(tiny)
    engine = TransformersEngine(VLMSettings.from_config(vlm), vlm["serve"])
    schema = response_format(SINGLE, "plan")
    calls = [Call(_messages(), schema, "plan"), Call(_messages("make it winter"), schema, "plan")]
    start = time.perf_counter()
    replies = engine.chat(calls, [1, 2])
    per_call = (time.perf_counter() - start) / len(calls)
    for reply in replies:
        assert reply.finish_reason == "stop", reply
        values = parse_reply(reply.content, SINGLE)
        assert isinstance(values["category"], Category)
        assert list(json.loads(reply.content)) == list(SINGLE)  # the schema's keys, in order
    print(f"tiny single_call reply: {per_call:.3f} s per call")
    # the same request without the schema: the tiny model on its own writes no JSON
    free = engine.chat([Call(_messages(), {}, "plan")], [1])[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(free.content)


def test_planner_through_the_engine_makes_plans_with_no_schema_failure(tiny):
    for planner_cls in (VLMPlanner, VLMOfflinePlanner):
        planner = planner_cls(_vlm(tiny), fallback=FakeFallback())
        plans = planner.plan_batch([make_request(0, "remove the cup"), make_request(1, "make it winter")])
        stats = planner.stats()
        assert [p.fallback_reason for p in plans] == [None, None], planner_cls
        assert all(isinstance(p.category, Category) for p in plans)
        assert stats["engine"] == "transformers" and stats["schema_failures"] == 0
        assert stats["requests"] >= 2 * 2 and stats.get("fallbacks", 0) == 0
        if planner_cls is VLMPlanner:
            assert isinstance(planner.client, EngineClient)
            planner.close()
        else:
            assert isinstance(planner.engine, TransformersEngine)


def test_judge_through_the_engine_votes_with_no_malformed_reply(tiny):
    judge = MagicJudge(_vlm(tiny), samples=3, temperature=0.7)
    rows = judge.score_batch([_item("a"), _item("b", "remove the ball")])
    stats = judge.stats()
    assert stats["engine"] == "transformers" and stats["schema_failures"] == 0
    assert stats["requests"] == 2 * 3 * len(judge.prompts.questions)
    for sid, row in zip("ab", rows, strict=True):
        assert set(row) == set(MagicJudge.COLUMNS) and set(row.values()) <= {0.0, 1.0}
        for vote in judge.details[sid]["votes"]:
            q = next(q for q in judge.prompts.questions if q.name == vote["question"])
            parse_judge_reply(vote["attempts"][0]["reply"], q.fields)  # first try parses
    judge.close()


def test_composed_run_records_the_engine_and_no_schema_failure(make_cfg, tiny):
    cfg = make_cfg(
        "data.n=3", "data.odd_inputs=false", "planner=vlm", "vlm=tiny_qwen2_5_vl",
        "vlm.engine=transformers", f"vlm.serve.model_path={tiny}",
    )
    runner = Runner(cfg, show_progress=False)
    runner.run()
    plan = runner.manifest(0)["stages"]["plan"]
    assert plan["computed"] == 3 and plan["errors"] == 0
    assert plan["backend"]["engine"] == "transformers"
    assert plan["backend"]["schema_failures"] == 0 and plan["backend"]["requests"] >= 3
    assert all(runner.plan_of(i).fallback_reason is None for i in runner.ids)


def test_bad_model_path_names_the_folder(tmp_path):
    missing = tmp_path / "no_such_model"
    planner = VLMPlanner(_vlm(missing), fallback=FakeFallback())
    with pytest.raises(MissingWeightsError, match=str(missing)):
        planner.plan_batch([make_request(0, "remove the cup")])
    planner.close()
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match=r"empty.*lacks: config\.json"):
        MagicJudge(_vlm(tmp_path / "empty"), samples=1).check()


def test_the_folder_generation_config_adds_nothing(tiny):
    """As ``vllm serve --generation-config vllm``: sampling comes from ``vlm`` only."""
    vlm = _vlm(tiny, temperature=0.0)
    engine = TransformersEngine(VLMSettings.from_config(vlm), vlm["serve"])
    call = Call(_messages(), {}, "free")  # unconstrained: the penalty would show at once
    plain = engine.chat([call], [3])[0].content
    gen = engine.load()["model"].generation_config
    saved = (gen.repetition_penalty, gen.do_sample, gen.temperature)
    gen.repetition_penalty, gen.do_sample, gen.temperature = 50.0, True, 5.0
    try:
        assert engine.chat([call], [3])[0].content == plain
    finally:
        gen.repetition_penalty, gen.do_sample, gen.temperature = saved


def test_unknown_engine_and_extra_body_are_refused(tiny):
    with pytest.raises(ValueError, match="vlm.engine must be one of"):
        VLMSettings(engine="tgi")
    with pytest.raises(ValueError, match="presence_penalty"):
        vlm = _vlm(tiny, extra_body={"presence_penalty": 0.5})
        TransformersEngine(VLMSettings.from_config(vlm), vlm["serve"])
