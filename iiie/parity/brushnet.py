"""``python -m iiie.parity brushnet GOLDEN_DIR``: our BrushNet vs. the reference's tensors.

Works on any golden folder in the documented format (``../shared/golden/README.md``,
sections A and B1); nothing here assumes its sizes. Counts of add-samples, steps, image
size, prompts, scales and guidance come from ``run_meta.json``, the safetensors and the
model configs.

* **A1 / B1 (modules)** — ``brushnet_unet_forward.safetensors`` or
  ``brushnet_ca_unet_forward.safetensors``: strict key check, BrushNet outputs and the UNet
  with add-samples, per conditioning scale (tolerance ``--module-tol``, abs).
* **A2 (pipeline)** — ``pipeline_inputs.safetensors`` + ``pipeline_<tag>.safetensors``: token
  ids, text embeddings, timesteps, preprocessed image, VAE posterior, step-0 branch inputs and
  outputs, per-step UNet outputs and latents (``--step-rtol``, relative to the reference's
  max abs, because random tiny models drive latents to |x| ~ 50), final images
  (``--image-tol``, abs). The recorded VAE noise and initial latents are injected.

Exit code 0 when every tensor is within tolerance. The PowerPaint pipeline (B2/B3) is
checked by ``python -m iiie.parity powerpaint``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from iiie.parity.common import Check, Report, tolerance_parser

MODULE_FILES = ("brushnet_unet_forward.safetensors", "brushnet_ca_unet_forward.safetensors")


# ---------------------------------------------------------------------------- discovery
def find_brushnet_dir(golden: Path) -> Path:
    """The sub-folder holding a ``BrushNetModel`` config (``tiny_brushnet``, ``PowerPaint_Brushnet``...)."""
    for cfg in sorted(golden.glob("*/config.json")):
        try:
            if json.loads(cfg.read_text()).get("_class_name") == "BrushNetModel":
                return cfg.parent
        except (OSError, json.JSONDecodeError):
            continue
    raise FileNotFoundError(f"no BrushNet checkpoint folder (config.json with BrushNetModel) in {golden}")


def find_base_dir(golden: Path) -> Path:
    """The sub-folder holding the SD1.5 base (``model_index.json`` + ``unet/``)."""
    for idx in sorted(golden.glob("*/model_index.json")):
        if (idx.parent / "unet").is_dir():
            return idx.parent
    raise FileNotFoundError(f"no SD1.5 base folder (model_index.json + unet/) in {golden}")


def _tag_scale(tag: str, forward: dict | None) -> float:
    if forward is not None and f"{tag}.conditioning_scale" in forward:
        return float(forward[f"{tag}.conditioning_scale"].reshape(-1)[0])
    m = re.fullmatch(r"scale_(\d+)_(\d+)", tag)
    if not m:
        raise ValueError(f"cannot read a conditioning scale from tag {tag!r}")
    return float(f"{m.group(1)}.{m.group(2)}")


def _indexed(d: dict, prefix: str) -> list[torch.Tensor]:
    keys = sorted((k for k in d if k.startswith(prefix) and k[len(prefix):].isdigit()),
                  key=lambda k: int(k[len(prefix):]))
    return [d[k] for k in keys]


def _missing(report: Report, name: str, note: str) -> None:
    report.add(Check(name, float("inf"), float("inf"), 0.0, "abs", (), note))


# ---------------------------------------------------------------------------- checks
def check_keys(report: Report, model, brushnet_dir: Path, golden: Path) -> None:
    """State-dict keys equal the checkpoint's (and the golden key list, if present), in order."""
    from safetensors import safe_open

    with safe_open(str(brushnet_dir / "diffusion_pytorch_model.safetensors"), "pt") as f:
        ckpt = set(f.keys())
    ours = list(model.state_dict())
    lists = sorted(golden.glob("keys*.txt"))
    ref = None
    for path in lists:
        if "with_shapes" in path.name or "text_encoder" in path.name:
            continue
        ref = path.read_text().split()
    ok = set(ours) == ckpt and (ref is None or ours == ref)
    note = f"{len(ours)} keys" + ("" if ok else f"; extra {sorted(set(ours) - ckpt)[:3]} "
                                              f"missing {sorted(ckpt - set(ours))[:3]}")
    report.add(Check("keys (strict, in order)", 0.0 if ok else float("inf"), 0.0 if ok else float("inf"),
                     0.0, "abs", (len(ours),), note))


