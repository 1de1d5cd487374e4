"""``python -m iiie.parity powerpaint GOLDEN_DIR``: PowerPaint v2 against the reference.

Checks, in order, so that a divergence can be located:

1. strict load: the BrushNet-CA and text-encoder files of the ``PowerPaint_Brushnet/``
   folder load with an exact key match (and match ``keys_*.txt`` when present);
2. B1 modules: BrushNet-CA and the UNet with add-samples on the recorded inputs (the
   BrushNet tool's module check);
3. B2 text: our task tokenization against the recorded ``input_ids`` and the task-token
   text encoder against the recorded hidden states;
4. B3 pipeline: every task in ``run_meta.json`` replayed through
   :class:`~iiie.models.powerpaint.pipeline.PowerPaintPipeline` with the recorded initial
   latents and VAE noise injected; prompts are rebuilt from the user prompt with
   :func:`~iiie.models.powerpaint.prompts.build_task_prompts` and must equal the recorded
   call arguments.

Everything is read from ``run_meta.json`` and the files (folders are found by their
configs, as in the BrushNet tool); nothing is assumed about sizes. Same options and
tolerances as ``python -m iiie.parity brushnet``: modules and text encoders 1e-4 abs,
per-step tensors (which reach |x| ~ 50 on random weights) 1e-4 relative to the reference's
largest value, images 1e-3 abs.

Every section must run: a missing key list, ``brushnet_ca_unet_forward.safetensors``,
``text_encoders.safetensors``, or recording / ``.npy`` image of a task listed in
``run_meta.json`` is a failure, unless skipped with ``--skip-keys``, ``--skip-modules``,
``--skip-text`` or ``--skip-pipeline`` (each skip is printed). Exit code 0 when everything is
within tolerance and nothing is missing, 1 when anything is over or missing, 2 for a missing
folder or one that is not a PowerPaint golden folder (e.g. a BrushNet one, whose branch has
no cross-attention blocks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
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

# Recorded inputs that the replay injects (the reference drew them from torch's RNG).
_INJECTED = ("initial_latents", "vae_posterior_eps")
KEY_LISTS = ("keys_brushnet_ca.txt", "keys_text_encoder_brushnet.txt")
SECTIONS = {
    "keys": f"the loaded keys against {' and '.join(KEY_LISTS)}",
    "modules": "the BrushNet-CA module goldens (brushnet_ca_unet_forward.safetensors, B1)",
    "text": "task tokenization and text encoders (text_encoders.safetensors, B2)",
    "pipeline": "the pipeline tasks of run_meta.json (pipeline_<task>.safetensors, B3)",
}


@dataclass
class Settings:
    golden: Path
    device: str = "cpu"
    module_tol: float = 1e-4
    step_rtol: float = 1e-4
    image_tol: float = 1e-3

    @property
    def base(self) -> Path:
        from iiie.parity.brushnet import find_base_dir

        return find_base_dir(self.golden)

    @property
    def branch(self) -> Path:
        from iiie.parity.brushnet import find_brushnet_dir

        return find_brushnet_dir(self.golden)


def _fail(report: Report, name: str, why: str) -> None:
    report.add(Check(name, float("inf"), float("inf"), 0.0, "abs", (), why))


def _flag(report: Report, name: str, ok: bool, shape: tuple, note: str) -> None:
    err = 0.0 if ok else float("inf")
    report.add(Check(name, err, err, 0.0, "abs", shape, note))


def _keys_file(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    return [line.split("\t")[0].strip() for line in path.read_text().splitlines() if line.strip()]


def check_strict_load(cfg: Settings, report: Report, skip_lists: bool = False):
    """Load both PowerPaint files (each raises on any key mismatch); compare with the lists
    (a missing list is a missing section unless ``skip_lists``)."""
    from iiie.models.powerpaint.loading import load_brushnet_ca
    from iiie.models.powerpaint.text_encoder import load_task_text_encoder, read_text_encoder_state

    branch = cfg.branch
    for name in KEY_LISTS:
        if skip_lists:
            report.skipped(f"keys {name}", "--skip-keys given")
        elif not (cfg.golden / name).exists():
            report.missing(f"keys {name}", f"no {name} (skip with --skip-keys)")
    brushnet = load_brushnet_ca(branch).to(cfg.device)
    listed = None if skip_lists else _keys_file(cfg.golden / "keys_brushnet_ca.txt")
    if listed is not None:
        same = list(brushnet.state_dict()) == listed
        _flag(report, "load.brushnet_ca.keys", same, (len(listed),),
              f"{len(listed)} listed keys, same order" if same else "model keys differ from keys_brushnet_ca.txt")
    text_encoder = load_task_text_encoder(cfg.base / "text_encoder", branch).to(cfg.device)
    listed = None if skip_lists else _keys_file(cfg.golden / "keys_text_encoder_brushnet.txt")
    if listed is not None:
        same = set(read_text_encoder_state(branch)) == set(listed)
        _flag(report, "load.text_encoder_brushnet.keys", same, (len(listed),),
              "file keys = listed keys (loaded strictly)" if same else "file keys differ from the list")
    return brushnet, text_encoder


def check_modules(cfg: Settings, brushnet, report: Report) -> None:
    """B1: branch outputs and UNet noise prediction on the recorded inputs (the BrushNet
    parity tool's module check, which reads the B1 layout too)."""
    from iiie.models.brushnet.unet import BrushNetUNet2DConditionModel
    from iiie.parity.brushnet import check_modules as check_brushnet_modules

    path = cfg.golden / "brushnet_ca_unet_forward.safetensors"
    if not path.exists():
        report.missing("B1 modules", f"no {path.name} (skip with --skip-modules)")
        return
    unet = BrushNetUNet2DConditionModel.from_pretrained(str(cfg.base / "unet")).to(cfg.device).eval()
    sub = Report("B1")
    check_brushnet_modules(sub, path, brushnet, unet, cfg.module_tol)
    for c in sub.checks:
        c.name = f"B1.{c.name}"
        report.add(c)


def check_text(cfg: Settings, text_encoder, meta: dict, report: Report) -> None:
    """B2: task tokenization and the task-token text encoder (and the base encoder for any
    recorded string without task words)."""
    from transformers import CLIPTokenizer

    from iiie.models.powerpaint.task_tokens import TaskTokenizer

    path = cfg.golden / "text_encoders.safetensors"
    if not path.exists():
        report.missing("B2 text", f"no {path.name} (skip with --skip-text)")
        return
    g = load_file(str(path))
    tokenizer = TaskTokenizer(CLIPTokenizer.from_pretrained(str(cfg.base / "tokenizer")))
    n = len({k.split(".")[0] for k in g if k.startswith("example")})
    texts = list(meta.get("token_examples", {}))
    if n == 0:
        report.missing("B2 text", f"{path.name} holds no exampleN tensors")
    elif len(texts) != n:
        report.missing("B2 token ids", f"run_meta.json lists {len(texts)} token_examples, {path.name} has "
                                       f"{n}: the strings of the recorded ids are unknown")
    for i in range(n):
        ref_ids = g[f"example{i}.input_ids"]
        if len(texts) == n:
            ids = tokenizer(texts[i], max_length=ref_ids.shape[-1])
            _flag(report, f"B2.example{i}.input_ids", ids.shape == ref_ids.shape and torch.equal(ids, ref_ids),
                  tuple(ref_ids.shape), f"text {texts[i]!r}")
        hidden = text_encoder(ref_ids.to(cfg.device))[0]
        report.compare(f"B2.example{i}.last_hidden_state", hidden,
                       g[f"example{i}.text_encoder_brushnet_last_hidden_state"], cfg.module_tol)
        for key in sorted(g):
            if key.startswith(f"example{i}.text_encoder_") and key.endswith("last_hidden_state") \
                    and "brushnet" not in key:
                _check_base_encoder(cfg, key, ref_ids, g[key], tokenizer, report)


def _check_base_encoder(cfg: Settings, key: str, ids: torch.Tensor, ref: torch.Tensor, tokenizer,
                        report: Report) -> None:
    """A string without task words also goes through the base encoder (plain ids only)."""
    from transformers import CLIPTextModel

    if int(ids.max()) >= tokenizer.first_task_id:
        _fail(report, f"B2.{key}", "recorded base-encoder output for ids that contain task ids")
        return
    encoder = CLIPTextModel.from_pretrained(str(cfg.base / "text_encoder")).to(cfg.device).eval()
    report.compare(f"B2.{key}", encoder(ids.to(cfg.device))[0], ref, cfg.module_tol)


def check_pipelines(cfg: Settings, meta: dict, report: Report) -> None:
    """B3: every recorded task, replayed with the recorded noise (see module docstring)."""
    from iiie.models.powerpaint.pipeline import PowerPaintPipeline

    tasks = meta.get("tasks") or {}
    if not tasks:
        report.missing("B3 pipeline", "run_meta.json lists no tasks (skip with --skip-pipeline)")
        return
    stems = {task: task.replace("-", "_") for task in tasks}
    for path in sorted(cfg.golden.glob("pipeline_*.safetensors")):
        if path.stem[len("pipeline_"):] not in stems.values():
            report.missing(f"B3 {path.stem}", f"{path.name} is not a task of run_meta.json: it cannot be replayed")
    runnable = {}
    for task, stem in stems.items():
        path, image = cfg.golden / f"pipeline_{stem}.safetensors", cfg.golden / f"pipeline_output_{stem}.npy"
        absent = [p.name for p in (path, image) if not p.exists()]
        if absent:
            report.missing(f"B3 {task}", f"no {', '.join(absent)} (skip with --skip-pipeline)")
        if path.exists():
            runnable[task] = (path, image)
    if not runnable:
        return
    pipe = PowerPaintPipeline.from_pretrained(cfg.base, cfg.branch).to(cfg.device)
    pipe.set_progress_bar_config(disable=True)
    for task, (path, image) in runnable.items():
        replay_task(cfg, pipe, task, tasks[task], load_file(str(path)), report, image)


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
        pre = f"step{self.step}.unet_in."
        self.data[pre + "sample"] = args[0] if args else kwargs["sample"]
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        self.data[pre + "timestep"] = torch.as_tensor(t).reshape(1)
        ehs = args[2] if len(args) > 2 else kwargs["encoder_hidden_states"]
        self.data[pre + "encoder_hidden_states"] = ehs
        self.data[f"step{self.step}.unet_noise_pred_cfg_batch"] = out[0] if isinstance(out, tuple) else out.sample

    def on_step_end(self, pipe, i, t, tensors) -> dict:
        self.data[f"step{i}.timestep"] = torch.as_tensor(t).reshape(1)
        self.data[f"step{i}.latents_after"] = tensors["latents"]
        self.step = i + 1
        return {}

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def replay_task(cfg: Settings, pipe, task: str, info: dict, g: dict, report: Report, np_path: Path) -> None:
    """Run one recorded call with its initial latents and VAE noise; compare every tensor."""
    from PIL import Image

    _check_prompts(task, info, report)
    args = dict(info["call_args"])
    image = Image.open(cfg.golden / "image_masked.png").convert("RGB")
    mask = Image.open(cfg.golden / "mask.png").convert("RGB")
    ours: dict[str, torch.Tensor] = {}

    # VAE posterior of the conditioning image, as the pipeline computes it.
    pixels, _ = pipe.prepare_image_and_mask([image], [mask], 1, args.get("height"), args.get("width"), True)
    dist = pipe.vae.encode(pixels.to(cfg.device)).latent_dist
    eps = g.get("vae_posterior_eps")
    copies = eps.shape[0] // pixels.shape[0] if eps is not None else 1
    ours["vae_posterior_mean"] = dist.mean.repeat(copies, 1, 1, 1)
    ours["vae_posterior_std"] = dist.std.repeat(copies, 1, 1, 1)
    if eps is not None:
        ours["vae_posterior_sample"] = ours["vae_posterior_mean"] + ours["vae_posterior_std"] * eps.to(cfg.device)

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
            latents=g["initial_latents"], vae_posterior_eps=eps,
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
            a, b = ours[key].cpu().to(torch.int64).reshape(-1), g[key].to(torch.int64).reshape(-1)
            _flag(report, name, torch.equal(a, b), tuple(g[key].shape), f"ours {a.tolist()}")
        elif key == "output_np":
            report.compare(name, ours[key], g[key], cfg.image_tol)
        elif key.startswith("vae_posterior") or "encoder_hidden_states" in key:
            report.compare(name, ours[key], g[key], cfg.module_tol)
        else:
            report.compare(name, ours[key], g[key], cfg.step_rtol, "rel")
    if np_path.exists():
        report.compare(f"B3.{task}.{np_path.name}", ours["output_np"], np.load(np_path), cfg.image_tol)


def _order(key: str) -> tuple:
    if key.startswith("step"):
        head, _, rest = key.partition(".")
        return (1, int(head[4:]), rest)
    return (0 if key != "output_np" else 2, 0, key)


def run(cfg: Settings, skip_pipeline: bool = False, skip: frozenset[str] | set[str] = frozenset()) -> Report:
    """All sections of one golden folder but those in ``skip`` (names from :data:`SECTIONS`;
    ``skip_pipeline`` adds ``pipeline``), see the module docstring. Raises
    :class:`GoldenFolderError` for a folder that is not a PowerPaint golden folder."""
    skip = set(skip) | ({"pipeline"} if skip_pipeline else set())
    unknown = skip - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; known: {sorted(SECTIONS)}")
    require_kind(cfg.golden, "powerpaint")
    report = Report(f"PowerPaint v2 parity vs {cfg.golden}")
    meta_path = cfg.golden / "run_meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if not meta:
        report.missing("run_meta.json", "missing or empty")
    try:
        brushnet, text_encoder = check_strict_load(cfg, report, skip_lists="keys" in skip)
    except (ValueError, OSError) as exc:  # OSError covers missing files and folders
        _fail(report, "load", str(exc))
        return report
    for name, label, check in (("modules", "B1 modules", lambda: check_modules(cfg, brushnet, report)),
                               ("text", "B2 text", lambda: check_text(cfg, text_encoder, meta, report)),
                               ("pipeline", "B3 pipeline", lambda: check_pipelines(cfg, meta, report))):
        if name in skip:
            report.skipped(label, f"--skip-{name} given")
        else:
            check()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = tolerance_parser("powerpaint", __doc__)
    add_skip_flags(parser, SECTIONS)
    args = parser.parse_args(argv)
    if not args.golden_dir.is_dir():
        print(f"golden folder not found: {args.golden_dir}")
        return 2
    torch.set_grad_enabled(False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    cfg = Settings(args.golden_dir, args.device, args.module_tol, args.step_rtol, args.image_tol)
    try:
        report = run(cfg, skip=skip_set(args, SECTIONS))
    except GoldenFolderError as exc:
        return fail_folder(exc)
    report.print()
    return report.exit_code()
