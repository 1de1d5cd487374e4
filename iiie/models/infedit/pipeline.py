"""InfEdit on current diffusers: DDCM sampling on an LCM SD1.5 UNet with attention control.

:class:`InfEditPipeline` holds the five components of an LCM-layout folder (``unet``,
``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``) and runs one edit with
:meth:`InfEditPipeline.edit`: source latent from the VAE, three branches (source, target,
mutual) in one 6-row UNet call per step (3 rows without guidance), DDCM steps for the
target and mutual branches against the source, the local blend, and the image decoded from
the last calibrated target x0 (not from the final latent).

Randomness is drawn in the reference's order -- VAE posterior noise, initial noise, one
fresh noise per step -- from a CPU generator, or injected (``noise=``) to check parity.
Every intermediate can be written to a ``trace`` dict under the golden folder's key names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from iiie.models.infedit.aligner import TokenAlignment, align_captions
from iiie.models.infedit.blend import LocalBlend
from iiie.models.infedit.control import UnifiedAttentionControl, controlled_attention
from iiie.models.infedit.ddcm import ddcm_step

MODEL_FILES = (
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
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown InfEdit settings: {sorted(unknown)}")
        return cls(**d)

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
class InfEditBatchOutput:
    image: torch.Tensor  # (B, 3, H, W) in [0, 1]
    pred_x0: torch.Tensor  # last calibrated target x0 per sample (latents)
    alignments: list[TokenAlignment | None]
    notes: list[list[str]]


@dataclass
class InfEditOutput:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1]
    pred_x0: torch.Tensor  # last calibrated target x0 (latent)
    alignment: TokenAlignment | None
    notes: list[str] = field(default_factory=list)


class InfEditPipeline:
    """The components of an LCM SD1.5 folder plus InfEdit sampling."""

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler):
        self.unet = unet
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler = scheduler

    #: Where inputs go when offload hooks hold the weights in host memory (else the UNet's device).
    execution_device: torch.device | None = None

    @classmethod
    def from_pretrained(cls, path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                        variant: str | None = None):
        from diffusers import AutoencoderKL, LCMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        path = str(path)
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", dtype=dtype, variant=variant)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", dtype=dtype, variant=variant)
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype, variant=variant)
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
        scheduler = LCMScheduler.from_pretrained(path, subfolder="scheduler")
        for m in (unet, vae, text_encoder):
            m.to(device).eval().requires_grad_(False)
        return cls(unet, vae, text_encoder, tokenizer, scheduler)

    @property
    def device(self) -> torch.device:
        return self.execution_device or self.unet.device

    # -- offload (runtime.offload): the same hooks diffusers' pipelines install ----------
    def _models(self) -> list[torch.nn.Module]:
        return [self.text_encoder, self.unet, self.vae]  # the order they are first called in

    def enable_model_cpu_offload(self, device: str | torch.device) -> None:
        """Whole models in host memory, each moved to ``device`` when called (the previous
        one in the chain goes back), as ``DiffusionPipeline.enable_model_cpu_offload``."""
        from accelerate import cpu_offload_with_hook

        device, hook = torch.device(device), None
        self._hooks = []
        for model in self._models():
            model.to("cpu")
            _, hook = cpu_offload_with_hook(model, device, prev_module_hook=hook)
            self._hooks.append(hook)
        self.execution_device = device

    def maybe_free_model_hooks(self) -> None:
        """After a call with model offload: every model back to host memory (the chain
        leaves the last one called, the VAE, on the GPU), as diffusers' pipelines do."""
        for hook in getattr(self, "_hooks", []):
            hook.offload()

    def enable_sequential_cpu_offload(self, device: str | torch.device) -> None:
        """Weights in host memory, moved to ``device`` one layer at a time (least memory)."""
        from accelerate import cpu_offload

        device = torch.device(device)
        for model in self._models():
            model.to("cpu")
            cpu_offload(model, execution_device=device, offload_buffers=len(model._parameters) > 0)
        self.execution_device = device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def latent_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    # -- text ---------------------------------------------------------------------------
    def token_ids(self, text: str) -> torch.Tensor:
        return self.tokenizer(
            text, padding="max_length", max_length=self.tokenizer.model_max_length,
            truncation=True, return_tensors="pt",
        ).input_ids

    @torch.no_grad()
    def encode_text(self, text: str) -> torch.Tensor:
        ids = self.token_ids(text).to(self.device)
        return self.text_encoder(ids)[0].to(self.dtype)

    def align(self, source: str, target: str, local: str, mutual: str) -> TokenAlignment:
        def encode(ids):
            return self.text_encoder(ids.to(self.device))[0]

        return align_captions(self.tokenizer, encode, source, target, local, mutual)

    # -- image --------------------------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, image: torch.Tensor, eps: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """Source latent ``x0 = scaling * (mean + std * eps)``; ``image`` in [-1, 1]."""
        dist = self.vae.encode(image.to(self.device, self.dtype)).latent_dist
        sample = dist.mean + dist.std * eps.to(dist.mean.device, dist.mean.dtype)
        if trace is not None:
            trace["vae_posterior_mean"] = dist.mean
            trace["vae_posterior_std"] = dist.std
            trace["vae_posterior_sample"] = sample
        return self.vae.config.scaling_factor * sample

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        image = self.vae.decode(latent / self.vae.config.scaling_factor, return_dict=False)[0]
        return (image / 2 + 0.5).clamp(0, 1)

    # -- the edit -----------------------------------------------------------------------
    @torch.no_grad()
    def edit(
        self,
        image: torch.Tensor,
        source_prompt: str,
        target_prompt: str,
        settings: InfEditSettings,
        generator: torch.Generator | None = None,
        noise: InfEditNoise | None = None,
        trace: dict[str, torch.Tensor] | None = None,
        mask_hook=None,
    ) -> InfEditOutput:
        """Edit one image (1, 3, H, W) in [-1, 1]; see :meth:`edit_batch`."""
        if image.ndim != 4 or image.shape[0] != 1:
            raise ValueError(f"image must be (1, 3, H, W), got {tuple(image.shape)}")
        out = self.edit_batch(image, [source_prompt], [target_prompt], settings,
                              generators=[generator], noises=[noise] if noise else None,
                              trace=trace, mask_hook=mask_hook)
        return InfEditOutput(out.image, out.pred_x0, out.alignments[0], out.notes[0])

    @torch.no_grad()
    def edit_batch(
        self,
        images: torch.Tensor,
        source_prompts: Sequence[str],
        target_prompts: Sequence[str],
        settings: InfEditSettings,
        generators: Sequence[torch.Generator | None] | None = None,
        noises: Sequence[InfEditNoise] | None = None,
        alignments: Sequence[TokenAlignment | None] | None = None,
        trace: dict[str, torch.Tensor] | None = None,
        mask_hook=None,
    ) -> InfEditBatchOutput:
        """Edit B images (B, 3, H, W) in [-1, 1] (H, W multiples of the VAE factor) at once.

        One UNet call per step serves every sample: rows ``[s_1, t_1, m_1, ..., s_B, t_B,
        m_B]``, unconditional block first when guidance is on. Each sample has its own
        captions, token alignment (``alignments``, computed from ``settings.local`` /
        ``settings.mutual`` when not given), generator and blend, so a sample's result does
        not depend on its batch (up to floating-point rounding of batched kernels).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        n = images.shape[0]
        if not (len(source_prompts) == len(target_prompts) == n):
            raise ValueError(f"{n} images but {len(source_prompts)} source and "
                             f"{len(target_prompts)} target prompts")
        f = self.latent_factor
        if images.shape[2] % f or images.shape[3] % f:
            raise ValueError(f"image size {tuple(images.shape[2:])} is not a multiple of {f}")
        generators = list(generators) if generators is not None else [None] * n
        noises = list(noises) if noises is not None else [InfEditNoise() for _ in range(n)]
        if len(generators) != n or len(noises) != n:
            raise ValueError("need one generator and one noise record per image")
        device, dtype = self.device, self.dtype
        s = settings
        notes: list[list[str]] = [[] for _ in range(n)]
        shape1 = (1, self.unet.config.in_channels, images.shape[2] // f, images.shape[3] // f)

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

        # 1. source latents (each sample's VAE posterior noise is its first draw)
        x0 = self.encode_image(images, draw("vae_eps"), trace)

        # 2. schedule
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
        initial = draw("initial")
        x_t = sched.add_noise(x0, initial, timesteps[:1]) if s.denoise_model else initial
        x_s = x_m = x_t

        # 3. text: rows [s, t, m] per sample, unconditional block first
        cfg = s.guidance_t > 1.0
        src = torch.cat([self.encode_text(p) for p in source_prompts])
        tgt = torch.cat([self.encode_text(p) for p in target_prompts])
        cond = torch.stack([src, tgt, src], dim=1).flatten(0, 1)
        if cfg:
            pos = self.encode_text(s.positive_prompt).expand_as(src)
            neg = self.encode_text(s.negative_prompt).expand_as(src)
            uncond = torch.stack([pos, neg, pos], dim=1).flatten(0, 1)
            embeds = torch.cat([uncond, cond])
        else:
            embeds = cond

        # 4. control and blend
        aligns: list[TokenAlignment | None] = [None] * n
        control = None
        blends: list[LocalBlend] = []
        if s.control:
            given = list(alignments) if alignments is not None else [None] * n
            for b in range(n):
                aligns[b] = given[b] or self.align(source_prompts[b], target_prompts[b], s.local, s.mutual)
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
                trace["ctrl.alphas"] = torch.stack([a.alphas for a in aligns]).squeeze(0)
                trace["ctrl.alpha_e"] = torch.stack([a.alpha_e for a in aligns]).squeeze(0)
                trace["ctrl.alpha_m"] = torch.stack([a.alpha_m for a in aligns]).squeeze(0)
                trace["ctrl.alpha_me"] = torch.stack([a.alpha_me for a in aligns]).squeeze(0)

        def rows(a, b, c):  # [a_1, b_1, c_1, a_2, ...]
            return torch.stack([a, b, c], dim=1).flatten(0, 1)

        ctx = controlled_attention(self.unet, control, s.fast_self_attention) if control else _null()
        pred_x0 = x0
        with ctx:
            for i, t in enumerate(timesteps):
                idx = start_steps + i
                if control is not None:
                    control.begin_step(i)
                block = rows(x_s, x_t, x_m)
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
        image_out = self.decode(pred_x0)
        if trace is not None:
            trace["pred_x0_final"] = pred_x0
            trace["output"] = image_out.permute(0, 2, 3, 1)
        return InfEditBatchOutput(image=image_out, pred_x0=pred_x0, alignments=aligns, notes=notes)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