@torch.no_grad()
def check_modules(report: Report, forward_path: Path, brushnet, unet, tol: float) -> None:
    """A1/B1: BrushNet outputs per scale and the UNet with/without add-samples."""
    g = load_file(str(forward_path))
    device, dtype = unet.device, unet.dtype

    def t(name):
        return g[name].to(device)

    ehs_branch = t("brushnet_encoder_hidden_states" if "brushnet_encoder_hidden_states" in g
                   else "encoder_hidden_states").to(dtype)
    ehs_unet = t("unet_encoder_hidden_states" if "unet_encoder_hidden_states" in g
                 else "encoder_hidden_states").to(dtype)
    sample, cond, timestep = t("sample").to(dtype), t("brushnet_cond").to(dtype), t("timestep")
    tags = sorted({k.split(".")[0] for k in g if k.startswith("scale_")})
    for tag in tags:
        scale = _tag_scale(tag, g)
        down, mid, up = brushnet(sample, timestep, encoder_hidden_states=ehs_branch, brushnet_cond=cond,
                                 conditioning_scale=scale, return_dict=False)
        ref_down = _indexed(g, f"{tag}.down_block_res_samples.")
        ref_up = _indexed(g, f"{tag}.up_block_res_samples.")
        if len(down) != len(ref_down) or len(up) != len(ref_up):
            _missing(report, f"{tag}.counts", f"ours {len(down)}/{len(up)} down/up add-samples, "
                                              f"reference {len(ref_down)}/{len(ref_up)}")
        for i, (a, b) in enumerate(zip(down, ref_down, strict=False)):
            report.compare(f"{tag}.down_block_res_samples.{i:02d}", a, b, tol)
        report.compare(f"{tag}.mid_block_res_sample", mid, g[f"{tag}.mid_block_res_sample"], tol)
        for i, (a, b) in enumerate(zip(up, ref_up, strict=False)):
            report.compare(f"{tag}.up_block_res_samples.{i:02d}", a, b, tol)
        noise = unet(sample, timestep, ehs_unet, down_block_add_samples=down, mid_block_add_sample=mid,
                     up_block_add_samples=up, return_dict=False)[0]
        report.compare(f"{tag}.unet_noise_pred", noise, g[f"{tag}.unet_noise_pred"], tol)
    if "unet_noise_pred_no_brushnet" in g:
        plain = unet(sample, timestep, ehs_unet, return_dict=False)[0]
        report.compare("unet_noise_pred_no_brushnet", plain, g["unet_noise_pred_no_brushnet"], tol)


