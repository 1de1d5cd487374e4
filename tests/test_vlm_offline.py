"""``planner=vlm_offline``: the same dialogues batched through an ``LLM.chat``-like engine.

vllm needs a GPU and is not installed for the tests; the engine is replaced by a fake that
answers like the scripted model of test_vlm_planner, so the batching, repair and fallback
logic run for real. The missing-vllm error is checked too.
"""

from __future__ import annotations

import importlib.util

import pytest
from openai_stub_server import ChatRequest
from test_vlm_planner import (
    MAX_PIXELS,
    MIN_PIXELS,
    TRUTH,
    FakeFallback,
    make_request,
    scripted_model,
)

from iiie.errors import BackendUnavailableError
from iiie.planners.vlm_offline import VLMOfflinePlanner
from iiie.types import Category
from iiie.vlm.client import ChatResult

SETTINGS = {
    "model": "test-vlm",
    "family": "qwen2_5_vl",
    "min_pixels": MIN_PIXELS,
    "max_pixels": MAX_PIXELS,
    "serve": {"model_path": "/nowhere"},
}


class FakeEngine:
    """Answers each call like the scripted model; records the rounds."""

    def __init__(self, broken: int = 0) -> None:
        self.respond = scripted_model()
        self.rounds: list[int] = []
        self.seeds: list[int | None] = []
        self.broken = broken  # how many first replies are broken JSON

    def chat(self, calls, seeds):
        self.rounds.append(len(calls))
        self.seeds.extend(seeds)
        out = []
        for call in calls:
            req = ChatRequest({"messages": call.messages, "response_format": call.response_format}, {}, 0)
            if self.broken > 0:
                self.broken -= 1
                out.append(ChatResult('{"category": ', "length"))
                continue
            import json

            out.append(ChatResult(json.dumps(self.respond(req)), "stop"))
        return out


def test_offline_plans_all_categories_in_batched_rounds():
    engine = FakeEngine()
    planner = VLMOfflinePlanner(SETTINGS, engine=engine, fallback=FakeFallback(), batch_size=3)
    plans = planner.plan_batch([make_request(i, t) for i, t in enumerate(TRUTH)])
    assert [p.category.value for p in plans] == [t["category"] for t in TRUTH.values()]
    assert all(p.fallback_reason is None for p in plans)
    add = plans[3]
    assert add.object == "hat" and add.add_box is not None
    # two chunks (3 + 2 samples); each runs rounds of all its pending turns
    # (local 4 turns, remove 3, background 4 | addition 3, global 2)
    assert engine.rounds == [3, 3, 3, 2, 2, 2, 1]
    assert planner.stats()["requests"] == sum(engine.rounds) == 16
    assert plans[1].raw["object_box"] == pytest.approx(TRUTH["remove the cup"]["object_box"], abs=2)
    assert all(s is not None for s in engine.seeds)


def test_offline_repair_then_fallback():
    engine = FakeEngine(broken=3)  # sample 0: broken + broken repair; sample 1: one broken
    fallback = FakeFallback()
    planner = VLMOfflinePlanner(SETTINGS, engine=engine, fallback=fallback, strategy="single_call")
    plans = planner.plan_batch([make_request(0, "remove the cup"), make_request(1, "make it winter")])
    stats = planner.stats()
    assert plans[0].fallback_reason == "schema" and plans[0].object == "fallback object"
    assert plans[0].raw["vlm"]["turns"][0]["finish_reason"] == "length"
    assert plans[1].category is Category.GLOBAL and plans[1].fallback_reason is None
    assert engine.rounds == [2, 2]  # round 2: both repairs (only sample 1 succeeds)
    assert stats["repairs"] == 2 and stats["fallback.schema"] == 1 and fallback.calls == [["s0"]]


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_missing_vllm_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match=r"constraints-gpu\.txt"):
        VLMOfflinePlanner(SETTINGS, fallback=FakeFallback())


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        VLMOfflinePlanner(SETTINGS, engine=FakeEngine(), fallback=FakeFallback(), batch_size=0)


def test_offline_bad_instruction_fails_alone_without_regenerating():
    from iiie.errors import InstructionError

    engine = FakeEngine()
    planner = VLMOfflinePlanner(SETTINGS, engine=engine, fallback=FakeFallback(), strategy="single_call")
    reqs = [make_request(0, "remove the cup"), make_request(1, ""), make_request(2, "make it winter")]
    with pytest.raises(InstructionError, match="empty"):
        planner.plan_batch(reqs)
    assert engine.rounds == [2]
    assert planner.plan_batch([reqs[2]])[0].category is Category.GLOBAL
    assert engine.rounds == [2]  # remembered


# ----------------------------------------------------------------------------- grounding


@pytest.mark.parametrize("strategy", ["multi_turn", "single_call"])
def test_offline_object_boxes_like_the_server_planner(strategy):
    grounded = ["make the car red", "remove the cup", "put the dog on a beach"]
    engine = FakeEngine()
    planner = VLMOfflinePlanner(SETTINGS, engine=engine, fallback=FakeFallback(), strategy=strategy)
    plans = planner.plan_batch([make_request(i, t) for i, t in enumerate([*grounded, "make it winter"])])
    for plan, text in zip(plans, grounded, strict=False):
        assert plan.fallback_reason is None
        assert plan.raw["object_box"] == pytest.approx(TRUTH[text]["object_box"], abs=2)
    assert "object_box" not in plans[3].raw
    assert planner.stats()["object_boxes"] == 3
    # multi_turn: the box is one more round (local 4, remove 3, background 4, global 2)
    assert engine.rounds == {"multi_turn": [4, 4, 3, 2], "single_call": [4]}[strategy]


@pytest.mark.parametrize("strategy", ["multi_turn", "single_call"])
def test_offline_ground_objects_false_saves_the_turn(strategy):
    engine = FakeEngine()
    planner = VLMOfflinePlanner(SETTINGS, engine=engine, fallback=FakeFallback(), strategy=strategy,
                                ground_objects=False)
    (plan,) = planner.plan_batch([make_request(0, "make the car red")])
    assert engine.rounds == {"multi_turn": [1, 1, 1], "single_call": [1]}[strategy]
    assert plan.raw["object_box"] is None and plan.raw["object_box_reason"] == "disabled"


def test_offline_bad_object_box_keeps_the_plan():
    import json

    class BadBoxEngine(FakeEngine):
        def chat(self, calls, seeds):
            out = super().chat(calls, seeds)
            return [ChatResult(json.dumps({"object_box": [5, 5, 5, 9]}), "stop")
                    if "object_box" in c.schema["properties"] else r for c, r in zip(calls, out, strict=True)]

    fallback = FakeFallback()
    engine = BadBoxEngine()
    planner = VLMOfflinePlanner(SETTINGS, engine=engine, fallback=fallback)
    (plan,) = planner.plan_batch([make_request(0, "remove the cup")])
    assert plan.fallback_reason is None and plan.object == "cup" and fallback.calls == []
    assert plan.raw["object_box"] is None and plan.raw["object_box_reason"] == "box_degenerate"
    assert engine.rounds == [1, 1, 1, 1]  # category, object, box, box repair
