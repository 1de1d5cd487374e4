"""``editor=flux_kontext``: FLUX.1 Kontext [dev] end to end, a comparison row of the paper.

The instruction goes to diffusers' ``FluxKontextPipeline`` as given (no plan, no mask). The
image runs at the model resolution (long side ``resolution``, multiples of 16, aspect kept;
``height``/``width`` and ``max_area`` are passed so the pipeline keeps that size) and comes
back at the input's size. ``auto_resize`` keeps the pipeline's default of feeding the
condition image at the nearest resolution Kontext was trained on; the tiny CPU twin turns it
off so its condition stays small. Defaults follow the model card: 28 steps, guidance 2.5.
The folder is the ``black-forest-labs/FLUX.1-Kontext-dev`` diffusers layout, loaded once.
"""

from __future__ import annotations

from typing import Any

from iiie.editors import diffusion_common as dc
from iiie.editors.base import DiffusionEditor

_HINT = ("FLUX.1 Kontext needs the black-forest-labs/FLUX.1-Kontext-dev folder in diffusers layout "
         "(gated; see README 'Weights'). For a CPU smoke run use method=tiny/flux_kontext, "
         "whose folder iiie.tiny_weights.flux_kontext.ensure(<paths.cache>/tiny) writes.")


class FluxKontextEditor(DiffusionEditor):
    """Edit with the instruction text through FLUX.1 Kontext."""

    name = "flux_kontext"
    pipeline_class = "FluxKontextPipeline"
    model_files = dc.FLUX_FILES
    hint = _HINT
    multiple = 16  # 2x2 latent patches over an 8x VAE

    def __init__(self, model_path: str, steps: int = 28, guidance_scale: float = 2.5, resolution: int = 1024,
                 auto_resize: bool = True, blur: int = 0, max_sequence_length: int = 512,
                 device: str = "auto", dtype: str = "float32", config_key: str = "editor.<route>",
                 offload: str = "none", compile: bool = False, channels_last: bool = False) -> None:
        super().__init__(model_path, steps, resolution, blur, max_sequence_length=max_sequence_length,
                         device=device, dtype=dtype, config_key=config_key, offload=offload,
                         compile=compile, channels_last=channels_last)
        self.guidance_scale, self.auto_resize = float(guidance_scale), bool(auto_resize)

    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        w, h = size
        return {"height": h, "width": w, "max_area": w * h, "guidance_scale": self.guidance_scale,
                "_auto_resize": self.auto_resize}

    def settings(self) -> dict[str, Any]:
        return {"guidance_scale": self.guidance_scale, "auto_resize": self.auto_resize}


__all__ = ["FluxKontextEditor"]
