"""Strict loading of PowerPaint v2's official ``PowerPaint_Brushnet/`` folder.

The reference loads the BrushNet-CA weights with ``safetensors.torch.load_model`` (strict)
into a branch built from the base UNet. The folder's own ``config.json`` describes the same
architecture, so we build from it and insist on an exact key match: a checkpoint that does
not fit is an error listing the keys, never a half-random model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

BRUSHNET_FILES = ("config.json", "diffusion_pytorch_model.safetensors")


def load_brushnet_ca(folder: str | os.PathLike, dtype: torch.dtype = torch.float32):
    """The BrushNet-CA branch from ``folder`` (config + safetensors), loaded strictly."""
    from safetensors.torch import load_file

    from iiie.models.brushnet.model import BrushNetModel

    folder = Path(folder)
    config = BrushNetModel.load_config(str(folder))
    model = BrushNetModel.from_config(config)
    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    own = set(model.state_dict())
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        raise ValueError(
            f"BrushNet checkpoint {folder} does not match its config: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    model.load_state_dict(state, strict=True)
    if dtype != torch.float32:
        model = model.to(dtype=dtype)
    return model.eval()
