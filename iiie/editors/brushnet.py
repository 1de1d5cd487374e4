"""``editor=brushnet``: BrushNet (SD1.5) inpainting for the local, background and addition
routes.

For each sample the prompt is ``plan.target_prompt`` (what the masked region should show;
falls back to ``plan.object``, then the instruction) and the region is the masker's mask
(True = change). The image and mask are resized to the model resolution (long side
``resolution``, multiples of 8), the hole is blacked out as in the reference's example
script (done inside :class:`~iiie.models.brushnet.pipeline.BrushNetInpaintPipeline`,
``blackout_hole=True``), the pipeline runs on batches of equal resolution with one seeded
generator per sample, and the result is mapped back to the input size and pasted into the
input with :func:`iiie.masks.paste_back` (feather ``blur`` pixels), so everything outside the
feathered mask is the input, bit for bit.

Weights are read from local folders (``base_path``: SD1.5 diffusers folder such as
realisticVisionV60B1_v51VAE; ``brushnet_path``: ``segmentation_mask_brushnet_ckpt`` or
``random_mask_brushnet_ckpt``) and loaded once per process: the SD1.5 base is shared by
every route and editor on it, each branch checkpoint is loaded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iiie.devices import resolve_device, resolve_dtype
from iiie.editors import diffusion_common as dc
from iiie.types import EditRequest, EditResult, MaskResult, Plan
from iiie.weights import load_once, require_files

_HINT = (
    "BrushNet needs an SD1.5 base in diffusers layout (e.g. realisticVisionV60B1_v51VAE) and a "
    "BrushNet checkpoint folder (segmentation_mask_brushnet_ckpt or random_mask_brushnet_ckpt "
    "from the BrushNet release); see README 'Weights'. For a CPU smoke run use experiment=tiny."
)


def _names(expected) -> str:
    return ", ".join(" or ".join(e) if isinstance(e, tuple) else e for e in expected)


class BrushNetEditor(dc.SingleFromBatch):
    """Inpaint the mask with BrushNet, guided by the plan's target prompt."""

    name = "brushnet"

    def __init__(
        self,
        base_path: str,
        brushnet_path: str,
        steps: int = 50,
        guidance_scale: float = 7.5,
        conditioning_scale: float = 1.0,
        negative_prompt: str = "ugly, low quality",
        resolution: int = 512,
        blur: int = 10,
        scheduler: str = "UniPCMultistepScheduler",
        device: str = "auto",
        dtype: str = "float32",
        offload: str = "none",
        config_key: str = "editor.<route>",
    ) -> None:
        from iiie.models.brushnet.pipeline import BASE_FILES, BRUSHNET_FILES

        self.base_path = require_files(base_path, BASE_FILES, f"{config_key}.base_path",
                                       f"Expected files: {_names(BASE_FILES)}. {_HINT}")
        self.brushnet_path = require_files(brushnet_path, BRUSHNET_FILES, f"{config_key}.brushnet_path",
                                           f"Expected files: {_names(BRUSHNET_FILES)}. {_HINT}")
        if int(steps) < 1:
            raise ValueError(f"{config_key}.steps must be >= 1, got {steps}")
        if int(resolution) < 8:
            raise ValueError(f"{config_key}.resolution must be >= 8, got {resolution}")
        self.steps, self.guidance_scale = int(steps), float(guidance_scale)
        self.conditioning_scale, self.negative_prompt = float(conditioning_scale), negative_prompt
        self.resolution, self.blur, self.scheduler = int(resolution), int(blur), scheduler
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.offload = dc.check_placement(self.device, offload, config_key)
        self.config_key = config_key
        self._counts = {"samples": 0, "model_batches": 0, "empty_masks": 0, "prompt_fallbacks": 0}

    # ------------------------------------------------------------------ models
    def pipeline(self):
        """The pipeline for this (base, branch, scheduler, device, dtype), built once per process."""
        from iiie.models.brushnet.model import BrushNetModel
        from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline, scheduler_from_config

        where, owner = self.load_place("brushnet")

        def load_branch():
            model = BrushNetModel.from_pretrained(self.brushnet_path, torch_dtype=self.dtype,
                                                  variant=dc.weight_variant(self.brushnet_path))
            return model.to(where).eval().requires_grad_(False)

        def build():
            import json

            base = dc.load_sd15_base(str(self.base_path), where, self.dtype, owner)
            branch = load_once(("brushnet-branch", str(self.brushnet_path), str(where), str(self.dtype), owner),
                               load_branch, label="brushnet")
            config = json.loads((self.base_path / "scheduler" / "scheduler_config.json").read_text())
            pipe = BrushNetInpaintPipeline(brushnet=branch, scheduler=scheduler_from_config(self.scheduler, config),
                                           **base)
            pipe.set_progress_bar_config(disable=True)
            return self.placed(pipe)

        key = ("brushnet-pipeline", str(self.base_path), str(self.brushnet_path), self.scheduler,
               str(self.device), str(self.dtype), self.offload)
        return load_once(key, build, label="brushnet-pipeline")

    def load_place(self, owner: str) -> tuple[Any, str | None]:
        """(device the modules load on, owner of a private base copy): the shared base on
        ``device`` without offload; host memory and a copy of its own with offload."""
        from iiie.offload import load_device

        if self.offload == "none":
            return self.device, None
        return load_device(self.device, self.offload), f"{owner}-offload-{self.offload}"

    def placed(self, pipe):
        """The assembled pipeline with its offload hooks (modules are already on ``device``
        without offload)."""
        return pipe if self.offload == "none" else dc.place(pipe, self.device, self.offload, self.config_key)

    # ------------------------------------------------------------------ editing
    def _prompt(self, request: EditRequest, plan: Plan) -> str:
        for text in (plan.target_prompt, plan.object, request.instruction):
            if text and text.strip():
                if text is not plan.target_prompt:
                    self._counts["prompt_fallbacks"] += 1
                return text.strip()
        return ""

    def edit_batch(
        self,
        requests: Sequence[EditRequest],
        plans: Sequence[Plan],
        masks: Sequence[MaskResult],
        seeds: Sequence[int],
    ) -> list[EditResult]:
        batch = dc.start_batch(self.name, requests, plans, masks, seeds, self.resolution, self._counts,
                               empty_params=lambda: self._params("", None, note=dc.EMPTY_NOTE))
        if not batch.todo:
            return batch.done()
        prompts = [self._prompt(requests[i], plans[i]) for i in batch.todo]
        pipe = self.pipeline()
        for size, members in batch.groups():
            out = pipe(
                prompt=[prompts[k] for k in members],
                image=[batch.inputs[k].image for k in members],
                mask_image=[batch.inputs[k].mask for k in members],
                height=size[1], width=size[0],
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                negative_prompt=[self.negative_prompt] * len(members),
                brushnet_conditioning_scale=self.conditioning_scale,
                generator=batch.generators(seeds, members),
                blackout_hole=True,
                output_type="pil",
            ).images
            self._counts["model_batches"] += 1
            for k, edited in zip(members, out, strict=True):
                i = batch.todo[k]
                image = dc.finish(requests[i].image, edited, masks[i].mask, self.blur)
                batch.results[i] = EditResult(image, self.name, self._params(prompts[k], size), int(seeds[i]))
        return batch.done()

    def _params(self, prompt: str, size: tuple[int, int] | None, note: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "prompt": prompt,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "conditioning_scale": self.conditioning_scale,
            "scheduler": self.scheduler,
            "resolution": list(size) if size else None,
            "blur": self.blur,
            "base": Path(self.base_path).name,
            "brushnet": Path(self.brushnet_path).name,
            "dtype": dc.dtype_name(self.dtype),
        }
        if note:
            params["note"] = note
        return params

    def stats(self) -> dict[str, Any]:
        """Counters for the run manifest (samples, model batches, empty masks, loads)."""
        return {**self._counts, "loads": dc.load_counts("brushnet", "sd15")}


__all__ = ["BrushNetEditor"]
