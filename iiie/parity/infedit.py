"""``python -m iiie.parity infedit GOLDEN_DIR``: InfEdit against the reference's recordings.

Loads ``GOLDEN_DIR/tiny_lcm_sd15`` through :class:`InfEditPipeline`, checks the plain
modules, then replays every run in ``run_meta.json`` with the recorded noise injected and
compares every recorded tensor, step 0 first. Tolerances (max abs): modules 1e-5, per-step
latents and noise predictions 1e-4, images 1e-3.

Predicted clean latents are scaled by the sampler: ``pred_x0 = (x - sqrt(1-a) eps) / sqrt(a)``
with ``a`` the step's cumulative alpha. An error of at most ``STEP_TOL`` in ``x`` and in
``eps`` (what the per-step checks allow) therefore bounds the ``pred_x0`` error by
``STEP_TOL * (1 + sqrt(1-a)) / sqrt(a)``: that derived bound is the tolerance of every
``pred_x0`` tensor (``a`` from ``run_meta.json``), and the report says whether an error
above the plain ``STEP_TOL`` is that amplified rounding (within the bound) or a real
difference (beyond it). At ``a = 0.66`` the factor is 2.1; at ``a = 0.0047`` (t = 999) 29.

Masks must be equal except pixels whose *recorded* pre-threshold map lies within
``MASK_BAND`` of the threshold; such ties take the recorded value so that one rounding-level
tie does not derail every later step. Nearness is judged from the reference map only (no
recorded map: no pixel counts as near), and a mask with more than ``TIE_CAP`` of its pixels
taken from the reference fails: many "ties" would be a real difference in disguise.

Sections: ``modules.safetensors`` (modules), ``inputs.safetensors`` (shared inputs) and every
run of ``run_meta.json`` (``<run>.safetensors`` holding its ``stored_keys`` +
``<run>_output.npy``; a run whose ``storage_level`` is ``check_only`` stores nothing and is
listed as such). A missing file or stored key is a failure unless skipped with
``--skip-modules``, ``--skip-pipeline`` (all runs) or ``--runs`` (the others); every skip is
printed. Exit code 1 when anything is over tolerance or missing, 2 for a folder that is not
an InfEdit golden folder.
"""

from __future__ import annotations

import argparse
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
)

SECTIONS = {
    "modules": "the plain module goldens (modules.safetensors)",
    "pipeline": "the recorded runs of run_meta.json (<run>.safetensors, <run>_output.npy)",
}

MODULE_TOL = 1e-5
STEP_TOL = 1e-4
IMAGE_TOL = 1e-3
MASK_BAND = 1e-4
#: Largest share of a mask's pixels that may be near-threshold ties taken from the reference.
TIE_CAP = 0.005

TIE_TOTALS: dict[str, int] = {}  # run -> mask pixels that differ within the threshold band
SHARED_KEYS = ("vae_posterior_mean", "vae_posterior_std", "vae_posterior_sample", "clean_latents",
               "source_prompt_embeds", "positive_prompt_embeds", "negative_prompt_embeds")


def _settings(meta: dict):
    from iiie.models.infedit import InfEditSettings

    variant = "mutual" if "pie" in meta.get("controller_source_file", "") else "source"
    return InfEditSettings(
        num_inference_steps=int(meta["num_inference_steps"]),
        original_inference_steps=int(meta.get("original_inference_steps", 50)),
        guidance_s=float(meta["guidance_s"]),
        guidance_t=float(meta["guidance_t"]),
        eta=float(meta["eta"]),
        cross_replace_steps=float(meta["cross_replace_steps"]),
        self_replace_steps=float(meta["self_replace_steps"]),
        replace_with=variant,
        local=meta.get("local", ""),
        mutual=meta.get("mutual", ""),
        thresh_e=float(meta["thresh_e"]),
        thresh_m=float(meta["thresh_m"]),
        temperature=float(meta.get("localblend_temperature", 0.15)),
        denoise_model=bool(meta["denoise_model"]),
        strength=float(next((meta[k] for k in ("strength_arg", "strength", "strength_used") if k in meta), 1.0)),
        positive_prompt=meta.get("positive_prompt", ""),
        negative_prompt=meta.get("negative_prompt", ""),
    )


