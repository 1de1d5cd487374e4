"""Steps 1+2 by a VLM run in-process with ``vllm.LLM.chat``: ``planner=vlm_offline``.

For users without a server. The prompts, schemas, repairs, box conversion and fallback
policy (object boxes for ``masker=vlm_box`` with ``planner.ground_objects`` included) are
those of ``planner=vlm`` (shared through :class:`~iiie.planners.vlm.
VLMPlannerBase` and :mod:`iiie.vlm.dialogue`); only the transport differs: all samples'
current turns go to ``LLM.chat`` together, round after round, until every dialogue is done.

vllm is imported lazily, when the first batch needs the model, so configs and tests load
without it; where it is missing the error says how to install it. ``vlm.engine=transformers``
runs the same rounds on Hugging Face ``generate`` instead (:mod:`iiie.vlm.hf_engine`); the
default ``vlm.engine=server`` means vLLM here (see :mod:`iiie.vlm.engines`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from iiie.errors import GPU_INSTALL, BackendUnavailableError
from iiie.protocols import first_plan
from iiie.types import EditRequest, Plan
from iiie.vlm.client import ChatResult
from iiie.vlm.dialogue import Call, Outcome, PlanDialogue
from iiie.vlm.engines import build_engine, engine_name
from iiie.vlm.sampling import sampling_params_kwargs, split_extra_body
from iiie.vlm.settings import VLMSettings

from .vlm import VLMPlannerBase

INSTALL_HINT = (
    f"planner=vlm_offline needs vllm (a GPU-only optional extra): {GPU_INSTALL}. "
    "Or serve the model once with `make serve-vlm` and use planner=vlm."
)


class ChatEngine(Protocol):
    """What the offline planner needs from an engine: one reply per call, in order."""

    def chat(self, calls: Sequence[Call], seeds: Sequence[int | None]) -> list[ChatResult]: ...


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise BackendUnavailableError(f"{INSTALL_HINT} ({exc})") from exc
    return vllm


class VLLMEngine:
    """``vllm.LLM`` built from the ``vlm.serve`` settings, with structured outputs."""

    name = "vllm"

    def __init__(self, settings: VLMSettings, serve: Mapping[str, Any]) -> None:
        self.settings = settings
        self.serve = dict(serve)
        # the chat-template arguments of every call; a vlm.extra_body key that vllm.LLM
        # cannot honour is refused here, at construction, as the transformers engine does
        _, self.chat_kwargs = split_extra_body(settings)
        self._llm: Any = None

    def _build(self) -> Any:
        vllm = import_vllm()
        from iiie.weights import require_files

        path = require_files(
            self.serve.get("model_path"),
            ["config.json"],
            "vlm.serve.model_path",
            hint="Put the model's Hugging Face folder there (see README, Weights).",
        )
        kwargs: dict[str, Any] = {
            "model": str(path),
            "served_model_name": self.settings.model,
            "max_model_len": self.serve.get("max_model_len"),
            "limit_mm_per_prompt": dict(self.serve.get("limit_mm_per_prompt") or {"image": 1}),
            "gpu_memory_utilization": self.serve.get("gpu_memory_utilization", 0.85),
            "dtype": self.serve.get("dtype", "auto"),
            "tensor_parallel_size": self.serve.get("tensor_parallel_size", 1),
            "seed": self.serve.get("seed", 0),
            # as `vllm serve --generation-config vllm`: no defaults from the model's folder
            "generation_config": self.serve.get("generation_config", "vllm"),
        }
        if self.serve.get("max_num_seqs"):
            kwargs["max_num_seqs"] = self.serve["max_num_seqs"]
        return vllm.LLM(**{k: v for k, v in kwargs.items() if v is not None})

    @property
    def llm(self) -> Any:
        if self._llm is None:
            self._llm = self._build()
        return self._llm

    def sampling_params(self, schema: dict[str, Any], seed: int | None) -> Any:
        from vllm import SamplingParams

        s = self.settings
        common = sampling_params_kwargs(s, seed)  # = the server path's fields + vlm.extra_body
        try:  # vLLM >= 0.11
            from vllm.sampling_params import StructuredOutputsParams

            return SamplingParams(**common, structured_outputs=StructuredOutputsParams(json=schema))
        except ImportError:  # older vLLM
            from vllm.sampling_params import GuidedDecodingParams

            return SamplingParams(**common, guided_decoding=GuidedDecodingParams(json=schema))

    def chat(self, calls: Sequence[Call], seeds: Sequence[int | None]) -> list[ChatResult]:
        params = [self.sampling_params(c.schema, s) for c, s in zip(calls, seeds, strict=True)]
        outputs = self.llm.chat(
            [c.messages for c in calls], params, use_tqdm=False, **self.chat_kwargs
        )
        results = []
        for out in outputs:
            first = out.outputs[0] if out.outputs else None
            results.append(
                ChatResult(first.text if first else None, first.finish_reason if first else None)
            )
        return results


class VLMOfflinePlanner(VLMPlannerBase):
    """``planner=vlm_offline``: the same dialogues, batched through ``LLM.chat``."""

    name = "vlm_offline"

    def __init__(
        self,
        vlm: Mapping[str, Any] | VLMSettings | None = None,
        strategy: str = "multi_turn",
        prompt_version: str = "v2",
        prompts_dir: str | None = None,
        fallback: Any = None,
        batch_size: int = 256,
        engine: ChatEngine | None = None,
        ground_objects: bool = True,
    ) -> None:
        super().__init__(vlm, strategy, prompt_version, prompts_dir, fallback, ground_objects)
        if batch_size < 1:
            raise ValueError(f"planner.batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        if engine is None:  # vlm.engine=server (the default) means vLLM here: no server
            name = "vllm" if self.settings.engine == "server" else self.settings.engine
            engine = build_engine(name, self.settings, self.serve)  # vllm: fails now if absent
        self.engine: ChatEngine = engine

    @property
    def engine_name(self) -> str:
        return engine_name(self.engine)

    def plan(self, request: EditRequest) -> Plan:
        return first_plan(self.plan_batch([request]))

    def plan_batch(self, requests: Sequence[EditRequest]) -> list[Plan]:
        plans: list[Plan] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = list(requests[start : start + self.batch_size])
            plans.extend(self.finish(chunk, self._run(chunk)))
        return plans

    def _run(self, requests: list[EditRequest]) -> list[Outcome]:
        provenance = self.provenance()
        outcomes: dict[int, Outcome] = {}
        dialogues: dict[int, PlanDialogue] = {}
        for i, request in enumerate(requests):
            if (known := self.remembered(request)) is not None:
                outcomes[i] = known
                continue
            if (error := self.check_instruction(request)) is not None:
                outcomes[i] = Outcome(None, raw=provenance, error=error)
                continue
            try:
                dialogues[i] = self.start_dialogue(request)
            except (ValueError, OSError) as exc:
                outcomes[i] = Outcome(None, "image", f"{type(exc).__name__}: {exc}", {}, provenance)
        seeds = {i: self.request_seed(requests[i]) for i in dialogues}
        while True:
            pending = [(i, call) for i, d in dialogues.items() if (call := d.next_call())]
            if not pending:
                break
            self.count("requests", len(pending))
            self.count("repairs", sum(1 for _, c in pending if c.repair))
            results = self.engine.chat([c for _, c in pending], [seeds[i] for i, _ in pending])
            if len(results) != len(pending):
                raise RuntimeError(
                    f"engine returned {len(results)} replies for {len(pending)} requests"
                )
            for (i, _), result in zip(pending, results, strict=True):
                dialogues[i].feed(result)
        for i, dialogue in dialogues.items():
            self.count("schema_failures", dialogue.schema_errors)
            outcomes[i] = dialogue.outcome(provenance)
        return [outcomes[i] for i in range(len(requests))]


