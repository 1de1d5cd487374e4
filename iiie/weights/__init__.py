"""Local weights: clear errors for missing files and one load per process.

No code that runs an experiment downloads anything. Paths come from config; a missing
folder or file is a :class:`MissingWeightsError` that names the file, the config key that
points at it and how to get it. Getting the weights is a separate, explicit step:
``python -m iiie.weights fetch|verify|check`` (:mod:`iiie.weights.manifest`,
:mod:`iiie.weights.fetch`, :mod:`iiie.weights.lock`, :mod:`iiie.weights.needs`), driven
by the manifest ``conf/weights.yaml``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Whether the hub's offline switch was ours (``fetch`` may then lift it for its own process).
OFFLINE_SET_HERE = "HF_HUB_OFFLINE" not in os.environ
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Per-file "Loading weights" bars of transformers/diffusers drown the stage progress bars
# that matter; set HF_HUB_DISABLE_PROGRESS_BARS=0 to get them back.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


class MissingWeightsError(FileNotFoundError):
    """A weights folder or file that the config points at is not on disk."""


def require_files(
    folder: str | os.PathLike | None,
    expected: Iterable[str | tuple[str, ...]],
    config_key: str,
    hint: str = "",
) -> Path:
    """Check ``folder`` holds each expected file (a tuple means "any one of these").

    Returns the folder as a :class:`Path`; raises :class:`MissingWeightsError` naming the
    config key, the folder and what is missing.
    """
    how = f" {hint}" if hint else ""
    if folder is None or str(folder) in ("", "None", "???"):
        raise MissingWeightsError(
            f"no weights folder configured: set `{config_key}=/path/to/folder`.{how}"
        )
    path = Path(folder).expanduser()
    if not path.exists():
        raise MissingWeightsError(
            f"weights folder not found: {path} (from `{config_key}`).{how}"
        )
    missing = []
    for item in expected:
        options = (item,) if isinstance(item, str) else tuple(item)
        if not any((path / o).exists() for o in options):
            missing.append(" or ".join(options))
    if missing:
        raise MissingWeightsError(
            f"weights folder {path} (from `{config_key}`) lacks: {', '.join(missing)}.{how}"
        )
    return path


_CACHE: dict[Any, Any] = {}
_LOCK = threading.Lock()
LOAD_COUNTS: dict[str, int] = {}


def load_once(key: Any, loader: Callable[[], T], label: str | None = None) -> T:
    """Return the object cached under ``key``, building it with ``loader`` the first time.

    Editors that serve several category routes with the same weights share one model per
    process this way. ``LOAD_COUNTS[label]`` counts real loads (for the run manifest).
    """
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    obj = loader()
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = obj
            name = label or str(key[0] if isinstance(key, tuple) else key)
            LOAD_COUNTS[name] = LOAD_COUNTS.get(name, 0) + 1
        return _CACHE[key]


def loaded_keys() -> set[Any]:
    """The keys of every model cached by :func:`load_once` now."""
    with _LOCK:
        return set(_CACHE)


def release(keys: Any) -> int:
    """Drop the cached models under ``keys`` (the runner calls this when a stage is done, so
    that the next stage's models do not have to fit next to them); returns how many were
    dropped. ``LOAD_COUNTS`` keeps counting: a released model loaded again counts twice."""
    with _LOCK:
        dropped = [k for k in keys if _CACHE.pop(k, None) is not None]
    return len(dropped)


def clear_loaded() -> None:
    """Drop every cached model (tests use this to measure loads)."""
    with _LOCK:
        _CACHE.clear()
        LOAD_COUNTS.clear()
