"""``editor=powerpaint``: PowerPaint v2 for the remove route (and, as an ablation, addition).

IIIE sends removals to PowerPaint's *object-removal* task: the branch is told "fill with
context (``P_ctxt``), not with an object (``P_obj``)", so the hole becomes background
instead of a new object. The removal prompt therefore carries **no object words**: by
default the user prompt is empty and PowerPaint's own suffix makes it " empty scene blur"
(as the reference app does when nobody types a prompt); ``removal_prompt: target_caption``
uses the plan's caption of the edited scene instead (for captions that describe only the
remaining scene). ``task: text-guided`` (``editor=powerpaint_text``) inpaints
``plan.target_prompt`` into the mask, the addition-route ablation against BrushNet.

Everything else is the BrushNet editor on :class:`~iiie.editors.base.DiffusionEditor`:
model resolution, batching by size, one seeded generator per sample, blacking out the
hole, paste-back with a feathered mask so pixels outside it equal the input exactly, and one
model load per process (the SD1.5 base is shared with every BrushNet editor on the same
folder). The pipeline object is shared by every PowerPaint editor on the same weights; the
task and fitting degree are this editor's call arguments (:meth:`PowerPaintEditor.call_kwargs`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from iiie.editors import diffusion_common as dc
from iiie.editors.brushnet import BrushNetEditor
from iiie.models.powerpaint.prompts import build_task_prompts, normalize_task
from iiie.types import EditRequest, Plan
from iiie.weights import load_once

_HINT = (
    "PowerPaint v2 needs the official PowerPaint v2-1 release: its `PowerPaint_Brushnet/` "
    "folder (config.json, diffusion_pytorch_model.safetensors, pytorch_model.bin) and an "
    "SD1.5 base in diffusers layout (the release's realisticVisionV60B1_v51VAE); see README "
    "'Weights'. For a CPU smoke run use experiment=tiny."
)

_REMOVAL_PROMPTS = ("none", "target_caption")


_STOPWORDS = frozenset("a an the of on in at with and or to from".split())


def mentions(text: str, phrase: str) -> bool:
    """Whether ``text`` names any content word of ``phrase`` (plurals included)."""
    words = [w for w in re.findall(r"[a-z0-9]+", (phrase or "").lower()) if w not in _STOPWORDS]
    low = (text or "").lower()
    return any(re.search(rf"\b{re.escape(w)}(e?s)?\b", low) for w in words)


class PowerPaintEditor(BrushNetEditor):
    """PowerPaint v2 inpainting for one task (see the module docstring)."""

    name = "powerpaint"
    pipeline_class = "PowerPaintPipeline"
    pipeline_module = "iiie.models.powerpaint.pipeline"
    pipeline_label = "powerpaint-pipeline"
    load_prefixes = ("powerpaint", "sd15")
    branch_arg = "powerpaint_path"

    def __init__(
        self,
        base_path: str,
        powerpaint_path: str,
        task: str = "object-removal",
        removal_prompt: str = "none",
        fitting_degree: float = 1.0,
        steps: int = 45,
        guidance_scale: float = 10.0,
        conditioning_scale: float = 1.0,
        negative_prompt: str = "",
        resolution: int = 512,
        blur: int = 10,
        scheduler: str = "UniPCMultistepScheduler",
        device: str = "auto",
        dtype: str = "float32",
        offload: str = "none",
        config_key: str = "editor.<route>",  # the runner puts the mounted route in errors
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        # The folders are checked first (by the base), so a missing file names *these* config keys.
        super().__init__(
            base_path=base_path, brushnet_path=powerpaint_path, steps=steps, guidance_scale=guidance_scale,
            conditioning_scale=conditioning_scale, negative_prompt=negative_prompt, resolution=resolution,
            blur=blur, scheduler=scheduler, device=device, dtype=dtype, offload=offload, config_key=config_key,
            compile=compile, channels_last=channels_last,
        )
        try:
            self.task = normalize_task(task)
        except ValueError as exc:
            raise ValueError(f"{config_key}.task: {exc}") from None
        if removal_prompt not in _REMOVAL_PROMPTS:
            raise ValueError(f"{config_key}.removal_prompt must be one of {_REMOVAL_PROMPTS}, got {removal_prompt!r}")
        if not 0.0 <= float(fitting_degree) <= 1.0:
            raise ValueError(f"{config_key}.fitting_degree must be in [0, 1], got {fitting_degree}")
        self.removal_prompt = removal_prompt
        self.fitting_degree = float(fitting_degree)

    def weight_folders(self) -> dict[str, tuple[tuple, str]]:
        from iiie.models.brushnet.pipeline import BASE_FILES
        from iiie.models.powerpaint.pipeline import POWERPAINT_FILES

        return {"base_path": (BASE_FILES, _HINT), "powerpaint_path": (POWERPAINT_FILES, _HINT)}

    # ------------------------------------------------------------------ models
    def load_branch(self, where) -> dict[str, torch.nn.Module]:
        """BrushNet-CA + the task-token text encoder, strictly from the official folder
        (loaded once per process per folder)."""
        _, owner = self.load_place()

        def load() -> dict[str, torch.nn.Module]:
            from iiie.models.powerpaint.loading import load_brushnet_ca
            from iiie.models.powerpaint.text_encoder import load_task_text_encoder

            base = dc.load_sd15_base(str(self.base_path), where, self.dtype, owner)
            brushnet = load_brushnet_ca(self.powerpaint_path, dtype=self.dtype)
            text_encoder = load_task_text_encoder(
                Path(self.base_path) / "text_encoder", self.powerpaint_path,
                first_task_id=len(base["tokenizer"]), dtype=self.dtype,
            )
            return {name: m.to(where).eval().requires_grad_(False)
                    for name, m in (("brushnet", brushnet), ("text_encoder_brushnet", text_encoder))}

        key = ("powerpaint-branch", str(self.powerpaint_path), str(where), str(self.dtype), owner)
        return load_once(key, load, label="powerpaint")

    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        """BrushNet's arguments plus this editor's task (``prompt`` stays the user prompt:
        the pipeline adds the task's suffix and branch prompts itself)."""
        return {**super().call_kwargs(size, n), "task": self.task, "fitting_degree": self.fitting_degree}

    # ------------------------------------------------------------------ prompts
    def prompt(self, request: EditRequest, plan: Plan) -> str:
        """The user prompt (``promptU``); PowerPaint adds its task suffix itself."""
        if self.task in ("object-removal", "context-aware"):
            caption = (plan.target_caption or "").strip() if self.removal_prompt == "target_caption" else ""
            if caption and mentions(caption, plan.object):
                # "a table without the vase" would ask the UNet for a vase: use no prompt.
                self._counts["prompt_fallbacks"] += 1
                return ""
            return caption
        return super().prompt(request, plan)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "task": self.task, "fitting_degree": self.fitting_degree,
                "removal_prompt": self.removal_prompt}

    def model_params(self) -> dict[str, Any]:
        return {"base": Path(self.base_path).name, "powerpaint": Path(self.powerpaint_path).name}

    def _params(self, prompt: str, size: tuple[int, int] | None, note: str | None = None) -> dict[str, Any]:
        """The base's params plus what the task makes of the prompt (UNet and branch prompts)."""
        built = build_task_prompts(self.task, prompt, self.negative_prompt, self.fitting_degree)
        return {**super()._params(prompt, size, note), "unet_prompt": built.promptU,
                "branch_prompts": [built.promptA, built.promptB]}


__all__ = ["PowerPaintEditor"]