class _Recorder:
    """Forward hooks on the branch and the UNet (the same places the golden was recorded)."""

    def __init__(self, pipe):
        self.branch: list[tuple[tuple, dict, tuple]] = []
        self.unet: list[torch.Tensor] = []
        self.handles = [
            pipe.brushnet.register_forward_hook(self._on_branch, with_kwargs=True),
            pipe.unet.register_forward_hook(self._on_unet),
        ]

    def _on_branch(self, module, args, kwargs, output):
        self.branch.append((args, kwargs, output))

    def _on_unet(self, module, args, output):
        self.unet.append(output[0] if isinstance(output, tuple) else output.sample)

    def close(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def check_pipeline(report: Report, golden: Path, pipe, meta: dict, forward: dict | None,
                   module_tol: float, step_rtol: float, image_tol: float) -> None:
    """A2: every recorded pipeline tensor, for every ``pipeline_<tag>.safetensors``."""
    inputs = load_file(str(golden / "pipeline_inputs.safetensors"))
    prompt, negative = meta["prompt"], meta.get("negative_prompt")
    steps, guidance = int(meta["num_inference_steps"]), float(meta["guidance_scale"])
    device = pipe._execution_device
    image = Image.open(golden / "image_masked.png").convert("RGB")
    mask = Image.open(golden / "mask.png").convert("RGB")
    # The documented call passes no height/width (the image size, rounded down to a multiple
    # of the VAE factor, is used); pass run_meta's only if they say otherwise.
    f = pipe.vae_scale_factor
    default = (image.height // f * f, image.width // f * f)
    recorded = (int(meta.get("height", default[0])), int(meta.get("width", default[1])))
    height, width = (None, None) if recorded == default else recorded

    if "prompt_input_ids" in inputs:
        report.compare("prompt_input_ids", pipe.tokenize([prompt]), inputs["prompt_input_ids"], 0.0)
    if "negative_prompt_input_ids" in inputs and negative is not None:
        report.compare("negative_prompt_input_ids", pipe.tokenize([negative]),
                       inputs["negative_prompt_input_ids"], 0.0)
    pos, neg = pipe.encode_prompt(prompt, device, 1, guidance > 1, negative)
    report.compare("prompt_embeds", pos, inputs["prompt_embeds"], module_tol)
    if neg is not None and "negative_prompt_embeds" in inputs:
        report.compare("negative_prompt_embeds", neg, inputs["negative_prompt_embeds"], module_tol)
    pipe.scheduler.set_timesteps(steps, device=device)
    report.compare("scheduler_timesteps", pipe.scheduler.timesteps, inputs["scheduler_timesteps"], 0.0)
    pixels, keep = pipe.prepare_image_and_mask(image, mask, 1, height, width, blackout_hole=False)
    report.compare("image_preprocessed", pixels, inputs["image_preprocessed"], module_tol)

    for path in sorted(golden.glob("pipeline_*.safetensors")):
        tag = path.stem[len("pipeline_"):]
        if tag == "inputs":
            continue
        rec = load_file(str(path))
        scale = _tag_scale(tag, forward)
        eps = rec["vae_posterior_eps"]
        copies = eps.shape[0] // pixels.shape[0]
        dist = pipe.vae.encode(pixels.to(device, pipe.vae.dtype)).latent_dist
        ours = {
            "vae_posterior_mean": dist.mean.repeat(copies, 1, 1, 1),
            "vae_posterior_std": dist.std.repeat(copies, 1, 1, 1),
        }
        ours["vae_posterior_sample"] = ours["vae_posterior_mean"] + ours["vae_posterior_std"] * eps.to(device)

        after: list[torch.Tensor] = []

        def on_step(p, i, t, kw, after=after):
            after.append(kw["latents"].clone())
            return {}

        recorder = _Recorder(pipe)
        try:
            out = pipe(prompt, image, mask, height=height, width=width, num_inference_steps=steps,
                       guidance_scale=guidance, negative_prompt=negative,
                       latents=inputs["initial_latents"], brushnet_conditioning_scale=scale,
                       output_type="np", vae_posterior_eps=eps, blackout_hole=False,
                       callback_on_step_end=on_step).images
        finally:
            recorder.close()

        args, kwargs, (down, mid, up) = recorder.branch[0]
        ours["step0.brushnet_in.sample"] = args[0]
        ours["step0.brushnet_in.timestep"] = args[1]
        ours["step0.brushnet_in.encoder_hidden_states"] = kwargs["encoder_hidden_states"]
        ours["step0.brushnet_in.brushnet_cond"] = kwargs["brushnet_cond"]
        for i, d in enumerate(down):
            ours[f"step0.brushnet_out.down.{i:02d}"] = d
        ours["step0.brushnet_out.mid"] = mid
        for i, u in enumerate(up):
            ours[f"step0.brushnet_out.up.{i:02d}"] = u
        for k, (branch_args, _, _) in enumerate(recorder.branch):
            ours[f"step{k}.timestep"] = branch_args[1]
        for k, noise in enumerate(recorder.unet):
            ours[f"step{k}.unet_noise_pred_cfg_batch"] = noise
        for k, lat in enumerate(after):
            ours[f"step{k}.latents_after"] = lat
        ours["output_np"] = torch.from_numpy(np.asarray(out))

        n_ref_steps = len({k.split(".")[0] for k in rec if re.match(r"step\d+\.", k)})
        if len(after) != n_ref_steps:
            _missing(report, f"{tag}.steps", f"ours ran {len(after)} steps, reference {n_ref_steps}")
        for key in sorted(rec, key=_natural):
            if key == "vae_posterior_eps":
                continue  # injected
            name = f"{tag}.{key}"
            if key not in ours:
                _missing(report, name, "not produced by our pipeline")
                continue
            a, b = ours[key], rec[key]
            if key.endswith(".timestep"):
                report.compare(name, a.reshape(-1), b.reshape(-1), 0.0)
            elif key == "output_np":
                report.compare(name, a, b, image_tol)
            elif key.startswith("step") and not key.startswith("step0."):
                report.compare(name, a, b, step_rtol, kind="rel")
            elif key.endswith("latents_after"):
                report.compare(name, a, b, step_rtol, kind="rel")
            else:
                report.compare(name, a, b, module_tol)
        npy = golden / f"pipeline_output_{tag}.npy"
        if npy.exists():
            report.compare(f"{tag}.{npy.name}", ours["output_np"], np.load(npy), image_tol)


def _natural(key: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


# ---------------------------------------------------------------------------- entry
def run(golden: Path, device: str = "cpu", module_tol: float = 1e-4, step_rtol: float = 1e-4,
        image_tol: float = 1e-3) -> Report:
    """Run every check the folder supports and return the report."""
    from iiie.models.brushnet import BrushNetModel, BrushNetUNet2DConditionModel
    from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline

    golden = Path(golden)
    report = Report(f"BrushNet parity vs {golden}")
    brushnet_dir, base_dir = find_brushnet_dir(golden), find_base_dir(golden)
    brushnet = BrushNetModel.from_pretrained(brushnet_dir).to(device).eval()
    check_keys(report, brushnet, brushnet_dir, golden)
    unet = BrushNetUNet2DConditionModel.from_pretrained(base_dir / "unet").to(device).eval()
    forward = None
    for name in MODULE_FILES:
        if (golden / name).exists():
            check_modules(report, golden / name, brushnet, unet, module_tol)
            forward = load_file(str(golden / name))
    if (golden / "pipeline_inputs.safetensors").exists() and (golden / "run_meta.json").exists():
        meta = json.loads((golden / "run_meta.json").read_text())
        pipe = BrushNetInpaintPipeline.from_pretrained(base_dir, brushnet=brushnet, unet=unet,
                                                       scheduler=None)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        check_pipeline(report, golden, pipe, meta, forward, module_tol, step_rtol, image_tol)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = tolerance_parser("brushnet", __doc__)
    args = parser.parse_args(argv)
    if not args.golden_dir.is_dir():
        print(f"golden folder not found: {args.golden_dir}")
        return 2
    torch.set_grad_enabled(False)
    report = run(args.golden_dir, args.device, args.module_tol, args.step_rtol, args.image_tol)
    report.print()
    return report.exit_code()
