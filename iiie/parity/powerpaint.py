"""``python -m iiie.parity powerpaint GOLDEN_DIR``: PowerPaint v2 against the reference.

Checks, in order, so that a divergence can be located:

1. strict load: the ``PowerPaint_Brushnet/`` BrushNet-CA and text-encoder files load with
   an exact key match (and match ``keys_*.txt`` when present);
2. B1 modules: BrushNet-CA and the UNet with add-samples on the recorded inputs;
3. B2 text: our task tokenization against the recorded ``input_ids`` and the task-token
   text encoder against the recorded hidden states;
4. B3 pipeline: every task in ``run_meta.json`` replayed through
   :class:`~iiie.models.powerpaint.pipeline.PowerPaintPipeline` with the recorded initial
   latents and VAE noise injected; prompts are rebuilt from the user prompt with
   :func:`~iiie.models.powerpaint.prompts.build_task_prompts` and must equal the recorded
   call arguments.

Everything is read from ``run_meta.json`` and the files, nothing is assumed about sizes.
Tolerances (max abs): modules and text encoders 1e-4, images 1e-3; per-step tensors
(which reach |x| ~ 50 on random weights) 1e-4 relative to the reference's largest value.
Exit code 1 when anything is over tolerance or missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from iiie.parity.common import Check, Report

MODULE_TOL = 1e-4
STEP_TOL = 1e-4  # relative
IMAGE_TOL = 1e-3

# Recorded inputs that the replay injects (the reference drew them from torch's RNG).
_INJECTED = ("initial_latents", "vae_posterior_eps")


def _fail(report: Report, name: str, why: str) -> None:
    report.add(Check(name, float("inf"), float("inf"), 0.0, "abs", (), why))


def _keys_file(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    return [line.split("\t")[0].strip() for line in path.read_text().splitlines() if line.strip()]


def check_strict_load(golden: Path, report: Report):
    """Load both PowerPaint files; record key-set agreement as checks."""
    from iiie.models.powerpaint.loading import load_brushnet_ca
    from iiie.models.powerpaint.text_encoder import load_task_text_encoder, read_text_encoder_state

    branch = golden / "PowerPaint_Brushnet"
    brushnet = load_brushnet_ca(branch)
    listed = _keys_file(golden / "keys_brushnet_ca.txt")
    if listed is not None:
        ours = set(brushnet.state_dict())
        diff = len(ours.symmetric_difference(listed))
        report.add(Check("load.brushnet_ca.keys", float(diff), float(diff), 0.0, "abs", (len(listed),),
                         f"{len(ours)} model keys vs {len(listed)} listed"))
    text_encoder = load_task_text_encoder(golden / "tiny_sd15_base" / "text_encoder", branch)
    listed = _keys_file(golden / "keys_text_encoder_brushnet.txt")
    if listed is not None:
        file_keys = set(read_text_encoder_state(branch))
        diff = len(file_keys.symmetric_difference(listed))
        report.add(Check("load.text_encoder_brushnet.keys", float(diff), float(diff), 0.0, "abs",
                         (len(listed),), "file keys vs listed (loaded strictly)"))
    return brushnet, text_encoder


def check_modules(golden: Path, brushnet, report: Report) -> None:
    """B1: branch outputs and UNet noise prediction on the recorded inputs."""
    from iiie.models.brushnet.unet import BrushNetUNet2DConditionModel

    path = golden / "brushnet_ca_unet_forward.safetensors"
    if not path.exists():
        _fail(report, "B1", f"missing {path.name}")
        return
    g = load_file(str(path))
    unet = BrushNetUNet2DConditionModel.from_pretrained(str(golden / "tiny_sd15_base" / "unet")).eval()
    sample, t = g["sample"], g["timestep"].reshape(())
    with torch.no_grad():
        plain = unet(sample, t, encoder_hidden_states=g["unet_encoder_hidden_states"], return_dict=False)[0]
        report.compare("B1.unet_noise_pred_no_brushnet", plain, g["unet_noise_pred_no_brushnet"], MODULE_TOL)
        tags = sorted({k.split(".")[0] for k in g if k.endswith(".conditioning_scale")})
        for tag in tags:
            scale = float(g[f"{tag}.conditioning_scale"].reshape(-1)[0])
            down, mid, up = brushnet(sample, t, encoder_hidden_states=g["brushnet_encoder_hidden_states"],
                                     brushnet_cond=g["brushnet_cond"], conditioning_scale=scale,
                                     return_dict=False)
            _compare_series(report, f"B1.{tag}.down", down, g, f"{tag}.down_block_res_samples.")
            report.compare(f"B1.{tag}.mid", mid, g[f"{tag}.mid_block_res_sample"], MODULE_TOL)
            _compare_series(report, f"B1.{tag}.up", up, g, f"{tag}.up_block_res_samples.")
            noise = unet(sample, t, encoder_hidden_states=g["unet_encoder_hidden_states"],
                         down_block_add_samples=list(down), mid_block_add_sample=mid,
                         up_block_add_samples=list(up), return_dict=False)[0]
            report.compare(f"B1.{tag}.unet_noise_pred", noise, g[f"{tag}.unet_noise_pred"], MODULE_TOL)


def _compare_series(report: Report, name: str, ours, g: dict, prefix: str, tol: float = MODULE_TOL,
                    kind: str = "abs") -> None:
    refs = sorted(k for k in g if k.startswith(prefix))
    if len(refs) != len(ours):
        _fail(report, name, f"{len(ours)} tensors vs {len(refs)} recorded")
        return
    for k, x in zip(refs, ours, strict=True):
        report.compare(f"{name}.{k[len(prefix):]}", x, g[k], tol, kind)


def check_text(golden: Path, text_encoder, meta: dict, report: Report) -> None:
    """B2: task tokenization and the task-token text encoder."""
    from transformers import CLIPTokenizer

    from iiie.models.powerpaint.task_tokens import TaskTokenizer

    path = golden / "text_encoders.safetensors"
    if not path.exists():
        _fail(report, "B2", f"missing {path.name}")
        return
    g = load_file(str(path))
    tokenizer = TaskTokenizer(CLIPTokenizer.from_pretrained(str(golden / "tiny_sd15_base" / "tokenizer")))
    n = len({k.split(".")[0] for k in g if k.startswith("example")})
    texts = list(meta.get("token_examples", {}))
    with torch.no_grad():
        for i in range(n):
            ref_ids = g[f"example{i}.input_ids"]
            if len(texts) == n:
                ids = tokenizer(texts[i], max_length=ref_ids.shape[-1])
                same = ids.shape == ref_ids.shape and torch.equal(ids, ref_ids)
                diff = 0.0 if same else float("inf")
                report.add(Check(f"B2.example{i}.input_ids", diff, diff, 0.0, "abs", tuple(ref_ids.shape),
                                 f"text {texts[i]!r}"))
            hidden = text_encoder(ref_ids)[0]
            report.compare(f"B2.example{i}.last_hidden_state", hidden,
                           g[f"example{i}.text_encoder_brushnet_last_hidden_state"], MODULE_TOL)
            for key in sorted(g):
                if key.startswith(f"example{i}.text_encoder_") and key.endswith("last_hidden_state") \
                        and "brushnet" not in key:
                    _check_base_encoder(golden, key, ref_ids, g[key], tokenizer, report)


_BASE_ENCODER: dict[Path, object] = {}


def _check_base_encoder(golden: Path, key: str, ids: torch.Tensor, ref: torch.Tensor, tokenizer,
                        report: Report) -> None:
    """A string without task words also goes through the base encoder (plain ids only)."""
    from transformers import CLIPTextModel

    if int(ids.max()) >= tokenizer.first_task_id:
        _fail(report, f"B2.{key}", "recorded base-encoder output for ids that contain task ids")
        return
    if golden not in _BASE_ENCODER:
        _BASE_ENCODER[golden] = CLIPTextModel.from_pretrained(str(golden / "tiny_sd15_base" / "text_encoder")).eval()
    report.compare(f"B2.{key}", _BASE_ENCODER[golden](ids)[0], ref, MODULE_TOL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iiie.parity powerpaint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("golden_dir", type=Path)
    parser.add_argument("--skip-pipeline", action="store_true", help="modules and text only")
    args = parser.parse_args(argv)
    golden: Path = args.golden_dir
    meta_path = golden / "run_meta.json"
    if not meta_path.exists():
        print(f"error: {meta_path} not found")
        return 2
    meta = json.loads(meta_path.read_text())
    torch.use_deterministic_algorithms(True, warn_only=True)
    report = Report(f"PowerPaint v2 parity against {golden}")
    try:
        brushnet, text_encoder = check_strict_load(golden, report)
    except (ValueError, FileNotFoundError, OSError) as exc:
        _fail(report, "load", str(exc))
        report.print()
        return 1
    check_modules(golden, brushnet, report)
    check_text(golden, text_encoder, meta, report)
    if not args.skip_pipeline:
        check_pipelines(golden, meta, report)
    report.print()
    return report.exit_code()


def check_pipelines(golden: Path, meta: dict, report: Report) -> None:
    """B3: every recorded task, replayed with the recorded noise (see module docstring)."""
    from iiie.models.powerpaint.pipeline import PowerPaintPipeline

    pipe = PowerPaintPipeline.from_pretrained(golden / "tiny_sd15_base", golden / "PowerPaint_Brushnet")
    pipe.set_progress_bar_config(disable=True)
    for task, info in meta.get("tasks", {}).items():
        stem = task.replace("-", "_")
        path = golden / f"pipeline_{stem}.safetensors"
        if not path.exists():
            _fail(report, f"B3.{task}", f"missing {path.name}")
            continue
        replay_task(pipe, golden, task, info, load_file(str(path)), report,
                    golden / f"pipeline_output_{stem}.npy")


def _check_prompts(task: str, info: dict, report: Report) -> None:
    """Our prompt construction from the user's text must give the recorded call arguments."""
    from iiie.models.powerpaint.prompts import build_task_prompts

    args = info["call_args"]
    if "user_prompt" not in info:
        return
    built = build_task_prompts(task, info["user_prompt"], info.get("user_negative_prompt", ""),
                               fitting_degree=args.get("tradoff", 1.0)).as_kwargs()
    wrong = [k for k, v in built.items() if k in args and args[k] != v]
    bad = float(len(wrong))
    report.add(Check(f"B3.{task}.prompts", bad, bad, 0.0, "abs", (len(built),),
                     f"differ: {wrong}" if wrong else "rebuilt from user prompt"))


