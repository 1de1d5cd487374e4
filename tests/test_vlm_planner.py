"""``planner=vlm`` against a real local HTTP server that speaks chat completions like vLLM.

The server (tests/openai_stub_server.py) answers like a model that reads the instruction
and follows the JSON schema of each request; faults (5xx, 429, hangs, dropped
connections, broken JSON, wrong model, no server) are injected per test. No GPU, no weights.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import time

import pytest
from openai_stub_server import (
    ChatRequest,
    Drop,
    Fault,
    Raw,
    Reply,
    follow_schema,
    free_port,
    server_pool,
)
from PIL import Image

from iiie.errors import BackendUnavailableError
from iiie.planners.vlm import VLMPlanner
from iiie.seeding import sample_seed
from iiie.types import Category, EditRequest, Plan
from iiie.vlm.images import resized_size

SIZE = (320, 240)  # original image size in these tests
MIN_PIXELS, MAX_PIXELS = 4 * 28 * 28, 64 * 28 * 28  # tiny grid: fast, still resized

# What the "model" answers per instruction. Boxes (the addition's `box`, the edited
# object's `object_box`) are given as ORIGINAL-pixel boxes and converted to the model's own
# convention by the responder, per family.
BOX_FIELDS = ("box", "object_box")
TRUTH = {
    "make the car red": {
        "category": "local", "object": "car", "target_prompt": "a shiny red car",
        "object_box": (40.0, 100.0, 200.0, 180.0)},
    "remove the cup": {"category": "remove", "object": "cup",
                       "object_box": (250.0, 30.0, 300.0, 90.0)},
    "put the dog on a beach": {
        "category": "background", "object": "dog", "target_prompt": "a sandy beach",
        "object_box": (100.0, 60.0, 220.0, 230.0)},
    "add a hat on the cat": {
        "category": "addition", "object": "hat", "target_prompt": "a red knitted hat",
        "box": (64.0, 24.0, 160.0, 96.0)},
    "make it winter": {
        "category": "global", "source_caption": "a street in summer",
        "target_caption": "a street in winter, covered in snow"},
}


class FakeFallback:
    """Stands in for the rule planner; marks its plans so tests can tell them apart."""

    name = "fake_rules"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def plan_batch(self, requests):
        self.calls.append([r.id for r in requests])
        return [
            Plan(Category.ADDITION, object="fallback object", target_prompt="fallback prompt",
                 add_box=(1.0, 2.0, 30.0, 40.0), raw={"rules": r.instruction})
            for r in requests
        ]


def instruction_of(req: ChatRequest) -> str:
    for text in req.texts("user"):
        match = re.search(r'instruction:? "([^"]*)"', text)
        if match:
            return match.group(1)
    raise AssertionError(f"no instruction in request: {req.texts('user')}")


def model_box(box, coords: str, image_size: tuple[int, int]):
    """An original-pixel box in the model's convention (``image_size`` = the grid it saw)."""
    w, h = SIZE
    x0, y0, x1, y1 = box
    if coords == "absolute_resized":
        rw, rh = image_size
        return [round(x0 * rw / w), round(y0 * rh / h), round(x1 * rw / w), round(y1 * rh / h)]
    if coords == "relative_1000":
        return [round(x0 * 1000 / w), round(y0 * 1000 / h), round(x1 * 1000 / w), round(y1 * 1000 / h)]
    return [x0 / w, y0 / h, x1 / w, y1 / h]


def scripted_model(coords: str = "absolute_resized", overrides: dict | None = None):
    """A responder that answers each schema's fields from TRUTH for the instruction."""

    def respond(req: ChatRequest):
        truth = dict(TRUTH[instruction_of(req)])
        truth.update((overrides or {}).get(instruction_of(req), {}))
        for key in BOX_FIELDS:
            if truth.get(key) is not None:
                image = req_images(req)[0] if req.image_urls() else None
                truth[key] = model_box(truth[key], coords, image.size if image else (0, 0))
        defaults = {"box": [0, 0, 0, 0], "object_box": None}
        answer = {}
        for field in req.schema_properties:
            answer[field] = truth.get(field, defaults.get(field, ""))
        return answer

    return respond


def req_images(req: ChatRequest):
    return req.images()


def make_request(i: int, instruction: str, size=SIZE) -> EditRequest:
    return EditRequest(f"s{i}", Image.new("RGB", size, (40 * i % 255, 90, 160)), instruction)


