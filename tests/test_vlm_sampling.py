"""Server and offline VLM paths sample with the same explicit fields (no vLLM needed: the
offline engine's SamplingParams is a stand-in module)."""

from __future__ import annotations

import sys
import types

import pytest

from iiie.planners.vlm_offline import VLLMEngine
from iiie.vlm import serve
from iiie.vlm.sampling import request_fields, sampling_params_kwargs
from iiie.vlm.settings import VLMSettings


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    sp = types.ModuleType("vllm.sampling_params")
    vllm.SamplingParams = lambda **kw: kw
    sp.StructuredOutputsParams = lambda **kw: ("structured", kw)
    vllm.sampling_params = sp
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)


def test_offline_sampling_equals_the_server_request(fake_vllm):
    s = VLMSettings(temperature=0.3, max_tokens=77, extra_body={"repetition_penalty": 1.05, "top_k": 1})
    body = {**request_fields(s, 11), **s.extra_body}
    params = VLLMEngine(s, {}).sampling_params({"type": "object"}, 11)
    assert body["max_completion_tokens"] == body["max_tokens"] == params["max_tokens"] == 77
    for key in ("temperature", "seed", "repetition_penalty", "top_k"):
        assert params[key] == body[key], key
    assert params["structured_outputs"] == ("structured", {"json": {"type": "object"}})
    assert sampling_params_kwargs(VLMSettings(), None)["seed"] is None


def test_offline_refuses_extra_body_it_cannot_honour(fake_vllm):
    s = VLMSettings(extra_body={"guided_whitespace_pattern": " "})
    with pytest.raises(ValueError, match="guided_whitespace_pattern"):
        VLLMEngine(s, {}).sampling_params({}, 0)


def test_offline_engine_refuses_bad_extra_body_before_any_model_load():
    """As the transformers engine: at construction, with no vllm import and no call."""
    with pytest.raises(ValueError, match="guided_whitespace_pattern"):
        VLLMEngine(VLMSettings(extra_body={"guided_whitespace_pattern": " "}), {})
    engine = VLLMEngine(VLMSettings(extra_body={"chat_template_kwargs": {"x": 1}}), {})
    assert engine.chat_kwargs == {"chat_template_kwargs": {"x": 1}}


def test_server_is_started_without_generation_config_defaults():
    vlm = {"model": "m", "serve": {"model_path": "/w/m"}}
    cmd = serve.build_command(vlm)
    assert cmd[cmd.index("--generation-config") + 1] == "vllm"
    vlm["serve"]["generation_config"] = "auto"
    cmd = serve.build_command(vlm)
    assert cmd[cmd.index("--generation-config") + 1] == "auto"
