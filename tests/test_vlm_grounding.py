"""Object grounding by the VLM planner (``planner.ground_objects``) for ``masker=vlm_box``.

For local/remove/background edits the planner also asks for the box of ``plan.object``
(the subject kept, for background) and stores it in ``plan.raw["object_box"]`` in
original-image pixels. These tests run the planner against the local stub server
(tests/openai_stub_server.py) and, at the end, feed its plans to ``masker=vlm_box`` with a
tiny random-weight SAM to check the box reaches SAM unchanged.
"""

from __future__ import annotations

import json

import pytest
from openai_stub_server import Fault, Reply, server_pool
from test_vlm_planner import (
    MAX_PIXELS,
    MIN_PIXELS,
    SIZE,
    TRUTH,
    FakeFallback,
    instruction_of,
    make_planner,
    make_request,
    scripted_model,
)

from iiie.errors import TransientBackendError
from iiie.types import Category, Plan
from iiie.vlm.images import resized_size

GROUNDED = {"make the car red": "local", "remove the cup": "remove",
            "put the dog on a beach": "background"}
LOCAL = "make the car red"


@pytest.fixture
def make_server():
    """``make_server(**StubServer kwargs)`` -> a started local server, stopped after the test."""
    with server_pool() as make:
        yield make


def box_turns(server) -> list:
    return [r for r in server.requests if "object_box" in r.schema_properties]


def grid_tolerance(image_size) -> float:
    """One pixel of the grid the model answered on, or of a 0-1000 scale, in original pixels."""
    return max(SIZE[0] / image_size[0], SIZE[1] / image_size[1], SIZE[0] / 1000) + 0.01


# ----------------------------------------------------------------------------- which turns


def test_box_question_only_for_local_remove_background(make_server):
    server = make_server(model="test-vlm", responder=scripted_model())
    with make_planner(server) as planner:
        plans = planner.plan_batch([make_request(i, t) for i, t in enumerate(TRUTH)])
    asked = box_turns(server)
    assert sorted(instruction_of(r) for r in asked) == sorted(GROUNDED)
    grid = resized_size(SIZE, MIN_PIXELS, MAX_PIXELS)
    for req in asked:
        # last question of its dialogue, after the object was named; hint = the grid seen
        assert sorted(req.schema_properties) == ["object_box"]
        assert f"{grid[0]}x{grid[1]}" in req.last_user_text
        assert TRUTH[instruction_of(req)]["object"] in req.last_user_text
    # the box question comes after every other answer of its sample
    for text in GROUNDED:
        mine = [r for r in server.requests if instruction_of(r) == text]
        assert "object_box" in mine[-1].schema_properties
        assert all("object_box" not in r.schema_properties for r in mine[:-1])
    for plan, (text, truth) in zip(plans, TRUTH.items(), strict=True):
        if text in GROUNDED:
            assert plan.raw["object_box"] == pytest.approx(truth["object_box"], abs=grid_tolerance(grid))
            assert plan.raw["object_box_raw"] is not None and "object_box_reason" not in plan.raw
        else:
            assert "object_box" not in plan.raw
        json.dumps(plan.to_dict())  # plain JSON for the plan stage


