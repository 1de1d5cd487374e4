"""Helpers shared by the diffusion editors (BrushNet, PowerPaint, ...).

Each does one small job so that an editor's ``edit_batch`` reads as: resolve device/dtype
once, bring each (image, mask) to the model's resolution, run the model on batches of equal
size, map the result back and paste it into the original with :func:`iiie.masks.paste_back`
(pixels outside the feathered mask stay bit-identical to the input).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from iiie import masks as M
from iiie.batching import chunks
from iiie.types import EditRequest, EditResult, MaskResult, Plan

log = logging.getLogger(__name__)
T = TypeVar("T")

@dataclass
class ModelInput:
    """One sample at model resolution (``size`` = (w, h), multiples of 8)."""

    image: Image.Image
    mask: np.ndarray  # HxW bool at model resolution, True = change
    size: tuple[int, int]


def to_model_input(image: Image.Image, mask: np.ndarray, long_side: int, multiple: int = 8) -> ModelInput:
    """Resize image (Lanczos) and mask (area-weighted, then >= 0.5, so thin regions are
    not lost to nearest-neighbour sampling) to the model resolution."""
    image = image.convert("RGB")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (image.height, image.width):
        raise ValueError(f"mask shape {mask.shape} does not match image size {image.size}")
    size = M.model_resolution(image.size, long_side, multiple)
    img = image if image.size == size else image.resize(size, Image.LANCZOS)
    if mask.shape[::-1] == size:
        m = mask.copy()
    else:
        m_img = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.BOX)
        m = np.asarray(m_img) >= 128
        if mask.any() and not m.any():  # a region smaller than one model pixel
            m = np.asarray(m_img) > 0
    return ModelInput(img, m, size)


def group_by_size(inputs: Sequence[ModelInput]) -> dict[tuple[int, int], list[int]]:
    """Indices of inputs that share a model resolution (one pipeline batch each)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, x in enumerate(inputs):
        groups.setdefault(x.size, []).append(i)
    return groups


def generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per sample: a sample's noise does not depend on its batch or device."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


def finish(source: Image.Image, edited: Image.Image, mask: np.ndarray, blur: int) -> Image.Image:
    """Back to the input size and pasted into the source with the feathered mask."""
    return M.paste_back(source.convert("RGB"), edited, np.asarray(mask, dtype=bool), int(blur))


#: ``EditResult.params["note"]`` of a sample whose mask is empty (nothing to edit).
EMPTY_NOTE = "empty mask: input returned"


@dataclass
class Batch:
    """One ``edit_batch`` call after :func:`start_batch`: ``results[i]`` is already set for
    samples with an empty mask; the others (``todo[k]`` = their index in the call) wait for
    the model with ``inputs[k]`` at model resolution."""

    results: list[EditResult | None]
    todo: list[int] = field(default_factory=list)
    inputs: list[ModelInput] = field(default_factory=list)

    def groups(self, batch_size: int | None = None) -> Iterator[tuple[tuple[int, int], list[int]]]:
        """(model size, positions ``k``) per model call: equal sizes together, at most
        ``batch_size`` per call (all of one size when None)."""
        for size, members in group_by_size(self.inputs).items():
            if batch_size is None:
                yield size, members
            else:
                for chunk in chunks(members, batch_size):
                    yield size, chunk

    def generators(self, seeds: Sequence[int], members: Sequence[int]) -> list[torch.Generator]:
        """The seeded generators of the samples at positions ``members``."""
        return generators([seeds[self.todo[k]] for k in members])

    def done(self) -> list[EditResult]:
        """The results in input order (call once every sample has one)."""
        return [r for r in self.results if r is not None]


def start_batch(
    name: str,
    requests: Sequence[EditRequest],
    plans: Sequence[Plan],
    masks: Sequence[MaskResult],
    seeds: Sequence[int],
    resolution: int,
    counts: dict[str, int],
    empty_params: Callable[[], dict[str, Any]] | None = None,
    multiple: int = 8,
) -> Batch:
    """Check the batch, return empty-mask samples unchanged, prepare the rest.

    ``counts["samples"]`` and ``counts["empty_masks"]`` are updated. An empty-mask result is
    the input (RGB copy) with ``empty_params()`` (default ``{"note": EMPTY_NOTE}``). Model
    sizes are multiples of ``multiple`` (16 for pipelines that pack 2x2 latent patches).
    """
    n = len(requests)
    if not (len(plans) == len(masks) == len(seeds) == n):
        raise ValueError(f"batch lengths differ: {n} requests, {len(plans)} plans, "
                         f"{len(masks)} masks, {len(seeds)} seeds")
    batch = Batch(results=[None] * n)
    for i, (req, mres) in enumerate(zip(requests, masks, strict=True)):
        counts["samples"] += 1
        if not np.asarray(mres.mask, bool).any():
            counts["empty_masks"] += 1
            params = empty_params() if empty_params else {"note": EMPTY_NOTE}
            batch.results[i] = EditResult(req.image.convert("RGB").copy(), name, params, int(seeds[i]))
            continue
        batch.todo.append(i)
        batch.inputs.append(to_model_input(req.image, mres.mask, resolution, multiple))
    return batch


