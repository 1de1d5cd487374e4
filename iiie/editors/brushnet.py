"""``editor=brushnet``: BrushNet (SD1.5) inpainting for the local, background and addition
routes.

For each sample the prompt is ``plan.target_prompt`` (what the masked region should show;
falls back to ``plan.object``, then the instruction; a removal -- the ``remove_brushnet``
ablation -- never falls back to the object's name, which would paint it back, but to the
planner's neutral background prompt: the base's rule) and the region is the masker's mask
(True = change). The hole is blacked out as in the reference's example script (done inside
:class:`~iiie.models.brushnet.pipeline.BrushNetInpaintPipeline`, ``blackout_hole=True``).
Everything else is :class:`~iiie.editors.base.DiffusionEditor`'s: model resolution (long
side ``resolution``, multiples of 8), batches of equal resolution with one seeded generator
per sample, paste-back into the input with :func:`iiie.masks.paste_back` (feather ``blur``
pixels, so everything outside the feathered mask is the input, bit for bit), provenance,
counters and the speed switches.

What differs from a one-folder diffusers editor: two weight folders (``base_path``: SD1.5
diffusers folder such as realisticVisionV60B1_v51VAE; ``brushnet_path``:
``segmentation_mask_brushnet_ckpt`` or ``random_mask_brushnet_ckpt``), and a pipeline
assembled from them (:meth:`BrushNetEditor.build_pipeline`): the SD1.5 base is loaded once
per process and shared by every route and editor on it, each branch checkpoint is loaded
once. PowerPaint (:mod:`iiie.editors.powerpaint`) is this editor with another branch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iiie.editors import diffusion_common as dc
from iiie.editors.base import DiffusionEditor
from iiie.weights import load_once

_HINT = (
    "BrushNet needs an SD1.5 base in diffusers layout (e.g. realisticVisionV60B1_v51VAE) and a "
    "BrushNet checkpoint folder (segmentation_mask_brushnet_ckpt or random_mask_brushnet_ckpt "
    "from the BrushNet release); see README 'Weights'. For a CPU smoke run use experiment=tiny."
)


def _expected(files) -> str:
    names = ", ".join(" or ".join(e) if isinstance(e, tuple) else e for e in files)
    return f"Expected files: {names}. {_HINT}"


class BrushNetEditor(DiffusionEditor):
    """Inpaint the mask with BrushNet, guided by the plan's target prompt."""

    name = "brushnet"
    pipeline_class = "BrushNetInpaintPipeline"
    pipeline_module = "iiie.models.brushnet.pipeline"
    pipeline_label = "brushnet-pipeline"
    load_prefixes = ("brushnet", "sd15")  # the assembled pipelines, the branches, the shared base
    inpaint = True
    #: Constructor argument (and config key) of the branch folder.
    branch_arg = "brushnet_path"

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
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__(None, steps, resolution, blur, device=device, dtype=dtype, config_key=config_key,
                         offload=offload, compile=compile, channels_last=channels_last,
                         folders={"base_path": base_path, self.branch_arg: brushnet_path})
        self.guidance_scale, self.conditioning_scale = float(guidance_scale), float(conditioning_scale)
        self.negative_prompt, self.scheduler = negative_prompt, scheduler

    @property
    def branch_path(self) -> Path:
        """The branch checkpoint folder (``brushnet_path``; PowerPaint's ``powerpaint_path``)."""
        return getattr(self, self.branch_arg)

    def weight_folders(self) -> dict[str, tuple[tuple, str]]:
        from iiie.models.brushnet.pipeline import BASE_FILES, BRUSHNET_FILES

        return {"base_path": (BASE_FILES, _expected(BASE_FILES)),
                "brushnet_path": (BRUSHNET_FILES, _expected(BRUSHNET_FILES))}

    # ------------------------------------------------------------------ models
    def load_key(self) -> tuple:
        return (*super().load_key(), self.scheduler)

    def load_branch(self, where) -> dict[str, Any]:
        """The branch modules the pipeline takes besides the SD1.5 base, on ``where``
        (loaded once per process per folder)."""
        from iiie.models.brushnet.model import BrushNetModel

        def load():
            model = BrushNetModel.from_pretrained(self.branch_path, torch_dtype=self.dtype,
                                                  variant=dc.weight_variant(self.branch_path))
            return model.to(where).eval().requires_grad_(False)

        _, owner = self.load_place()
        key = ("brushnet-branch", str(self.branch_path), str(where), str(self.dtype), owner)
        return {"brushnet": load_once(key, load, label="brushnet")}

    def build_pipeline(self):
        """The pipeline assembled from the shared SD1.5 base, this editor's branch and its
        scheduler (configured from the base folder)."""
        from iiie.models.brushnet.pipeline import scheduler_from_config

        where, owner = self.load_place()
        base = dc.load_sd15_base(str(self.base_path), where, self.dtype, owner)
        config = json.loads((Path(self.base_path) / "scheduler" / "scheduler_config.json").read_text())
        # Without offload the modules are already on ``device`` (placing them again is a no-op);
        # with it, they are this pipeline's own host copies for the hooks to move.
        return self.pipeline_type()(scheduler=scheduler_from_config(self.scheduler, config), **base,
                                    **self.load_branch(where))

    def load_place(self) -> tuple[Any, str | None]:
        """(device the modules load on, owner of a private base copy): the shared base on
        ``device`` without offload; host memory and a copy of its own with offload."""
        from iiie.offload import load_device

        if self.offload == "none":
            return self.device, None
        return load_device(self.device, self.offload), f"{self.name}-offload-{self.offload}"

    # ------------------------------------------------------------------ editing
    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        return {"guidance_scale": self.guidance_scale, "negative_prompt": [self.negative_prompt] * n,
                "brushnet_conditioning_scale": self.conditioning_scale, "blackout_hole": True}

    def settings(self) -> dict[str, Any]:
        return {"negative_prompt": self.negative_prompt, "guidance_scale": self.guidance_scale,
                "conditioning_scale": self.conditioning_scale, "scheduler": self.scheduler}

    def model_params(self) -> dict[str, Any]:
        return {"base": Path(self.base_path).name, "brushnet": Path(self.branch_path).name}


__all__ = ["BrushNetEditor"]
