"""GPU memory controls shared by the diffusion editors, the maskers and the in-process VLM
(``runtime.offload``), and the fp16-variant weight folders.

Why: one SD1.5 pipeline in fp16 is ~2.5 GB, but BrushNet + PowerPaint + InfEdit + the
masker resident together, plus activations at batch 8, do not fit a 24 GB card. diffusers'
offload hooks keep the weights in host memory and move them to the GPU when called:
``model`` moves one whole model at a time (small slowdown), ``sequential`` one layer at a
time (smallest memory, slow). Folders published with only ``*.fp16.safetensors`` need
``variant="fp16"``, otherwise diffusers looks for the plain file names and fails.

Maskers (Grounding DINO, SAM, SAM 2, SAM 3) and the transformers VLM engine are plain
``nn.Module`` s, not diffusers pipelines: :func:`offload_module` gives them the same two
modes through accelerate (``model``: ``cpu_offload_with_hook``, the whole module on the GPU
for one batch; ``sequential``: ``cpu_offload`` of each transformer block).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from iiie.errors import ConfigurationError
from iiie.placement import OFFLOAD_MODES, check_offload  # noqa: F401 -- re-exported: the modes live with the run's check

_WEIGHT_NAMES = ("diffusion_pytorch_model", "model")
_WEIGHT_EXTS = (".safetensors", ".bin")


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
    mode = check_module_offload(mode, device, config_key)
    if mode == "none":
        return pipe
    device = torch.device(device)
    method = "enable_model_cpu_offload" if mode == "model" else "enable_sequential_cpu_offload"
    if not hasattr(pipe, method):
        raise ValueError(f"{config_key}={mode}: {type(pipe).__name__} has no {method}; use offload=none")
    getattr(pipe, method)(device=device)
    return pipe


class OffloadError(ConfigurationError, ValueError):
    """An offload setting a model cannot honour (stops the run before any sample)."""


def check_module_offload(mode: str | None, device: torch.device | str, config_key: str) -> str:
    """``mode`` checked for a model that will run on ``device`` (a masker, the VLM engine).

    ``model``/``sequential`` on a CPU device is a clear error naming ``config_key``, not a
    silent no-op, as for the editors: the hooks move weights *to* an accelerator.
    """
    try:
        mode = check_offload(mode, config_key)
    except ValueError as exc:
        raise OffloadError(str(exc)) from None
    if mode != "none" and torch.device(device).type == "cpu":
        raise OffloadError(f"{config_key}={mode} needs a GPU device (the model runs on {device}); "
                           "use runtime.offload=none on CPU")
    return mode


def execution_device(device: torch.device | str) -> torch.device:
    """``cuda`` -> ``cuda:<current>``: accelerate's hooks compare the weights' device with
    this one, and ``cuda`` never equals ``cuda:0`` (every call would re-move the module)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return device


class ModuleOffload:
    """Where one module's weights live between calls, and :meth:`running` around each batch.

    ``none``: on ``device`` for good. ``model``: in host memory; :meth:`running` moves the
    whole module to ``device`` for the batch and back after it (the hook's ``offload()``),
    so two models of one masker (detector, SAM) are never resident together. The module
    is moved explicitly, not only by the hook's forward pre-hook, because some entry points
    bypass ``forward`` (``SamModel.get_image_embeddings``, ``segment_anything.SamPredictor``);
    the hook still covers a ``forward`` called outside :meth:`running`. ``sequential``:
    the blocks' weights are in host memory and stream in block by block (nothing to do
    around a batch).
    """

    def __init__(self, module: torch.nn.Module, mode: str, device: torch.device, hook: Any = None) -> None:
        self.module, self.mode, self.device, self.hook = module, mode, device, hook

    @contextmanager
    def running(self) -> Iterator[torch.nn.Module]:
        if self.mode != "model":
            yield self.module
            return
        self.module.to(self.device)
        try:
            yield self.module
        finally:
            self.hook.offload()


def offload_module(module: torch.nn.Module, mode: str, device: torch.device | str,
                   blocks: Sequence[str] | None = None, config_key: str = "runtime.offload") -> ModuleOffload:
    """Place ``module`` (loaded in host memory) for ``mode`` and return its :class:`ModuleOffload`.

    ``device`` is where it runs; callers check it first with :func:`check_module_offload`
    (not here, so tests can run the hooks with the CPU as execution device).

    ``sequential`` offloads each outermost module whose class name is in ``blocks``
    (default: the model's ``_no_split_modules``, the blocks transformers' own ``device_map``
    keeps whole) with accelerate's ``cpu_offload``, loading a block's weights for its
    forward; everything outside the blocks (embeddings, heads, norms: small) stays on
    ``device``. Not accelerate's layer-by-layer default: transformers models read child
    weights from their parents' code (``embedding.weight``, positional tables), which finds
    them on the meta device when every leaf is offloaded on its own.
    """
    mode = check_offload(mode, config_key)
    device = execution_device(device)
    module.eval()
    if mode == "none":
        return ModuleOffload(module.to(device), mode, device)
    import accelerate

    if mode == "model":
        _, hook = accelerate.cpu_offload_with_hook(module, execution_device=device)
        return ModuleOffload(module, mode, device, hook)
    names = set(blocks or getattr(module, "_no_split_modules", None) or ())
    found = _outermost(module, names)
    if not found:
        raise OffloadError(f"{config_key}=sequential: {type(module).__name__} has no blocks to offload "
                           f"(looked for {sorted(names) or 'its _no_split_modules'}); use offload=model")
    for block in found:
        accelerate.cpu_offload(block, execution_device=device, preload_module_classes=[type(block).__name__])
    _move_resident(module, device)
    return ModuleOffload(module, mode, device)


def _outermost(module: torch.nn.Module, names: set[str]) -> list[torch.nn.Module]:
    """The submodules whose class name is in ``names``, not counting those inside another."""
    found: list[torch.nn.Module] = []

    def walk(m: torch.nn.Module) -> None:
        for child in m.children():
            if type(child).__name__ in names:
                found.append(child)
            else:
                walk(child)

    walk(module)
    return found


def _move_resident(module: torch.nn.Module, device: torch.device) -> None:
    """Every tensor not offloaded to the meta device (outside the blocks) onto ``device``.

    One moved copy per tensor, put back wherever that tensor is registered, so weights tied
    between modules (an LM head sharing the embedding) stay one tensor on ``device``.
    """
    moved: dict[int, torch.Tensor] = {}

    def to_device(t: torch.Tensor, param: bool) -> torch.Tensor:
        if id(t) not in moved:
            data = t.detach().to(device)
            moved[id(t)] = torch.nn.Parameter(data, requires_grad=t.requires_grad) if param else data
        return moved[id(t)]

    with torch.no_grad():
        for sub in module.modules():
            for table, param in ((sub._parameters, True), (sub._buffers, False)):
                for name, t in table.items():
                    if t is not None and t.device.type != "meta" and t.device != device:
                        table[name] = to_device(t, param)


def offloaded_fraction(module: torch.nn.Module) -> float:
    """Share of the parameters held in host memory by ``sequential`` (on the meta device
    between calls); for tests and the benchmark notes."""
    sizes = [(p.numel(), p.device.type == "meta") for p in module.parameters()]
    total = sum(n for n, _ in sizes)
    return sum(n for n, meta in sizes if meta) / total if total else 0.0

