"""The sampling fields of a VLM request, the same for the server and the offline engine.

``vllm serve`` fills every sampling field a request leaves unset from the model's
``generation_config.json`` (Qwen2.5-VL's ``repetition_penalty: 1.05``, its ``top_k`` /
``top_p``), while ``vllm.LLM.chat`` with explicit ``SamplingParams`` does not. So both
paths send only explicit fields, built here from the ``vlm`` settings, and the server is
started with ``--generation-config vllm`` (``vlm.serve.generation_config``) so it adds
nothing of its own. A model's recommended values are set on purpose in ``vlm.extra_body``
(``++vlm.extra_body='{repetition_penalty: 1.05, top_k: 1}'``), which both paths honour.
"""

from __future__ import annotations

from typing import Any

from iiie.vlm.settings import VLMSettings

#: ``vlm.extra_body`` keys that are sampling fields on both paths (OpenAI body fields of
#: vLLM's server and ``vllm.SamplingParams`` arguments of the same names).
SAMPLING_KEYS = (
    "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty",
    "stop", "stop_token_ids", "ignore_eos", "min_tokens", "skip_special_tokens",
    "spaces_between_special_tokens", "include_stop_str_in_output", "n",
)
#: ``vlm.extra_body`` keys that are chat-template arguments (``LLM.chat(**...)`` offline).
CHAT_KEYS = ("chat_template_kwargs",)


def request_fields(s: VLMSettings, seed: int | None) -> dict[str, Any]:
    """The sampling part of an OpenAI chat request body (``extra_body`` goes beside it)."""
    out: dict[str, Any] = {
        "temperature": s.temperature,
        "max_completion_tokens": s.max_tokens,
        "max_tokens": s.max_tokens,  # servers older than max_completion_tokens read this one
    }
    if seed is not None:
        out["seed"] = int(seed)
    return out


def split_extra_body(s: VLMSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """``vlm.extra_body`` as (sampling fields, chat-template arguments) for the in-process
    engines (``vllm.LLM``, transformers); a key they cannot honour is an error rather than a
    silent difference."""
    extra = dict(s.extra_body or {})
    unknown = sorted(k for k in extra if k not in SAMPLING_KEYS and k not in CHAT_KEYS)
    if unknown:
        raise ValueError(
            f"vlm.extra_body keys {unknown} have no in-process (vllm.LLM) equivalent here; "
            f"supported: {', '.join(SAMPLING_KEYS + CHAT_KEYS)}"
        )
    sampling = {k: v for k, v in extra.items() if k in SAMPLING_KEYS}
    chat = {k: v for k, v in extra.items() if k in CHAT_KEYS}
    return sampling, chat


def sampling_params_kwargs(s: VLMSettings, seed: int | None) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments equal to what :func:`request_fields` plus
    ``extra_body`` ask of the server."""
    sampling, _ = split_extra_body(s)
    return {"temperature": s.temperature, "max_tokens": s.max_tokens, "seed": seed, **sampling}
