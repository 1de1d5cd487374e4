"""``PowerPaintPipeline``: PowerPaint v2 (BrushNet-CA + task tokens) on the BrushNet pipeline.

PowerPaint v2 is BrushNet with cross-attention in the branch. The branch attends to the
*task prompts* encoded by a second text encoder that knows the learned task tokens; the
UNet attends to the *user prompt* encoded by the base text encoder. Everything else (mask
handling, VAE conditioning, CFG, the sampling loop) is the BrushNet pipeline's, so this
class only adds what differs:

* loading: the official ``PowerPaint_Brushnet/`` folder gives the BrushNet-CA weights and
  ``text_encoder_brushnet`` (built on the base ``text_encoder/config.json``);
* :meth:`encode_brushnet_prompt`: ``A * t + B * (1 - t)`` of the task prompts (and the same
  for the negatives with ``t_nag``), as the reference's ``_encode_prompt``;
* ``__call__(task=...)``: builds the reference v2 prompts for a task
  (:mod:`iiie.models.powerpaint.prompts`); explicit ``promptA``... arguments are accepted
  too (the parity tool replays recorded calls with them).

Unlike the reference, the user prompt goes through the plain CLIP tokenizer: the base text
encoder can never receive task ids, even if a user writes "P_obj".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline
from iiie.models.powerpaint.loading import load_brushnet_ca
from iiie.models.powerpaint.prompts import TaskPrompts, build_task_prompts
from iiie.models.powerpaint.task_tokens import TaskTokenizer
from iiie.models.powerpaint.text_encoder import load_task_text_encoder, task_token_embedding

#: Files the official ``PowerPaint_Brushnet/`` folder must hold (one of each tuple).
POWERPAINT_FILES = (
    "config.json",
    "diffusion_pytorch_model.safetensors",
    ("pytorch_model.bin", "text_encoder_brushnet.safetensors"),
)

_BRANCH_KEYS = ("promptA", "promptB", "negative_promptA", "negative_promptB", "tradoff", "tradoff_nag")


def _per_sample(value, batch: int, name: str) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) == 1:
        values = values * batch
    if len(values) != batch:
        raise ValueError(f"{len(values)} values for `{name}` but a batch of {batch} prompts")
    return values


class PowerPaintPipeline(BrushNetInpaintPipeline):
    """PowerPaint v2 inpainting. Components: those of :class:`BrushNetInpaintPipeline`
    (``brushnet`` is the cross-attention variant) plus ``text_encoder_brushnet``."""

    model_cpu_offload_seq = "text_encoder->text_encoder_brushnet->unet->vae"

    def __init__(self, vae, text_encoder, tokenizer, unet, brushnet, scheduler, text_encoder_brushnet):
        super().__init__(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                         brushnet=brushnet, scheduler=scheduler)
        task_token_embedding(text_encoder_brushnet)  # raises if it cannot read task ids
        self.register_modules(text_encoder_brushnet=text_encoder_brushnet)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        base_dir: str | os.PathLike,
        brushnet: Any,
        scheduler: str | Any | None = "UniPCMultistepScheduler",
        torch_dtype: torch.dtype | None = None,
        variant: str | None = None,
        **components: Any,
    ) -> PowerPaintPipeline:
        """Build from an SD1.5-layout base folder and the official ``PowerPaint_Brushnet/``
        folder (``brushnet``), as the reference app does for v2.

        ``brushnet`` may also be a loaded BrushNet-CA model, in which case
        ``text_encoder_brushnet`` must be passed as a component.
        """
        dtype = torch_dtype or torch.float32
        if not isinstance(brushnet, (str, os.PathLike)):
            if "text_encoder_brushnet" not in components:
                raise ValueError("pass text_encoder_brushnet with a preloaded brushnet model")
        else:
            folder = Path(brushnet)
            brushnet = load_brushnet_ca(folder, dtype=dtype)
            if "text_encoder_brushnet" not in components:
                from transformers import CLIPTokenizer

                # Task ids start right after the tokenizer's vocabulary, as in the reference.
                if components.get("tokenizer") is None:
                    components["tokenizer"] = CLIPTokenizer.from_pretrained(Path(base_dir) / "tokenizer")
                tokenizer = components["tokenizer"]
                components["text_encoder_brushnet"] = load_task_text_encoder(
                    Path(base_dir) / "text_encoder", folder, first_task_id=len(tokenizer), dtype=dtype
                )
        return super().from_pretrained(base_dir, brushnet=brushnet, scheduler=scheduler,
                                       torch_dtype=torch_dtype, variant=variant, **components)

    # ------------------------------------------------------------------ text
    @property
    def task_tokenizer(self) -> TaskTokenizer:
        emb = task_token_embedding(self.text_encoder_brushnet)
        return TaskTokenizer(self.tokenizer, first_task_id=emb.first_task_id,
                             task_tokens=emb.task_tokens, num_vectors=emb.num_vectors)

    def _encode_task_text(self, texts: list[str], device) -> torch.Tensor:
        ids = self.task_tokenizer(texts).to(device)
        return self.text_encoder_brushnet(ids)[0]

    def _blend(self, a: list[str], b: list[str], t: list[float], device) -> torch.Tensor:
        ea, eb = self._encode_task_text(a, device), self._encode_task_text(b, device)
        tt = torch.tensor(t, dtype=ea.dtype, device=device)[:, None, None]
        # Same expression and order as the reference: A * t + (1 - t) * B.
        return ea * tt + (1 - tt) * eb

    def encode_brushnet_prompt(
        self,
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
        device: torch.device,
        num_images_per_prompt: int,
        do_classifier_free_guidance: bool,
        promptA: str | list[str] | None = None,
        promptB: str | list[str] | None = None,
        negative_promptA: str | list[str] | None = None,
        negative_promptB: str | list[str] | None = None,
        tradoff: float | list[float] = 1.0,
        tradoff_nag: float | list[float] = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Task-prompt embeddings for the branch (uncond from the negative task prompts)."""
        if promptA is None:
            raise ValueError("PowerPaint needs task prompts: pass task=... or promptA/promptB")
        batch = prompt_embeds.shape[0] // num_images_per_prompt
        a = _per_sample(promptA, batch, "promptA")
        b = _per_sample(promptA if promptB is None else promptB, batch, "promptB")
        t = [float(x) for x in _per_sample(tradoff, batch, "tradoff")]
        dtype = self.brushnet.dtype
        pos = self._blend(a, b, t, device).to(dtype).repeat_interleave(num_images_per_prompt, 0)
        if not do_classifier_free_guidance:
            return pos, None
        na = _per_sample("" if negative_promptA is None else negative_promptA, batch, "negative_promptA")
        nb = _per_sample(na if negative_promptB is None else negative_promptB, batch, "negative_promptB")
        tn = [float(x) for x in _per_sample(tradoff_nag, batch, "tradoff_nag")]
        neg = self._blend(na, nb, tn, device).to(dtype).repeat_interleave(num_images_per_prompt, 0)
        return pos, neg

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image=None,
        mask_image=None,
        task: str | list[str] | None = "object-removal",
        negative_prompt: str | list[str] | None = None,
        fitting_degree: float | list[float] = 1.0,
        task_prompts: TaskPrompts | list[TaskPrompts] | None = None,
        promptA: str | list[str] | None = None,
        promptB: str | list[str] | None = None,
        negative_promptA: str | list[str] | None = None,
        negative_promptB: str | list[str] | None = None,
        tradoff: float | list[float] | None = None,
        tradoff_nag: float | list[float] | None = None,
        **kwargs: Any,
    ):
        """Inpaint ``image`` where ``mask_image`` is white, for a PowerPaint ``task``.

        Three ways to give the text, most to least convenient:

        * ``task`` (``object-removal``, ``text-guided``, ``shape-guided``,
          ``context-aware``; one or one per prompt) with the user ``prompt`` /
          ``negative_prompt`` and ``fitting_degree``: prompts are built as the reference
          app does for v2;
        * ``task_prompts``: prebuilt :class:`TaskPrompts` (one or one per sample);
        * the reference's raw arguments ``promptA``, ``promptB``, ``negative_promptA``,
          ``negative_promptB``, ``tradoff``, ``tradoff_nag``, with ``prompt`` and
          ``negative_prompt`` playing ``promptU`` / ``negative_promptU``.

        Other keyword arguments are those of :meth:`BrushNetInpaintPipeline.__call__`.
        """
        if promptA is not None:
            branch = {"promptA": promptA, "promptB": promptB, "negative_promptA": negative_promptA,
                      "negative_promptB": negative_promptB,
                      "tradoff": 1.0 if tradoff is None else tradoff,
                      "tradoff_nag": 1.0 if tradoff_nag is None else tradoff_nag}
            user, user_neg = ("" if prompt is None else prompt), negative_prompt
        else:
            if task_prompts is None:
                if task is None:
                    raise ValueError("pass task=..., task_prompts=... or promptA=...")
                prompts = _as_strings(prompt)
                n = len(prompts)
                tasks = _per_sample(task, n, "task")
                negs = _per_sample("" if negative_prompt is None else negative_prompt, n, "negative_prompt")
                degrees = _per_sample(fitting_degree, n, "fitting_degree")
                task_prompts = [build_task_prompts(tk, p, ng, d)
                                for tk, p, ng, d in zip(tasks, prompts, negs, degrees, strict=True)]
            items = task_prompts if isinstance(task_prompts, (list, tuple)) else [task_prompts]
            branch = {k: [getattr(tp, k) for tp in items] for k in _BRANCH_KEYS}
            user = [tp.promptU for tp in items]
            user_neg = [tp.negative_promptU for tp in items]
        if kwargs.get("prompt_embeds") is not None:
            user = None
        return super().__call__(prompt=user, image=image, mask_image=mask_image,
                                negative_prompt=user_neg, brushnet_prompt_kwargs=branch, **kwargs)


def _as_strings(prompt) -> list[str]:
    if prompt is None:
        return [""]
    if isinstance(prompt, str):
        return [prompt]
    return ["" if p is None else str(p) for p in prompt]