class _Recorder:
    """Forward hooks on the branch and the UNet: inputs/outputs of every step."""

    def __init__(self, pipe) -> None:
        self.step = 0
        self.data: dict[str, torch.Tensor] = {}
        self.handles = [
            pipe.brushnet.register_forward_hook(self._brushnet, with_kwargs=True),
            pipe.unet.register_forward_hook(self._unet, with_kwargs=True),
        ]

    def _brushnet(self, module, args, kwargs, out) -> None:
        sample = args[0] if args else kwargs["sample"]
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        pre = f"step{self.step}.brushnet_in."
        self.data[pre + "sample"] = sample
        self.data[pre + "timestep"] = torch.as_tensor(t).reshape(1)
        self.data[pre + "encoder_hidden_states"] = kwargs["encoder_hidden_states"]
        self.data[pre + "brushnet_cond"] = kwargs["brushnet_cond"]
        down, mid, up = out if isinstance(out, tuple) else (out.down_block_res_samples,
                                                          out.mid_block_res_sample, out.up_block_res_samples)
        pre = f"step{self.step}.brushnet_out."
        for i, d in enumerate(down):
            self.data[f"{pre}down.{i:02d}"] = d
        self.data[pre + "mid"] = mid
        for i, u in enumerate(up):
            self.data[f"{pre}up.{i:02d}"] = u

    def _unet(self, module, args, kwargs, out) -> None:
        self.data[f"step{self.step}.unet_in.encoder_hidden_states"] = kwargs["encoder_hidden_states"]
        self.data[f"step{self.step}.unet_noise_pred_cfg_batch"] = out[0] if isinstance(out, tuple) else out.sample

    def on_step_end(self, pipe, i, t, tensors) -> dict:
        self.data[f"step{i}.timestep"] = torch.as_tensor(t).reshape(1)
        self.data[f"step{i}.latents_after"] = tensors["latents"]
        self.step = i + 1
        return {}

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def replay_task(pipe, golden: Path, task: str, info: dict, g: dict, report: Report, np_path: Path) -> None:
    """Run one recorded call with its initial latents and VAE noise; compare every tensor."""
    from PIL import Image

    _check_prompts(task, info, report)
    args = dict(info["call_args"])
    image = Image.open(golden / "image_masked.png").convert("RGB")
    mask = Image.open(golden / "mask.png").convert("RGB")
    ours: dict[str, torch.Tensor] = {}

    # VAE posterior of the conditioning image, as the pipeline computes it.
    pixels, _ = pipe.prepare_image_and_mask([image], [mask], 1, args.get("height"), args.get("width"), True)
    with torch.no_grad():
        dist = pipe.vae.encode(pixels).latent_dist
    copies = g["vae_posterior_eps"].shape[0] // pixels.shape[0] if "vae_posterior_eps" in g else 1
    ours["vae_posterior_mean"] = dist.mean.repeat(copies, 1, 1, 1)
    ours["vae_posterior_std"] = dist.std.repeat(copies, 1, 1, 1)
    if "vae_posterior_eps" in g:
        ours["vae_posterior_sample"] = ours["vae_posterior_mean"] + ours["vae_posterior_std"] * g["vae_posterior_eps"]

    recorder = _Recorder(pipe)
    try:
        out = pipe(
            prompt=args["promptU"], negative_prompt=args.get("negative_promptU"),
            promptA=args["promptA"], promptB=args.get("promptB"),
            negative_promptA=args.get("negative_promptA"), negative_promptB=args.get("negative_promptB"),
            tradoff=args.get("tradoff", 1.0), tradoff_nag=args.get("tradoff_nag", 1.0),
            image=image, mask_image=mask, height=args.get("height"), width=args.get("width"),
            num_inference_steps=int(args["num_inference_steps"]),
            guidance_scale=float(args["guidance_scale"]),
            brushnet_conditioning_scale=float(args.get("brushnet_conditioning_scale", 1.0)),
            latents=g["initial_latents"], vae_posterior_eps=g.get("vae_posterior_eps"),
            output_type="np", callback_on_step_end=recorder.on_step_end,
        ).images
    finally:
        recorder.close()
    ours.update(recorder.data)
    ours["output_np"] = torch.from_numpy(np.asarray(out, dtype=np.float32))

    for key in sorted(g, key=_order):
        name = f"B3.{task}.{key}"
        if key in _INJECTED:
            continue
        if key not in ours:
            _fail(report, name, "not produced by our pipeline")
        elif key.endswith("timestep"):
            same = torch.equal(ours[key].to(torch.int64).reshape(-1), g[key].to(torch.int64).reshape(-1))
            report.add(Check(name, 0.0 if same else float("inf"), 0.0 if same else float("inf"), 0.0, "abs",
                             tuple(g[key].shape), f"ours {ours[key].tolist()}"))
        elif key == "output_np":
            report.compare(name, ours[key], g[key], IMAGE_TOL)
        elif key.startswith("vae_posterior") or "encoder_hidden_states" in key:
            report.compare(name, ours[key], g[key], MODULE_TOL)
        else:
            report.compare(name, ours[key], g[key], STEP_TOL, "rel")
    if np_path.exists():
        report.compare(f"B3.{task}.{np_path.name}", ours["output_np"], np.load(np_path), IMAGE_TOL)


def _order(key: str) -> tuple:
    if key.startswith("step"):
        head, _, rest = key.partition(".")
        return (1, int(head[4:]), rest)
    return (0 if key != "output_np" else 2, 0, key)