class SingleFromBatch:
    """Mixin: ``edit`` as a one-sample call of the editor's ``edit_batch``."""

    def edit(self, request: EditRequest, plan: Plan, mask: MaskResult, seed: int) -> EditResult:
        """One sample (convenience wrapper of ``edit_batch``)."""
        return self.edit_batch([request], [plan], [mask], [seed])[0]


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float16`` -> ``"float16"`` (for ``EditResult.params``)."""
    return str(dtype).replace("torch.", "")


def load_counts(*prefixes: str) -> dict[str, int]:
    """The model-load counters whose label starts with one of ``prefixes`` (for ``stats()``)."""
    from iiie.weights import LOAD_COUNTS

    return {k: v for k, v in LOAD_COUNTS.items() if k.startswith(prefixes)}


def load_sd15_base(base_path: str, device: torch.device, dtype: torch.dtype, owner: str | None = None) -> dict:
    """vae / text_encoder / tokenizer / UNet (with BrushNet add-samples) of an SD1.5 folder,
    loaded once per process per (folder, device, dtype), so every editor and route built on
    the same base shares one copy. Callers must not modify the returned modules.

    ``owner`` (set by offloaded pipelines, which load on CPU) gives that pipeline its own
    copy: diffusers' offload hooks are installed on the modules themselves, and two
    pipelines hooking one module would fight over where its weights live. fp16-only folders
    load with ``variant="fp16"``.
    """
    from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline
    from iiie.weights import load_once

    def load() -> dict:
        variant = weight_variant(base_path)
        parts = BrushNetInpaintPipeline._load_components(Path(base_path), dtype, variant, set())
        for module in parts.values():
            if isinstance(module, torch.nn.Module):
                module.to(device).eval().requires_grad_(False)
        return parts

    key = ("sd15-base", str(base_path), str(device), str(dtype)) + ((owner,) if owner else ())
    return load_once(key, load, label="sd15-base")


def check_placement(device: torch.device, offload: str | None, config_key: str) -> str:
    """The editor's ``offload`` mode, checked when the editor is built (before any stage):
    :func:`iiie.offload.check_module_offload` on ``<config_key>.offload``, the same check the
    maskers and the in-process VLM use (``model``/``sequential`` on CPU is a clear error)."""
    from iiie.offload import check_module_offload

    return check_module_offload(offload, device, f"{config_key}.offload")


def place(pipe: Any, device: torch.device, offload: str, config_key: str) -> Any:
    """Put a diffusers pipeline (loaded in host memory) where it runs: ``.to(device)``, or
    diffusers' offload hooks (``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload``)
    that move weights to ``device`` when called."""
    from iiie.offload import apply_offload

    if offload == "none":
        return pipe.to(device)
    return apply_offload(pipe, offload, device, f"{config_key}.offload")


def ready(pipe: Any, device: torch.device, offload: str, config_key: str, channels_last: bool = False,
          compile: bool = False) -> Any:
    """A freshly built pipeline made ready to run, the same way for every diffusion editor:
    no progress bar (the runner shows its own), placed (:func:`place`), then the opt-in speed
    switches (:func:`speed_options`)."""
    pipe.set_progress_bar_config(disable=True)
    pipe = place(pipe, device, offload, config_key)
    speed_options(pipe, channels_last=channels_last, compile=compile)
    return pipe


#: What an SD1.5-family diffusers folder (InstructPix2Pix, LEdits++ on SD1.5) must hold.
SD15_FILES = ("model_index.json", "scheduler/scheduler_config.json", "unet/config.json",
              "vae/config.json", "text_encoder/config.json", "tokenizer/vocab.json")

#: What a FLUX.1 [dev]-family diffusers folder (Kontext, Fill) must hold.
FLUX_FILES = ("model_index.json", "scheduler/scheduler_config.json", "transformer/config.json",
              "vae/config.json", "text_encoder/config.json", "text_encoder_2/config.json",
              "tokenizer/tokenizer_config.json", "tokenizer_2/tokenizer_config.json")


def no_safety_checker() -> dict[str, Any]:
    """``from_pretrained`` arguments that load an SD1.5 pipeline without its NSFW safety
    checker (the benchmark scores every output; the tiny folders have none)."""
    return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def weight_variant(folder: str | Path) -> str | None:
    """``"fp16"`` for folders published with only ``*.fp16.safetensors`` (diffusers needs
    ``variant="fp16"`` to find them), else ``None``."""
    from iiie.offload import detect_variant

    return detect_variant(folder)


def speed_options(pipe: Any, channels_last: bool = False, compile: bool = False) -> list[str]:
    """Opt-in speed switches on a loaded pipeline's modules, in place; returns what changed.

    ``channels_last``: the convolution-heavy modules (UNet, BrushNet branch, VAE) in NHWC
    memory format, which cuDNN's fp16 convolutions prefer (results equal to float rounding);
    a transformer denoiser (Flux, Qwen-Image) has few convolutions and is left as it is.
    ``compile``: ``torch.compile`` of the modules called every step (UNet or transformer,
    branch); the first call pays the compilation, which is slow on CPU: it is meant for GPU
    runs. A module already compiled (shared with a pipeline built before) is not compiled
    again. Modules are shared by every editor on the same weights, so the switches apply to
    all of them. DiffusionEditor applies them once, when its pipeline is built
    (``runtime.compile`` / ``runtime.channels_last``).
    """
    changed = []
    for name in ("unet", "transformer", "brushnet", "vae"):
        module = getattr(pipe, name, None)
        if not isinstance(module, torch.nn.Module):
            continue
        if channels_last and name != "transformer":
            module.to(memory_format=torch.channels_last)
            changed.append(f"{name}:channels_last")
        if compile and name != "vae" and getattr(module, "_compiled_call_impl", None) is None:
            module.compile()
            changed.append(f"{name}:compile")
    return changed
