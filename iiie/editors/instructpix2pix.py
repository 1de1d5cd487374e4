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

import numpy as np

from iiie.editors import diffusion_common as dc
from iiie.types import EditRequest, EditResult, MaskResult, Plan
from iiie.weights import LOAD_COUNTS, load_once, require_files

MODEL_FILES = (
    "model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "vae/config.json",
    "text_encoder/config.json", "tokenizer/vocab.json",
)
_HINT = (
    "InstructPix2Pix needs the timbrooks/instruct-pix2pix folder in diffusers layout; see "
    "README 'Weights'. For a CPU smoke run use experiment=tiny."
)


class InstructPix2PixEditor:
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
        config_key: str = "editor.global",
    ) -> None:
        self.model_path = require_files(model_path, MODEL_FILES, f"{config_key}.model_path", _HINT)
        if int(steps) < 1:
            raise ValueError(f"{config_key}.steps must be >= 1, got {steps}")
        if int(resolution) < 8:
            raise ValueError(f"{config_key}.resolution must be >= 8, got {resolution}")
        self.steps, self.resolution, self.blur = int(steps), int(resolution), int(blur)
        self.guidance_scale, self.image_guidance_scale = float(guidance_scale), float(image_guidance_scale)
        self.device = dc.resolve_device(device)
        self.dtype = dc.resolve_dtype(dtype, self.device)
        self._counts = {"samples": 0, "model_batches": 0, "empty_masks": 0}

    def pipeline(self):
        """The diffusers pipeline for (folder, device, dtype), built once per process."""
        from diffusers import StableDiffusionInstructPix2PixPipeline

        def build():
            pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
                str(self.model_path), dtype=self.dtype, safety_checker=None,
                feature_extractor=None, requires_safety_checker=False,
            )
            pipe.set_progress_bar_config(disable=True)
            return pipe.to(self.device)

        key = ("instructpix2pix", str(self.model_path), str(self.device), str(self.dtype))
        return load_once(key, build, label="instructpix2pix")

    def edit_batch(
        self,
        requests: Sequence[EditRequest],
        plans: Sequence[Plan],
        masks: Sequence[MaskResult],
        seeds: Sequence[int],
    ) -> list[EditResult]:
        n = len(requests)
        if not (len(plans) == len(masks) == len(seeds) == n):
            raise ValueError(f"batch lengths differ: {n} requests, {len(plans)} plans, "
                             f"{len(masks)} masks, {len(seeds)} seeds")
        results: list[EditResult | None] = [None] * n
        todo, inputs = [], []
        for i, (req, mres) in enumerate(zip(requests, masks, strict=True)):
            self._counts["samples"] += 1
            if not np.asarray(mres.mask, bool).any():
                self._counts["empty_masks"] += 1
                results[i] = EditResult(req.image.convert("RGB").copy(), self.name,
                                        {"note": "empty mask: input returned"}, int(seeds[i]))
                continue
            todo.append(i)
            inputs.append(dc.to_model_input(req.image, mres.mask, self.resolution))
        if todo:
            pipe = self.pipeline()
            for size, members in dc.group_by_size(inputs).items():
                idx = [todo[k] for k in members]
                out = pipe(
                    prompt=[requests[i].instruction for i in idx],
                    image=[inputs[k].image for k in members],
                    num_inference_steps=self.steps,
                    guidance_scale=self.guidance_scale,
                    image_guidance_scale=self.image_guidance_scale,
                    generator=dc.generators([seeds[i] for i in idx]),
                    output_type="pil",
                ).images
                self._counts["model_batches"] += 1
                for i, edited in zip(idx, out, strict=True):
                    image = dc.finish(requests[i].image, edited, masks[i].mask, self.blur)
                    results[i] = EditResult(image, self.name, self._params(requests[i].instruction, size),
                                            int(seeds[i]))
        return [r for r in results if r is not None]

    def edit(self, request: EditRequest, plan: Plan, mask: MaskResult, seed: int) -> EditResult:
        """One sample (convenience wrapper of :meth:`edit_batch`)."""
        return self.edit_batch([request], [plan], [mask], [seed])[0]

    def _params(self, prompt: str, size) -> dict[str, Any]:
        return {
            "prompt": prompt, "steps": self.steps, "guidance_scale": self.guidance_scale,
            "image_guidance_scale": self.image_guidance_scale, "resolution": list(size),
            "blur": self.blur, "model": Path(self.model_path).name,
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    def stats(self) -> dict[str, Any]:
        """Counters for the run manifest."""
        return {**self._counts, "loads": {k: v for k, v in LOAD_COUNTS.items() if k.startswith("instructpix2pix")}}


__all__ = ["InstructPix2PixEditor"]
