"""The VLM behind steps 1+2: an OpenAI-protocol client for vLLM and what it needs.

* :mod:`iiie.vlm.settings` -- the client half of the Hydra ``vlm`` node, validated;
* :mod:`iiie.vlm.client` -- async chat client: concurrency, timeouts, retries, health check;
* :mod:`iiie.vlm.engines` -- ``vlm.engine=server|vllm|transformers``: who answers requests;
* :mod:`iiie.vlm.hf_engine` -- the in-process transformers engine (xgrammar-constrained);
* :mod:`iiie.vlm.aio` -- run the async client from sync code or inside a running loop;
* :mod:`iiie.vlm.images` -- qwen-vl-utils resize rules and base64 data URLs;
* :mod:`iiie.vlm.schema` -- JSON schemas for structured output, pydantic reply parsing;
* :mod:`iiie.vlm.coords` -- per-family box conventions -> original-image pixels;
* :mod:`iiie.vlm.prompts` -- versioned prompt files (``conf/prompts/<version>/``);
* :mod:`iiie.vlm.dialogue` -- one sample's conversation (turns, repairs, plan assembly);
* :mod:`iiie.vlm.serve` -- ``python -m iiie.vlm.serve`` / ``make serve-vlm``.

The planners built on these are :mod:`iiie.planners.vlm` and :mod:`iiie.planners.vlm_offline`.
"""
