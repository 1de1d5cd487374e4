"""Shared body of the instruction-only end-to-end editors (FLUX.1 Kontext, Qwen-Image-Edit).

Both are the paper's comparison rows that take the user's instruction as given (``planner=none``,
``masker=none``) and one diffusers pipeline folder in the official layout. They differ only in
the pipeline class and its call arguments, so a subclass states those (:meth:`call_kwargs`) and
this base does the rest the same way as the other diffusion editors: check the folder and the
settings at construction (errors name ``config_key``), load the pipeline once per process per
(folder, device, dtype), group a batch by model resolution (long side ``resolution``, both
sides multiples of :attr:`multiple`, aspect kept), one seeded CPU generator per sample, and map
each result back to the input's size (a mask smaller than the image is honoured with
:func:`iiie.masks.paste_back`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from iiie.devices import resolve_device, resolve_dtype
from iiie.editors import diffusion_common as dc
from iiie.types import EditRequest, EditResult, MaskResult, Plan
from iiie.weights import load_once, require_files


class InstructionPipelineEditor(dc.SingleFromBatch):
    """Base class: the instruction text in, the edited image out, through one pipeline."""

    name = "instruction_pipeline"
    #: ``diffusers`` class name of the pipeline.
    pipeline_class = ""
    #: Files the model folder must hold (a tuple = any one of them).
    model_files: tuple = ("model_index.json",)
    hint = ""
    #: Both pipelines pack 2x2 latent patches over an 8x VAE: sizes are multiples of 16.
    multiple = 16

    def __init__(self, model_path: str, steps: int, resolution: int, blur: int = 0,
                 max_sequence_length: int = 512, device: str = "auto", dtype: str = "float32",
                 config_key: str = "editor.<route>", offload: str = "none") -> None:
        self.model_path = require_files(model_path, self.model_files, f"{config_key}.model_path", self.hint)
        if int(steps) < 1:
            raise ValueError(f"{config_key}.steps must be >= 1, got {steps}")
        if int(resolution) < self.multiple:
            raise ValueError(f"{config_key}.resolution must be >= {self.multiple}, got {resolution}")
        if int(max_sequence_length) < 1:
            raise ValueError(f"{config_key}.max_sequence_length must be >= 1, got {max_sequence_length}")
        self.steps, self.resolution, self.blur = int(steps), int(resolution), int(blur)
        self.max_sequence_length = int(max_sequence_length)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.offload = dc.check_placement(self.device, offload, config_key)
        self.config_key = config_key
        self._counts = {"samples": 0, "model_batches": 0, "empty_masks": 0}

    # -- what a subclass states -------------------------------------------------------
    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        """Pipeline arguments besides prompt/image/generator for ``n`` samples at model size
        ``size`` (w, h)."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The editor's own settings recorded in every result's params."""
        return {}

    def condition_image(self, source: Image.Image, model_image: Image.Image) -> Image.Image:
        """The image given to the pipeline (default: the one at model resolution)."""
        return model_image

    # -- shared -----------------------------------------------------------------------
    def pipeline(self):
        """The diffusers pipeline for (folder, device, dtype), built once per process."""
        cls = getattr(importlib.import_module("diffusers"), self.pipeline_class)

        def build():
            pipe = cls.from_pretrained(str(self.model_path), dtype=self.dtype,
                                       variant=dc.weight_variant(self.model_path))
            pipe.set_progress_bar_config(disable=True)
            return dc.place(pipe, self.device, self.offload, self.config_key)

        key = (self.name, str(self.model_path), str(self.device), str(self.dtype), self.offload)
        return load_once(key, build,
                         label=self.name)

    def edit_batch(self, requests: Sequence[EditRequest], plans: Sequence[Plan], masks: Sequence[MaskResult],
                   seeds: Sequence[int]) -> list[EditResult]:
        batch = dc.start_batch(self.name, requests, plans, masks, seeds, self.resolution, self._counts,
                               multiple=self.multiple)
        if not batch.todo:
            return batch.done()
        pipe = self.pipeline()
        for size, members in batch.groups():
            idx = [batch.todo[k] for k in members]
            out = pipe(
                prompt=[requests[i].instruction for i in idx],
                image=[self.condition_image(requests[i].image.convert("RGB"), batch.inputs[k].image)
                       for i, k in zip(idx, members, strict=True)],
                generator=batch.generators(seeds, members),
                num_inference_steps=self.steps,
                max_sequence_length=self.max_sequence_length,
                output_type="pil",
                **self.call_kwargs(size, len(idx)),
            ).images
            self._counts["model_batches"] += 1
            for i, edited in zip(idx, out, strict=True):
                image = dc.finish(requests[i].image, edited, masks[i].mask, self.blur)
                batch.results[i] = EditResult(image, self.name, self._params(requests[i].instruction, size),
                                              int(seeds[i]))
        return batch.done()

    def _params(self, prompt: str, size: tuple[int, int]) -> dict[str, Any]:
        return {"prompt": prompt, "steps": self.steps, **self.settings(), "resolution": list(size),
                "max_sequence_length": self.max_sequence_length, "blur": self.blur,
                "model": Path(self.model_path).name, "dtype": dc.dtype_name(self.dtype)}

    def stats(self) -> dict[str, Any]:
        """Counters for the run manifest."""
        return {**self._counts, "loads": dc.load_counts(self.name)}


__all__ = ["InstructionPipelineEditor"]
