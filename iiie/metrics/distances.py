"""Reference-exact pixel distances shared by the benchmark metrics.

These differ from the generic helpers in :mod:`iiie.metrics.pixel` on purpose: they
reproduce the exact arithmetic of the published evaluation scripts (resize rule, value
range, float32 torch means), so our numbers sit in the same table as theirs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from iiie.metrics.pixel import PSNR_CAP


def l1_l2_resized(output: Image.Image, reference: Image.Image) -> tuple[float, float]:
    """MagicBrush ``eval_distance``: resize ``output`` to ``reference`` with PIL's default
    resample, ``ToTensor`` both (float32 in [0, 1]), ``nn.L1Loss`` / ``nn.MSELoss``."""
    out = output.convert("RGB")
    ref = reference.convert("RGB")
    if out.size != ref.size:
        out = out.resize(ref.size)  # PIL default resample, as the reference
    a, b = TF.to_tensor(out), TF.to_tensor(ref)
    return float(torch.mean(torch.abs(a - b))), float(torch.mean((a - b) ** 2))


def to_unit(image: Image.Image) -> np.ndarray:
    """PIL -> HxWx3 float32 in [0, 1] (``np.array(img).astype(np.float32) / 255``)."""
    return np.asarray(image.convert("RGB")).astype(np.float32) / 255


def psnr(a: np.ndarray, b: np.ndarray, cap: float | None = PSNR_CAP) -> float:
    """torchmetrics ``PeakSignalNoiseRatio(data_range=1.0)`` on one pair: 10 log10(1/MSE).

    Identical inputs give +inf there; ``cap`` (default :data:`iiie.metrics.pixel.PSNR_CAP`)
    keeps means finite, ``None`` returns the raw value.
    """
    mse = float(torch.mean((torch.from_numpy(a) - torch.from_numpy(b)) ** 2))
    value = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
    return value if cap is None else min(value, cap)
