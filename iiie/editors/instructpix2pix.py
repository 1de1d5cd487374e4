"""``editor=instructpix2pix``: InstructPix2Pix, an instruction-following baseline for the
step-4 ablation of the global route.

The instruction goes to diffusers' ``StableDiffusionInstructPix2PixPipeline`` as given (no
plan, no captions): it is the "no planning" alternative to InfEdit. Images run at the
model resolution (long side ``resolution``, multiples of 8), batched by equal resolution
with one seeded CPU generator per sample, and come back at the input's size; a mask smaller
than the image is honoured with :func:`iiie.masks.paste_back`. The model folder is the
``timbrooks/instruct-pix2pix`` diffusers layout, loaded once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iiie.devices import resolve_device, resolve_dtype
from iiie.editors import diffusion_common as dc
from iiie.types import EditRequest, EditResult, MaskResult, Plan
from iiie.weights import load_once, require_files

MODEL_FILES = (
    "model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "vae/config.json",
    "text_encoder/config.json", "tokenizer/vocab.json",
)
_HINT = (
    "InstructPix2Pix needs the timbrooks/instruct-pix2pix folder in diffusers layout; see "
    "README 'Weights'. For a CPU smoke run use experiment=tiny."
)


class InstructPix2PixEditor(dc.SingleFromBatch):
    """Edit with the instruction text through InstructPix2Pix."""

    name = "instructpix2pix"

    def __init__(
        self,
        model_path: str,
        steps: int = 100,
        guidance_scale: float = 7.5,
        image_guidance_scale: float = 1.5,
        resolution: int = 512,
        blur: int = 0,
        device: str = "auto",
        dtype: str = "float32",
        offload: str = "none",
        config_key: str = "editor.<route>",  # the runner puts the mounted route in errors
    ) -> None:
        self.model_path = require_files(model_path, MODEL_FILES, f"{config_key}.model_path", _HINT)
        if int(steps) < 1:
            raise ValueError(f"{config_key}.steps must be >= 1, got {steps}")
        if int(resolution) < 8:
            raise ValueError(f"{config_key}.resolution must be >= 8, got {resolution}")
        self.steps, self.resolution, self.blur = int(steps), int(resolution), int(blur)
        self.guidance_scale, self.image_guidance_scale = float(guidance_scale), float(image_guidance_scale)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.offload = dc.check_placement(self.device, offload, config_key)
        self.config_key = config_key
        self._counts = {"samples": 0, "model_batches": 0, "empty_masks": 0}

    def pipeline(self):
        """The diffusers pipeline for (folder, device, dtype), built once per process."""
        from diffusers import StableDiffusionInstructPix2PixPipeline

        def build():
            pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
                str(self.model_path), dtype=self.dtype, safety_checker=None,
                feature_extractor=None, requires_safety_checker=False,
                variant=dc.weight_variant(self.model_path),
            )
            pipe.set_progress_bar_config(disable=True)
            return dc.place(pipe, self.device, self.offload, self.config_key)

        key = ("instructpix2pix", str(self.model_path), str(self.device), str(self.dtype), self.offload)
        return load_once(key, build, label="instructpix2pix")

    def edit_batch(
        self,
        requests: Sequence[EditRequest],
        plans: Sequence[Plan],
        masks: Sequence[MaskResult],
        seeds: Sequence[int],
    ) -> list[EditResult]:
        batch = dc.start_batch(self.name, requests, plans, masks, seeds, self.resolution, self._counts)
        if not batch.todo:
            return batch.done()
        pipe = self.pipeline()
        for size, members in batch.groups():
            idx = [batch.todo[k] for k in members]
            out = pipe(
                prompt=[requests[i].instruction for i in idx],
                image=[batch.inputs[k].image for k in members],
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                image_guidance_scale=self.image_guidance_scale,
                generator=batch.generators(seeds, members),
                output_type="pil",
            ).images
            self._counts["model_batches"] += 1
            for i, edited in zip(idx, out, strict=True):
                image = dc.finish(requests[i].image, edited, masks[i].mask, self.blur)
                batch.results[i] = EditResult(image, self.name, self._params(requests[i].instruction, size),
                                              int(seeds[i]))
        return batch.done()

    def _params(self, prompt: str, size) -> dict[str, Any]:
        return {
            "prompt": prompt, "steps": self.steps, "guidance_scale": self.guidance_scale,
            "image_guidance_scale": self.image_guidance_scale, "resolution": list(size),
            "blur": self.blur, "model": Path(self.model_path).name,
            "dtype": dc.dtype_name(self.dtype),
        }

    def stats(self) -> dict[str, Any]:
        """Counters for the run manifest."""
        return {**self._counts, "loads": dc.load_counts("instructpix2pix")}


__all__ = ["InstructPix2PixEditor"]
