"""Tiny random MagicBrush weights: the InstructPix2Pix layout (MagicBrush is a fine-tune of
it), written to ``root/magicbrush`` with its own seed so the two methods differ."""

from __future__ import annotations

import os
from pathlib import Path

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.infedit import write_tiny_instructpix2pix

FOLDER = "magicbrush"


def write_tiny_magicbrush(folder: Path) -> None:
    """Same classes and layout as instruct-pix2pix; different random weights."""
    write_tiny_instructpix2pix(folder, seed=1)


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/magicbrush`` (tiny, random) if missing; return its path."""
    return ensure_folder(root, FOLDER, write_tiny_magicbrush)