def _step_key_order(key: str) -> tuple:
    """Setup tensors first, then step 0, step 1, ..., then the final latent and image."""
    m = re.match(r"step(\d+)\.(.*)", key)
    if m:
        return (1, int(m.group(1)), m.group(2))
    return (2 if key in ("pred_x0_final", "output") else 0, 0, key)


class _MaskTies:
    """Counts mask pixels that differ from the reference, split by closeness to threshold."""

    def __init__(self, golden: dict[str, torch.Tensor]):
        self.golden = golden
        self.ties: dict[str, int] = {}
        self.hard: dict[str, int] = {}

    def __call__(self, step, name, mask, wmap, thresh):
        key = f"step{step}.blend.{name}"
        ref = self.golden.get(key)
        if ref is None:
            return mask
        ref = ref.to(mask.device).bool()
        diff = mask != ref
        ref_map = self.golden.get(f"{key}_map")
        if ref_map is None:  # nothing recorded to judge nearness by: every difference counts
            near = torch.zeros_like(diff)
        else:
            near = (ref_map.to(diff.device, torch.float64) - float(thresh)).abs() <= MASK_BAND
        self.ties[key] = int((diff & near).sum())
        self.hard[key] = int((diff & ~near).sum())
        return torch.where(diff & near, ref, mask)


def check_modules(pipe, golden_dir: Path, report: Report) -> None:
    path = golden_dir / "modules.safetensors"
    if not path.exists():
        report.missing("modules", f"no {path.name} (skip with --skip-modules)")
        return
    g = load_file(str(path))
    with torch.no_grad():
        if "sample" in g:
            from diffusers.models.attention_processor import AttnProcessor

            previous = dict(pipe.unet.attn_processors)
            pipe.unet.set_attn_processor(AttnProcessor())
            try:
                t = g["timestep"]
                out = pipe.unet(g["sample"], t, encoder_hidden_states=g["encoder_hidden_states"]).sample
                report.compare("modules.unet_out", out, g["unet_out"], MODULE_TOL)
                if "timestep_cond" in g:
                    out = pipe.unet(g["sample"], t, encoder_hidden_states=g["encoder_hidden_states"],
                                    timestep_cond=g["timestep_cond"]).sample
                    report.compare("modules.unet_out_with_timestep_cond", out,
                                   g["unet_out_with_timestep_cond"], MODULE_TOL)
            finally:
                pipe.unet.set_attn_processor(previous)
        if "text_input_ids" in g:
            out = pipe.text_encoder(g["text_input_ids"])[0]
            report.compare("modules.text_encoder", out, g["text_encoder_last_hidden_state"], MODULE_TOL)
        if "vae_decode_in" in g:
            out = pipe.vae.decode(g["vae_decode_in"], return_dict=False)[0]
            report.compare("modules.vae_decode", out, g["vae_decode_out"], MODULE_TOL)


def _tol(key: str) -> float:
    return IMAGE_TOL if key == "output" else STEP_TOL


def pred_x0_tolerance(key: str, meta: dict) -> tuple[float, str] | None:
    """The derived tolerance of a ``pred_x0`` tensor (see the module docstring), with a
    note saying how it was derived; None for other keys."""
    m = re.match(r"step(\d+)\.pred_x0", key)
    alphas = meta.get("alphas_cumprod_at_timesteps")
    if m is None and key != "pred_x0_final":
        return None
    if not alphas:
        return STEP_TOL, "no alphas_cumprod_at_timesteps in run_meta.json: plain tolerance"
    a = float(alphas[int(m.group(1)) if m else -1])
    factor = (1.0 + (1.0 - a) ** 0.5) / a**0.5
    return STEP_TOL * factor, f"tol = {STEP_TOL:g}*(1+sqrt(1-a))/sqrt(a), a={a:.4g}, x{factor:.2f}"


def _compare_pred_x0(report: Report, name: str, ours, ref, tol: float, how: str) -> None:
    check = report.compare(name, ours, ref, tol, note=how)
    if check.max_abs <= STEP_TOL:
        return
    check.note += ("; above the plain tolerance but within the bound propagated from x and eps: "
                   "rounding amplified by 1/sqrt(a)" if check.ok else
                   "; beyond the bound propagated from x and eps: a real difference, not rounding")


