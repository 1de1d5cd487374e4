"""``editor=flux_fill``: FLUX.1 Fill [dev] inpainting on the mask routes (local, background,
addition, remove).

diffusers' ``FluxFillPipeline`` repaints the white part of ``mask_image`` from the plan's
inpainting prompt (:meth:`DiffusionEditor.prompt`: ``plan.target_prompt`` as for BrushNet;
a removal gets a background prompt, never the object's name). Its transformer sees the
noisy latents concatenated with the packed masked-image latents and the mask, so the hole is
filled in context. Model-card defaults: 50 steps, guidance 30 (distilled guidance, no CFG
pass). Everything else (loading once, model resolution in multiples of 16, batching,
seeds, paste-back outside the feathered mask, provenance) is the base's. The folder is the
``black-forest-labs/FLUX.1-Fill-dev`` diffusers layout.
"""

from __future__ import annotations

from typing import Any

from iiie.editors import diffusion_common as dc
from iiie.editors.base import DiffusionEditor

_HINT = ("FLUX.1 Fill needs the black-forest-labs/FLUX.1-Fill-dev folder in diffusers layout "
         "(gated; see README 'Weights'). For a CPU smoke run mount editor=tiny/flux_fill, "
         "whose folder iiie.tiny_weights.flux_fill.ensure(<paths.cache>/tiny) writes.")


class FluxFillEditor(DiffusionEditor):
    """Inpaint the mask with FLUX.1 Fill, guided by the plan's target prompt."""

    name = "flux_fill"
    pipeline_class = "FluxFillPipeline"
    model_files = dc.FLUX_FILES
    hint = _HINT
    multiple = 16  # 2x2 latent patches over an 8x VAE
    inpaint = True

    def __init__(self, model_path: str, steps: int = 50, guidance_scale: float = 30.0, resolution: int = 1024,
                 blur: int = 10, batch_size: int | None = None, max_sequence_length: int = 512,
                 device: str = "auto", dtype: str = "float32", config_key: str = "editor.<route>",
                 offload: str = "none", compile: bool = False, channels_last: bool = False) -> None:
        super().__init__(model_path, steps, resolution, blur, batch_size, max_sequence_length,
                         device=device, dtype=dtype, config_key=config_key, offload=offload,
                         compile=compile, channels_last=channels_last)
        self.guidance_scale = float(guidance_scale)

    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        return {"guidance_scale": self.guidance_scale}

    def settings(self) -> dict[str, Any]:
        return {"guidance_scale": self.guidance_scale}


__all__ = ["FluxFillEditor"]