def make_planner(server, fallback=None, strategy="multi_turn", fallback_on_outage=False, **vlm) -> VLMPlanner:
    settings = {
        "base_url": server.base_url if server is not None else vlm.pop("base_url"),
        "model": "test-vlm",
        "family": "qwen2_5_vl",
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
        "timeout": 10,
        "retries": 2,
        "backoff": 0.01,
        "backoff_max": 0.05,
        "health_timeout": 2,
    }
    settings.update(vlm)
    return VLMPlanner(settings, strategy=strategy, fallback=fallback or FakeFallback(),
                      fallback_on_outage=fallback_on_outage)


@pytest.fixture
def make_server():
    """``make_server(**StubServer kwargs)`` -> a started local server, stopped after the test."""
    with server_pool() as make:
        yield make


@pytest.fixture
def server(make_server):
    return make_server(model="test-vlm", responder=scripted_model())


def requests_for_all_categories() -> list[EditRequest]:
    return [make_request(i, text) for i, text in enumerate(TRUTH)]


# ----------------------------------------------------------------------------- happy path


@pytest.mark.parametrize("strategy", ["multi_turn", "single_call"])
def test_happy_path_all_five_categories(server, strategy):
    fallback = FakeFallback()
    with make_planner(server, fallback, strategy) as planner:
        plans = planner.plan_batch(requests_for_all_categories())
        stats = planner.stats()
    by_cat = {p.category: p for p in plans}
    assert [p.category.value for p in plans] == [t["category"] for t in TRUTH.values()]
    assert all(p.fallback_reason is None for p in plans) and fallback.calls == []
    local = by_cat[Category.LOCAL]
    assert (local.object, local.target_prompt, local.add_box) == ("car", "a shiny red car", None)
    remove = by_cat[Category.REMOVE]
    assert (remove.object, remove.target_prompt) == ("cup", "")
    background = by_cat[Category.BACKGROUND]
    assert (background.object, background.target_prompt) == ("dog", "a sandy beach")
    addition = by_cat[Category.ADDITION]
    assert (addition.object, addition.target_prompt) == ("hat", "a red knitted hat")
    # the box went through the model's grid and back: within one grid pixel of the truth
    grid = resized_size(SIZE, MIN_PIXELS, MAX_PIXELS)
    tol = max(SIZE[0] / grid[0], SIZE[1] / grid[1])
    assert addition.add_box == pytest.approx(TRUTH["add a hat on the cat"]["box"], abs=tol)
    glob = by_cat[Category.GLOBAL]
    assert (glob.source_caption, glob.target_caption) == (
        "a street in summer", "a street in winter, covered in snow")
    assert glob.object == "" and glob.add_box is None
    # grounding (planner.ground_objects, on by default): the edited object's box, in
    # original pixels, for masker=vlm_box; none for addition and global
    for plan in (local, remove, background):
        truth = next(t for t in TRUTH.values() if t.get("object") == plan.object)["object_box"]
        assert plan.raw["object_box"] == pytest.approx(truth, abs=tol)
    assert "object_box" not in addition.raw and "object_box" not in glob.raw
    assert stats["object_boxes"] == 3 and "object_box_missing" not in stats
    # provenance: every reply kept
    assert addition.raw["strategy"] == strategy and addition.raw["prompt_version"] == "v2"
    assert addition.raw["ground_objects"] is True
    assert addition.raw["turns"][-1]["reply"]
    for plan in plans:  # what the plan stage writes must be plain JSON
        assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))).category is plan.category
    expected_requests = {"multi_turn": 4 + 3 + 4 + 3 + 2, "single_call": 5}[strategy]
    assert len(server.requests) == stats["requests"] == expected_requests
    assert stats["samples"] == 5 and stats.get("fallbacks", 0) == 0 and stats.get("retries", 0) == 0
    assert server.model_list_calls == 1


