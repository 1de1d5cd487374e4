"""Where models live, as far as the run itself is concerned: the placement check (every
``offload`` setting of a composed config against its component's ``device``, before any
stage runs) and :func:`free_memory` between stages.

Why a module of its own: it runs for every run, and the offload machinery
(:mod:`iiie.offload`) needs torch; a CPU smoke run, whose components take no offload,
should not pay torch's import for a check that has nothing to check. So this walk is
plain Python and imports :mod:`iiie.offload` only when some component asks for offload.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

#: ``runtime.offload`` (and every component's ``offload``): none | model | sequential.
OFFLOAD_MODES = ("none", "model", "sequential")


def check_offload(mode: str | None, config_key: str = "runtime.offload") -> str:
    """The offload mode as one of :data:`OFFLOAD_MODES` (``None``/empty means ``"none"``)."""
    mode = "none" if mode in (None, "", False) else str(mode)
    if mode not in OFFLOAD_MODES:
        raise ValueError(f"{config_key}={mode!r}: choose one of {', '.join(OFFLOAD_MODES)}")
    return mode


def _asks_for_offload(mode: Any) -> bool:
    """True for ``model``/``sequential`` and for a misspelt mode (reported by the check)."""
    try:
        return check_offload(mode) != "none"
    except ValueError:
        return True


def offload_settings(cfg: DictConfig) -> list[tuple[str, Any, Any]]:
    """``(config key, mode, device)`` of every component that asks for offload (a config
    node with both ``offload`` and ``device`` keys and a mode other than none). ``vlm.serve``
    counts only when the in-process transformers engine reads it (``vlm.engine=transformers``:
    a server or vLLM has its own memory settings, and a rule-planner run builds no VLM)."""
    found: list[tuple[str, Any, Any]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, DictConfig):
            keys = list(node.keys())
            if path == "vlm" and node.get("engine") != "transformers":
                return
            if {"offload", "device"} <= set(keys) and _asks_for_offload(node.offload):
                found.append((f"{path}.offload" if path else "offload", node.offload, node.device))
            for k in keys:
                try:
                    child = None if OmegaConf.is_missing(node, k) else node[k]
                except Exception:  # noqa: BLE001 -- a value this check cannot resolve is not its business
                    continue
                walk(child, f"{path}.{k}" if path else str(k))
        elif isinstance(node, ListConfig):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")

    walk(cfg, "")
    return found


def check_config_offload(cfg: DictConfig) -> None:
    """Raise one :class:`iiie.offload.OffloadError` naming every offload setting its device
    cannot honour (``model``/``sequential`` on CPU, an unknown mode).

    Editors check their mode when built and maskers when the mask stage builds them, so
    without this a ``runtime.offload=model`` on a CPU machine would stop a run only after
    the plan stage had run."""
    settings = offload_settings(cfg)
    if not settings:
        return
    from iiie.devices import resolve_device
    from iiie.offload import OffloadError, check_module_offload

    bad = []
    for key, mode, device in settings:
        try:
            check_module_offload(mode, resolve_device(device), key)
        except OffloadError as err:
            bad.append(str(err))
    if bad:
        raise OffloadError("\n".join(sorted(set(bad))))


def free_memory() -> None:
    """Collect garbage and return the freed blocks to the GPU driver when one is in use, so
    memory a released model held is available to the next stage (and ``nvidia-smi``).
    A run that never imported torch has no models to free: torch is not imported for it."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
