"""``editor=ledits_pp``: LEdits++ through diffusers' ``LEditsPPPipelineStableDiffusion``.

Invert the image (edit-friendly DDPM inversion), then edit with concepts from the plan: the
object with reverse direction for removals (guide away from it), the plan's target prompt
(or the instruction) forward otherwise. One image per call: the pipeline's inversion state
holds a single image. Seeded CPU generator per sample; output at the input's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iiie.editors import diffusion_common as dc
from iiie.editors.base import DiffusionEditor
from iiie.types import Category, EditRequest, EditResult, MaskResult, Plan

MODEL_FILES = dc.SD15_FILES
_HINT = "LEdits++ needs a Stable Diffusion 1.5 folder in diffusers layout; see README 'Weights'."


def edit_concept(plan: Plan, instruction: str) -> tuple[str, bool]:
    """(concept, reverse): removals steer away from the object, others toward the target."""
    if plan.category is Category.REMOVE and plan.object:
        return plan.object, True
    return (plan.target_prompt or plan.target_caption or instruction), False


class LEditsPPEditor(DiffusionEditor):
    """Invert then edit with the plan's concept.

    The folder checks and the once-per-process loader are :class:`DiffusionEditor`'s; the
    invert-then-edit call, one image at a time, is its own."""

    name = "ledits_pp"
    pipeline_class = "LEditsPPPipelineStableDiffusion"
    model_files = MODEL_FILES
    hint = _HINT

    def __init__(self, model_path: str, steps: int = 50, skip: float = 0.2, edit_guidance_scale: float = 10.0,
                 edit_threshold: float = 0.9, resolution: int = 512, device: str = "auto", dtype: str = "float32",
                 offload: str = "none", config_key: str = "editor.<route>", compile: bool = False,
                 channels_last: bool = False) -> None:
        if int(steps) < 1 or int(resolution) < 8:  # checked first: its message predates the base's
            raise ValueError(f"{config_key}: steps must be >= 1 and resolution >= 8")
        super().__init__(model_path, steps, resolution, device=device, dtype=dtype, config_key=config_key,
                         offload=offload, compile=compile, channels_last=channels_last)
        self.skip = float(skip)
        self.edit_guidance_scale, self.edit_threshold = float(edit_guidance_scale), float(edit_threshold)

    def load_kwargs(self) -> dict[str, Any]:
        return dc.no_safety_checker()

    def edit_batch(self, requests: Sequence[EditRequest], plans: Sequence[Plan], masks: Sequence[MaskResult],
                   seeds: Sequence[int]) -> list[EditResult]:
        batch = dc.start_batch(self.name, requests, plans, masks, seeds, self.resolution, self._counts)
        if not batch.todo:
            return batch.done()
        pipe = self.pipeline()
        for size, members in batch.groups():
            for k in members:
                i = batch.todo[k]
                gen = batch.generators(seeds, [k])[0]
                w, h = (max(32, v // 32 * 32) for v in batch.inputs[k].image.size)  # invert needs /32
                pipe.invert(batch.inputs[k].image.resize((w, h)), num_inversion_steps=self.steps, skip=self.skip,
                            generator=gen, height=h, width=w)
                concept, reverse = edit_concept(plans[i], requests[i].instruction)
                edited = pipe(editing_prompt=[concept], reverse_editing_direction=[reverse],
                              edit_guidance_scale=[self.edit_guidance_scale], edit_threshold=[self.edit_threshold],
                              generator=gen, output_type="pil").images[0]
                self._counts["model_batches"] += 1
                image = dc.finish(requests[i].image, edited, masks[i].mask, 0)
                params = {"concept": concept, "reverse": reverse, "steps": self.steps, "skip": self.skip,
                          "resolution": list(size), "model": Path(self.model_path).name}
                batch.results[i] = EditResult(image, self.name, params, int(seeds[i]))
        return batch.done()