def test_the_requests_carry_schema_image_temperature_and_seed(server):
    with make_planner(server, seed=7) as planner:
        planner.plan_batch([make_request(3, "add a hat on the cat")])
    reqs = server.requests
    assert [sorted(r.schema_properties) for r in reqs] == [
        ["category"], ["object", "target_prompt"], ["box"]]
    grid = resized_size(SIZE, MIN_PIXELS, MAX_PIXELS)
    for r in reqs:
        assert r.model == "test-vlm"
        assert r.temperature == 0
        assert r.seed == sample_seed(7, "s3")
        assert r.body["max_tokens"] == 512
        block = r.json_schema
        assert r.response_format["type"] == "json_schema" and block["strict"] is True
        assert block["schema"]["required"] == sorted(block["schema"]["required"], key=list(
            block["schema"]["properties"]).index)
        assert block["schema"]["additionalProperties"] is False
        # one image, in the first user message, decoding to the qwen-vl-utils grid
        (url,) = r.image_urls()
        assert url.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert image.size == grid
        assert r.messages[0]["role"] == "system"
    cat_schema = reqs[0].schema["properties"]["category"]
    assert cat_schema == {"type": "string", "enum": [c.value for c in Category]}
    # multi-turn: the later turns carry the earlier answers in the conversation
    roles = [m["role"] for m in reqs[2].messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert '"addition"' in reqs[2].messages[2]["content"]
    # the box question states the grid the model sees (Qwen2.5-VL: absolute pixels)
    assert f"{grid[0]}x{grid[1]}" in reqs[2].last_user_text


@pytest.mark.parametrize(
    ("family", "coords", "grid_multiple"),
    [
        ("qwen2_5_vl", None, 28),  # absolute pixels of the resized input
        ("qwen2_vl", None, 28),  # 0-1000 relative
        ("qwen3_vl", None, 32),  # 0-1000 relative, patch 16
        ("qwen2_5_vl", "relative_1", 28),  # explicit override
    ],
)
def test_each_coordinate_convention(make_server, family, coords, grid_multiple):
    convention = coords or {"qwen2_5_vl": "absolute_resized"}.get(family, "relative_1000")
    server = make_server(model="test-vlm", responder=scripted_model(convention))
    extra = {"coords": coords} if coords else {}
    if family == "qwen3_vl":
        extra.update(min_pixels=4 * 32 * 32, max_pixels=64 * 32 * 32)
    with make_planner(server, family=family, **extra) as planner:
        (plan,) = planner.plan_batch([make_request(1, "add a hat on the cat")])
    assert plan.fallback_reason is None
    image = server.requests[0].images()[0]
    assert image.size[0] % grid_multiple == 0 and image.size[1] % grid_multiple == 0
    tol = max(SIZE[0] / image.size[0], SIZE[1] / image.size[1], SIZE[0] / 1000 + 0.01)
    assert plan.add_box == pytest.approx(TRUTH["add a hat on the cat"]["box"], abs=tol)
    hint = {"absolute_resized": f"{image.size[0]}x{image.size[1]}", "relative_1000": "0-1000",
            "relative_1": "from 0 to 1"}[convention]
    assert hint in server.requests[-1].last_user_text


def test_box_is_clamped_to_the_image(make_server):
    responder = scripted_model(
        "relative_1000", {"add a hat on the cat": {"box": (200.0, 120.0, 480.0, 400.0)}})
    server = make_server(model="test-vlm", responder=responder)
    with make_planner(server, family="qwen2_vl") as planner:
        (plan,) = planner.plan_batch([make_request(1, "add a hat on the cat")])
    assert plan.add_box == pytest.approx((200.0, 120.0, 320.0, 240.0))
    assert plan.fallback_reason is None


# ----------------------------------------------------------------------------- fault policy


def test_schema_breaking_reply_gets_one_repair(server):
    server.script(Reply("Sure! The category is local."))
    with make_planner(server) as planner:
        (plan,) = planner.plan_batch([make_request(0, "make the car red")])
        stats = planner.stats()
    assert plan.category is Category.LOCAL and plan.object == "car"
    assert plan.fallback_reason is None
    assert stats["repairs"] == 1 and stats["requests"] == 5
    repair = server.requests[1]
    assert repair.messages[-2] == {"role": "assistant", "content": "Sure! The category is local."}
    assert "could not be used" in repair.last_user_text and "not valid JSON" in repair.last_user_text
    assert repair.schema == server.requests[0].schema
    # the bad exchange is not carried into the next turn's context
    assert "Sure!" not in str(server.requests[2].messages)
    assert [t.get("error") is not None for t in plan.raw["turns"]] == [True, False, False, False, False]


def test_schema_breaking_twice_falls_back_with_reason(server):
    model = scripted_model()
    broken = iter([Reply({"category": "recolour"}), Reply('{"category": ')])

    def respond(req):  # the car sample's category turn breaks the schema twice
        if instruction_of(req) == "make the car red" and "category" in req.schema_properties:
            return next(broken)
        return model(req)

    server.responder = respond
    fallback = FakeFallback()
    with make_planner(server, fallback) as planner:
        plans = planner.plan_batch([make_request(0, "make the car red"), make_request(1, "remove the cup")])
        stats = planner.stats()
    failed, good = plans
    assert failed.fallback_reason == "schema"
    assert failed.object == "fallback object"  # the fallback planner's answer, not the VLM's
    assert failed.raw["vlm"]["failure"] == "schema"
    assert len(failed.raw["vlm"]["turns"]) == 2
    assert good.category is Category.REMOVE and good.fallback_reason is None
    assert len(fallback.calls) == 1 and len(fallback.calls[0]) == 1
    assert stats["fallbacks"] == 1 and stats["fallback.schema"] == 1 and stats["repairs"] == 1
    json.dumps(failed.to_dict())


def test_5xx_is_retried_then_succeeds(server):
    server.script(Fault(500), Fault(503))
    with make_planner(server) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
        stats = planner.stats()
    assert plan.fallback_reason is None and plan.object == "cup"
    assert stats["retries"] == 2 and stats["retry.http_500"] == 1 and stats["retry.http_503"] == 1
    assert stats["requests"] == 5


def test_persistent_5xx_is_a_retryable_outage_not_a_plan(make_server):
    from iiie.errors import TransientBackendError

    server = make_server(model="test-vlm", responder=lambda req: Fault(500, "engine dead"))
    with make_planner(server, retries=2) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
        stats = planner.stats()
    assert isinstance(plan, TransientBackendError) and "http_500" in str(plan)
    assert len(server.requests) == 3 and stats["retries"] == 2 and stats["outage.http_500"] == 1
    assert "fallbacks" not in stats
    with make_planner(server, retries=0, fallback_on_outage=True) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
    assert plan.fallback_reason == "http_500" and plan.raw["provisional"] is True
    assert "engine dead" in plan.raw["vlm"]["detail"]


def test_429_honours_retry_after_then_succeeds(server):
    server.script(Fault(429, "slow down", retry_after=0.3))
    with make_planner(server, backoff=0.001, backoff_max=5) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
        stats = planner.stats()
    assert plan.fallback_reason is None and stats["retry.http_429"] == 1
    gap = server.requests[1].received_at - server.requests[0].received_at
    assert gap >= 0.25  # waited for Retry-After, not the 1 ms back-off


def test_persistent_429_is_an_outage(make_server):
    from iiie.errors import TransientBackendError

    server = make_server(model="test-vlm", responder=lambda req: Fault(429))
    with make_planner(server, retries=1) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
    assert isinstance(plan, TransientBackendError) and len(server.requests) == 2


def test_timeout_is_retried_then_is_an_outage(make_server):
    from iiie.errors import TransientBackendError

    server = make_server(model="test-vlm", responder=scripted_model())
    server.script(Reply({"category": "remove"}, delay=3.0))
    with make_planner(server, timeout=0.5, retries=1) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
        stats = planner.stats()
    assert plan.fallback_reason is None and plan.object == "cup"
    assert stats["retry.timeout"] == 1
    server.responder = lambda req: Reply({"category": "remove"}, delay=3.0)
    with make_planner(server, timeout=0.5, retries=1) as planner:
        (plan,) = planner.plan_batch([make_request(2, "remove the cup")])
        stats = planner.stats()
    assert isinstance(plan, TransientBackendError) and stats["outage.timeout"] == 1


def test_dropped_connection_is_retried(server):
    server.script(Drop())
    with make_planner(server) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
        stats = planner.stats()
    assert plan.fallback_reason is None and stats["retry.connection"] == 1


def test_malformed_response_bodies_are_retried(server):
    server.script(
        Raw(200, '{"id": "chatcmpl-1", "choices": ['),  # truncated body
        Raw(200, "[]"),  # valid JSON, not a completion
        Raw(502, "<html><body>Bad Gateway</body></html>", "text/html"),  # a proxy's page
    )
    with make_planner(server, retries=3) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
        stats = planner.stats()
    assert plan.fallback_reason is None and plan.object == "cup"
    assert stats["retry.bad_response"] == 2 and stats["retry.http_502"] == 1


def test_client_errors_are_not_retried(make_server):
    server = make_server(
        model="test-vlm", responder=lambda req: Fault(400, "maximum context length exceeded"))
    with make_planner(server) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
        stats = planner.stats()
    assert plan.fallback_reason == "http_400" and len(server.requests) == 1
    assert stats.get("retries", 0) == 0 and "context length" in plan.raw["vlm"]["detail"]


def test_unusable_box_gets_a_repair_then_only_the_box_falls_back(make_server):
    bad = {"add a hat on the cat": {"box": (100.0, 50.0, 100.0, 90.0)}}  # zero width
    server = make_server(model="test-vlm", responder=scripted_model("relative_1000", bad))
    with make_planner(server, family="qwen2_vl") as planner:
        (plan,) = planner.plan_batch([make_request(1, "add a hat on the cat")])
        stats = planner.stats()
    assert plan.fallback_reason == "box_degenerate"
    assert plan.category is Category.ADDITION
    assert (plan.object, plan.target_prompt) == ("hat", "a red knitted hat")  # the VLM's
    assert plan.add_box == (1.0, 2.0, 30.0, 40.0)  # the fallback's box
    assert stats["repairs"] == 1 and stats["fallback.box_degenerate"] == 1
    assert "width" in server.requests[-1].last_user_text  # the repair says what was wrong


def test_box_repair_can_succeed(make_server):
    server = make_server(model="test-vlm", responder=scripted_model("relative_1000"))
    server.script(Reply({"category": "addition"}),
                  Reply({"object": "hat", "target_prompt": "a hat"}),
                  Reply({"box": [1200, 1200, 1300, 1300]}))
    with make_planner(server, family="qwen2_vl") as planner:
        (plan,) = planner.plan_batch([make_request(1, "add a hat on the cat")])
    assert plan.fallback_reason is None and plan.add_box is not None
    assert plan.raw["turns"][2]["error"].startswith("the box")


def test_image_the_grid_rejects_falls_back_without_a_request(server):
    with make_planner(server) as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup", size=(2100, 10))])
    assert plan.fallback_reason == "image" and server.requests == []


# ----------------------------------------------------------------------------- health check


def test_server_down_is_one_clear_error():
    port = free_port()
    planner = make_planner(None, base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(BackendUnavailableError) as info:
        planner.plan_batch([make_request(i, "remove the cup") for i in range(20)])
    message = str(info.value)
    assert f"127.0.0.1:{port}/v1" in message and "make serve-vlm" in message
    assert planner.stats().get("requests", 0) == 0
    planner.close()


def test_wrong_model_name_lists_served_models(make_server):
    server = make_server(models=["Qwen2-VL-7B-Instruct", "other"])
    with make_planner(server) as planner:
        with pytest.raises(BackendUnavailableError) as info:
            planner.plan_batch([make_request(1, "remove the cup")])
    message = str(info.value)
    assert "'test-vlm'" in message and "'Qwen2-VL-7B-Instruct'" in message and "'other'" in message
    assert "vlm.model" in message and server.requests == []


def test_wrong_base_path_and_api_key(make_server, monkeypatch):
    server = make_server(model="test-vlm", api_key="s3cret")
    with make_planner(server, base_url=server.base_url.removesuffix("/v1") + "/api") as planner:
        with pytest.raises(BackendUnavailableError, match="/v1"):
            planner.check()
    monkeypatch.delenv("IIIE_VLM_API_KEY", raising=False)
    with make_planner(server, api_key="wrong") as planner:
        with pytest.raises(BackendUnavailableError, match="API key"):
            planner.check()
    monkeypatch.setenv("IIIE_VLM_API_KEY", "s3cret")
    with make_planner(server) as planner:
        assert planner.check() == ["test-vlm"]


def test_health_check_runs_once_per_planner(server):
    with make_planner(server) as planner:
        planner.plan_batch([make_request(1, "remove the cup")])
        planner.plan_batch([make_request(2, "remove the cup")])
    assert server.model_list_calls == 1


# ----------------------------------------------------------------------------- concurrency


def test_requests_run_concurrently_up_to_the_limit(make_server):
    n, concurrency, latency = 48, 8, 0.2
    server = make_server(model="test-vlm", responder=scripted_model(), latency=latency)
    with make_planner(server, strategy="single_call", concurrency=concurrency) as planner:
        planner.check()
        start = time.perf_counter()
        plans = planner.plan_batch([make_request(i, "remove the cup") for i in range(n)])
        wall = time.perf_counter() - start
    assert all(p.fallback_reason is None for p in plans)
    assert server.peak_in_flight == concurrency  # never more, and the limit was reached
    ideal = n / concurrency * latency
    assert wall < 3 * ideal, f"{wall:.2f}s for ideal {ideal:.2f}s"  # loose: shared machine


def test_works_inside_a_running_event_loop(server):
    """As in Jupyter: plan_batch called from code running inside an event loop."""

    async def notebook_cell():
        with make_planner(server) as planner:
            sync_plans = planner.plan_batch([make_request(1, "remove the cup")])
            async_plans = await planner.aplan_batch([make_request(2, "make it winter")])
        return sync_plans + async_plans

    plans = asyncio.run(notebook_cell())
    assert [p.category for p in plans] == [Category.REMOVE, Category.GLOBAL]


def test_follow_schema_server_default(make_server):
    """With no responder the server follows each request's schema with minimal values; the
    planner still returns a plan (or an explicit fallback), never a silent wrong one."""
    server = make_server(model="test-vlm")
    with make_planner(server, strategy="single_call") as planner:
        (plan,) = planner.plan_batch([make_request(1, "remove the cup")])
    # first enum value is "local"; object "x", target_prompt "x": a complete local plan;
    # its object box [0, 0, 0, 0] is unusable, which costs the box, not the plan
    assert plan.category is Category.LOCAL and plan.fallback_reason is None
    assert plan.raw["object_box"] is None and plan.raw["object_box_reason"] == "box_degenerate"
    assert follow_schema({"type": "object", "properties": {"b": {"type": "array", "minItems": 2,
                          "items": {"type": "integer"}}}, "required": ["b"]}) == {"b": [0, 0]}


# ----------------------------------------------------------------------------- config + CLI


def test_planner_from_hydra_config_and_plan_cli(make_server, make_cfg, tmp_path, capsys):
    """`python -m iiie.plan input=... output=... planner=vlm` path: config -> planner ->
    same output fields and accuracy print as the rule planner."""
    from hydra.utils import instantiate

    from iiie.plan import run_plan_cli

    server = make_server(model="test-vlm", responder=scripted_model())
    images = tmp_path / "images"
    images.mkdir()
    lines = []
    for i, (text, truth) in enumerate(TRUTH.items()):
        Image.new("RGB", SIZE, (i * 30, 60, 90)).save(images / f"{i}.png")
        lines.append({"id": f"x{i}", "image": f"images/{i}.png", "instruction": text,
                      "category": truth["category"]})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    overrides = [
        "planner=vlm",
        f"vlm.base_url={server.base_url}",
        "vlm.model=test-vlm",
        f"vlm.min_pixels={MIN_PIXELS}",
        f"vlm.max_pixels={MAX_PIXELS}",
        "planner.fallback._target_=test_vlm_planner.FakeFallback",
    ]
    cfg = make_cfg(*overrides)
    planner = instantiate(cfg.planner, _convert_="all")
    assert isinstance(planner, VLMPlanner) and isinstance(planner.fallback, FakeFallback)
    assert planner.settings.concurrency == 32 and planner.settings.family == "qwen2_5_vl"
    planner.close()

    out = tmp_path / "out.jsonl"
    cfg = make_cfg(*overrides, f"input={src}", f"output={out}", config_name="plan")
    rows = run_plan_cli(cfg)
    printed = capsys.readouterr().out
    assert "overall accuracy: 1.000 (5/5)" in printed
    assert [r["category"] for r in rows] == [t["category"] for t in TRUTH.values()]
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written[3]["add_box"] is not None and written[3]["fallback_reason"] is None
    assert set(Plan(Category.LOCAL).to_dict()) <= set(written[0])


# ----------------------------------------------------------------------------- per-sample errors


def test_bad_instruction_fails_alone_without_resending_the_others(server):
    """The stages retry a failed batch item by item; the VLM is not asked twice."""
    from iiie.batching import guarded_batch
    from iiie.errors import InstructionError

    reqs = [make_request(0, "remove the cup"), make_request(1, "   "), make_request(2, "make it winter")]
    done, failed = {}, {}
    with make_planner(server) as planner:
        guarded_batch(
            planner.plan_batch,
            reqs,
            lambda req, plan, _s: done.__setitem__(req.id, plan),
            lambda req, exc: failed.__setitem__(req.id, exc),
        )
        stats = planner.stats()
    assert set(done) == {"s0", "s2"} and done["s2"].category is Category.GLOBAL
    assert isinstance(failed["s1"], InstructionError)
    assert len(server.requests) == stats["requests"] == 3 + 2  # each good sample asked once
    assert stats["samples"] == 2


def test_sample_the_fallback_rejects_fails_alone(make_server):
    from iiie.errors import InstructionError

    class PickyFallback(FakeFallback):
        def plan_batch(self, requests):
            if any(r.id == "s1" for r in requests):
                raise InstructionError("cannot parse this either")
            return super().plan_batch(requests)

    model = scripted_model()
    server = make_server(
        model="test-vlm",
        responder=lambda req: Fault(500) if instruction_of(req) == "add a hat on the cat" else model(req),
    )
    reqs = [make_request(0, "remove the cup"), make_request(1, "add a hat on the cat"),
            make_request(2, "make the car red")]
    with make_planner(server, PickyFallback(), retries=0, fallback_on_outage=True) as planner:
        with pytest.raises(InstructionError, match="either"):
            planner.plan_batch(reqs)
        sent = len(server.requests)
        first = planner.plan_batch([reqs[0]])
        third = planner.plan_batch([reqs[2]])
    assert len(server.requests) == sent  # remembered, not resent
    assert first[0].category is Category.REMOVE and third[0].category is Category.LOCAL


def test_real_rule_planner_as_fallback(make_server):
    server = make_server(model="test-vlm", responder=lambda req: Fault(503))
    settings = {"base_url": server.base_url, "model": "test-vlm", "family": "qwen2_5_vl",
                "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS, "retries": 0}
    with VLMPlanner(settings, fallback_on_outage=True) as planner:  # fallback=None -> RulePlanner
        plans = planner.plan_batch([make_request(0, "remove the cup"), make_request(1, "make it winter")])
        stats = planner.stats()
    assert type(planner.fallback).__name__ == "RulePlanner"
    assert [p.fallback_reason for p in plans] == ["http_503", "http_503"]
    assert plans[0].category is Category.REMOVE and "cup" in plans[0].object
    assert plans[1].category is Category.GLOBAL
    assert stats["fallback.http_503"] == 2


def test_full_run_with_planner_vlm(make_server, make_cfg):
    """iiie.run's stages with planner=vlm: plans made, odd inputs fail alone, stats in the
    manifest's plan stage."""
    from iiie.pipeline.runner import Runner

    server = make_server(
        model="test-vlm",
        responder=lambda req: follow_schema(
            req.schema, {"category": "remove", "object": "object", "object_box": [0, 0, 28, 28]}),
    )
    cfg = make_cfg(
        "planner=vlm", f"vlm.base_url={server.base_url}", "vlm.model=test-vlm",
        f"vlm.min_pixels={MIN_PIXELS}", f"vlm.max_pixels={MAX_PIXELS}", "data.n=5",
    )
    runner = Runner(cfg, show_progress=False)
    manifest = runner.run()
    plan = manifest["stages"]["plan"]
    assert plan["computed"] >= 5 and plan["errors"] >= 1  # the empty instruction, the broken PNG
    stats = plan["backend"]
    assert stats["samples"] == plan["computed"] and stats["requests"] == len(server.requests)
    assert len(server.requests) == 3 * stats["samples"]  # remove: 3 turns; nothing sent twice
    assert stats.get("fallbacks", 0) == 0 and stats["object_boxes"] == stats["samples"]
    sid = runner.ids[0]
    assert runner.plan_of(sid).category is Category.REMOVE
    assert runner.plan_of(sid).raw["object_box"] is not None  # survives the plan cache


def test_random_faults_are_absorbed_by_retries(make_server):
    """A server that fails 30% of requests at random (seeded): every plan still comes from
    the VLM, and the retries are counted."""
    server = make_server(model="test-vlm", responder=scripted_model(), fault_rate=0.3,
                         fault_status=503, seed=1)
    reqs = [make_request(i, text) for i, text in enumerate(list(TRUTH) * 4)]
    with make_planner(server, retries=8, backoff=0.001, backoff_max=0.01, concurrency=8) as planner:
        plans = planner.plan_batch(reqs)
        stats = planner.stats()
    assert all(p.fallback_reason is None for p in plans)
    assert [p.category.value for p in plans] == [TRUTH[r.instruction]["category"] for r in reqs]
    assert stats["retries"] == stats["retry.http_503"] > 0
    assert stats["requests"] == len(server.requests) == 4 * 16 + stats["retries"]