def run_one(pipe, name: str, meta: dict, inputs: dict, golden_dir: Path, image: Image.Image,
            report: Report) -> dict[str, torch.Tensor]:
    from iiie.models.infedit import InfEditNoise

    path = golden_dir / f"{name}.safetensors"
    golden = load_file(str(path)) if path.exists() else {}
    out_path = golden_dir / f"{name}_output.npy"
    steps = [inputs[f"step{k}.noise"] for k in range(meta["num_inference_steps"]) if f"step{k}.noise" in inputs]
    noise = InfEditNoise(vae_eps=inputs["vae_posterior_eps"], initial=inputs["initial_noise"], steps=steps)
    absent = [k for k in meta.get("stored_keys", []) if k not in golden]
    if path.exists() and absent:
        report.missing(f"run {name}", f"{len(absent)} of run_meta.json's stored_keys not in {path.name}: "
                                      f"{', '.join(absent[:4])}{' ...' if len(absent) > 4 else ''}")
    ties = _MaskTies(golden)
    trace: dict[str, torch.Tensor] = {}
    pipe(image, meta["source_prompt"], meta["target_prompt"], _settings(meta), noise=noise,
         trace=trace, mask_hook=ties, output_type="pt")
    TIE_TOTALS[name] = sum(ties.ties.values())
    if out_path.exists():
        golden = dict(golden)
        golden["output"] = torch.from_numpy(np.load(out_path))
    # the reference's last-step x_t_next is after the blend; ours is named the same
    for key in sorted(golden, key=_step_key_order):
        ref = golden[key]
        if key == "target_input_ids":
            ids = pipe.token_ids(meta["target_prompt"])
            report.compare(f"{name}.{key}", ids, ref, 0.0, note="token ids, exact")
            continue
        if key.endswith(("_map",)) and key in trace:
            # NaN maps (no words) must be NaN in both; compare finite values
            ours = trace[key].float().cpu()
            nan_ok = bool(torch.equal(torch.isnan(ours), torch.isnan(ref)))
            finite = ~torch.isnan(ref)
            if not nan_ok:
                report.add(Check(f"{name}.{key}", float("inf"), float("inf"), STEP_TOL, "abs",
                                 tuple(ref.shape), "NaN pattern differs"))
                continue
            a = torch.where(finite, ours, torch.zeros_like(ours))
            b = torch.where(finite, ref, torch.zeros_like(ref))
            report.compare(f"{name}.{key}", a, b, STEP_TOL)
            continue
        if re.search(r"blend\.mask_(e|m|me)$", key):
            n_ties, n_hard = ties.ties.get(key, 0), ties.hard.get(key, 0)
            ours = trace.get(key)
            if ours is None:
                report.add(Check(f"{name}.{key}", float("inf"), float("inf"), 0, "abs", tuple(ref.shape),
                                 "not produced"))
                continue
            err = float(n_hard)
            report.add(Check(f"{name}.{key}", err, err, 0.0, "abs", tuple(ref.shape),
                             f"{int(ref.sum())} px set; {n_ties} near-threshold px differ, {n_hard} others"))
            cap = TIE_CAP * ref.numel()
            report.add(Check(f"{name}.{key}.ties", float(n_ties), n_ties / max(ref.numel(), 1), cap, "abs",
                             tuple(ref.shape), f"near-threshold px taken from the reference (cap {TIE_CAP:.1%})"))
            continue
        if key not in trace:
            report.add(Check(f"{name}.{key}", float("inf"), float("inf"), _tol(key), "abs", tuple(ref.shape),
                             "not produced by our pipeline"))
            continue
        ours = trace[key]
        if ref.dtype in (torch.int64, torch.int32, torch.uint8):
            ours = ours.to(ref.dtype).cpu() if isinstance(ours, torch.Tensor) else torch.as_tensor(ours)
        derived = pred_x0_tolerance(key, meta)
        if derived is not None:
            _compare_pred_x0(report, f"{name}.{key}", ours, ref, *derived)
        else:
            report.compare(f"{name}.{key}", ours, ref, _tol(key))
    return trace


