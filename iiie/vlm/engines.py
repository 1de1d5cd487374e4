"""Which engine answers the VLM's requests: ``vlm.engine=server|vllm|transformers``.

One switch for every VLM user (``planner=vlm``, ``planner=vlm_offline``, the judges and
``verify=judge``), so the prompts, schemas, repairs and fault policy never depend on how a
reply is produced:

* ``server`` (default): the OpenAI-protocol client (:class:`~iiie.vlm.client.VLMClient`)
  talking to ``make serve-vlm`` or any compatible server;
* ``vllm``: ``vllm.LLM`` in-process (:class:`~iiie.planners.vlm_offline.VLLMEngine`; GPU);
* ``transformers``: Hugging Face ``generate`` in-process
  (:class:`~iiie.vlm.hf_engine.TransformersEngine`; CPU or GPU, no vLLM).

The two in-process engines take a batch of calls (``chat(calls, seeds)``, the
:class:`~iiie.planners.vlm_offline.ChatEngine` protocol). :class:`EngineClient` gives them
the async client's interface (``health_check``, ``chat``, ``aclose``, ``stats``), gathering
the calls that the concurrent dialogues make at the same moment into one engine batch, so
the async planner and the judges use them unchanged. ``planner=vlm_offline`` drives the
engine directly, round by round; its default engine is vLLM (``server`` means "vllm" there).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from iiie.vlm.client import ChatResult, RequestFailed, VLMClient
from iiie.vlm.dialogue import Call
from iiie.vlm.settings import ENGINES, VLMSettings
from iiie.vlm.stats import Stats

log = logging.getLogger(__name__)


def serve_of(vlm: Any) -> dict[str, Any]:
    """The ``vlm.serve`` node as a plain dict (empty when ``vlm`` is settings or absent)."""
    if not isinstance(vlm, Mapping) or vlm.get("serve") is None:
        return {}
    node = vlm["serve"]
    if isinstance(node, dict):
        return dict(node)
    from omegaconf import OmegaConf

    return dict(OmegaConf.to_container(node, resolve=True))  # type: ignore[arg-type]


def engine_name(engine: Any) -> str:
    """The name an engine reports in the stats and provenance (its ``name``, else its class)."""
    return str(getattr(engine, "name", type(engine).__name__))


def build_engine(name: str, settings: VLMSettings, serve: Mapping[str, Any]) -> Any:
    """An in-process batch engine by name (``vllm`` or ``transformers``)."""
    if name == "transformers":
        from iiie.vlm.hf_engine import TransformersEngine

        return TransformersEngine(settings, serve)
    if name == "vllm":
        from iiie.planners.vlm_offline import VLLMEngine, import_vllm

        import_vllm()  # fail now, with the install hint, when vllm is absent
        _note_unused_offload(serve)
        return VLLMEngine(settings, serve)
    raise ValueError(f"no in-process engine {name!r}; vlm.engine is one of {', '.join(ENGINES)}")


def _note_unused_offload(serve: Mapping[str, Any]) -> None:
    """``vlm.serve.offload`` (``runtime.offload``) is the transformers engine's: vLLM sizes
    its own GPU memory (``vlm.serve.gpu_memory_utilization``), so say so instead of
    pretending to offload."""
    from iiie.offload import check_offload

    mode = check_offload(serve.get("offload"), "vlm.serve.offload")
    if mode != "none":
        log.warning("vlm.serve.offload=%s is not used by vlm.engine=vllm: vLLM keeps the model on the GPU "
                    "(lower vlm.serve.gpu_memory_utilization, or use vlm.engine=transformers to offload)", mode)


def make_client(settings: VLMSettings, serve: Mapping[str, Any], stats: Stats | None = None) -> Any:
    """The async client for ``settings.engine``: the server client or an engine adapter."""
    if settings.engine == "server":
        return VLMClient(settings, stats)
    return EngineClient(build_engine(settings.engine, settings, serve), settings, stats)


class EngineClient:
    """:class:`VLMClient`'s interface over a batch engine (see the module doc).

    The engine runs in a worker thread, one batch at a time, so the event loop stays free
    to prepare images and collect the next batch meanwhile.
    """

    def __init__(self, engine: Any, settings: VLMSettings, stats: Stats | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.stats = stats if stats is not None else Stats()
        self._queue: list[tuple[Call, int | None, asyncio.Future]] = []
        self._worker: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return engine_name(self.engine)

    async def health_check(self) -> list[str]:
        """Load the model now (a bad ``vlm.serve.model_path`` fails here, naming it)."""
        load = getattr(self.engine, "load", None)
        if callable(load):
            await asyncio.to_thread(load)
        return [self.settings.model]

    async def aclose(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._worker = None

    async def chat(
        self,
        messages: list[dict[str, Any]],
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((Call(messages, response_format or {}, "request"), seed, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(0)  # let the dialogues of this moment queue their calls too
            size = max(1, int(self.settings.concurrency))
            batch, self._queue = self._queue[:size], self._queue[size:]
            self.stats.add("requests", len(batch))
            try:
                await self._run(batch)
            except BaseException as exc:  # missing weights, out of memory: the caller's to handle
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise

    async def _run(self, batch: list[tuple[Call, int | None, asyncio.Future]]) -> None:
        """One engine batch; a ``ValueError`` (a request the engine will always refuse, like
        a 4xx) is pinned on its own call by rerunning the batch's calls one by one."""
        calls, seeds = [c for c, _, _ in batch], [s for _, s, _ in batch]
        try:
            results = await asyncio.to_thread(self.engine.chat, calls, seeds)
        except ValueError as exc:
            if len(batch) > 1:
                for one in batch:
                    await self._run([one])
                return
            batch[0][2].set_exception(
                RequestFailed("engine_rejected", f"{type(exc).__name__}: {str(exc)[:300]}")
            )
            return
        if len(results) != len(batch):
            raise RuntimeError(
                f"engine {self.name} returned {len(results)} replies for {len(batch)} calls"
            )
        for (_, _, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
