"""``python -m iiie.parity brushnet GOLDEN_DIR``: our BrushNet vs. the reference's tensors.

Works on any golden folder in the documented format (``../shared/golden/README.md``,
section A); nothing here assumes its sizes. Counts of add-samples, steps, image size,
prompts, scales and guidance come from ``run_meta.json``, the safetensors and the model
configs. Sections:

* **keys** — the checkpoint loads with exactly its file's keys, in the order of ``keys.txt``.
* **A1 (modules)** — ``brushnet_unet_forward.safetensors``: BrushNet outputs and the UNet
  with add-samples, per conditioning scale (tolerance ``--module-tol``, abs).
* **A2 (pipeline)** — ``pipeline_inputs.safetensors`` + ``pipeline_<tag>.safetensors`` (+ the
  ``pipeline_output_<tag>.npy`` images) for every tag in the folder or in ``run_meta.json``:
  token ids, text embeddings, timesteps, preprocessed image, VAE posterior, step-0 branch
  inputs and outputs, per-step UNet outputs and latents (``--step-rtol``, relative to the
  reference's max abs, because random tiny models drive latents to |x| ~ 50), final images
  (``--image-tol``, abs). The recorded VAE noise and initial latents are injected.

A section whose files are absent is a failure unless skipped with ``--skip-keys``,
``--skip-modules`` or ``--skip-pipeline`` (each skip is printed). Exit code 0 when every
tensor is within tolerance and no section is missing, 1 otherwise, 2 for a folder that is
not a BrushNet golden folder (a PowerPaint folder, with its cross-attention branch, is
checked by ``python -m iiie.parity powerpaint``, which runs this module check on B1).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from iiie.parity.common import (
    Check,
    GoldenFolderError,
    Report,
    add_skip_flags,
    fail_folder,
    require_kind,
    skip_set,
    tolerance_parser,
)

MODULE_FILE = "brushnet_unet_forward.safetensors"
# A1 (TencentARC) and B1 (PowerPaint's BrushNet-CA) module goldens share one layout.
MODULE_FILES = (MODULE_FILE, "brushnet_ca_unet_forward.safetensors")
# Files the A2 pipeline section needs besides the per-tag recordings.
PIPELINE_FILES = ("run_meta.json", "pipeline_inputs.safetensors", "image_masked.png", "mask.png")
SECTIONS = {
    "keys": "the checkpoint's key order against keys.txt",
    "modules": f"the module goldens ({MODULE_FILE}, A1)",
    "pipeline": "the pipeline runs (pipeline_*.safetensors, A2)",
}


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
def check_keys(report: Report, model, brushnet_dir: Path, golden: Path, skip_list: bool = False) -> None:
    """State-dict keys equal the checkpoint's and, in order, ``keys.txt``'s (a missing list is
    a missing section unless ``skip_list``)."""
    from safetensors import safe_open

    with safe_open(str(brushnet_dir / "diffusion_pytorch_model.safetensors"), "pt") as f:
        ckpt = set(f.keys())
    ours = list(model.state_dict())
    listed = golden / "keys.txt"
    ref = None
    if skip_list:
        report.skipped("keys", "--skip-keys given: key order not compared with keys.txt")
    elif not listed.exists():
        report.missing("keys", "no keys.txt (skip with --skip-keys)")
    else:
        ref = listed.read_text().split()
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


def pipeline_tags(golden: Path, meta: dict) -> tuple[list[str], set[str]]:
    """The A2 runs: tags of the ``pipeline_<tag>.safetensors`` / ``pipeline_output_<tag>.npy``
    files and those ``run_meta.json`` records statistics for; and the latter (whose ``.npy``
    image the format includes)."""
    listed = set()
    for key in ("output_stats", "eps_check_max_abs"):
        if isinstance(meta.get(key), dict):
            listed |= set(meta[key])
    found = {p.stem[len("pipeline_"):] for p in golden.glob("pipeline_*.safetensors")} - {"inputs"}
    found |= {p.stem[len("pipeline_output_"):] for p in golden.glob("pipeline_output_*.npy")}
    return sorted(found | listed, key=_natural), listed


def pipeline_problems(golden: Path, meta: dict) -> tuple[list[str], dict[str, str]]:
    """What keeps A2 from running: missing shared files (the whole section) and, per tag, a
    missing recording or image. Returns (runnable tags, {section: why})."""
    problems: dict[str, str] = {}
    absent = [name for name in PIPELINE_FILES if not (golden / name).exists()]
    tags, listed = pipeline_tags(golden, meta)
    if absent or not tags:
        why = f"no {', '.join(absent)}" if absent else "no pipeline_<tag>.safetensors"
        return [], {"A2 pipeline": f"{why} (skip with --skip-pipeline)"}
    runnable = []
    for tag in tags:
        wanted = [f"pipeline_{tag}.safetensors"] + ([f"pipeline_output_{tag}.npy"] if tag in listed else [])
        absent = [name for name in wanted if not (golden / name).exists()]
        if absent:
            problems[f"A2 pipeline {tag}"] = f"no {', '.join(absent)} (skip with --skip-pipeline)"
        else:
            runnable.append(tag)
    return runnable, problems


@torch.no_grad()
def check_pipeline(report: Report, golden: Path, pipe, meta: dict, forward: dict | None,
                   module_tol: float, step_rtol: float, image_tol: float, tags: list[str] | None = None) -> None:
    """A2: every recorded pipeline tensor, for each tag (default: every
    ``pipeline_<tag>.safetensors``)."""
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

    if tags is None:
        tags = pipeline_tags(golden, meta)[0]
    for tag in tags:
        rec = load_file(str(golden / f"pipeline_{tag}.safetensors"))
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
        image_tol: float = 1e-3, skip: frozenset[str] | set[str] = frozenset()) -> Report:
    """Run every section of a BrushNet golden folder (``skip``: names from :data:`SECTIONS`
    not to run) and return the report; a section whose files are absent is reported missing.

    Raises :class:`GoldenFolderError` for a folder of another kind (e.g. PowerPaint's)."""
    from iiie.models.brushnet import BrushNetModel, BrushNetUNet2DConditionModel
    from iiie.models.brushnet.pipeline import BrushNetInpaintPipeline

    golden = Path(golden)
    unknown = set(skip) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; known: {sorted(SECTIONS)}")
    require_kind(golden, "brushnet")
    report = Report(f"BrushNet parity vs {golden}")
    brushnet_dir, base_dir = _folders(golden)
    brushnet = BrushNetModel.from_pretrained(brushnet_dir).to(device).eval()
    check_keys(report, brushnet, brushnet_dir, golden, skip_list="keys" in skip)
    unet = BrushNetUNet2DConditionModel.from_pretrained(base_dir / "unet").to(device).eval()
    module_path = golden / MODULE_FILE
    forward = load_file(str(module_path)) if module_path.exists() else None
    if "modules" in skip:
        report.skipped("A1 modules", "--skip-modules given")
    elif forward is None:
        report.missing("A1 modules", f"no {MODULE_FILE} (skip with --skip-modules)")
    else:
        check_modules(report, module_path, brushnet, unet, module_tol)
    if "pipeline" in skip:
        report.skipped("A2 pipeline", "--skip-pipeline given")
        return report
    meta_path = golden / "run_meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    tags, problems = pipeline_problems(golden, meta)
    for section, why in problems.items():
        report.missing(section, why)
    if tags:
        pipe = BrushNetInpaintPipeline.from_pretrained(base_dir, brushnet=brushnet, unet=unet,
                                                       scheduler=None)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        check_pipeline(report, golden, pipe, meta, forward, module_tol, step_rtol, image_tol, tags)
    return report


def run_modules(golden: Path, device: str = "cpu", module_tol: float = 1e-4) -> Report:
    """Only the module goldens (A1, or B1 of a PowerPaint folder: same layout) of ``golden``,
    for checking the model classes on either branch kind. Not a full parity run: the command
    line tools run every section."""
    from iiie.models.brushnet import BrushNetModel, BrushNetUNet2DConditionModel

    golden = Path(golden)
    path = next((golden / n for n in MODULE_FILES if (golden / n).exists()), None)
    if path is None:
        raise GoldenFolderError(f"{golden} has none of {', '.join(MODULE_FILES)}")
    brushnet_dir, base_dir = _folders(golden)
    report = Report(f"BrushNet module parity vs {path}")
    brushnet = BrushNetModel.from_pretrained(brushnet_dir).to(device).eval()
    unet = BrushNetUNet2DConditionModel.from_pretrained(base_dir / "unet").to(device).eval()
    check_modules(report, path, brushnet, unet, module_tol)
    return report


def _folders(golden: Path) -> tuple[Path, Path]:
    try:
        return find_brushnet_dir(golden), find_base_dir(golden)
    except FileNotFoundError as exc:
        raise GoldenFolderError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    parser = tolerance_parser("brushnet", __doc__)
    add_skip_flags(parser, SECTIONS)
    args = parser.parse_args(argv)
    if not args.golden_dir.is_dir():
        print(f"golden folder not found: {args.golden_dir}")
        return 2
    torch.set_grad_enabled(False)
    try:
        report = run(args.golden_dir, args.device, args.module_tol, args.step_rtol, args.image_tol,
                     skip_set(args, SECTIONS))
    except GoldenFolderError as exc:
        return fail_folder(exc)
    report.print()
    return report.exit_code()
