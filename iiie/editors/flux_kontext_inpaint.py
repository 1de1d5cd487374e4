"""``editor=flux_kontext_inpaint``: FLUX.1 Kontext [dev] restricted to the mask, on the mask
routes (local, background, addition, remove).

diffusers' ``FluxKontextInpaintPipeline`` edits the image in context (Kontext's condition is
the source) but only denoises the white part of ``mask_image``; the prompt is the plan's
inpainting prompt (:meth:`DiffusionEditor.prompt`). It reads the same
``black-forest-labs/FLUX.1-Kontext-dev`` folder as ``editor=flux_kontext`` (no extra
weights). ``strength`` 1.0 regenerates the hole fully; defaults otherwise follow the model
card (28 steps, guidance 2.5). Loading, batching, seeds and paste-back are the base's.
"""

from __future__ import annotations

from typing import Any

from iiie.editors import diffusion_common as dc
from iiie.editors.base import DiffusionEditor

_HINT = ("FLUX.1 Kontext inpainting reads the black-forest-labs/FLUX.1-Kontext-dev folder in diffusers "
         "layout (gated; see README 'Weights'). For a CPU smoke run mount editor=tiny/flux_kontext_inpaint, "
         "whose folder iiie.tiny_weights.flux_kontext.ensure(<paths.cache>/tiny) writes.")


class FluxKontextInpaintEditor(DiffusionEditor):
    """Inpaint the mask with FLUX.1 Kontext, guided by the plan's target prompt."""

    name = "flux_kontext_inpaint"
    pipeline_class = "FluxKontextInpaintPipeline"
    model_files = dc.FLUX_FILES  # the same folder as editor=flux_kontext
    hint = _HINT
    multiple = 16
    inpaint = True

    def __init__(self, model_path: str, steps: int = 28, guidance_scale: float = 2.5, strength: float = 1.0,
                 resolution: int = 1024, auto_resize: bool = True, blur: int = 10, batch_size: int | None = None,
                 max_sequence_length: int = 512, device: str = "auto", dtype: str = "float32",
                 config_key: str = "editor.<route>",
                 offload: str = "none", compile: bool = False, channels_last: bool = False) -> None:
        super().__init__(model_path, steps, resolution, blur, batch_size, max_sequence_length,
                         device=device, dtype=dtype, config_key=config_key, offload=offload,
                         compile=compile, channels_last=channels_last)
        self.strength = self.checked_strength(strength)
        self.guidance_scale, self.auto_resize = float(guidance_scale), bool(auto_resize)

    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        w, h = size
        return {"guidance_scale": self.guidance_scale, "strength": self.strength, "max_area": w * h,
                "_auto_resize": self.auto_resize}

    def settings(self) -> dict[str, Any]:
        return {"guidance_scale": self.guidance_scale, "strength": self.strength, "auto_resize": self.auto_resize}


__all__ = ["FluxKontextInpaintEditor"]
