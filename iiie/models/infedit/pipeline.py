"""InfEdit on current diffusers: DDCM sampling on an LCM SD1.5 UNet with attention control.

:class:`InfEditPipeline` is a diffusers ``DiffusionPipeline`` over the five components of an
LCM SD1.5 folder (``unet``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``;
``SimianLuo/LCM_Dreamshaper_v7`` layout, whose safety checker and feature extractor it does
not load). Calling it runs one (batched) edit: source latent from the VAE, three branches
(source, target, mutual) in one 6-row UNet call per step and sample (3 rows without
guidance), DDCM steps for the target and mutual branches against the source, the local
blend, and the image decoded from the last calibrated target x0 (not from the final latent).

Being a ``DiffusionPipeline`` it gets diffusers' loading and saving (``from_pretrained`` /
``save_pretrained``), ``.to()``, the offload hooks (``enable_model_cpu_offload``,
``enable_sequential_cpu_offload``; ``model_cpu_offload_seq``), ``_execution_device`` and the
progress bar, instead of hand-written copies of them.

Randomness is drawn in the reference's order -- VAE posterior noise, initial noise, one
fresh noise per step -- from CPU generators, or injected (``noise=``) to check parity.
Every intermediate can be written to a ``trace`` dict under the golden folder's key names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.image_processor import PipelineImageInput, VaeImageProcessor
from diffusers.utils import BaseOutput

from iiie.models.infedit.aligner import TokenAlignment, align_captions
from iiie.models.infedit.blend import LocalBlend
from iiie.models.infedit.control import UnifiedAttentionControl, controlled_attention
from iiie.models.infedit.ddcm import ddcm_step

MODEL_FILES = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "unet/config.json",
    "vae/config.json",
    "text_encoder/config.json",
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
)


@dataclass
class InfEditSettings:
    """Every knob of one InfEdit run (defaults: the reference app's UI defaults)."""

    num_inference_steps: int = 15
    original_inference_steps: int = 50
    guidance_s: float = 1.0
    guidance_t: float = 2.0
    eta: float = 1.0
    cross_replace_steps: float = 0.7
    self_replace_steps: float = 0.3
    replace_with: str = "source"  # "source" (app) or "mutual" (PIE-Bench script)
    local: str = ""
    mutual: str = ""
    thresh_e: float = 0.6
    thresh_m: float = 0.6
    temperature: float = 0.15
    denoise_model: bool = False
    strength: float = 0.7
    positive_prompt: str = ""
    negative_prompt: str = ""
    control: bool = True  # False: stock attention, no blend (plain DDCM)
    blend_level: int = 2  # cross-attention layers at 1/2**level of the latent feed the blend
    fast_self_attention: bool = False

    def __post_init__(self) -> None:
        if self.num_inference_steps < 1:
            raise ValueError("num_inference_steps must be >= 1")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1] (sigma^2 = eta (1 - a_prev)), got {self.eta}")
        if self.denoise_model and not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {self.strength}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InfEditSettings:
        return cls().updated(**d)

    def updated(self, **knobs: Any) -> InfEditSettings:
        """These settings with the fields named in ``knobs`` changed (and checked again);
        an unknown name is an error, not silently ignored."""
        unknown = set(knobs) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown InfEdit settings: {sorted(unknown)}")
        return replace(self, **knobs)

    def schedule(self) -> tuple[float, int]:
        """(strength actually used, number of leading timesteps skipped)."""
        strength = self.strength if self.denoise_model else 1.0
        start = self.num_inference_steps - math.trunc(self.num_inference_steps * strength)
        return strength, start


@dataclass
class InfEditNoise:
    """Injected randomness: VAE posterior eps, initial noise, per-step noises."""

    vae_eps: torch.Tensor | None = None
    initial: torch.Tensor | None = None
    steps: list[torch.Tensor] = field(default_factory=list)


