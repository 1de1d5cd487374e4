"""A real local HTTP server that speaks the OpenAI chat-completions protocol like vLLM.

Tests (and benchmarks) need a server that behaves like ``vllm serve`` without a GPU or
weights: same routes (``GET /v1/models``, ``POST /v1/chat/completions``, ``GET /health``),
same reply and error shapes, and knobs for the things that go wrong in real runs (latency,
5xx, 429 with ``Retry-After``, hangs, dropped connections, broken JSON). It runs an aiohttp
app on its own event loop in a background thread, so both sync and async clients can use it.

What each chat request gets back is decided, in order, by

1. a scripted action popped from :meth:`StubServer.script` (FIFO; for serial scenarios
   such as "first a 500, then a good reply"),
2. otherwise the ``responder`` callable, which sees the parsed :class:`ChatRequest` and
   returns an action, a ``str`` (the reply content) or a ``dict`` (sent as JSON),
3. otherwise :func:`follow_schema`: a minimal valid instance of the JSON schema the request
   carries in ``response_format`` (so the server "follows whatever schema it is sent").

Random fault injection (``fault_rate``) applies on top, seeded for reproducibility.

Usage in pytest (pytest puts ``tests/`` on ``sys.path``, as it holds ``conftest.py``;
elsewhere, with the repository root on ``sys.path``, import ``tests.openai_stub_server``)::

    from openai_stub_server import Fault, Reply, server_pool

    @pytest.fixture
    def make_server():
        with server_pool() as make:  # every server made is stopped after the test
            yield make

    def test_x(make_server):
        server = make_server(model="m", responder=lambda req: {"category": "local"})
        server.script(Fault(503), Reply("not json"))  # the next two requests
        ...  # point a client at server.base_url
        assert server.requests[0].temperature == 0

(or import the ready-made ``stub_server_factory`` / ``stub_server`` fixtures into the test
module.)

Standalone (e.g. for ``python -m iiie.plan ... vlm.base_url=...`` by hand)::

    python tests/openai_stub_server.py --port 8000 --model Qwen2.5-VL-7B-Instruct --latency 0.25
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = [
    "ChatRequest",
    "Drop",
    "Fault",
    "Raw",
    "Reply",
    "StubServer",
    "follow_schema",
    "free_port",
    "server_pool",
    "stub_server",
    "stub_server_factory",
]


# --------------------------------------------------------------------------- actions


@dataclass
class Reply:
    """Answer with ``content`` (a dict/list is JSON-encoded) after ``delay`` seconds."""

    content: str | dict | list | None
    finish_reason: str = "stop"
    delay: float = 0.0


@dataclass
class Fault:
    """Answer with an HTTP error shaped like vLLM's (``{"error": {...}}``)."""

    status: int = 500
    message: str = "injected fault"
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class Drop:
    """Close the connection without answering (a crashed or restarted server)."""

    delay: float = 0.0


