"""Grounding DINO from the original ``groundingdino_*.pth`` checkpoints on transformers.

See :mod:`iiie.models.grounding_dino.original` for why this exists and how the key
mapping works.
"""

from iiie.models.grounding_dino.original import (
    OriginalArchitecture,
    config_from_original,
    hf_to_original,
    load_original_checkpoint,
    load_original_grounding_dino,
    original_to_hf,
)

__all__ = [
    "OriginalArchitecture",
    "config_from_original",
    "hf_to_original",
    "load_original_checkpoint",
    "load_original_grounding_dino",
    "original_to_hf",
]
