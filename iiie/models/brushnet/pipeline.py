"""``BrushNetInpaintPipeline``: SD1.5 + BrushNet inpainting on current diffusers.

Behaviour copied from the reference pipeline (TencentARC BrushNet, checked against the
golden tensors):

* image and mask go through the same ``VaeImageProcessor.preprocess`` (so the mask is in
  [-1, 1]); the internal mask is ``sum_rgb(mask) < 0`` -> 1 = **keep**, 0 = hole, resized to
  the latent size with nearest interpolation;
* with classifier-free guidance the batch is ``[uncond..., cond...]``; the branch gets the
  same doubled latent input, and the VAE posterior is sampled **independently for each
  half** (``mean + std * eps`` with eps of shape ``(2B, 4, h, w)``), then scaled by
  ``vae.config.scaling_factor``;
* ``brushnet_cond = [masked-image latent, keep mask]``; CFG ``u + g (c - u)``; decode
  ``vae.decode(latents / scaling_factor)``; postprocess ``(x / 2 + 0.5).clamp(0, 1)``.

Differences on purpose:

* **Mask convention at the API is ours**: ``mask_image`` white/True = region to change.
  (The reference's "1 = keep" exists only inside :meth:`prepare_mask`.)
* **Blacking out the hole**: the reference pipeline does not mask the image; its example
  script passes ``image * (1 - mask)``. Here ``blackout_hole=True`` (default) does that
  step inside the pipeline, so callers pass the plain image. Re-blacking an
  already-blacked-out image changes nothing, so parity holds either way.
* **VAE noise** comes from ``generator`` (the reference uses torch's global RNG) and can be
  injected exactly with ``vae_posterior_eps`` (used by the parity tool).
* The VAE encodes each image once and the posterior is repeated for the CFG halves
  (the encoder is deterministic; the reference encodes the duplicated batch).

Extension points for subclasses (PowerPaint v2 feeds BrushNet-CA other text embeddings
than the UNet): :meth:`encode_brushnet_prompt`, :meth:`_load_components`, and the
``brushnet_prompt_embeds`` / ``negative_brushnet_prompt_embeds`` call arguments. The
denoising loop itself is :meth:`denoise`.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers import schedulers as diffusers_schedulers
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.stable_diffusion.pipeline_output import StableDiffusionPipelineOutput
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import retrieve_timesteps
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPTextModel, CLIPTokenizer

from iiie.models.brushnet.model import BrushNetModel
from iiie.models.brushnet.unet import BrushNetUNet2DConditionModel

ImageInput = PIL.Image.Image | np.ndarray | Sequence[PIL.Image.Image | np.ndarray]

#: Files a base (SD1.5 diffusers layout) folder must hold, for clear missing-weight errors.
BASE_FILES = (
    "unet/config.json",
    ("unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin",
     "unet/diffusion_pytorch_model.fp16.safetensors"),
    "vae/config.json",
    "text_encoder/config.json",
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
    "scheduler/scheduler_config.json",
)
#: Files a BrushNet checkpoint folder must hold.
BRUSHNET_FILES = ("config.json", ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                                 "diffusion_pytorch_model.fp16.safetensors"))


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _to_pil_rgb(x, what: str) -> PIL.Image.Image:
    if isinstance(x, PIL.Image.Image):
        return x.convert("RGB")
    if isinstance(x, np.ndarray):
        a = x
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        elif a.dtype != np.uint8:
            if a.max(initial=0) <= 1.0:
                a = a * 255.0
            a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=-1)
        return PIL.Image.fromarray(a).convert("RGB")
    raise TypeError(f"{what} must be a PIL image or a numpy array (or a list of them), got {type(x)}")


def _hole(mask_rgb: PIL.Image.Image) -> np.ndarray:
    """HxW bool: True where the mask asks for change. Same rule as the internal mask
    (``sum of the [-1, 1]-normalised RGB >= 0`` <=> mean value >= 127.5)."""
    return np.asarray(mask_rgb, dtype=np.float32).mean(-1) >= 127.5


def scheduler_from_config(name: str, config: dict[str, Any]):
    """A diffusers scheduler ``name`` configured from ``config`` (e.g. UniPC from SD1.5's PNDM
    config, as the reference does).

    Configs written before diffusers 0.28 have no ``final_sigmas_type``; those versions ended
    the schedule at ``sigma_min`` (the reference ran on 0.27), newer ones default to
    ``"zero"``, which changes the last step. We keep the old behaviour for such configs so
    the numbers match the reference; an explicit value in the config wins.
    """
    klass = getattr(diffusers_schedulers, name, None)
    if klass is None:
        raise ValueError(f"unknown diffusers scheduler {name!r}")
    extra = {}
    accepts = inspect.signature(klass.__init__).parameters
    if "final_sigmas_type" in accepts and "final_sigmas_type" not in config:
        extra["final_sigmas_type"] = "sigma_min"
    return klass.from_config(config, **extra)


class BrushNetInpaintPipeline(DiffusionPipeline):
    """Text-guided inpainting with an SD1.5 UNet and a BrushNet branch.

    Components: ``vae``, ``text_encoder``, ``tokenizer``, ``unet``
    (:class:`BrushNetUNet2DConditionModel`), ``brushnet`` (:class:`BrushNetModel`),
    ``scheduler`` (any diffusers scheduler; UniPC by default in :meth:`from_pretrained`).
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"  # brushnet: own hook (called every step)
    _optional_components: list[str] = []
    _callback_tensor_inputs = ["latents", "prompt_embeds", "brushnet_prompt_embeds"]

    def __init__(self, vae, text_encoder, tokenizer, unet, brushnet, scheduler):
        super().__init__()
        if not isinstance(unet, BrushNetUNet2DConditionModel):
            raise TypeError(
                "unet must be a BrushNetUNet2DConditionModel (load it with "
                "BrushNetUNet2DConditionModel.from_pretrained(base/'unet'))"
            )
        self.register_modules(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
            brushnet=brushnet, scheduler=scheduler,
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)

    # ------------------------------------------------------------------ loading
    @classmethod
    def _load_components(
        cls, base_dir: Path, torch_dtype: torch.dtype | None, variant: str | None, given: set[str]
    ) -> dict[str, Any]:
        """Load vae/text_encoder/tokenizer/unet (those not in ``given``) from a diffusers
        SD1.5 folder. Subclasses extend the dict (e.g. PowerPaint's second text encoder)."""
        kw = {"torch_dtype": torch_dtype, "variant": variant}
        loaders = {
            "vae": lambda: AutoencoderKL.from_pretrained(base_dir / "vae", **kw),
            "text_encoder": lambda: CLIPTextModel.from_pretrained(
                base_dir / "text_encoder", dtype=torch_dtype, variant=variant
            ),
            "tokenizer": lambda: CLIPTokenizer.from_pretrained(base_dir / "tokenizer"),
            "unet": lambda: BrushNetUNet2DConditionModel.from_pretrained(base_dir / "unet", **kw),
        }
        return {name: load() for name, load in loaders.items() if name not in given}

    @classmethod
    def from_pretrained(
        cls,
        base_dir: str | os.PathLike,
        brushnet: BrushNetModel | str | os.PathLike,
        scheduler: str | Any | None = "UniPCMultistepScheduler",
        torch_dtype: torch.dtype | None = None,
        variant: str | None = None,
        **components: Any,
    ) -> BrushNetInpaintPipeline:
        """Build from a local SD1.5 diffusers folder and a BrushNet folder (or model).

        ``scheduler``: a diffusers scheduler class name (configured from the base folder's
        ``scheduler/scheduler_config.json``, as the reference does with UniPC), a scheduler
        instance, or ``None`` to keep the base folder's own scheduler. Extra keyword
        arguments replace loaded components.
        """
        base = Path(base_dir)
        if not isinstance(brushnet, BrushNetModel):
            brushnet = BrushNetModel.from_pretrained(brushnet, torch_dtype=torch_dtype)
        loaded = cls._load_components(base, torch_dtype, variant, set(components))
        loaded.update(components)
        if scheduler is None or isinstance(scheduler, str):
            config = json.loads((base / "scheduler" / "scheduler_config.json").read_text())
            scheduler = scheduler_from_config(scheduler or config["_class_name"], config)
        return cls(brushnet=brushnet, scheduler=scheduler, **loaded)

    # ------------------------------------------------------------------ text
    def tokenize(self, texts: list[str], max_length: int | None = None) -> torch.Tensor:
        """Token ids, padded/truncated to the tokenizer's max length (77 for CLIP)."""
        return self.tokenizer(
            texts, padding="max_length", max_length=max_length or self.tokenizer.model_max_length,
            truncation=True, return_tensors="pt",
        ).input_ids

    def _embed_ids(self, ids: torch.Tensor, device, clip_skip: int | None) -> torch.Tensor:
        te = self.text_encoder
        mask = None
        if getattr(te.config, "use_attention_mask", False):
            mask = (ids != self.tokenizer.pad_token_id).long().to(device)
        if clip_skip is None:
            return te(ids.to(device), attention_mask=mask)[0]
        out = te(ids.to(device), attention_mask=mask, output_hidden_states=True)
        return te.text_model.final_layer_norm(out.hidden_states[-(clip_skip + 1)])

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        device: torch.device,
        num_images_per_prompt: int,
        do_classifier_free_guidance: bool,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        clip_skip: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """UNet text embeddings ``(B * n, 77, d)`` and, with CFG, the negative ones."""
        dtype = self.unet.dtype
        if prompt_embeds is None:
            prompts = _as_list(prompt)
            prompt_embeds = self._embed_ids(self.tokenize(prompts), device, clip_skip)
        batch = prompt_embeds.shape[0]
        prompt_embeds = prompt_embeds.to(device=device, dtype=dtype).repeat_interleave(num_images_per_prompt, 0)
        if not do_classifier_free_guidance:
            return prompt_embeds, None
        if negative_prompt_embeds is None:
            neg = [""] * batch if negative_prompt is None else _as_list(negative_prompt)
            if len(neg) == 1 and batch > 1:
                neg = neg * batch
            if len(neg) != batch:
                raise ValueError(f"{len(neg)} negative prompts for {batch} prompts")
            # The reference pads the negative prompt to the positive embeddings' length.
            ids = self.tokenize(neg, max_length=prompt_embeds.shape[1])
            negative_prompt_embeds = self._embed_ids(ids, device, clip_skip)
        negative_prompt_embeds = negative_prompt_embeds.to(device=device, dtype=dtype)
        negative_prompt_embeds = negative_prompt_embeds.repeat_interleave(num_images_per_prompt, 0)
        return prompt_embeds, negative_prompt_embeds

    def encode_brushnet_prompt(
        self,
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
        device: torch.device,
        num_images_per_prompt: int,
        do_classifier_free_guidance: bool,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text embeddings the *branch* attends to (hook for subclasses).

        The SD1.5 BrushNet has no attention and the reference hands it the UNet's embeddings,
        which is what this default does. PowerPaint v2 overrides it to encode its task
        prompts with its own text encoder (``kwargs`` carries ``brushnet_prompt_kwargs``).
        """
        return prompt_embeds, negative_prompt_embeds

    # ------------------------------------------------------------------ image / mask
    def prepare_image_and_mask(
        self,
        image: ImageInput,
        mask_image: ImageInput,
        batch_size: int,
        height: int | None,
        width: int | None,
        blackout_hole: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed images in [-1, 1] ``(B, 3, H, W)`` and the internal keep mask
        ``(B, 1, H, W)`` (1 = keep), float32 on the CPU."""
        images = [_to_pil_rgb(x, "image") for x in _as_list(image)]
        masks = [_to_pil_rgb(x, "mask_image") for x in _as_list(mask_image)]
        if len(images) == 1 and batch_size > 1:
            images = images * batch_size
        if len(masks) == 1 and batch_size > 1:
            masks = masks * batch_size
        if len(images) != batch_size or len(masks) != batch_size:
            raise ValueError(f"{len(images)} images and {len(masks)} masks for {batch_size} prompts")
        for im, mk in zip(images, masks, strict=True):
            if im.size != mk.size:
                raise ValueError(f"image size {im.size} and mask size {mk.size} differ")
        if blackout_hole:
            images = [
                PIL.Image.fromarray(np.where(_hole(mk)[..., None], 0, np.asarray(im)).astype(np.uint8))
                for im, mk in zip(images, masks, strict=True)
            ]
        pixels = self.image_processor.preprocess(images, height=height, width=width).to(torch.float32)
        mask = self.image_processor.preprocess(masks, height=height, width=width).to(torch.float32)
        keep = (mask.sum(1, keepdim=True) < 0).to(torch.float32)
        return pixels, keep

    def prepare_conditioning_latents(
        self,
        pixels: torch.Tensor,
        keep: torch.Tensor,
        copies: int,
        generator,
        device: torch.device,
        vae_posterior_eps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``brushnet_cond`` for the (CFG-)batch: ``[z * scaling_factor, keep mask]``.

        ``copies`` = 2 with CFG. The posterior is sampled independently per copy; the noise
        is drawn from ``generator`` (per sample if it is a list) unless
        ``vae_posterior_eps`` (``(copies * B, C, h, w)``, reference CFG order) is given.
        """
        vae_dtype = self.vae.dtype
        dist = self.vae.encode(pixels.to(device=device, dtype=vae_dtype)).latent_dist
        mean = dist.mean.repeat(copies, 1, 1, 1)
        std = dist.std.repeat(copies, 1, 1, 1)
        if vae_posterior_eps is None:
            if isinstance(generator, list):
                b = pixels.shape[0]
                per = [randn_tensor((copies, *dist.mean.shape[1:]), generator=g, device=device,
                                    dtype=vae_dtype) for g in generator]
                eps = torch.cat([per[i][c : c + 1] for c in range(copies) for i in range(b)])
            else:
                eps = randn_tensor(mean.shape, generator=generator, device=device, dtype=vae_dtype)
        else:
            if tuple(vae_posterior_eps.shape) != tuple(mean.shape):
                raise ValueError(f"vae_posterior_eps has shape {tuple(vae_posterior_eps.shape)}; "
                                 f"expected {tuple(mean.shape)}")
            eps = vae_posterior_eps.to(device=device, dtype=vae_dtype)
        latents = (mean + std * eps) * self.vae.config.scaling_factor
        mask = F.interpolate(keep.to(device=device, dtype=latents.dtype).repeat(copies, 1, 1, 1),
                             size=latents.shape[-2:])
        return torch.cat([latents, mask], dim=1).to(self.brushnet.dtype)

    def prepare_latents(self, shape, dtype, device, generator, latents=None) -> torch.Tensor:
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != tuple(shape):
            raise ValueError(f"latents have shape {tuple(latents.shape)}; expected {tuple(shape)}")
        return latents.to(device=device, dtype=dtype) * self.scheduler.init_noise_sigma

    def _extra_step_kwargs(self, generator, eta: float) -> dict[str, Any]:
        params = set(inspect.signature(self.scheduler.step).parameters)
        extra = {}
        if "eta" in params:
            extra["eta"] = eta
        if "generator" in params:
            extra["generator"] = generator
        return extra

    # ------------------------------------------------------------------ loop
    def denoise(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        prompt_embeds: torch.Tensor,
        brushnet_prompt_embeds: torch.Tensor,
        brushnet_cond: torch.Tensor,
        guidance_scale: float,
        conditioning_scales: list[float],
        extra_step_kwargs: dict[str, Any],
        cross_attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> torch.Tensor:
        """The sampling loop. ``prompt_embeds`` / ``brushnet_prompt_embeds`` are already
        CFG-concatenated (uncond first) when ``guidance_scale > 1``."""
        cfg = guidance_scale > 1.0
        with self.progress_bar(total=len(timesteps)) as progress:
            for i, t in enumerate(timesteps):
                model_input = torch.cat([latents] * 2) if cfg else latents
                model_input = self.scheduler.scale_model_input(model_input, t)
                down, mid, up = self.brushnet(
                    model_input, t, encoder_hidden_states=brushnet_prompt_embeds,
                    brushnet_cond=brushnet_cond, conditioning_scale=conditioning_scales[i],
                    cross_attention_kwargs=cross_attention_kwargs, return_dict=False,
                )
                noise = self.unet(
                    model_input, t, encoder_hidden_states=prompt_embeds,
                    cross_attention_kwargs=cross_attention_kwargs,
                    down_block_add_samples=down, mid_block_add_sample=mid, up_block_add_samples=up,
                    return_dict=False,
                )[0]
                if cfg:
                    uncond, cond = noise.chunk(2)
                    noise = uncond + guidance_scale * (cond - uncond)
                latents = self.scheduler.step(noise, t, latents, **extra_step_kwargs, return_dict=False)[0]
                if callback_on_step_end is not None:
                    local = {"latents": latents, "prompt_embeds": prompt_embeds,
                             "brushnet_prompt_embeds": brushnet_prompt_embeds}
                    out = callback_on_step_end(
                        self, i, t, {k: local[k] for k in callback_on_step_end_tensor_inputs}
                    ) or {}
                    latents = out.pop("latents", latents)
                progress.update()
        return latents

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput | None = None,
        mask_image: ImageInput | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        timesteps: list[int] | None = None,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        brushnet_prompt_embeds: torch.Tensor | None = None,
        negative_brushnet_prompt_embeds: torch.Tensor | None = None,
        brushnet_prompt_kwargs: dict[str, Any] | None = None,
        brushnet_conditioning_scale: float = 1.0,
        brushnet_guidance_start: float = 0.0,
        brushnet_guidance_end: float = 1.0,
        blackout_hole: bool = True,
        vae_posterior_eps: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        clip_skip: int | None = None,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ):
        """Inpaint ``image`` where ``mask_image`` is white (True).

        ``image`` / ``mask_image``: PIL images or arrays (a list for a batch; one image is
        shared by all prompts). Output size = ``height x width`` (default: the image size
        rounded down to a multiple of 8). ``brushnet_conditioning_scale`` scales the branch;
        it is active for the fraction of steps in ``[brushnet_guidance_start,
        brushnet_guidance_end]``. ``vae_posterior_eps`` injects the VAE sampling noise.
        Returns ``StableDiffusionPipelineOutput(images=...)`` (``output_type`` "pil", "np",
        "pt" or "latent").
        """
        if image is None or mask_image is None:
            raise ValueError("image and mask_image are required")
        if prompt is None and prompt_embeds is None:
            raise ValueError("pass prompt or prompt_embeds")
        for name in callback_on_step_end_tensor_inputs:
            if name not in self._callback_tensor_inputs:
                raise ValueError(f"callback tensor {name!r} is not one of {self._callback_tensor_inputs}")
        device = self._execution_device
        cfg = guidance_scale > 1.0
        batch = len(_as_list(prompt)) if prompt_embeds is None else prompt_embeds.shape[0]
        n = batch * num_images_per_prompt
        if isinstance(generator, list) and len(generator) != n:
            raise ValueError(f"{len(generator)} generators for an effective batch of {n}")

        pos, neg = self.encode_prompt(prompt, device, num_images_per_prompt, cfg, negative_prompt,
                                      prompt_embeds, negative_prompt_embeds, clip_skip)
        if brushnet_prompt_embeds is None:
            b_pos, b_neg = self.encode_brushnet_prompt(
                pos, neg, device, num_images_per_prompt, cfg, **(brushnet_prompt_kwargs or {})
            )
        else:
            b_pos, b_neg = brushnet_prompt_embeds, negative_brushnet_prompt_embeds
            if cfg and b_neg is None:
                raise ValueError("negative_brushnet_prompt_embeds is required with guidance")
        unet_embeds = torch.cat([neg, pos]) if cfg else pos
        branch_embeds = torch.cat([b_neg, b_pos]) if cfg else b_pos
        branch_embeds = branch_embeds.to(device=device, dtype=self.brushnet.dtype)

        images, masks = _as_list(image), _as_list(mask_image)
        if num_images_per_prompt > 1:  # one image per prompt -> one per generated sample
            images = images if len(images) == 1 else [x for x in images for _ in range(num_images_per_prompt)]
            masks = masks if len(masks) == 1 else [x for x in masks for _ in range(num_images_per_prompt)]
        pixels, keep = self.prepare_image_and_mask(images, masks, n, height, width, blackout_hole)
        height, width = pixels.shape[-2:]

        timesteps, num_inference_steps = retrieve_timesteps(self.scheduler, num_inference_steps, device, timesteps)
        shape = (n, self.unet.config.in_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        latents = self.prepare_latents(shape, unet_embeds.dtype, device, generator, latents)
        cond = self.prepare_conditioning_latents(pixels, keep, 2 if cfg else 1, generator, device,
                                                 vae_posterior_eps)
        total = len(timesteps)
        scales = [
            brushnet_conditioning_scale
            * (0.0 if (i / total < brushnet_guidance_start or (i + 1) / total > brushnet_guidance_end) else 1.0)
            for i in range(total)
        ]
        latents = self.denoise(
            latents, timesteps, unet_embeds, branch_embeds, cond, guidance_scale, scales,
            self._extra_step_kwargs(generator, eta), cross_attention_kwargs,
            callback_on_step_end, callback_on_step_end_tensor_inputs,
        )

        if output_type == "latent":
            images = latents
        else:
            decoded = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor,
                                      return_dict=False)[0]
            images = self.image_processor.postprocess(decoded, output_type=output_type,
                                                      do_denormalize=[True] * decoded.shape[0])
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images, None)
        return StableDiffusionPipelineOutput(images=images, nsfw_content_detected=None)
