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

from iiie.editors import diffusion_common as dc
from iiie.editors.base import DiffusionEditor
from iiie.types import EditRequest, EditResult, MaskResult, Plan

MODEL_FILES = dc.SD15_FILES
_HINT = (
    "InstructPix2Pix needs the timbrooks/instruct-pix2pix folder in diffusers layout; see "
    "README 'Weights'. For a CPU smoke run use experiment=tiny."
)


class InstructPix2PixEditor(DiffusionEditor):
    """Edit with the instruction text through InstructPix2Pix.

    The folder checks and the once-per-process loader are :class:`DiffusionEditor`'s; the
    call (two guidance scales, no size arguments) and the recorded params are its own.
    ``name`` is the model this instance runs: MagicBrush is InstructPix2Pix fine-tuned, run
    by this same class with ``name: magicbrush`` (conf/editor/magicbrush.yaml), so its edit
    records, per-sample ``editor`` field, load label and load counter say magicbrush."""

    name = "instructpix2pix"
    pipeline_class = "StableDiffusionInstructPix2PixPipeline"
    model_files = MODEL_FILES
    hint = _HINT

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
        name: str = "instructpix2pix",
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        if not str(name).strip():
            raise ValueError(f"{config_key}.name must name the model (e.g. magicbrush), got {name!r}")
        self.name = str(name).strip()
        super().__init__(model_path, steps, resolution, blur, device=device, dtype=dtype,
                         config_key=config_key, offload=offload,
                         compile=compile, channels_last=channels_last)
        self.guidance_scale, self.image_guidance_scale = float(guidance_scale), float(image_guidance_scale)

    def load_kwargs(self) -> dict[str, Any]:
        return dc.no_safety_checker()

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

    def _params(self, prompt: str, size) -> dict[str, Any]:  # its own record (no "pipeline" key)
        return {
            "prompt": prompt, "steps": self.steps, "guidance_scale": self.guidance_scale,
            "image_guidance_scale": self.image_guidance_scale, "resolution": list(size),
            "blur": self.blur, "model": Path(self.model_path).name,
            "dtype": dc.dtype_name(self.dtype),
        }


__all__ = ["InstructPix2PixEditor"]
