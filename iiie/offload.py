"""GPU memory controls shared by the diffusion editors (``runtime.offload``) and the
fp16-variant weight folders.

Why: one SD1.5 pipeline in fp16 is ~2.5 GB, but BrushNet + PowerPaint + InfEdit + the
masker resident together, plus activations at batch 8, do not fit a 24 GB card. diffusers'
offload hooks keep the weights in host memory and move them to the GPU when called:
``model`` moves one whole model at a time (small slowdown), ``sequential`` one layer at a
time (smallest memory, slow). Folders published with only ``*.fp16.safetensors`` need
``variant="fp16"``, otherwise diffusers looks for the plain file names and fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

OFFLOAD_MODES = ("none", "model", "sequential")
_WEIGHT_NAMES = ("diffusion_pytorch_model", "model")
_WEIGHT_EXTS = (".safetensors", ".bin")


def check_offload(mode: str | None, config_key: str = "runtime.offload") -> str:
    """The offload mode as one of :data:`OFFLOAD_MODES` (``None`` means ``"none"``)."""
    mode = "none" if mode in (None, "", False) else str(mode)
    if mode not in OFFLOAD_MODES:
        raise ValueError(f"{config_key}={mode!r}: choose one of {', '.join(OFFLOAD_MODES)}")
    return mode


def detect_variant(folder: str | Path, components: tuple[str, ...] = ("unet", "vae", "text_encoder")) -> str | None:
    """``"fp16"`` when a component folder has only ``*.fp16.*`` weight files, else ``None``.

    ``folder`` is a diffusers pipeline folder (its ``components`` sub-folders are checked) or
    one model folder (checked itself when it has no such sub-folders).
    """
    root = Path(folder)
    dirs = [root / c for c in components if (root / c).is_dir()] or [root]
    for d in dirs:
        plain = [d / f"{n}{e}" for n in _WEIGHT_NAMES for e in _WEIGHT_EXTS]
        plain += list(d.glob("*.safetensors.index.json"))
        plain = [p for p in plain if p.exists() and ".fp16." not in p.name]
        fp16 = list(d.glob("*.fp16.safetensors")) + list(d.glob("*.fp16.bin"))
        if fp16 and not plain:
            return "fp16"
    return None


def load_device(device: torch.device, mode: str) -> torch.device:
    """Where models are loaded: host memory when an offload hook will move them."""
    return torch.device("cpu") if check_offload(mode) != "none" else device


def apply_offload(pipe: Any, mode: str, device: torch.device, config_key: str = "runtime.offload") -> Any:
    """Install diffusers' offload hooks on ``pipe`` for ``mode`` (no-op for ``"none"``).

    Offload needs an accelerator (the hooks move weights *to* it): asking for it with a CPU
    device is a clear error rather than a silent no-op.
    """
    mode = check_offload(mode, config_key)
    if mode == "none":
        return pipe
    device = torch.device(device)
    if device.type == "cpu":
        raise ValueError(f"{config_key}={mode} needs a GPU device (got {device}); use offload=none on CPU")
    method = "enable_model_cpu_offload" if mode == "model" else "enable_sequential_cpu_offload"
    if not hasattr(pipe, method):
        raise ValueError(f"{config_key}={mode}: {type(pipe).__name__} has no {method}; use offload=none")
    getattr(pipe, method)(device=device)
    return pipe


def free_memory() -> None:
    """Collect garbage and return the freed blocks to the GPU driver when one is in use, so
    memory a released model held is available to the next stage (and ``nvidia-smi``)."""
    import gc

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
