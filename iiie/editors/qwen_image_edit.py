"""``editor=qwen_image_edit``: Qwen-Image-Edit end to end, a comparison row of the paper.

The instruction goes to diffusers' ``QwenImageEditPipeline`` as given (no plan, no mask),
with true classifier-free guidance against ``negative_prompt`` (the model card's ``" "``,
scale 4.0, 50 steps). The output is generated at the model resolution (long side
``resolution``, multiples of 16, aspect kept) and comes back at the input's size. The
condition image is the source itself: the pipeline always rescales it to about one
megapixel for its VAE and Qwen2.5-VL encoder, so resizing it first would only lose detail.
The folder is the ``Qwen/Qwen-Image-Edit`` diffusers layout, loaded once per process.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from iiie.editors.base import DiffusionEditor

_HINT = ("Qwen-Image-Edit needs the Qwen/Qwen-Image-Edit folder in diffusers layout; see README "
         "'Weights'. For a CPU smoke run use method=tiny/qwen_image_edit, "
         "whose folder iiie.tiny_weights.qwen_image_edit.ensure(<paths.cache>/tiny) writes.")


def true_cfg(true_cfg_scale: float, negative_prompt: str, config_key: str) -> tuple[float, str]:
    """(scale, negative prompt), checked: Qwen-Image's true CFG needs a negative prompt."""
    if float(true_cfg_scale) > 1 and not negative_prompt:
        raise ValueError(f"{config_key}.negative_prompt must be non-empty when true_cfg_scale > 1 "
                         f"(the pipeline silently skips guidance without one); the model card uses ' '")
    return float(true_cfg_scale), str(negative_prompt or "")


def true_cfg_kwargs(true_cfg_scale: float, negative_prompt: str, n: int) -> dict[str, Any]:
    """The pipeline's true-CFG arguments for ``n`` prompts (the negative one only with CFG)."""
    kw: dict[str, Any] = {"true_cfg_scale": true_cfg_scale}
    if true_cfg_scale > 1:
        kw["negative_prompt"] = [negative_prompt] * n  # one per prompt, as the batch
    return kw


class QwenImageEditEditor(DiffusionEditor):
    """Edit with the instruction text through Qwen-Image-Edit."""

    name = "qwen_image_edit"
    pipeline_class = "QwenImageEditPipeline"
    model_files = ("model_index.json", "scheduler/scheduler_config.json", "transformer/config.json",
                   "vae/config.json", "text_encoder/config.json", "tokenizer/tokenizer_config.json",
                   ("processor/preprocessor_config.json", "processor/processor_config.json"))
    hint = _HINT
    multiple = 16  # 2x2 latent patches over an 8x VAE

    def __init__(self, model_path: str, steps: int = 50, true_cfg_scale: float = 4.0, negative_prompt: str = " ",
                 resolution: int = 1024, blur: int = 0, max_sequence_length: int = 512, device: str = "auto",
                 dtype: str = "float32", config_key: str = "editor.<route>",
                 offload: str = "none", compile: bool = False, channels_last: bool = False) -> None:
        super().__init__(model_path, steps, resolution, blur, max_sequence_length=max_sequence_length,
                         device=device, dtype=dtype, config_key=config_key, offload=offload,
                         compile=compile, channels_last=channels_last)
        self.true_cfg_scale, self.negative_prompt = true_cfg(true_cfg_scale, negative_prompt, config_key)

    def call_kwargs(self, size: tuple[int, int], n: int) -> dict[str, Any]:
        w, h = size
        return {"height": h, "width": w, **true_cfg_kwargs(self.true_cfg_scale, self.negative_prompt, n)}

    def condition_image(self, source: Image.Image, model_image: Image.Image) -> Image.Image:
        return source

    def settings(self) -> dict[str, Any]:
        return {"true_cfg_scale": self.true_cfg_scale, "negative_prompt": self.negative_prompt}


__all__ = ["QwenImageEditEditor"]
