"""``runtime.device`` / ``runtime.dtype`` strings -> torch objects, for every backend.

One place, so that "auto", the accepted dtype spellings and the error for CUDA on a
machine without it are the same for editors, maskers and metric backbones.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}  # fmt: skip


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/``None`` -> CUDA if available, else CPU; anything else as given.

    Asking for CUDA where there is none is an error here, at construction, rather than at
    the first tensor move deep inside a model."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(str(device)) if not isinstance(device, torch.device) else device
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available (set runtime=cpu)")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device | None = None) -> torch.dtype:
    """Parse ``runtime.dtype`` (``None``/``"auto"`` = float32).

    With ``device`` given, half precision on the CPU falls back to float32 (slow or
    unsupported for some ops there; logged). Without it, the dtype is returned as asked.
    """
    if isinstance(dtype, torch.dtype):
        out = dtype
    else:
        key = "float32" if dtype in (None, "auto") else str(dtype).lower()
        if key not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(DTYPES)}")
        out = DTYPES[key]
    if device is not None and device.type == "cpu" and out != torch.float32:
        log.info("dtype %s on CPU: using float32", out)
        return torch.float32
    return out