def test_single_call_schema_has_a_nullable_object_box(make_server):
    server = make_server(model="test-vlm", responder=scripted_model())
    with make_planner(server, strategy="single_call") as planner:
        plans = planner.plan_batch([make_request(i, t) for i, t in enumerate(TRUTH)])
    schema = server.requests[0].schema
    assert "object_box" in schema["required"] and schema["additionalProperties"] is False
    array, null = schema["properties"]["object_box"]["anyOf"]
    assert array == {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
    assert null == {"type": "null"}
    assert "object_box" in server.requests[0].last_user_text
    assert len(server.requests) == 5  # no extra turn in single_call
    by_text = dict(zip(TRUTH, plans, strict=True))
    grid = resized_size(SIZE, MIN_PIXELS, MAX_PIXELS)
    for text in GROUNDED:
        want = TRUTH[text]["object_box"]
        assert by_text[text].raw["object_box"] == pytest.approx(want, abs=grid_tolerance(grid))
    # the model's null for addition/global is not an object box of theirs
    assert "object_box" not in by_text["add a hat on the cat"].raw


@pytest.mark.parametrize(
    ("family", "coords", "strategy"),
    [
        ("qwen2_5_vl", None, "multi_turn"),  # absolute pixels of the resized input
        ("qwen2_vl", None, "multi_turn"),  # 0-1000 relative
        ("qwen3_vl", None, "single_call"),  # 0-1000 relative, patch 16
        ("qwen2_5_vl", "relative_1", "multi_turn"),  # 0-1 fractions (explicit override)
        ("qwen2_5_vl", "relative_1", "single_call"),
    ],
)
def test_each_coordinate_convention_converts_to_original_pixels(make_server, family, coords, strategy):
    convention = coords or {"qwen2_5_vl": "absolute_resized"}.get(family, "relative_1000")
    server = make_server(model="test-vlm", responder=scripted_model(convention))
    extra = {"coords": coords} if coords else {}
    if family == "qwen3_vl":
        extra.update(min_pixels=4 * 32 * 32, max_pixels=64 * 32 * 32)
    with make_planner(server, strategy=strategy, family=family, **extra) as planner:
        plans = planner.plan_batch([make_request(i, t) for i, t in enumerate(GROUNDED)])
    seen = server.requests[0].images()[0].size
    for plan, text in zip(plans, GROUNDED, strict=True):
        assert plan.fallback_reason is None
        assert plan.raw["coords"] == convention
        assert plan.raw["object_box"] == pytest.approx(TRUTH[text]["object_box"], abs=grid_tolerance(seen))
    hint = {"absolute_resized": f"{seen[0]}x{seen[1]}", "relative_1000": "0-1000",
            "relative_1": "from 0 to 1"}[convention]
    assert hint in box_turns(server)[0].last_user_text


def test_exact_conversion_and_clamping_per_convention(make_server):
    """Hand-picked model answers, checked to the pixel: the image is 320x240, the grid seen
    is read from the request."""
    answers = {"relative_1000": [250, 500, 750, 1100], "relative_1": [0.25, 0.5, 0.75, 1.2]}
    for convention, answer in answers.items():
        server = make_server(model="test-vlm", responder=scripted_model(convention))
        server.script(Reply({"category": "remove"}), Reply({"object": "cup"}),
                      Reply({"object_box": answer}))
        with make_planner(server, coords=convention) as planner:
            (plan,) = planner.plan_batch([make_request(0, "remove the cup")])
        assert plan.raw["object_box"] == pytest.approx([80.0, 120.0, 240.0, 240.0])  # y clamped
        assert plan.raw["object_box_raw"] == answer
    server = make_server(model="test-vlm", responder=scripted_model())
    grid = resized_size(SIZE, MIN_PIXELS, MAX_PIXELS)
    server.script(Reply({"category": "remove"}), Reply({"object": "cup"}),
                  Reply({"object_box": [grid[0] / 4, grid[1] / 2, grid[0] * 3 / 4, grid[1]]}))
    with make_planner(server) as planner:  # absolute pixels of the grid seen
        (plan,) = planner.plan_batch([make_request(0, "remove the cup")])
    assert plan.raw["object_box"] == pytest.approx([80.0, 120.0, 240.0, 240.0])


# ----------------------------------------------------------------------------- bad boxes


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ([100, 50, 100, 90], "box_degenerate"),  # zero width
        ([2000, 2000, 2100, 2100], "box_outside_image"),
        ([1, 2, 3], "box_invalid"),  # malformed: three numbers
        (["a", "b", "c", "d"], "box_invalid"),
        ("Sure, the car is on the left.", "schema"),  # not JSON at all
    ],
)
def test_unusable_box_costs_the_box_not_the_plan(make_server, bad, reason):
    def respond(req):
        if "object_box" in req.schema_properties:
            return bad if isinstance(bad, str) else {"object_box": bad}
        return scripted_model()(req)

    server = make_server(model="test-vlm", responder=respond)
    fallback = FakeFallback()
    with make_planner(server, fallback) as planner:
        (plan,) = planner.plan_batch([make_request(0, LOCAL)])
        stats = planner.stats()
    # every other answer is the VLM's; the rule fallback was not asked
    assert plan.fallback_reason is None and fallback.calls == []
    assert (plan.category, plan.object, plan.target_prompt) == (Category.LOCAL, "car", "a shiny red car")
    assert plan.raw["object_box"] is None and plan.raw["object_box_reason"] == reason
    assert plan.raw["object_box_detail"].startswith("local_object_box")
    # one repair of the box question, then the plan goes on without a box
    assert len(box_turns(server)) == 2 and stats["repairs"] == 1
    assert "could not be used" in server.requests[-1].last_user_text
    assert stats["object_box_missing"] == 1 and stats[f"object_box_missing.{reason}"] == 1
    assert stats.get("fallbacks", 0) == 0


