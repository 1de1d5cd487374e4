"""Generators of tiny random-weight models in the official on-disk layouts.

Each module exposes ``ensure(root) -> Path``: write the folder if missing (idempotent,
atomic), return its path. Before a run, :func:`ensure_referenced` writes every folder
under ``<paths.cache>/tiny/`` that the composed config names, so any ``tiny/...`` editor,
masker, VLM or method runs on CPU without a download and without listing its writers.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from omegaconf import DictConfig

#: Folder under ``<paths.cache>/tiny`` -> ``module:function`` that writes it.
WRITERS = {
    "brushnet": "iiie.tiny_weights.brushnet:ensure",
    "PowerPaint_v2": "iiie.tiny_weights.powerpaint:ensure",
    "LCM_Dreamshaper_v7": "iiie.tiny_weights.infedit:ensure",
    "instruct-pix2pix": "iiie.tiny_weights.infedit:ensure_instructpix2pix",
    "magicbrush": "iiie.tiny_weights.magicbrush:ensure",
    "stable-diffusion-v1-5": "iiie.tiny_weights.ledits_pp:ensure",
    "FLUX.1-Kontext-dev": "iiie.tiny_weights.flux_kontext:ensure",
    "FLUX.1-Fill-dev": "iiie.tiny_weights.flux_fill:ensure",
    "Qwen-Image-Edit": "iiie.tiny_weights.qwen_image_edit:ensure",
    "stable-diffusion-xl-1.0-inpainting-0.1": "iiie.tiny_weights.sdxl_inpaint:ensure",
    "qwen2_5_vl": "iiie.tiny_weights.qwen2_5_vl:ensure",
    "qwen3_vl": "iiie.tiny_weights.qwen3_vl:ensure",
    "grounded_sam": "iiie.maskers.tiny:ensure",
    "sam2": "iiie.tiny_weights.sam2:ensure",
    "sam3": "iiie.tiny_weights.sam3:ensure",
}


def referenced(cfg: DictConfig) -> list[str]:
    """The tiny folders (keys of :data:`WRITERS`) that ``cfg`` names, in config order."""
    from iiie.weights.needs import _leaves  # every resolvable leaf, the weights preflight's walk

    root = Path(str(cfg.paths.cache)).expanduser().absolute() / "tiny"
    found: list[str] = []
    for key, value in _leaves(cfg, ""):
        if key.startswith("hydra") or not isinstance(value, str) or not value:
            continue
        try:
            rel = Path(value).expanduser().absolute().relative_to(root)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] in WRITERS and rel.parts[0] not in found:
            found.append(rel.parts[0])
    return found


def ensure_referenced(cfg: DictConfig) -> list[Path]:
    """Write every tiny folder ``cfg`` names (a no-op for folders already complete)."""
    root = Path(str(cfg.paths.cache)).expanduser() / "tiny"
    out = []
    for folder in referenced(cfg):
        module, function = WRITERS[folder].split(":")
        out.append(getattr(importlib.import_module(module), function)(root))
    return out