@dataclass
class Raw:
    """Answer with an arbitrary body (a proxy's HTML error page, a truncated JSON body...)."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    delay: float = 0.0


Action = Reply | Fault | Drop | Raw
Responder = Callable[["ChatRequest"], "Action | str | dict | list | None"]

_ERROR_TYPES = {
    400: "BadRequestError",
    401: "Unauthorized",
    404: "NotFoundError",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
}


# --------------------------------------------------------------------------- requests


@dataclass
class ChatRequest:
    """One recorded chat-completions request, with accessors for what tests check."""

    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def temperature(self) -> float | None:
        return self.body.get("temperature")

    @property
    def seed(self) -> int | None:
        return self.body.get("seed")

    @property
    def response_format(self) -> dict[str, Any] | None:
        return self.body.get("response_format")

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The ``json_schema`` block of ``response_format`` (name, schema, strict)."""
        rf = self.response_format or {}
        return rf.get("json_schema") if rf.get("type") == "json_schema" else None

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema the reply must follow, or ``None``."""
        block = self.json_schema
        return block.get("schema") if block else None

    @property
    def schema_properties(self) -> set[str]:
        return set(((self.schema or {}).get("properties") or {}).keys())

    def texts(self, role: str | None = None) -> list[str]:
        """All text parts of all messages (optionally of one role), in order."""
        out: list[str] = []
        for msg in self.messages:
            if role is not None and msg.get("role") != role:
                continue
            content = msg.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out.extend(p.get("text", "") for p in content if p.get("type") == "text")
        return out

    @property
    def last_user_text(self) -> str:
        texts = self.texts("user")
        return texts[-1] if texts else ""

    def image_urls(self) -> list[str]:
        urls = []
        for msg in self.messages:
            content = msg.get("content")
            if isinstance(content, list):
                for part in content:
                    if part.get("type") == "image_url":
                        url = part.get("image_url")
                        urls.append(url.get("url") if isinstance(url, dict) else url)
        return urls

    def images(self) -> list[Any]:
        """Decode every ``data:image/...;base64,`` URL into a PIL image."""
        from PIL import Image

        out = []
        for url in self.image_urls():
            if not url.startswith("data:image") or "base64," not in url:
                raise ValueError(f"not a base64 image data URL: {url[:40]}...")
            data = base64.b64decode(url.split("base64,", 1)[1])
            img = Image.open(io.BytesIO(data))
            img.load()
            out.append(img)
        return out


# --------------------------------------------------------------------------- schema follower


def follow_schema(schema: dict[str, Any] | None, overrides: dict[str, Any] | None = None) -> Any:
    """A minimal instance valid under ``schema`` (objects, arrays, enums, numbers, strings).

    ``overrides`` maps property names to values used wherever that property appears, so a
    test can steer one field (``{"category": "remove"}``) and let the rest follow.
    """
    overrides = overrides or {}
    if not schema:
        return {}
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return follow_schema(schema[key][0], overrides)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0])
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        names = list(schema.get("required") or props.keys())
        return {
            n: overrides[n] if n in overrides else follow_schema(props.get(n, {}), overrides)
            for n in names
        }
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [follow_schema(schema.get("items", {}), overrides) for _ in range(count)]
    if kind in ("number", "integer"):
        value = schema.get("minimum", 0)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    text = "x" * max(1, int(schema.get("minLength", 1)))
    return text


# --------------------------------------------------------------------------- server


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port with nothing listening on it (for "server down" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class StubServer:
    """An OpenAI-protocol chat server on 127.0.0.1, run in a background thread.

    ``models`` are the served model ids (``/v1/models``); a chat request naming another
    model gets vLLM's 404. ``latency`` is added to every chat request (server side, so many
    requests can wait at once). ``fault_rate`` injects ``fault_status`` errors at random
    (seeded by ``seed``). ``api_key``, when set, is required as a bearer token.
    """

    def __init__(
        self,
        model: str = "stub-model",
        *,
        models: list[str] | None = None,
        responder: Responder | None = None,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        fault_status: int = 500,
        seed: int = 0,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_model_len: int = 8192,
    ) -> None:
        self.models = list(models) if models else [model]
        self.responder = responder
        self.latency = float(latency)
        self.fault_rate = float(fault_rate)
        self.fault_status = int(fault_status)
        self.api_key = api_key
        self.host = host
        self.max_model_len = max_model_len
        self._port = port
        self._rng = random.Random(seed)
        self._script: deque[Action] = deque()
        self._lock = threading.Lock()
        self.requests: list[ChatRequest] = []
        self.model_list_calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("server not started")
        return self._sock.getsockname()[1]

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` (ends in ``/v1``), as vLLM's is."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> StubServer:
        if self._thread is not None:
            return self
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, self._port))
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve())
            except BaseException as exc:  # surfaced to start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="openai-stub-server", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("stub server did not start within 30 s")
        if errors:
            raise RuntimeError(f"stub server failed to start: {errors[0]!r}")
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stub/stats", self._stub_stats)
        app.router.add_post("/stub/reset", self._stub_reset)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock, shutdown_timeout=0.1).start()

    def stop(self) -> None:
        """Stop serving; handlers still waiting (injected delays) are cancelled."""
        if self._thread is None or self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        if not loop.is_running():
            loop.close()
        if self._sock is not None:
            self._sock.close()
        self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- scripting

    def script(self, *actions: Action | str | dict | list) -> StubServer:
        """Queue actions answered, in order, to the next chat requests."""
        with self._lock:
            self._script.extend(_as_action(a) for a in actions)
        return self

    def reset(self) -> None:
        """Forget recorded requests, queued actions and the peak in-flight count."""
        with self._lock:
            self.requests.clear()
            self._script.clear()
            self.peak_in_flight = 0
            self.model_list_calls = 0

    # ----------------------------------------------------------------- handlers

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _error(401, "Unauthorized")

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _stub_stats(self, request: web.Request) -> web.Response:
        """Counters for a server in another process (benchmarks); not part of vLLM's API."""
        with self._lock:
            stats = {
                "requests": len(self.requests),
                "peak_in_flight": self.peak_in_flight,
                "in_flight": self.in_flight,
                "model_list_calls": self.model_list_calls,
            }
        return web.json_response(stats)

    async def _stub_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _models(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        with self._lock:
            self.model_list_calls += 1
        created = int(time.time())
        data = [
            {
                "id": m,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": m,
                "parent": None,
                "max_model_len": self.max_model_len,
                "permission": [],
            }
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            return _error(400, f"invalid JSON body: {exc}")
        record = ChatRequest(body=body, headers=dict(request.headers), received_at=time.time())
        with self._lock:
            self.requests.append(record)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request, record)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, request: web.Request, record: ChatRequest) -> web.StreamResponse:
        body = record.body
        if body.get("model") not in self.models:
            return _error(404, f"The model `{body.get('model')}` does not exist.", param="model")
        if not body.get("messages"):
            return _error(400, "messages must be a non-empty list")
        if body.get("stream"):
            return _error(400, "the stub server does not stream")
        action = self._next_action(record)
        if self.latency:
            await asyncio.sleep(self.latency)
        if action.delay:
            await asyncio.sleep(action.delay)
        if isinstance(action, Drop):
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        if isinstance(action, Raw):
            return web.Response(
                status=action.status, text=action.body, content_type=action.content_type
            )
        if isinstance(action, Fault):
            headers = {"Retry-After": str(action.retry_after)} if action.retry_after else None
            return _error(action.status, action.message, headers=headers)
        return web.json_response(self._completion(body, action))

    def _next_action(self, record: ChatRequest) -> Action:
        with self._lock:
            if self._script:
                return self._script.popleft()
            inject = self.fault_rate > 0 and self._rng.random() < self.fault_rate
        if inject:
            return Fault(status=self.fault_status, message="randomly injected fault")
        if self.responder is not None:
            return _as_action(self.responder(record))
        return Reply(follow_schema(record.schema))

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        content = reply.content
        if content is not None and not isinstance(content, str):
            content = json.dumps(content)
        prompt_tokens = sum(len(t.split()) for t in ChatRequest(body, {}, 0).texts())
        completion_tokens = len((content or "").split())
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": None,
                        "annotations": None,
                        "audio": None,
                        "function_call": None,
                        "tool_calls": [],
                        "reasoning_content": None,
                    },
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                    "stop_reason": None,
                }
            ],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "completion_tokens": completion_tokens,
                "prompt_tokens_details": None,
            },
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }


