"""Tiny random weights for ``editor=flux_fill``: every component of the real
``black-forest-labs/FLUX.1-Fill-dev`` folder, the FLUX.1 parts of
:func:`iiie.tiny_weights.flux_kontext.tiny_flux_parts` with the Fill transformer's wider
input (noisy latents + packed masked-image latents + the 8x8-packed mask, as the real
``in_channels=384``/``out_channels=64``, scaled to the tiny 4-channel VAE), saved with
``FluxFillPipeline.save_pretrained`` in the official layout.
"""

from __future__ import annotations

import os
from pathlib import Path

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.flux_kontext import tiny_flux_parts

FOLDER = "FLUX.1-Fill-dev"
#: Packed latent width of the tiny VAE (4 latent channels x 2x2 patches).
PACKED = 16
#: The mask, packed as the pipeline does: 8x8 pixels per latent, then 2x2 patches.
MASK_PACKED = 8 * 8 * 4


def write_tiny_flux_fill(folder: Path, seed: int = 0) -> None:
    """Build the tiny pipeline from the real classes and save it in the diffusers layout."""
    from diffusers import FluxFillPipeline

    pipe = FluxFillPipeline(**tiny_flux_parts(folder / ".tok", seed, mask_channels=PACKED + MASK_PACKED))
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / "README.md").write_text(f"Tiny random-weight FLUX.1 Fill ({__name__}); not a real model.\n")


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/FLUX.1-Fill-dev`` (tiny, random) if missing; return its path."""
    return ensure_folder(root, FOLDER, write_tiny_flux_fill)
