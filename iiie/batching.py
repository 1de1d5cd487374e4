"""Splitting work into batches and running a batch so that one bad sample fails alone
(stages, editors, the planning CLI): one definition for the whole package."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from iiie import weights
from iiie.errors import ConfigurationError, DeviceError

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items (``size`` < 1 counts as 1)."""
    size = max(1, int(size))
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


#: Exceptions that stop the run instead of being recorded against one sample.
FATAL = (ConfigurationError, weights.MissingWeightsError, KeyboardInterrupt, MemoryError, SystemExit)


def device_failure(exc: BaseException) -> str | None:
    """``"oom"`` for an accelerator out of memory, ``"cuda"`` for another CUDA error (the
    device state is then unknown), None for anything else."""
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", ()) if torch is not None else ()
    text = str(exc)
    if isinstance(exc, oom_type) or ("out of memory" in text and ("CUDA" in text or "HIP" in text or "MPS" in text)):
        return "oom"
    if isinstance(exc, RuntimeError) and ("CUDA error" in text or type(exc).__name__ == "AcceleratorError"):
        return "cuda"
    return None


def _free_device_cache() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def guarded_batch(
    fn: Callable[[list], list], items: list, on_ok: Callable, on_error: Callable, batch_key: str = "the batch size"
) -> tuple[int, int]:
    """Run ``fn`` on a batch; if it raises, retry item by item so that one bad sample
    fails alone. ``on_ok(item, output, seconds)`` gets the batch time divided by its size;
    an exception that ``fn`` returns in an item's slot goes to ``on_error`` like a raised one.

    Out of device memory is not a sample's failure: the batch is halved and retried, and at
    one item the run stops with a :class:`DeviceError` that names ``batch_key``; any other
    CUDA error stops the run at once. Nothing is recorded against the samples either way.

    Returns ``(sent, retried)``: the items given to the backend, and the extra calls made
    to isolate a failure or fit in memory (counted apart, so "calls per sample" stays exact)."""
    t0 = time.perf_counter()
    try:
        outs = fn(items)
    except FATAL:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded per sample below
        kind = device_failure(exc)
        if kind == "cuda":
            raise DeviceError(f"CUDA error, stopping the run (nothing recorded against the samples): {exc}") from exc
        if kind == "oom" and len(items) == 1:
            raise DeviceError(
                f"out of device memory on a single sample ({exc}); lower the resolution, use "
                "runtime.dtype=float16/bfloat16 or runtime.offload=model; the batch size "
                f"({batch_key}) is already 1 here"
            ) from exc
        if kind == "oom":
            _free_device_cache()
            half = len(items) // 2
            parts = [guarded_batch(fn, part, on_ok, on_error, batch_key) for part in (items[:half], items[half:])]
            return len(items), sum(sent + again for sent, again in parts)
        if len(items) == 1:
            on_error(items[0], exc)
            return 1, 0
        retried = 0
        for it in items:
            _, again = guarded_batch(fn, [it], on_ok, on_error, batch_key)
            retried += 1 + again
        return len(items), retried
    if len(outs) != len(items):
        raise RuntimeError(f"backend returned {len(outs)} results for {len(items)} inputs")
    seconds = (time.perf_counter() - t0) / max(len(items), 1)
    for it, out in zip(items, outs, strict=True):
        if isinstance(out, BaseException):
            on_error(it, out)
        else:
            on_ok(it, out, seconds)
    return len(items), 0
