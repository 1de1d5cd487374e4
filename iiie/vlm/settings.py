"""The client-side half of the Hydra ``vlm`` node, checked once, with clear errors.

``conf/vlm/<name>.yaml`` holds both what the client needs (server URL, model id, sampling,
image grid, coordinate convention, throughput knobs) and, under ``serve:``, what
``python -m iiie.vlm.serve`` needs. This module reads the first half; unknown keys are
an error so a typo such as ``vlm.concurency=8`` does not pass unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from iiie.vlm.coords import FAMILY_PATCH_SIZE, Coords, coords_for

#: What answers the requests (:mod:`iiie.vlm.engines`): the OpenAI-protocol server,
#: ``vllm.LLM`` in-process, or Hugging Face ``generate`` in-process.
ENGINES = ("server", "vllm", "transformers")

#: ``vlm`` keys that change how fast or where plans are made, not what they are. A stage
#: cache key over the planner config can leave them out, so moving the server or raising
#: the concurrency does not invalidate cached plans.
NON_SEMANTIC_KEYS = frozenset(
    {
        "base_url",
        "api_key",
        "api_key_env",
        "concurrency",
        "timeout",
        "connect_timeout",
        "retries",
        "backoff",
        "backoff_max",
        "health_timeout",
        "serve",
        # planner keys with the same property: how an outage is bridged (provisional plans
        # are recomputed anyway), and whether the server is probed first
        "fallback_on_outage",
        "health_check",
    }
)


@dataclass(frozen=True)
class VLMSettings:
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen2.5-VL-7B-Instruct"
    api_key: str | None = None
    api_key_env: str = "IIIE_VLM_API_KEY"
    family: str = "qwen2_5_vl"
    coords: str | None = None
    patch_size: int | None = None
    min_pixels: int = 256 * 28 * 28
    max_pixels: int = 1280 * 28 * 28
    image_format: str = "JPEG"
    image_quality: int = 95
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 512
    timeout: float = 120.0
    connect_timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 10.0
    concurrency: int = 32
    health_timeout: float = 10.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    engine: str = "server"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"vlm.engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.concurrency < 1:
            raise ValueError(f"vlm.concurrency must be >= 1, got {self.concurrency}")
        if self.retries < 0:
            raise ValueError(f"vlm.retries must be >= 0, got {self.retries}")
        if self.timeout <= 0:
            raise ValueError(f"vlm.timeout must be > 0 seconds, got {self.timeout}")
        if not str(self.base_url).startswith(("http://", "https://")):
            raise ValueError(f"vlm.base_url must be an http(s) URL, got {self.base_url!r}")
        coords_for(self.family, self.coords)  # raises for an unknown family without coords

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> VLMSettings:
        """Build from the ``vlm`` node (a dict or DictConfig); ``serve`` is skipped."""
        cfg = cfg or {}
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        unknown = []
        for key in cfg.keys():
            if key == "serve" or str(key).startswith("_"):
                continue
            if key not in known:
                unknown.append(key)
                continue
            value = cfg[key]
            if hasattr(value, "items") and not isinstance(value, dict):  # DictConfig
                from omegaconf import OmegaConf

                value = OmegaConf.to_container(value, resolve=True)
            values[key] = value
        if unknown:
            raise ValueError(
                f"unknown vlm config keys {sorted(unknown)}; known: {sorted(known | {'serve'})}"
            )
        if values.get("extra_body") is None:
            values.pop("extra_body", None)
        return cls(**values)

    @property
    def coord_convention(self) -> Coords:
        return coords_for(self.family, self.coords)

    @property
    def vision_patch_size(self) -> int:
        if self.patch_size:
            return int(self.patch_size)
        return FAMILY_PATCH_SIZE.get(self.family, 14)

    def resolved_api_key(self) -> str:
        """``vlm.api_key``, else ``$<api_key_env>``, else ``$OPENAI_API_KEY``, else "EMPTY"
        (vLLM started without ``--api-key`` accepts any key)."""
        if self.api_key:
            return str(self.api_key)
        for name in (self.api_key_env, "OPENAI_API_KEY"):
            if name and os.environ.get(name):
                return os.environ[name]
        return "EMPTY"
