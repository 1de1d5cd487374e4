"""``vlm.engine=transformers``: the tiny random Qwen2.5-VL answers the planner's and the
judge's schemas through Hugging Face ``generate`` + xgrammar, with no server and no vLLM.

The tiny model writes no JSON on its own (checked below), so every reply that parses here
parses because decoding is constrained by the very schema the server path sends.
"""

from __future__ import annotations

import json
import re
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
    with pytest.raises(MissingWeightsError, match=re.escape(str(missing))):
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


class _RejectingEngine:
    """The scripted engine of test_vlm_offline, refusing (ValueError) one instruction."""

    name = "fake"

    def __init__(self) -> None:
        from test_vlm_offline import FakeEngine

        self.inner = FakeEngine()
        self.batches: list[int] = []

    def chat(self, calls, seeds):
        self.batches.append(len(calls))
        if any("REFUSE" in json.dumps(c.messages) for c in calls):
            raise ValueError("prompt too long")
        return self.inner.chat(calls, seeds)


def test_engine_client_batches_concurrent_dialogues_and_isolates_a_refused_call():
    from test_vlm_planner import TRUTH

    planner = VLMPlanner({"model": "test-vlm", "family": "qwen2_5_vl", "min_pixels": 3136,
                          "max_pixels": 50176, "engine": "vllm"}, fallback=FakeFallback())
    engine = _RejectingEngine()
    planner._client = EngineClient(engine, planner.settings, planner._stats)
    requests = [make_request(i, t) for i, t in enumerate(TRUTH)] + [make_request(9, "REFUSE this")]
    plans = planner.plan_batch(requests)
    assert [p.category.value for p in plans[:-1]] == [t["category"] for t in TRUTH.values()]
    assert plans[-1].fallback_reason == "engine_rejected"  # alone: the others were answered
    assert max(engine.batches) > 1  # concurrent dialogues shared engine batches
    assert planner.stats()["engine"] == "vllm"
    planner.close()


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_the_config_picks_the_class_and_the_processor_keeps_the_client_grid(tiny, tmp_path, family):
    """The model sees the image :func:`prepare_image` made, not resized again by the
    folder's processor (whose own max_pixels is smaller here), so the grid is the one the
    box conversion assumes, as with vLLM."""
    from PIL import Image

    from iiie.tiny_weights import qwen3_vl

    folder = tiny if family == "qwen2_5_vl" else qwen3_vl.ensure(tmp_path)
    patch = 14 if family == "qwen2_5_vl" else 16
    unit = (2 * patch) ** 2
    vlm = _vlm(folder, family=family, min_pixels=4 * unit, max_pixels=40 * unit)
    s = VLMSettings.from_config(vlm)
    engine = TransformersEngine(s, vlm["serve"])
    bundle = engine.load()
    assert type(bundle["model"]).__name__ == {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
                                              "qwen3_vl": "Qwen3VLForConditionalGeneration"}[family]
    image = prepare_image(Image.new("RGB", (300, 130), (10, 200, 10)), s.min_pixels, s.max_pixels, patch)
    assert image.size[0] * image.size[1] > 16 * unit  # above the folder processor's own limit
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image.data_url}}, {"type": "text", "text": "remove it"}]}]
    call = Call(messages, response_format(SINGLE, "plan"), "plan")
    grid = engine.inputs(bundle, call)["image_grid_thw"]
    assert grid.tolist() == [[1, image.size[1] // patch, image.size[0] // patch]]
    reply = engine.chat([call], [0])[0]
    assert parse_reply(reply.content, SINGLE)["category"] in set(Category)
