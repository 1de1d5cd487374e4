"""``vlm.serve.offload`` (= ``runtime.offload``) for ``vlm.engine=transformers`` on the tiny
Qwen2.5-VL: a clear error on CPU, the same replies through accelerate's hooks, and no
effect on the plan cache key.

As for the maskers (tests/test_masker_offload.py), the reply-equality test bypasses the
CPU guard and runs the hooks with the CPU as execution device.
"""

from __future__ import annotations

import pytest

pytest.importorskip("xgrammar")

from test_vlm_transformers_engine import SINGLE, _messages, _vlm  # noqa: E402

from iiie import offload  # noqa: E402
from iiie import weights as W  # noqa: E402
from iiie.vlm.dialogue import Call  # noqa: E402
from iiie.vlm.hf_engine import TransformersEngine  # noqa: E402
from iiie.vlm.schema import response_format  # noqa: E402
from iiie.vlm.settings import VLMSettings  # noqa: E402
from tests.conftest import compose_config  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from iiie.tiny_weights import qwen2_5_vl

    return qwen2_5_vl.ensure(tmp_path_factory.mktemp("tiny"))


def _engine(folder, **serve) -> TransformersEngine:
    vlm = _vlm(folder)
    vlm["serve"].update({"device": "cpu", **serve})
    return TransformersEngine(VLMSettings.from_config(vlm), vlm["serve"])


def test_offload_on_cpu_is_a_clear_error_naming_the_key(tiny):
    with pytest.raises(offload.OffloadError, match=r"vlm\.serve\.offload=model needs a GPU"):
        _engine(tiny, offload="model")
    with pytest.raises(ValueError, match=r"vlm\.serve\.offload='layer': choose one of none, model, sequential"):
        _engine(tiny, offload="layer")
    assert _engine(tiny).offload == "none"


def test_the_config_follows_runtime_offload():
    assert compose_config(["vlm=tiny_qwen2_5_vl"]).vlm.serve.offload == "none"
    assert compose_config(["vlm=tiny_qwen2_5_vl", "runtime.offload=model"]).vlm.serve.offload == "model"
    assert compose_config(["vlm=qwen2_5_vl_7b", "runtime.offload=sequential"]).vlm.serve.offload == "sequential"


@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offloaded_engine_gives_the_same_replies(tiny, mode):
    calls = [Call(_messages(), response_format(SINGLE, "plan"), "plan"), Call(_messages("make it winter"), {}, "plan")]
    W.clear_loaded()
    plain = _engine(tiny).chat(calls, [1, 2])
    W.clear_loaded()
    engine = _engine(tiny)
    engine.offload = mode  # past the CPU guard: accelerate's hooks with the CPU as execution device
    hooked = engine.chat(calls, [1, 2])
    assert [(r.content, r.finish_reason) for r in hooked] == [(r.content, r.finish_reason) for r in plain]
    model = engine.load()["model"]
    if mode == "model":
        assert hasattr(model, "_hf_hook")
    else:  # decoder and vision blocks wait on the meta device between calls
        assert offload.offloaded_fraction(model) > 0.2
    W.clear_loaded()


def test_offload_is_left_out_of_the_plan_cache_key(make_cfg):
    from iiie.pipeline.runner import Runner

    keys = [Runner(make_cfg("planner=vlm", "vlm=tiny_qwen2_5_vl", f"runtime.offload={m}", "data.n=2")).keys["plan"]
            for m in ("none", "model")]
    assert keys[0] == keys[1]


def test_vllm_says_it_does_not_offload(caplog):
    """vLLM sizes its own memory; an offload request is logged, not silently dropped
    (the check runs before vLLM would be built; vllm itself is not imported)."""
    from iiie.vlm import engines

    with caplog.at_level("WARNING", logger="iiie.vlm.engines"):
        engines._note_unused_offload({"offload": "none"})
        assert not caplog.records
        engines._note_unused_offload({"offload": "model"})
    assert "vlm.serve.offload=model is not used by vlm.engine=vllm" in caplog.text
    with pytest.raises(ValueError, match=r"vlm\.serve\.offload='all'"):
        engines._note_unused_offload({"offload": "all"})
