"""Async OpenAI-protocol chat client for a vLLM server: concurrency, timeouts, retries.

Everything that can go wrong between the planner and the server is handled here, so the
planner only sees two outcomes per request: reply text, or :class:`RequestFailed` with a
short ``reason`` that the run summary counts.

* ``health_check`` (``GET /v1/models``) turns a down server, a wrong base URL, a rejected
  key or a wrong model name into one :class:`~iiie.errors.BackendUnavailableError` that
  says how to fix it, before any sample is sent.
* At most ``concurrency`` requests are in flight (a semaphore held only while a request
  is on the wire, not during back-off).
* Connection errors, timeouts, 408, 429 and 5xx are retried ``retries`` times with
  exponential back-off and jitter (429 honours ``Retry-After``); other 4xx are not retried.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import openai

from iiie.errors import BackendUnavailableError
from iiie.vlm.sampling import request_fields
from iiie.vlm.settings import VLMSettings
from iiie.vlm.stats import Stats

RETRYABLE_STATUS = frozenset({408, 409, 429})
#: Failure reasons that describe the server, not the request: the same request may well
#: succeed later, so a result built from such a failure must never be cached as final.
OUTAGE_REASONS = frozenset({"timeout", "connection", "bad_response"})


def is_outage(reason: str | None) -> bool:
    """Is ``reason`` (a :class:`RequestFailed` reason) a server outage rather than an
    answer about this request? Timeouts, refused connections, malformed 200s, 5xx and the
    retryable 4xx statuses are; other 4xx (a request the server will always reject) are not."""
    if not reason:
        return False
    if reason in OUTAGE_REASONS:
        return True
    if reason.startswith("http_"):
        try:
            code = int(reason[5:])
        except ValueError:
            return False
        return code >= 500 or code in RETRYABLE_STATUS
    return False


class RequestFailed(Exception):
    """A request that did not produce a reply, after retries where retrying made sense."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ChatResult:
    content: str | None
    finish_reason: str | None


def _status_reason(exc: openai.APIStatusError) -> str:
    return f"http_{exc.status_code}"


def _short(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc)
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({type(cause).__name__}: {cause})"
    return text[:300]


class VLMClient:
    """One per planner; must be used from a single event loop (see :mod:`iiie.vlm.aio`)."""

    def __init__(self, settings: VLMSettings, stats: Stats | None = None) -> None:
        self.settings = settings
        self.stats = stats if stats is not None else Stats()
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._rng = random.Random(0)

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            s = self.settings
            self._client = openai.AsyncOpenAI(
                base_url=s.base_url,
                api_key=s.resolved_api_key(),
                timeout=openai.Timeout(s.timeout, connect=min(s.connect_timeout, s.timeout)),
                max_retries=0,  # retries are ours: counted, with our back-off
            )
            self._semaphore = asyncio.Semaphore(s.concurrency)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ----------------------------------------------------------------- health

    async def health_check(self) -> list[str]:
        """Check the server answers ``GET /models`` and serves ``settings.model``.

        Returns the served model ids; raises :class:`BackendUnavailableError` otherwise.
        """
        s = self.settings
        fix = (
            "Start the server with `make serve-vlm` (it serves vlm.serve.model_path under the "
            f"name vlm.model={s.model!r}), or point vlm.base_url at a running "
            "OpenAI-compatible server."
        )
        last: BaseException | None = None
        for attempt in range(2):
            try:
                page = await self.client.models.list(timeout=s.health_timeout)
                served = [m.id for m in page.data]
                break
            except openai.AuthenticationError as exc:
                raise BackendUnavailableError(
                    f"the VLM server at {s.base_url} rejected the API key (HTTP 401): set "
                    f"vlm.api_key or the environment variable {s.api_key_env}."
                ) from exc
            except openai.NotFoundError as exc:
                raise BackendUnavailableError(
                    f"{s.base_url} answered 404 to GET /models: vlm.base_url must be the "
                    "OpenAI API root of the server (for vLLM it ends in /v1). " + fix
                ) from exc
            except openai.APIStatusError as exc:
                raise BackendUnavailableError(
                    f"the VLM server at {s.base_url} answered HTTP {exc.status_code} to "
                    f"GET /models: {_short(exc)}"
                ) from exc
            except openai.APIConnectionError as exc:
                last = exc
                if attempt == 0:
                    await asyncio.sleep(min(s.backoff, 1.0))
            except (ValueError, AttributeError, TypeError) as exc:
                raise BackendUnavailableError(
                    f"{s.base_url} answered GET /models with something that is not an OpenAI "
                    f"model list ({type(exc).__name__}: {str(exc)[:200]}); is vlm.base_url the "
                    "API root of an OpenAI-compatible server (for vLLM it ends in /v1)?"
                ) from exc
        else:
            raise BackendUnavailableError(
                f"no VLM server reachable at vlm.base_url={s.base_url} ({_short(last)}). {fix}"
            ) from last
        if s.model not in served:
            raise BackendUnavailableError(
                f"model {s.model!r} (vlm.model) is not served at {s.base_url}; it serves: "
                f"{', '.join(map(repr, served)) or 'nothing'}. Set vlm.model to one of these, "
                "or restart the server for this model with `make serve-vlm vlm=<config>`."
            )
        return served

    # ----------------------------------------------------------------- chat

    async def chat(
        self,
        messages: list[dict[str, Any]],
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        """One chat completion, retried per the fault policy; raises :class:`RequestFailed`."""
        s = self.settings
        client = self.client
        assert self._semaphore is not None
        # the same explicit sampling fields as the offline engine (iiie/vlm/sampling.py)
        kwargs: dict[str, Any] = {"model": s.model, "messages": messages, **request_fields(s, seed)}
        if response_format is not None:
            kwargs["response_format"] = response_format
        if s.extra_body:
            kwargs["extra_body"] = dict(s.extra_body)
        for attempt in range(s.retries + 1):
            retry_after: float | None = None
            async with self._semaphore:
                self.stats.add("requests")
                try:
                    response = await client.chat.completions.create(**kwargs)
                    result = _first_choice(response)
                except openai.APITimeoutError as exc:
                    reason, detail = "timeout", f"no reply within {s.timeout:g} s ({_short(exc)})"
                except openai.APIConnectionError as exc:
                    reason, detail = "connection", _short(exc)
                except openai.APIStatusError as exc:
                    reason, detail = _status_reason(exc), _short(exc)
                    if exc.status_code < 500 and exc.status_code not in RETRYABLE_STATUS:
                        raise RequestFailed(reason, detail) from exc
                    retry_after = _retry_after(exc)
                except (openai.APIResponseValidationError, ValueError, AttributeError) as exc:
                    # a 200 whose body is not a chat completion (truncated, a proxy's page)
                    reason, detail = "bad_response", f"{type(exc).__name__}: {str(exc)[:200]}"
                else:
                    return result
            if attempt == s.retries:
                raise RequestFailed(reason, f"{detail} (after {s.retries} retries)")
            self.stats.add("retries")
            self.stats.add(f"retry.{reason}")
            await asyncio.sleep(self._delay(attempt, retry_after))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        base = min(s.backoff * (2**attempt), s.backoff_max)
        delay = base * (0.5 + 0.5 * self._rng.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.backoff_max))
        return delay


def _first_choice(response: Any) -> ChatResult:
    choices = getattr(response, "choices", None)
    if not choices:
        raise ValueError("the response has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None:
        raise ValueError("the first choice has no message")
    return ChatResult(message.content, getattr(choice, "finish_reason", None))


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None