@dataclass
class InfEditPipelineOutput(BaseOutput):
    """What one call returns, per sample of the batch.

    ``images``: ``output_type`` "pil" (list of images), "np" (B, H, W, 3), "pt" (B, 3, H, W)
    in [0, 1], or "latent" (the latents below, not decoded). ``pred_x0``: the last calibrated
    target x0 (latents), which the image is decoded from. ``alignments``: the token alignment
    each sample used (None with ``control=False``). ``notes``: what each sample's alignment
    warned about (blend words not found, ...), for the editor's params.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    pred_x0: torch.Tensor
    alignments: list[TokenAlignment | None]
    notes: list[list[str]]


class InfEditPipeline(DiffusionPipeline):
    """InfEdit on the components of an LCM SD1.5 folder; see the module docstring.

    The one entry point is :meth:`__call__`: a single image or a batch, one caption pair per
    image. There is no separate ``edit`` / ``edit_batch``: one sampling loop, called the way
    every diffusers pipeline is called, so the editor, the parity tool and the tests all run
    the same code.
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components: list[str] = []

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler):
        super().__init__()
        self.register_modules(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                              scheduler=scheduler)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)

    # -- text ---------------------------------------------------------------------------
    def token_ids(self, text: str) -> torch.Tensor:
        return self.tokenizer(
            text, padding="max_length", max_length=self.tokenizer.model_max_length,
            truncation=True, return_tensors="pt",
        ).input_ids

    @torch.no_grad()
    def encode_text(self, text: str) -> torch.Tensor:
        """Last hidden state of one caption (1, 77, dim), in the UNet's dtype."""
        ids = self.token_ids(text).to(self._execution_device)
        return self.text_encoder(ids)[0].to(self.unet.dtype)

    @torch.no_grad()
    def align(self, source: str, target: str, local: str = "", mutual: str = "") -> TokenAlignment:
        """Token alignment of a caption pair with its local / mutual blend words (raises
        :class:`~iiie.models.infedit.aligner.AlignmentError` for words it cannot place)."""
        def encode(ids):
            return self.text_encoder(ids.to(self._execution_device))[0]

        return align_captions(self.tokenizer, encode, source, target, local, mutual)

    # -- image --------------------------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, image: torch.Tensor, eps: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """Source latent ``x0 = scaling * (mean + std * eps)``; ``image`` in [-1, 1]."""
        dist = self.vae.encode(image.to(self._execution_device, self.vae.dtype)).latent_dist
        sample = dist.mean + dist.std * eps.to(dist.mean.device, dist.mean.dtype)
        if trace is not None:
            trace["vae_posterior_mean"] = dist.mean
            trace["vae_posterior_std"] = dist.std
            trace["vae_posterior_sample"] = sample
        return self.vae.config.scaling_factor * sample

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latents to images in [0, 1] (B, 3, H, W)."""
        image = self.vae.decode(latent / self.vae.config.scaling_factor, return_dict=False)[0]
        return self.image_processor.denormalize(image)

    # -- inputs -------------------------------------------------------------------------
    def check_inputs(self, image: PipelineImageInput, source_prompt, target_prompt, output_type: str,
                     ) -> tuple[list[str], list[str], tuple[int, int]]:
        """(source captions, target captions, (height, width)) of a valid call.

        Images must already have the model's size (multiples of the VAE factor), all the
        same: the pipeline does not resize (the editor chose the size; a silent resize here
        would change what it asked for).
        """
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"output_type must be pil, np, pt or latent, got {output_type!r}")
        images = image if isinstance(image, list) else [image]
        if not images:
            raise ValueError("no image given")
        sizes = {_pixel_size(x) for x in images}
        if len(sizes) != 1:
            raise ValueError(f"images of one call must share one size, got {sorted(sizes)}")
        (height, width), f = sizes.pop(), self.vae_scale_factor
        if height % f or width % f:
            raise ValueError(f"image size {(height, width)} is not a multiple of {f}")
        sources = [source_prompt] if isinstance(source_prompt, str) else list(source_prompt)
        targets = [target_prompt] if isinstance(target_prompt, str) else list(target_prompt)
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} source but {len(targets)} target prompts")
        return sources, targets, (height, width)

    # -- the edit -----------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        image: PipelineImageInput,
        source_prompt: str | Sequence[str],
        target_prompt: str | Sequence[str],
        settings: InfEditSettings | None = None,
        generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
        noise: InfEditNoise | Sequence[InfEditNoise] | None = None,
        alignments: Sequence[TokenAlignment | None] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        trace: dict[str, torch.Tensor] | None = None,
        mask_hook=None,
        **knobs: Any,
    ) -> InfEditPipelineOutput | tuple:
        """Edit B images, one (source, target) caption pair each, in one UNet batch per step.

        ``image``: a PIL image, a list of them, or arrays / tensors in [0, 1] ((B, 3, H, W)
        tensors, (B, H, W, 3) arrays) of the model's size (multiples of the VAE factor).
        ``settings``: an :class:`InfEditSettings` (default: the reference app's), and any of
        its fields as keywords (``num_inference_steps=4``) to change them for this call.
        ``generator``: one CPU generator per sample (a sample's noise then does not depend on
        its batch), or one shared by all samples (they draw from it in turn), or None (torch's
        global generator). ``noise``: injected randomness per sample (parity); what it leaves
        out is drawn from the generator. ``alignments``: per-sample token alignments, computed
        from ``settings.local`` / ``settings.mutual`` when not given. ``trace``: a dict that
        receives every intermediate under the golden folder's names (per-step blend maps only
        for B = 1). ``mask_hook``: called on each blend mask (the parity tool's tie rule).

        One UNet call per step serves every sample: rows ``[s_1, t_1, m_1, ..., s_B, t_B,
        m_B]``, unconditional block first when guidance is on. Each sample has its own
        captions, alignment, generator, attention store and blend, so its result does not
        depend on its batch (up to floating-point rounding of batched kernels).
        """
        s = (settings or InfEditSettings()).updated(**knobs)

        # 1. Check inputs
        source_prompts, target_prompts, (height, width) = self.check_inputs(
            image, source_prompt, target_prompt, output_type)
        n = len(source_prompts)
        generators = _per_sample(generator, n, "generator")
        noises = _per_sample(noise, n, "noise", default=InfEditNoise)
        given_alignments = _per_sample(alignments, n, "alignments")
        device, dtype = self._execution_device, self.unet.dtype
        notes: list[list[str]] = [[] for _ in range(n)]
        f = self.vae_scale_factor
        shape1 = (1, self.unet.config.in_channels, height // f, width // f)

        def draw(kind: str, step: int | None = None) -> torch.Tensor:
            """One tensor per sample from its injected noise or its generator, stacked."""
            out = []
            for b in range(n):
                given = getattr(noises[b], kind)
                if step is not None:
                    given = given[step] if step < len(given) else None
                if given is None:
                    given = torch.randn(shape1, generator=generators[b], dtype=torch.float32)
                out.append(given.reshape(shape1).to(device, dtype))
            return torch.cat(out)

        # 2. Encode source image (each sample's VAE posterior noise is its first draw)
        # the processor's layout as it is (NHWC strides from PIL): the reference recorded the
        # golden runs with it, and convolutions round differently on a contiguous copy
        pixels = self.image_processor.preprocess(image, height=height, width=width)
        if pixels.shape[0] != n:
            raise ValueError(f"{pixels.shape[0]} images but {n} caption pairs")
        x0 = self.encode_image(pixels, draw("vae_eps"), trace)

        # 3. Prepare timesteps
        sched = self.scheduler
        sched.set_timesteps(
            num_inference_steps=s.num_inference_steps, device=device,
            original_inference_steps=s.original_inference_steps,
        )
        _, start_steps = s.schedule()
        full = sched.timesteps
        timesteps = full[start_steps:]
        if len(timesteps) == 0:
            raise ValueError("strength leaves no denoising step; raise strength or steps")

        # 4. Prepare latents: pure noise, or the noised source latent (denoise_model)
        initial = draw("initial")
        x_t = sched.add_noise(x0, initial, timesteps[:1]) if s.denoise_model else initial
        x_s = x_m = x_t

        # 5. Encode prompts: rows [s, t, m] per sample, unconditional block first
        cfg = s.guidance_t > 1.0
        src = torch.cat([self.encode_text(p) for p in source_prompts])
        tgt = torch.cat([self.encode_text(p) for p in target_prompts])
        cond = _rows(src, tgt, src)
        if cfg:
            pos = self.encode_text(s.positive_prompt).expand_as(src)
            neg = self.encode_text(s.negative_prompt).expand_as(src)
            embeds = torch.cat([_rows(pos, neg, pos), cond])
        else:
            embeds = cond

        # 6. Prepare attention control and local blend
        aligns: list[TokenAlignment | None] = [None] * n
        control = None
        blends: list[LocalBlend] = []
        if s.control:
            for b in range(n):
                aligns[b] = given_alignments[b] or self.align(source_prompts[b], target_prompts[b],
                                                              s.local, s.mutual)
                notes[b] += list(aligns[b].warnings)
            control = UnifiedAttentionControl(
                mapper=torch.stack([a.mapper for a in aligns]).to(device),
                alphas=torch.stack([a.alphas for a in aligns]).to(device, dtype),
                num_steps=s.num_inference_steps, start_steps=start_steps,
                cross_replace_steps=s.cross_replace_steps, self_replace_steps=s.self_replace_steps,
                replace_with=s.replace_with, blend_level=s.blend_level, cfg=cfg,
            )
            blends = [
                LocalBlend(
                    alpha_e=a.alpha_e.to(device, dtype), alpha_m=a.alpha_m.to(device, dtype),
                    target_len=a.target_len, thresh_e=s.thresh_e, thresh_m=s.thresh_m,
                    temperature=s.temperature, level=s.blend_level, mask_hook=mask_hook,
                    trace=trace if n == 1 else None,
                )
                for a in aligns
            ]
        if trace is not None:
            trace["clean_latents"] = x0
            trace["initial_noise"] = initial
            trace["timesteps"] = timesteps.cpu()
            trace["alphas_cumprod_at_timesteps"] = sched.alphas_cumprod[timesteps.cpu().long()]
            trace["source_prompt_embeds"] = src
            trace["target_prompt_embeds"] = tgt
            if cfg:
                trace["positive_prompt_embeds"], trace["negative_prompt_embeds"] = pos[:1], neg[:1]
            trace["unet_in.encoder_hidden_states"] = embeds
            if control is not None:
                trace["ctrl.mapper"] = control.mapper.cpu()
                for key in ("alphas", "alpha_e", "alpha_m", "alpha_me"):
                    trace[f"ctrl.{key}"] = torch.stack([getattr(a, key) for a in aligns]).squeeze(0)

        # 7. Denoising loop: DDCM steps of the target and mutual branches, then the blend
        ctx = controlled_attention(self.unet, control, s.fast_self_attention) if control else _null()
        pred_x0 = x0
        with ctx, self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                idx = start_steps + i
                if control is not None:
                    control.begin_step(i)
                block = _rows(x_s, x_t, x_m)
                latent_in = sched.scale_model_input(torch.cat([block, block]) if cfg else block, t)
                out = self.unet(latent_in, t, encoder_hidden_states=embeds).sample
                if cfg:
                    u, c = out.chunk(2)
                    u_s, u_t, u_m = u.unflatten(0, (n, 3)).unbind(1)
                    c_s, c_t, c_m = c.unflatten(0, (n, 3)).unbind(1)
                    e_t = u_t + s.guidance_t * (c_t - u_t)
                    e_s = u_s + s.guidance_s * (c_s - u_s)
                    e_m = u_m + s.guidance_s * (c_m - u_m)
                else:
                    e_s, e_t, e_m = out.unflatten(0, (n, 3)).unbind(1)
                step_noise = draw("steps", i)

                t_idx = int(t)
                prev_t = int(full[idx + 1]) if idx + 1 < len(full) else t_idx
                a_t = sched.alphas_cumprod[t_idx].to(device)
                a_p = (sched.alphas_cumprod[prev_t] if prev_t >= 0 else sched.final_alpha_cumprod).to(device)
                single = len(full) <= 1
                tgt_step = ddcm_step(a_t, a_p, x_s, x_t, e_s, e_t, x0, step_noise, s.eta, single)
                mut_step = ddcm_step(a_t, a_p, x_s, x_m, e_s, e_m, x0, step_noise, s.eta, single)
                if trace is not None:
                    k = f"step{i}"
                    trace[f"{k}.timestep"] = t.reshape(1).cpu()
                    trace[f"{k}.noise"] = step_noise
                    trace[f"{k}.x_s_in"], trace[f"{k}.x_t_in"], trace[f"{k}.x_m_in"] = x_s, x_t, x_m
                    trace[f"{k}.unet_out"] = out
                    trace[f"{k}.e_s"], trace[f"{k}.e_t"], trace[f"{k}.e_m"] = e_s, e_t, e_m
                    trace[f"{k}.pred_x0_t"] = tgt_step.pred_x0
                    trace[f"{k}.pred_x0_m"] = mut_step.pred_x0
                    trace[f"{k}.x_t_next_preblend"] = tgt_step.x_e_next
                    trace[f"{k}.x_s_next"] = mut_step.x_s_next
                    trace[f"{k}.x_m_next"] = mut_step.x_e_next
                x_s, x_m, x_t = mut_step.x_s_next, mut_step.x_e_next, tgt_step.x_e_next
                pred_x0 = tgt_step.pred_x0
                if blends and i > 0:
                    use_xm = i + 1 + start_steps + 1 == s.num_inference_steps
                    a_blend = sched.alphas_cumprod[t_idx]
                    x_t = torch.cat([
                        blends[b](i, x_s[b:b + 1], x_t[b:b + 1], x_m[b:b + 1], control.sample_store(b),
                                  control.store_order, a_blend, use_xm)
                        for b in range(n)
                    ])
                if trace is not None:
                    trace[f"step{i}.x_t_next"] = x_t
                progress_bar.update()

        # 8. Decode the last calibrated target x0 (not the final latent)
        if output_type == "latent":
            images = pred_x0
        else:
            decoded = self.decode(pred_x0)
            if trace is not None:
                trace["output"] = decoded.permute(0, 2, 3, 1)
            images = self.image_processor.postprocess(decoded, output_type=output_type,
                                                      do_denormalize=[False] * n)
        if trace is not None:
            trace["pred_x0_final"] = pred_x0

        # 9. Offload all models (runtime.offload=model: every weight back to host memory)
        self.maybe_free_model_hooks()
        if not return_dict:
            return images, pred_x0, aligns, notes
        return InfEditPipelineOutput(images=images, pred_x0=pred_x0, alignments=aligns, notes=notes)


def _rows(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Interleave per-sample tensors into UNet rows ``[a_1, b_1, c_1, a_2, ...]``."""
    return torch.stack([a, b, c], dim=1).flatten(0, 1)


def _per_sample(value, n: int, name: str, default=None) -> list:
    """One entry per sample: a list of ``n`` as given, one value repeated, or ``default()``."""
    if value is None:
        return [default() if default else None for _ in range(n)]
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{n} samples but {len(value)} entries in {name}")
        return list(value)
    return [value] * n


def _pixel_size(image) -> tuple[int, int]:
    """(height, width) of a PIL image, an (H, W, C) / (B, H, W, C) array or a (C, H, W) /
    (B, C, H, W) tensor."""
    if isinstance(image, PIL.Image.Image):
        return image.height, image.width
    if isinstance(image, np.ndarray):
        return tuple(image.shape[-3:-1])
    if isinstance(image, torch.Tensor):
        return tuple(image.shape[-2:])
    raise ValueError(f"image must be a PIL image, numpy array or torch tensor, got {type(image).__name__}")


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