def test_box_repair_can_succeed(make_server):
    server = make_server(model="test-vlm", responder=scripted_model())
    server.script(Reply({"category": "remove"}), Reply({"object": "cup"}),
                  Reply({"object_box": [10, 10, 10, 40]}))
    with make_planner(server) as planner:
        (plan,) = planner.plan_batch([make_request(0, "remove the cup")])
    assert plan.raw["object_box"] is not None and "object_box_reason" not in plan.raw
    assert "object box" in server.requests[3].last_user_text  # the repair said what was wrong
    assert plan.raw["turns"][2]["error"].startswith("the object box")


def test_null_means_not_found_without_a_repair(make_server):
    server = make_server(model="test-vlm", responder=scripted_model())
    server.script(Reply({"category": "remove"}), Reply({"object": "cup"}), Reply({"object_box": None}))
    with make_planner(server) as planner:
        (plan,) = planner.plan_batch([make_request(0, "remove the cup")])
        stats = planner.stats()
    assert len(server.requests) == 3 and stats.get("repairs", 0) == 0
    assert plan.fallback_reason is None and plan.object == "cup"
    assert plan.raw["object_box"] is None and plan.raw["object_box_reason"] == "box_not_found"


def test_single_call_bad_box_is_recorded_without_a_repair(make_server):
    server = make_server(model="test-vlm", responder=scripted_model(
        overrides={LOCAL: {"object_box": (50.0, 50.0, 50.0, 100.0)}}))  # zero width
    fallback = FakeFallback()
    with make_planner(server, fallback, strategy="single_call") as planner:
        (plan,) = planner.plan_batch([make_request(0, LOCAL)])
        stats = planner.stats()
    assert len(server.requests) == 1 and stats.get("repairs", 0) == 0 and fallback.calls == []
    assert plan.fallback_reason is None and plan.object == "car"
    assert plan.raw["object_box"] is None and plan.raw["object_box_reason"] == "box_degenerate"


def test_transport_failure_on_the_box_question_is_retryable(make_server):
    """A 5xx storm on the box turn is an outage, not a plan without a box: caching the
    plan would keep a degraded mask forever, so the sample stays retryable."""
    model = scripted_model()
    server = make_server(model="test-vlm", responder=lambda req: (
        Fault(500, "engine died") if "object_box" in req.schema_properties else model(req)))
    fallback = FakeFallback()
    with make_planner(server, fallback, retries=1) as planner:
        (plan,) = planner.plan_batch([make_request(0, "put the dog on a beach")])
    assert isinstance(plan, TransientBackendError) and fallback.calls == []
    assert "http_500" in str(plan) and "not cached" in str(plan)


# ----------------------------------------------------------------------------- the switch


@pytest.mark.parametrize("strategy", ["multi_turn", "single_call"])
def test_ground_objects_false_sends_no_extra_request(make_server, strategy):
    server = make_server(model="test-vlm", responder=scripted_model())
    with make_planner_opts(server, strategy=strategy, ground_objects=False) as planner:
        plans = planner.plan_batch([make_request(i, t) for i, t in enumerate(TRUTH)])
        stats = planner.stats()
    assert box_turns(server) == []
    assert len(server.requests) == {"multi_turn": 3 + 2 + 3 + 3 + 2, "single_call": 5}[strategy]
    assert all(p.fallback_reason is None for p in plans)
    for plan, text in zip(plans, TRUTH, strict=True):
        if text in GROUNDED:
            assert plan.raw["object_box"] is None and plan.raw["object_box_reason"] == "disabled"
        assert plan.raw["ground_objects"] is False
    assert "object_boxes" not in stats and "object_box_missing" not in stats


def make_planner_opts(server, strategy="multi_turn", **planner_kwargs):
    """``make_planner`` with planner (not vlm) keyword arguments."""
    from iiie.planners.vlm import VLMPlanner

    base = make_planner(server, strategy=strategy)
    settings, fallback = base.settings, base.fallback
    base.close()
    return VLMPlanner(settings, strategy=strategy, fallback=fallback, **planner_kwargs)