def _as_action(value: Any) -> Action:
    if isinstance(value, Reply | Fault | Drop | Raw):
        return value
    return Reply(value)


def _error(
    status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """vLLM's error body (``ErrorResponse`` wrapped in ``{"error": ...}``)."""
    payload = {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "Error"),
            "param": param,
            "code": status,
        }
    }
    return web.json_response(payload, status=status, headers=headers)


# --------------------------------------------------------------------------- pytest glue


@contextlib.contextmanager
def server_pool() -> Iterator[Callable[..., StubServer]]:
    """Yield a factory ``make(**StubServer kwargs)`` of started servers; all are stopped on
    exit. The body of a factory fixture: ``with server_pool() as make: yield make``."""
    servers: list[StubServer] = []

    def make(*args: Any, **kwargs: Any) -> StubServer:
        server = StubServer(*args, **kwargs).start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


try:
    import pytest
except ImportError:  # the module is usable without pytest (benchmarks, by hand)
    pytest = None

if pytest is not None:

    @pytest.fixture
    def stub_server_factory() -> Iterator[Callable[..., StubServer]]:
        """Factory fixture: ``stub_server_factory(**StubServer kwargs)`` -> a started server,
        stopped at teardown."""
        with server_pool() as make:
            yield make

    @pytest.fixture
    def stub_server(stub_server_factory: Callable[..., StubServer]) -> StubServer:
        """A started server with default settings (model ``stub-model``, schema follower)."""
        return stub_server_factory()


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", action="append", help="served model id (repeatable)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per chat request")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-status", type=int, default=500)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="steer the schema follower: property FIELD answers VALUE (JSON or text)",
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    models = args.model or ["stub-model"]
    server = StubServer(
        models=models,
        responder=lambda req: follow_schema(req.schema, overrides),
        latency=args.latency,
        fault_rate=args.fault_rate,
        fault_status=args.fault_status,
        host=args.host,
        port=args.port,
    ).start()
    print(f"serving {models} at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
