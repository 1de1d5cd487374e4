"""``editor=qwen_image_edit_inpaint``: Qwen-Image-Edit restricted to the mask, on the mask
routes (local, background, addition, remove).

diffusers' ``QwenImageEditInpaintPipeline`` edits in context (the source is the Qwen2.5-VL
condition) but only denoises the white part of ``mask_image``; the prompt is the plan's
inpainting prompt (:meth:`DiffusionEditor.prompt`), with true CFG against
``negative_prompt`` (the model card's ``" "``, scale 4.0). ``strength`` 1.0 regenerates the
hole fully (the pipeline's default 0.6 keeps the old object's layout, wrong for removal).
It reads the same ``Qwen/Qwen-Image-Edit`` folder as ``editor=qwen_image_edit``.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from iiie.editors.base import DiffusionEditor
from iiie.editors.qwen_image_edit import QwenImageEditEditor, true_cfg, true_cfg_kwargs

_HINT = ("Qwen-Image-Edit inpainting reads the Qwen/Qwen-Image-Edit folder in diffusers layout; see README "
         "'Weights'. For a CPU smoke run mount editor=tiny/qwen_image_edit_inpaint, whose folder "
         "iiie.tiny_weights.qwen_image_edit.ensure(<paths.cache>/tiny) writes.")


class QwenImageEditInpaintEditor(DiffusionEditor):
    """Inpaint the mask with Qwen-Image-Edit, guided by the plan's target prompt."""

    name = "qwen_image_edit_inpaint"
    pipeline_class = "QwenImageEditInpaintPipeline"
    model_files = QwenImageEditEditor.model_files
    hint = _HINT
    multiple = 16
    inpaint = True

    def __init__(self, model_path: str, steps: int = 50, true_cfg_scale: float = 4.0, negative_prompt: str = " ",
                 strength: float = 1.0, resolution: int = 1024, blur: int = 10, batch_size: int | None = None,
                 max_sequence_length: int = 512, device: str = "auto", dtype: str = "float32",
                 config_key: str = "editor.<route>",
                 offload: str = "none", compile: bool = False, channels_last: bool = False) -> None:
        super().__init__(model_path, steps, resolution, blur, batch_size, max_sequence_length,
                         device=device, dtype=dtype, config_key=config_key, offload=offload,
                         compile=compile, channels_last=channels_last)
        self.true_cfg_scale, self.negative_prompt = true_cfg(true_cfg_scale, negative_prompt, config_key)
        self.strength = self.checked_strength(strength)

    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        return {**true_cfg_kwargs(self.true_cfg_scale, self.negative_prompt, n), "strength": self.strength}

    def condition_image(self, source: Image.Image, model_image: Image.Image) -> Image.Image:
        return model_image  # the mask is at model resolution, so the image must be too

    def settings(self) -> dict[str, Any]:
        return {"true_cfg_scale": self.true_cfg_scale, "negative_prompt": self.negative_prompt,
                "strength": self.strength}


__all__ = ["QwenImageEditInpaintEditor"]
