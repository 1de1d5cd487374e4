"""One base for the editors that wrap a single diffusers pipeline folder.

Why: before this base a new diffusion editor copied a hundred lines of conventions (the
``config_key`` in errors, ``load_once``, batching by size, seeded generators, paste-back,
provenance, ``stats()``). :class:`DiffusionEditor` owns all of them, so a new editor is one
module that states *what differs*:

* class attributes: ``name``, ``pipeline_class`` (a ``diffusers`` class name, or one of
  ``pipeline_module``),
  ``model_files`` (what the folder must hold; a tuple inside = any one of them), ``hint``
  (how to get the weights, shown in the missing-folder error), ``multiple`` (16 for
  pipelines that pack 2x2 latent patches over an 8x VAE) and ``inpaint`` (True: the mask is
  given to the pipeline as ``mask_image`` and the prompt comes from the plan);
* :meth:`call_kwargs` (its own pipeline arguments), :meth:`settings` (what to record) and
  :meth:`load_kwargs` (extra ``from_pretrained`` arguments, e.g. no SD1.5 safety checker).

Editors whose weights are not one diffusers folder (BrushNet, PowerPaint: an SD1.5 base
folder plus a branch checkpoint, assembled into the project's own pipeline) state that too,
and nothing else: :meth:`weight_folders` (which constructor arguments are folders and what
each must hold), :meth:`build_pipeline` (how to assemble the pipeline), :meth:`load_key`
(what else tells two built pipelines apart), :meth:`model_params` (which weights the
provenance names) and ``pipeline_label`` / ``load_prefixes`` (the load counters).

Editors whose calls differ too much for the shared :meth:`~DiffusionEditor.edit_batch`
(InstructPix2Pix, LEdits++) still take the construction checks and the once-per-process
loader from here and override ``edit_batch`` only.

The base then does the rest the same way for every editor: check the folders and settings at
construction (errors name ``<config_key>.model_path``, or the folder's own argument; the
runner fills in the route), resolve device/dtype once, load the pipeline once per process
per (class, folders, device, dtype), apply the opt-in speed switches (``compile``,
``channels_last``: :func:`~iiie.editors.diffusion_common.speed_options`) once, right after
it is built, bring each sample to the model resolution (long side ``resolution``, aspect kept),
run equal-size samples together (at most ``batch_size`` per call), one seeded CPU generator
per sample, map the result back to the input size and paste it into the source with the
feathered mask (:func:`iiie.masks.paste_back`: pixels farther than ``blur`` from the mask
are the input, bit for bit), and record provenance params and counters.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from iiie import masks as M
from iiie import weights as W
from iiie.devices import resolve_device, resolve_dtype
from iiie.editors import diffusion_common as dc
from iiie.planners.rules_prompts import REMOVE_PROMPT
from iiie.types import Category, EditRequest, EditResult, MaskResult, Plan
from iiie.weights import require_files


def _mentions(text: str, phrase: str) -> bool:
    from iiie.editors.powerpaint import mentions

    return mentions(text, phrase)


class DiffusionEditor(dc.SingleFromBatch):
    """Base class: one diffusion pipeline (a diffusers folder by default) behind the step-4
    ``Editor`` protocol."""

    name = "diffusion"
    #: Class name of the pipeline in ``pipeline_module`` (a ``diffusers`` class by default).
    pipeline_class = ""
    #: Module that holds ``pipeline_class`` (the project's own pipelines live in iiie.models).
    pipeline_module = "diffusers"
    #: Files the model folder must hold (a tuple = any one of them).
    model_files: tuple = ("model_index.json",)
    #: Appended to the missing-folder error: where the weights come from, which tiny writer.
    hint = ""
    #: Model sizes are multiples of this (8: SD VAEs; 16: Flux/Qwen 2x2 latent packing).
    multiple = 8
    #: Inpainting editor: the mask goes to the pipeline and the prompt is the plan's.
    inpaint = False
    #: Label of the built pipeline in ``weights.LOAD_COUNTS`` (default: ``name``).
    pipeline_label = ""
    #: ``LOAD_COUNTS`` label prefixes :meth:`stats` reports (default: exactly ``pipeline_label``);
    #: editors that assemble shared parts (an SD1.5 base, a branch) name those labels too.
    load_prefixes: tuple[str, ...] = ()

    def __init__(self, model_path: str | None, steps: int, resolution: int, blur: int = 0,
                 batch_size: int | None = None, max_sequence_length: int | None = None, device: str = "auto",
                 dtype: str = "float32", config_key: str = "editor.<route>", offload: str = "none",
                 compile: bool = False, channels_last: bool = False,
                 folders: Mapping[str, str] | None = None) -> None:
        """``folders``: {argument: path} of editors with other folders than ``model_path``
        (:meth:`weight_folders`); each is checked and kept as that attribute."""
        self.config_key = config_key
        expected = self.weight_folders()
        given = dict(folders) if folders is not None else {"model_path": model_path}
        if set(given) != set(expected):
            raise TypeError(f"{type(self).__name__}: folders {sorted(given)} differ from "
                            f"weight_folders() {sorted(expected)}")
        for arg, (files, hint) in expected.items():  # in weight_folders() order: first error first
            setattr(self, arg, require_files(given[arg], files, f"{config_key}.{arg}", hint))
        if int(steps) < 1:
            raise ValueError(f"{config_key}.steps must be >= 1, got {steps}")
        if int(resolution) < self.multiple:
            raise ValueError(f"{config_key}.resolution must be >= {self.multiple}, got {resolution}")
        if int(blur) < 0:
            raise ValueError(f"{config_key}.blur must be >= 0, got {blur}")
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"{config_key}.batch_size must be >= 1 or null, got {batch_size}")
        if max_sequence_length is not None and int(max_sequence_length) < 1:
            raise ValueError(f"{config_key}.max_sequence_length must be >= 1, got {max_sequence_length}")
        self.steps, self.resolution, self.blur = int(steps), int(resolution), int(blur)
        #: Text-token cap of T5/Qwen encoders (None: the pipeline takes no such argument).
        self.max_sequence_length = None if max_sequence_length is None else int(max_sequence_length)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        #: runtime.offload: none | model | sequential (diffusers' offload hooks; GPU only)
        self.offload = dc.check_placement(self.device, offload, config_key)
        #: runtime.compile / runtime.channels_last: speed only (results equal up to float rounding),
        #: so like ``offload`` they are neither in the params nor in the stage cache key.
        self.compile, self.channels_last = bool(compile), bool(channels_last)
        self._counts = {"samples": 0, "model_batches": 0, "empty_masks": 0}
        if self.inpaint:
            self._counts["prompt_fallbacks"] = 0

    def checked_strength(self, strength: float) -> float:
        """An img2img ``strength`` setting, checked (the inpainting editors take one)."""
        if not 0.0 < float(strength) <= 1.0:
            raise ValueError(f"{self.config_key}.strength must be in (0, 1], got {strength}")
        return float(strength)

    # -- what a subclass states -------------------------------------------------------
    def weight_folders(self) -> dict[str, tuple[tuple, str]]:
        """The weight folders, by constructor argument: (files each must hold, hint for the
        missing-folder error). Default: one diffusers folder, ``model_path``."""
        return {"model_path": (self.model_files, self.hint)}

    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        """Pipeline arguments besides prompt/image/mask/generator/steps/size for ``n``
        samples at model size ``size`` (w, h); they override the base's."""
        return {}

    def settings(self) -> dict[str, Any]:
        """The editor's own settings recorded in every result's params."""
        return {}

    def condition_image(self, source: Image.Image, model_image: Image.Image) -> Image.Image:
        """The image given to the pipeline (default: the one at model resolution)."""
        return model_image

    def prompt(self, request: EditRequest, plan: Plan) -> str:
        """The text the pipeline gets. Instruction editors: the instruction as given.
        Inpainting editors: what the masked region should show, ``plan.target_prompt``
        (as BrushNet), falling back to the object, then the instruction; a removal never
        falls back to the object's name (that would paint it back): it gets the planner's
        neutral background prompt instead."""
        if not self.inpaint:
            return request.instruction
        target = (plan.target_prompt or "").strip()
        if plan.category is Category.REMOVE:
            if target and not _mentions(target, plan.object):
                return target
            self._counts["prompt_fallbacks"] += 1
            return REMOVE_PROMPT
        if target:
            return target
        self._counts["prompt_fallbacks"] += 1
        for text in (plan.object, request.instruction):
            if text and text.strip():
                return text.strip()
        return ""

    def load_kwargs(self) -> dict[str, Any]:
        """Extra ``from_pretrained`` arguments of this pipeline (default: none)."""
        return {}

    def model_params(self) -> dict[str, Any]:
        """Which weights made a result, for its params (default: the folder and pipeline class)."""
        return {"model": Path(self.model_path).name, "pipeline": self.pipeline_class}

    def load_key(self) -> tuple:
        """What tells built pipelines apart: editors with equal keys share one. The speed
        switches are not in it: they come from ``runtime.*``, the same for every editor."""
        folders = tuple(str(getattr(self, arg)) for arg in self.weight_folders())
        return (self.name, self.pipeline_class, *folders, str(self.device), str(self.dtype), self.offload)

    def pipeline_type(self) -> type:
        """The pipeline class (``pipeline_class`` of ``pipeline_module``)."""
        return getattr(importlib.import_module(self.pipeline_module), self.pipeline_class)

    def build_pipeline(self):
        """Load the pipeline from the folder (called once per process per key; :meth:`pipeline`
        then places it and applies the speed switches)."""
        return self.pipeline_type().from_pretrained(str(self.model_path), dtype=self.dtype, **self.load_kwargs(),
                                                    variant=dc.weight_variant(self.model_path))  # fp16-only folders

    # -- shared -----------------------------------------------------------------------
    def pipeline(self):
        """The pipeline for :meth:`load_key`, built once per process, with the speed switches
        applied once, right after it is built (modules it shares with other pipelines are
        switched by whichever pipeline is built first; :func:`dc.speed_options` skips a module
        already compiled)."""
        def build():
            return dc.ready(self.build_pipeline(), self.device, self.offload, self.config_key,
                            channels_last=self.channels_last, compile=self.compile)

        # Looked up on the module at call time, so a test patching ``weights.load_once`` sees it.
        return W.load_once(self.load_key(), build, label=self.pipeline_label or self.name)

    def edit_batch(self, requests: Sequence[EditRequest], plans: Sequence[Plan], masks: Sequence[MaskResult],
                   seeds: Sequence[int]) -> list[EditResult]:
        batch = dc.start_batch(self.name, requests, plans, masks, seeds, self.resolution, self._counts,
                               empty_params=lambda: self._params("", None, note=dc.EMPTY_NOTE),
                               multiple=self.multiple)
        if not batch.todo:
            return batch.done()
        prompts = [self.prompt(requests[i], plans[i]) for i in batch.todo]
        pipe = self.pipeline()
        for size, members in batch.groups(self.batch_size):
            idx = [batch.todo[k] for k in members]
            kwargs: dict[str, Any] = {
                "prompt": [prompts[k] for k in members],
                "image": [self.condition_image(requests[i].image.convert("RGB"), batch.inputs[k].image)
                          for i, k in zip(idx, members, strict=True)],
                "generator": batch.generators(seeds, members),
                "num_inference_steps": self.steps,
                "height": size[1], "width": size[0],
                "output_type": "pil",
            }
            if self.max_sequence_length is not None:
                kwargs["max_sequence_length"] = self.max_sequence_length
            if self.inpaint:
                kwargs["mask_image"] = [M.mask_to_image(batch.inputs[k].mask) for k in members]
            kwargs.update(self.call_kwargs(size, len(members)))
            out = pipe(**kwargs).images
            self._counts["model_batches"] += 1
            for i, k, edited in zip(idx, members, out, strict=True):
                image = dc.finish(requests[i].image, edited, masks[i].mask, self.blur)
                batch.results[i] = EditResult(image, self.name, self._params(prompts[k], size), int(seeds[i]))
        return batch.done()

    def _params(self, prompt: str, size: tuple[int, int] | None, note: str | None = None) -> dict[str, Any]:
        params = {"prompt": prompt, "steps": self.steps, **self.settings(),
                  "resolution": list(size) if size else None, "blur": self.blur,
                  **self.model_params(), "dtype": dc.dtype_name(self.dtype)}
        if self.max_sequence_length is not None:
            params["max_sequence_length"] = self.max_sequence_length
        if note:
            params["note"] = note
        return params

    def stats(self) -> dict[str, Any]:
        """Counters for the run manifest (samples, model batches, empty masks, loads)."""
        from iiie.weights import LOAD_COUNTS

        if self.load_prefixes:
            return {**self._counts, "loads": dc.load_counts(*self.load_prefixes)}
        # Exact label: ``flux_kontext`` must not count ``flux_kontext_inpaint``'s loads.
        label = self.pipeline_label or self.name
        return {**self._counts, "loads": {k: v for k, v in LOAD_COUNTS.items() if k == label}}


__all__ = ["DiffusionEditor"]
