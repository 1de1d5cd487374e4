"""``editor=sdxl_inpaint``: SDXL 1.0 Inpainting 0.1 on the mask routes (local, background,
addition, remove).

diffusers' ``StableDiffusionXLInpaintPipeline`` (9-channel UNet: noisy latents + mask +
masked-image latents) repaints the mask from the plan's inpainting prompt
(:meth:`DiffusionEditor.prompt`), with classifier-free guidance against
``negative_prompt``. Model-card defaults: 20 steps, guidance 8.0, strength 0.99 (1.0 would
discard the source entirely). Loading, batching (multiples of 8), seeds, paste-back outside
the feathered mask and provenance are the base's. The folder is the
``diffusers/stable-diffusion-xl-1.0-inpainting-0.1`` layout.
"""

from __future__ import annotations

from typing import Any

from iiie.editors.base import DiffusionEditor

_HINT = ("SDXL inpainting needs the diffusers/stable-diffusion-xl-1.0-inpainting-0.1 folder; see README "
         "'Weights'. For a CPU smoke run mount editor=tiny/sdxl_inpaint, whose folder "
         "iiie.tiny_weights.sdxl_inpaint.ensure(<paths.cache>/tiny) writes.")


class SDXLInpaintEditor(DiffusionEditor):
    """Inpaint the mask with SDXL inpainting, guided by the plan's target prompt."""

    name = "sdxl_inpaint"
    pipeline_class = "StableDiffusionXLInpaintPipeline"
    model_files = ("model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "vae/config.json",
                   "text_encoder/config.json", "text_encoder_2/config.json", "tokenizer/tokenizer_config.json",
                   "tokenizer_2/tokenizer_config.json")
    hint = _HINT
    inpaint = True

    def __init__(self, model_path: str, steps: int = 20, guidance_scale: float = 8.0, strength: float = 0.99,
                 negative_prompt: str = "", resolution: int = 1024, blur: int = 10, batch_size: int | None = None,
                 device: str = "auto", dtype: str = "float32", config_key: str = "editor.<route>",
                 offload: str = "none", compile: bool = False, channels_last: bool = False) -> None:
        super().__init__(model_path, steps, resolution, blur, batch_size, device=device, dtype=dtype,
                         config_key=config_key, offload=offload,
                         compile=compile, channels_last=channels_last)
        self.guidance_scale, self.strength = float(guidance_scale), self.checked_strength(strength)
        self.negative_prompt = str(negative_prompt or "")

    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        return {"guidance_scale": self.guidance_scale, "strength": self.strength,
                "negative_prompt": [self.negative_prompt] * n}

    def settings(self) -> dict[str, Any]:
        return {"guidance_scale": self.guidance_scale, "strength": self.strength,
                "negative_prompt": self.negative_prompt}


__all__ = ["SDXLInpaintEditor"]