def _runs_to_replay(golden_dir: Path, runs: dict, args, report: Report) -> list[str]:
    """The runs to replay; every other run of ``run_meta.json`` is reported as skipped (by a
    flag, or ``check_only``: the format stores nothing for it) or missing (files absent)."""
    if args.skip_pipeline:
        report.skipped("runs", f"--skip-pipeline given: {len(runs)} runs not replayed")
        return []
    for shared in ("inputs.safetensors", "image_source.png"):
        if not (golden_dir / shared).exists():
            report.missing("runs", f"no {shared}: no run can be replayed (skip with --skip-pipeline)")
            return []
    todo = []
    for name, meta in runs.items():
        files = [golden_dir / f"{name}.safetensors", golden_dir / f"{name}_output.npy"]
        present = [f.exists() for f in files]
        if args.runs and name not in args.runs:
            report.skipped(f"run {name}", "not named in --runs")
        elif meta.get("storage_level") == "check_only" and not any(present):
            report.skipped(f"run {name}", "storage_level check_only: the reference stored no tensors for it")
        else:
            if not all(present):
                absent = [f.name for f, ok in zip(files, present, strict=True) if not ok]
                report.missing(f"run {name}", f"no {', '.join(absent)} (skip with --skip-pipeline or --runs)")
            if any(present):
                todo.append(name)
    return todo


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; torch's global settings are restored afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _main(argv)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iiie.parity infedit")
    parser.add_argument("golden_dir")
    parser.add_argument("--runs", nargs="*", help="only these runs (default: all stored)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (the reference was recorded with 1; 0: leave as is)")
    parser.add_argument("--model-dir", help="default: GOLDEN_DIR/tiny_lcm_sd15")
    add_skip_flags(parser, SECTIONS)
    args = parser.parse_args(argv)

    from iiie.models.infedit import InfEditPipeline

    TIE_TOTALS.clear()
    golden_dir = Path(args.golden_dir)
    if not golden_dir.is_dir():
        print(f"golden folder not found: {golden_dir}")
        return 2
    model_dir = Path(args.model_dir) if args.model_dir else golden_dir / "tiny_lcm_sd15"
    try:
        require_kind(golden_dir, "infedit")
        if not (model_dir / "model_index.json").exists():
            raise GoldenFolderError(f"no model folder {model_dir} (model_index.json)")
    except GoldenFolderError as exc:
        return fail_folder(exc)
    meta_all = json.loads((golden_dir / "run_meta.json").read_text())
    unknown = set(args.runs or []) - set(meta_all["runs"])
    if unknown:
        print(f"error: unknown runs {sorted(unknown)}; recorded: {sorted(meta_all['runs'])}")
        return 2
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    if meta_all.get("deterministic_algorithms"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    pipe = InfEditPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    report = Report(f"InfEdit parity vs {golden_dir}")
    first = True
    if args.skip_modules:
        report.skipped("modules", "--skip-modules given")
    else:
        check_modules(pipe, golden_dir, report)

    runs = _runs_to_replay(golden_dir, meta_all["runs"], args, report)
    if runs:
        inputs = load_file(str(golden_dir / "inputs.safetensors"))
        image = Image.open(golden_dir / "image_source.png").convert("RGB")
    for name in runs:
        meta = meta_all["runs"][name]
        trace = run_one(pipe, name, meta, inputs, golden_dir, image, report)
        if first:  # the shared inputs (source latent, prompts) once, from the first run
            absent = []
            for key, text in (("source_input_ids", meta["source_prompt"]), ("empty_input_ids", "")):
                if key not in inputs:
                    absent.append(key)
                    continue
                report.compare(f"inputs.{key}", pipe.token_ids(text), inputs[key], 0.0,
                               note="token ids, exact")
            for key in SHARED_KEYS:
                if key not in inputs:
                    absent.append(key)
                elif key not in trace:
                    report.add(Check(f"inputs.{key}", float("inf"), float("inf"), STEP_TOL, "abs",
                                     tuple(inputs[key].shape), "not produced by our pipeline"))
                else:
                    report.compare(f"inputs.{key}", trace[key], inputs[key], STEP_TOL)
            if absent:
                report.missing("inputs", f"inputs.safetensors lacks {', '.join(absent)}")
            first = False
    report.print()
    if TIE_TOTALS:
        ties = ", ".join(f"{k}: {v}" for k, v in TIE_TOTALS.items())
        print(f"mask pixels differing within {MASK_BAND:g} of the threshold (taken from the reference): {ties}")
    return report.exit_code()
