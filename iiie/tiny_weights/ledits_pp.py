"""Tiny random weights for ``editor=ledits_pp``: an SD1.5 layout (LEdits++ runs on a plain
Stable Diffusion checkpoint), written to ``root/stable-diffusion-v1-5``."""

from __future__ import annotations

import os
from pathlib import Path

from iiie.tiny_weights.common import ensure_folder
from iiie.tiny_weights.sd15 import write_tiny_sd15_base

FOLDER = "stable-diffusion-v1-5"


def ensure(root: str | os.PathLike) -> Path:
    """Write ``root/stable-diffusion-v1-5`` (tiny, random) if missing; return its path."""
    return ensure_folder(root, FOLDER, write_tiny_sd15_base)