def test_prompt_sets_without_grounding_need_the_switch_off(make_server):
    server = make_server(model="test-vlm", responder=scripted_model())
    with pytest.raises(ValueError, match="ground_objects=false"):
        make_planner_opts(server, prompt_version="v1")
    with make_planner_opts(server, prompt_version="v1", ground_objects=False) as planner:
        (plan,) = planner.plan_batch([make_request(0, "remove the cup")])
    assert plan.raw["prompt_version"] == "v1" and plan.raw["object_box_reason"] == "disabled"
    assert len(server.requests) == 2


def test_switch_from_the_hydra_config(make_server, make_cfg):
    from hydra.utils import instantiate

    server = make_server(model="test-vlm", responder=scripted_model())
    base = ["planner=vlm", f"vlm.base_url={server.base_url}", "vlm.model=test-vlm",
            "planner.fallback._target_=test_vlm_planner.FakeFallback"]
    on = instantiate(make_cfg(*base).planner, _convert_="all")
    off = instantiate(make_cfg(*base, "planner.ground_objects=false").planner, _convert_="all")
    assert on.ground_objects is True and on.prompts.version == "v2" and on.prompts.asks_object_box
    assert off.ground_objects is False and not off.prompts.asks_object_box
    on.close()
    off.close()


# ----------------------------------------------------------------------------- vlm_box e2e


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from iiie.maskers import tiny

    return tiny.ensure(tmp_path_factory.getbasetemp() / "tiny_masker_weights")


@pytest.mark.timeout(300)
def test_vlm_box_masker_segments_the_planners_box(make_server, tiny_root, monkeypatch):
    """planner=vlm -> plan.raw["object_box"] -> masker=vlm_box: the box SAM is prompted with
    is the planner's, for an object to edit and for a background subject to keep."""
    from iiie.maskers.vlm_box import VlmBoxMasker

    server = make_server(model="test-vlm", responder=scripted_model("relative_1000"))
    requests = [make_request(0, "remove the cup"), make_request(1, "put the dog on a beach"),
                make_request(2, "make it winter")]
    with make_planner(server, family="qwen2_vl") as planner:
        plans = planner.plan_batch(requests)
    masker = VlmBoxMasker(sam=str(tiny_root / "sam"), device="cpu")
    segmenter = masker.segmenter()
    prompted: list = []
    real = segmenter.segment_batch

    def spy(images, boxes):
        prompted.extend([list(b) for b in boxes])
        return real(images, boxes)

    monkeypatch.setattr(segmenter, "segment_batch", spy)
    results = masker.mask_batch(requests, plans)
    remove, background, winter = results
    want = [tuple(plans[0].raw["object_box"]), tuple(plans[1].raw["object_box"])]
    assert prompted == [[want[0]], [want[1]]]  # one SAM prompt per grounded plan, the planner's box
    assert remove.boxes == [want[0]] and background.boxes == [want[1]]
    assert remove.source.startswith("vlm_box:") and remove.source.endswith(":vlm")
    assert want[0] == pytest.approx(TRUTH["remove the cup"]["object_box"], abs=1)
    assert remove.mask.shape == background.mask.shape == (SIZE[1], SIZE[0])
    assert winter.mask.all() and masker.stats().get("empty:skip", 0) == 0


def test_vlm_box_masker_refuses_plans_made_without_grounding(make_server, tiny_root):
    """planner.ground_objects=false can never give boxes: a configuration error for the
    whole run (naming the fix), not one silent per-sample failure after another."""
    from iiie.errors import IncompatibleComponentsError
    from iiie.maskers.vlm_box import VlmBoxMasker

    server = make_server(model="test-vlm", responder=scripted_model())
    with make_planner_opts(server, ground_objects=False) as planner:
        (plan,) = planner.plan_batch([make_request(0, "remove the cup")])
    assert isinstance(plan, Plan) and plan.raw["object_box"] is None
    masker = VlmBoxMasker(sam=str(tiny_root / "sam"), device="cpu", on_empty="full")
    with pytest.raises(IncompatibleComponentsError, match="planner.ground_objects=true"):
        masker.mask_batch([make_request(0, "remove the cup")], [plan])
