"""Prepared GPU benchmark of step 4 on random full-size weights (no downloads).

    python benchmarks/gpu_bench.py --out results/gpu_bench            # one CUDA GPU, fp16, 512²
    python benchmarks/gpu_bench.py --smoke --out /tmp/gpu_bench_smoke # same code on CPU, tiny

Why random weights: the timing and memory of a diffusion editor depend on the shapes of its
models, not on their values, so models built in code with the official SD1.5 / BrushNet /
PowerPaint / LCM configs (UNet 320/640/1280/1280 with 768-wide cross-attention, CLIP-L text
encoder with 12 layers of 768, VAE 128/256/512/512) and saved in the official folder
layouts measure the real checkpoints' cost, and the editors load them through their
normal code. The only shape that differs is the tokenizer's vocabulary (the project's tiny
CLIP BPE instead of 49,408 tokens): a smaller embedding table, the same compute.

Sections of the JSON written to ``--out/gpu_bench.json`` (and a Markdown table, ``gpu_bench.md``):

``a_brushnet_vs_diffusers``
    one BrushNet edit through :class:`iiie.editors.brushnet.BrushNetEditor` against
    diffusers' own ``StableDiffusionInpaintPipeline`` on the same UNet, VAE, text encoder,
    scheduler and steps, in the same process; the ratio, and the work the BrushNet branch
    adds per step (FLOPs of one branch forward over one UNet forward, counted with
    ``torch.utils.flop_counter``, and the measured forward times), so the ratio can be
    read against ``1 + branch fraction``.
``b_throughput``
    ``edit_batch`` of the BrushNet editor at each batch size: seconds, edits/s, edits/hour.
``c_peak_memory``
    per editor (BrushNet, PowerPaint v2, InfEdit), loaded from nothing and one edit:
    ``torch.cuda.max_memory_allocated`` (statistics reset and models dropped between
    editors); on CPU the peak resident set size sampled every few milliseconds instead.
``d_tiny_pipeline``
    ``python -m iiie.run experiment=tiny`` as a separate process: wall seconds, the
    runner's per-stage seconds, and the overhead = wall minus the seconds spent inside
    editor calls (each edit record's share of its model batch).

The weights are written once under ``--weights`` (default: a temp folder) and reused.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

BASE, SEGMENTATION = "realisticVisionV60B1_v51VAE", "segmentation_mask_brushnet_ckpt"
POWERPAINT, LCM = "PowerPaint_Brushnet", "LCM_Dreamshaper_v7"
_BLOCKS = {"down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
           "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3}
_VAE_BLOCKS = {"down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4}


@dataclass(frozen=True)
class Profile:
    """Model shapes and run sizes of one benchmark profile."""

    name: str
    unet: dict
    vae: dict
    text: dict
    size: int  # model resolution (square)
    steps: int  # BrushNet / PowerPaint / diffusers inpaint steps
    lcm_steps: int  # InfEdit steps
    batches: tuple[int, ...]
    repeats: int
    tiny_samples: int  # samples of the experiment=tiny run (5 = one per route)
    flop_count: bool = True
    notes: list[str] = field(default_factory=list)


FULL = Profile(
    name="full",
    unet=dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
              cross_attention_dim=768, attention_head_dim=8, **_BLOCKS),
    vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
             sample_size=512, **_VAE_BLOCKS),
    text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
    size=512, steps=50, lcm_steps=15, batches=(1, 4, 8), repeats=3, tiny_samples=10,
)
#: The tiny-weight shapes of :mod:`iiie.tiny_weights.sd15` (CPU, seconds).
SMOKE = Profile(
    name="smoke",
    unet=dict(sample_size=8, block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=8,
              cross_attention_dim=32, attention_head_dim=4, **_BLOCKS),
    vae=dict(block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4, latent_channels=4,
             sample_size=64, **_VAE_BLOCKS),
    text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
    size=64, steps=2, lcm_steps=2, batches=(1, 2), repeats=1, tiny_samples=5,
)


# ---------------------------------------------------------------------- weights
@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Build modules directly in ``dtype`` (no float32 copy of a 860M-parameter UNet)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def write_sd15_folder(folder: Path, p: Profile, device: str, dtype: torch.dtype, lcm: bool = False) -> None:
    """An SD1.5-layout folder (UniPC base, or LCM-Dreamshaper with ``time_cond_proj_dim``)
    with random weights of profile ``p``'s shapes, built on ``device``."""
    from diffusers import AutoencoderKL, LCMScheduler, UNet2DConditionModel, UniPCMultistepScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    from iiie.tiny_weights.sd15 import model_index, write_tiny_clip_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = write_tiny_clip_tokenizer(folder / "tokenizer")
    torch.manual_seed(0)
    with default_dtype(dtype), torch.device(device):
        UNet2DConditionModel(**p.unet, time_cond_proj_dim=256 if lcm else None).save_pretrained(folder / "unet")
        AutoencoderKL(**p.vae).save_pretrained(folder / "vae")
        CLIPTextModel(CLIPTextConfig(vocab_size=vocab, max_position_embeddings=77, hidden_act="quick_gelu",
                                     bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1,
                                     **p.text)).save_pretrained(folder / "text_encoder")
    common = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                  steps_offset=1)
    if lcm:  # the LCM_Dreamshaper_v7 scheduler config (as iiie.tiny_weights.infedit)
        LCMScheduler(**common, original_inference_steps=50, set_alpha_to_one=True, timestep_spacing="leading",
                     timestep_scaling=10.0, prediction_type="epsilon", clip_sample=False,
                     ).save_pretrained(folder / "scheduler")
        index = model_index("LatentConsistencyModelPipeline", "LCMScheduler")
    else:  # realisticVision's UniPC config (as iiie.tiny_weights.sd15)
        UniPCMultistepScheduler(**common, timestep_spacing="linspace", solver_order=2, predict_x0=True,
                                solver_type="bh2", lower_order_final=True).save_pretrained(folder / "scheduler")
        index = model_index("StableDiffusionPipeline", "UniPCMultistepScheduler")
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


def write_weights(root: Path, p: Profile, device: str, dtype: torch.dtype) -> Path:
    """``root/<profile>/`` with the SD1.5 base, a BrushNet segmentation branch, a PowerPaint
    v2 branch (on the same base) and an LCM folder; written once (atomic), then reused.
    The branches come from the tiny writers, which read every shape from the base."""
    from iiie.tiny_weights.brushnet import write_tiny_brushnet
    from iiie.tiny_weights.common import ensure_folder
    from iiie.tiny_weights.powerpaint import write_tiny_powerpaint_branch

    def writer(folder: Path) -> None:
        write_sd15_folder(folder / BASE, p, device, dtype)
        write_tiny_brushnet(folder / BASE, folder / SEGMENTATION, seed=1)
        write_tiny_powerpaint_branch(folder / BASE, folder / POWERPAINT)
        write_sd15_folder(folder / LCM, p, device, dtype, lcm=True)

    return ensure_folder(root, f"{p.name}-{str(dtype).replace('torch.', '')}", writer)


# ---------------------------------------------------------------------- timing helpers
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def summary(seconds: list[float]) -> dict:
    return {"median_s": round(statistics.median(seconds), 4), "min_s": round(min(seconds), 4),
            "max_s": round(max(seconds), 4), "n": len(seconds)}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def peak_memory(device: str) -> Iterator[dict]:
    """``{"peak_bytes", "method"}`` of the block: CUDA allocator peak (reset at entry) on a
    GPU; on CPU the peak resident set size, sampled every 2 ms by a thread."""
    out: dict = {}
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = int(torch.cuda.memory_allocated())
        yield out
        torch.cuda.synchronize()
        peak = int(torch.cuda.max_memory_allocated())
        out.update(peak_bytes=peak, baseline_bytes=base, method="torch.cuda.max_memory_allocated")
        return
    base = _rss_bytes()
    stop, peak = threading.Event(), [base]

    def sample() -> None:
        while not stop.wait(0.002):
            peak[0] = max(peak[0], _rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out.update(peak_bytes=max(peak[0], _rss_bytes()), baseline_bytes=base, method="peak RSS (sampled, CPU)")


# ---------------------------------------------------------------------- inputs and editors
def sample(size: int, index: int = 0):
    """(request, plan, mask) of one edit: random image, a centred square mask."""
    from iiie.types import Category, EditRequest, MaskResult, Plan

    rng = np.random.default_rng(index)
    image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    mask = np.zeros((size, size), bool)
    mask[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = True
    plan = Plan(category=Category.LOCAL, object="cat", target_prompt="a red cat on a table",
                source_caption="a photo of a cat", target_caption="a photo of a dog")
    return EditRequest(f"bench{index}", image, "make the cat red"), plan, MaskResult(mask)


def edit_batch(editor, size: int, batch: int) -> list:
    items = [sample(size, i) for i in range(batch)]
    return editor.edit_batch([r for r, _, _ in items], [p for _, p, _ in items], [m for _, _, m in items],
                             list(range(batch)))


def make_editor(kind: str, weights: Path, p: Profile, device: str, dtype: str, **options):
    if kind == "brushnet":
        from iiie.editors.brushnet import BrushNetEditor

        return BrushNetEditor(weights / BASE, weights / SEGMENTATION, steps=p.steps, resolution=p.size,
                              device=device, dtype=dtype)
    if kind == "powerpaint":
        from iiie.editors.powerpaint import PowerPaintEditor

        return PowerPaintEditor(weights / BASE, weights / POWERPAINT, steps=p.steps, resolution=p.size,
                                device=device, dtype=dtype)
    if kind == "infedit":
        from iiie.editors.infedit import InfEditEditor

        settings = {"num_inference_steps": p.lcm_steps, **options.pop("settings", {})}
        return InfEditEditor(weights / LCM, settings=settings, resolution=p.size, device=device, dtype=dtype,
                             **{"batch_size": 1, **options})
    raise ValueError(f"unknown editor {kind!r}")


def diffusers_inpaint(ours):
    """diffusers' StableDiffusionInpaintPipeline on the BrushNet pipeline's own UNet, VAE,
    text encoder and a fresh scheduler of the same class and config."""
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline(
        vae=ours.vae, text_encoder=ours.text_encoder, tokenizer=ours.tokenizer, unet=ours.unet,
        scheduler=type(ours.scheduler).from_config(ours.scheduler.config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def capture_inputs(pipe, run: Callable[[], object]) -> dict:
    """The (args, kwargs) of the first UNet and branch forward of ``run()``."""
    seen: dict = {}
    handles = []
    for name in ("unet", "brushnet"):
        def hook(module, args, kwargs, name=name):
            seen.setdefault(name, (args, kwargs))
        handles.append(getattr(pipe, name).register_forward_pre_hook(hook, with_kwargs=True))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return seen


def forward_cost(module, args, kwargs, device: str, repeats: int, flops: bool) -> dict:
    """Seconds (median) and FLOPs of one forward of ``module`` on captured inputs.

    FLOPs are counted with attention on the math backend: torch's counter has no formula
    for some fused attention kernels (the CPU flash kernel counts 0), the math path's
    matmuls are always counted, and the count does not depend on the kernel."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad():
        out = summary(timed(lambda: module(*args, **kwargs), device, max(3, repeats * 3)))
        if flops:
            counter = FlopCounterMode(display=False)
            with sdpa_kernel(SDPBackend.MATH), counter:
                module(*args, **kwargs)
            out["flops"] = int(counter.get_total_flops())
    return out


# ---------------------------------------------------------------------- sections
def meta_flops(p: Profile) -> dict:
    """FLOPs of one classifier-free-guidance step (2 rows) of the UNet and of each branch
    kind, counted on the meta device: no weights, no memory, seconds on any CPU.

    ``brushnet`` is the plain BrushNet branch (no cross-attention), ``brushnet_ca`` the
    PowerPaint v2 one (BrushNet with cross-attention); the fraction is the branch's share
    of the UNet's work, so a step costs ``1 + fraction`` UNet steps.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from iiie.models.brushnet import BrushNetModel, BrushNetUNet2DConditionModel

    def count(module, *args, **kwargs) -> tuple[int, object]:
        counter = FlopCounterMode(display=False)
        with sdpa_kernel(SDPBackend.MATH), counter, torch.no_grad():
            result = module(*args, **kwargs)
        return int(counter.get_total_flops()), result

    lat = p.size // 8
    out: dict = {"rows": 2, "latent": [lat, lat]}
    with torch.device("meta"):
        unet = BrushNetUNet2DConditionModel(**p.unet)
        x, cond = torch.empty(2, 4, lat, lat), torch.empty(2, 5, lat, lat)
        text, t = torch.empty(2, 77, p.unet["cross_attention_dim"]), torch.tensor([500, 500])
        for name, ca in (("brushnet", False), ("brushnet_ca", True)):
            branch = BrushNetModel.from_unet(unet, use_cross_attention=ca)
            fb, (down, mid, up) = count(branch, x, t, text, cond, return_dict=False)
            fu, _ = count(unet, x, t, encoder_hidden_states=text, down_block_add_samples=down,
                          mid_block_add_sample=mid, up_block_add_samples=up, return_dict=False)
            out["unet_flops"] = fu
            out[name] = {"flops": fb, "fraction": round(fb / fu, 3),
                         "parameters": sum(q.numel() for q in branch.parameters())}
        out["unet_parameters"] = sum(q.numel() for q in unet.parameters())
    return out


def brushnet_editor(weights: Path, p: Profile, device: str, dtype: str, speed: dict):
    """The BrushNet editor with its (shared) pipeline built and ``speed`` options applied."""
    from iiie.editors.diffusion_common import speed_options

    editor = make_editor("brushnet", weights, p, device, dtype)
    return editor, speed_options(editor.pipeline(), **speed)


def branch_share(pipe, p: Profile, device: str, request, mres, negative_prompt: str) -> dict:
    """The work the BrushNet branch adds per denoising step: one branch forward against one
    UNet forward on the inputs of a real step (parameters, FLOPs, seconds)."""
    seen = capture_inputs(pipe, lambda: pipe(prompt="a red cat", image=request.image, mask_image=mres.mask,
                                             num_inference_steps=1, negative_prompt=negative_prompt,
                                             output_type="latent"))
    unet = forward_cost(pipe.unet, *seen["unet"], device, p.repeats, p.flop_count)
    branch = forward_cost(pipe.brushnet, *seen["brushnet"], device, p.repeats, p.flop_count)
    out = {"unet_forward": unet, "branch_forward": branch,
           "parameters": {k: sum(x.numel() for x in getattr(pipe, k).parameters()) for k in ("unet", "brushnet")},
           "branch_time_fraction": round(branch["median_s"] / unet["median_s"], 3)}
    if "flops" in unet:
        out["branch_flop_fraction"] = round(branch["flops"] / unet["flops"], 3)
        out["expected_ratio_from_flops"] = round(1 + out["branch_flop_fraction"], 3)
    return out


def section_a(weights: Path, p: Profile, device: str, dtype: str, speed: dict) -> dict:
    from iiie.editors.diffusion_common import speed_options

    editor = make_editor("brushnet", weights, p, device, dtype)
    ours = editor.pipeline()
    request, plan, mres = sample(p.size)
    # Counted before the speed options: FLOPs of a compiled module cannot be counted.
    share = branch_share(ours, p, device, request, mres, editor.negative_prompt)
    applied = speed_options(ours, **speed)
    ref = diffusers_inpaint(ours)
    mask_image = Image.fromarray(mres.mask.astype(np.uint8) * 255)

    def run_ours():
        return editor.edit(request, plan, mres, 0)

    def run_ref():
        return ref(prompt=plan.target_prompt, image=request.image, mask_image=mask_image, height=p.size,
                   width=p.size, num_inference_steps=p.steps, guidance_scale=editor.guidance_scale,
                   negative_prompt=editor.negative_prompt, generator=torch.Generator("cpu").manual_seed(0)).images

    t_ours, t_ref = summary(timed(run_ours, device, p.repeats)), summary(timed(run_ref, device, p.repeats))
    return {
        "steps": p.steps, "size": p.size, "guidance_scale": editor.guidance_scale,
        "scheduler": type(ours.scheduler).__name__, "speed_options": applied,
        "ours_edit": t_ours, "diffusers_inpaint": t_ref,
        "ratio_ours_over_diffusers": round(t_ours["median_s"] / t_ref["median_s"], 3), **share,
        "flops_per_step_meta": meta_flops(p),
        "what": "ours = BrushNetEditor.edit (resize, branch + UNet per step, paste-back); diffusers = "
                "StableDiffusionInpaintPipeline (UNet only, 4-channel latent blending) on the same modules; "
                "branch/UNet forwards timed and counted without the speed options",
    }


def section_b(weights: Path, p: Profile, device: str, dtype: str, speed: dict) -> dict:
    editor, applied = brushnet_editor(weights, p, device, dtype, speed)
    rows = []
    for b in p.batches:
        t = summary(timed(lambda b=b: edit_batch(editor, p.size, b), device, p.repeats))
        rate = b / t["median_s"]
        rows.append({"batch": b, **t, "edits_per_s": round(rate, 3), "edits_per_hour": round(rate * 3600, 1)})
    return {"editor": "brushnet", "steps": p.steps, "size": p.size, "speed_options": applied, "rows": rows}


def release(device: str) -> None:
    from iiie.weights import clear_loaded

    clear_loaded()
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


#: (label, editor, samples in the call, editor options) of the memory rows. InfEdit's
#: config default is batch 4 with explicit self-attention probabilities: the costly case.
MEMORY_ROWS = (
    ("brushnet", "brushnet", 1, {}),
    ("powerpaint", "powerpaint", 1, {}),
    ("infedit (batch 1)", "infedit", 1, {}),
    ("infedit (batch 4)", "infedit", 4, {"batch_size": 4}),
    ("infedit (batch 4, fast_self_attention)", "infedit", 4,
     {"batch_size": 4, "settings": {"fast_self_attention": True}}),
)


def section_c(weights: Path, p: Profile, device: str, dtype: str) -> dict:
    rows = []
    for label, kind, n, options in MEMORY_ROWS:
        release(device)
        with peak_memory(device) as mem:
            editor = make_editor(kind, weights, p, device, dtype, **options)
            t0 = time.perf_counter()
            edit_batch(editor, p.size, n)
            sync(device)
            seconds = time.perf_counter() - t0
        rows.append({"editor": label, "samples": n, "peak_bytes": mem["peak_bytes"],
                     "baseline_bytes": mem["baseline_bytes"], "peak_gib": round(mem["peak_bytes"] / 2**30, 3),
                     "method": mem["method"], "first_call_s_with_load": round(seconds, 3)})
    release(device)
    return {"rows": rows, "note": "models loaded from nothing and one edit per editor; models dropped and "
                                  "statistics reset between editors"}


def section_d(p: Profile, workdir: Path) -> dict:
    """``experiment=tiny`` in its own process, from empty run folders (tiny weights cached
    under ``workdir`` after the first call)."""
    import shutil

    for sub in ("runs", "results"):
        shutil.rmtree(workdir / sub, ignore_errors=True)
    cmd = [sys.executable, "-m", "iiie.run", "experiment=tiny", f"data.n={p.tiny_samples}", "runtime.progress=false",
           f"paths.runs={workdir / 'runs'}", f"paths.results={workdir / 'results'}", f"paths.cache={workdir / 'cache'}",
           f"hydra.run.dir={workdir / 'hydra'}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"experiment=tiny failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    manifests = list((workdir / "results").rglob("manifest.json"))
    if not manifests:
        raise RuntimeError(f"experiment=tiny wrote no manifest.json under {workdir / 'results'}")
    manifest = json.loads(manifests[0].read_text())
    stages = {k: v["seconds"] for k, v in manifest["stages"].items()}
    model_s = editor_seconds(workdir / "runs")
    return {"command": " ".join(cmd[1:]), "samples": manifest["samples"], "wall_s": round(wall, 3),
            "runner_s": manifest["seconds"], "stage_s": stages, "edit_stage_s": stages.get("edit", 0.0),
            "editor_call_s": round(model_s, 3), "overhead_s": round(wall - model_s, 3),
            "note": "editor_call_s: the editors' edit_batch calls (sum of the edit records' seconds, first-call "
                    "model loading included); overhead = process wall minus that: start-up, imports, Hydra, "
                    "weights check, plan, mask, score, records, tables, gallery"}


def editor_seconds(runs: Path) -> float:
    """Seconds spent inside editor calls: each edit record holds its batch's time over its size."""
    total = 0.0
    for record in runs.glob("*/edit/*/*.json"):
        if not record.name.startswith("_") and ".error" not in record.name:
            total += float(json.loads(record.read_text()).get("seconds", 0.0))
    return total


# ---------------------------------------------------------------------- report
def markdown(res: dict) -> str:
    a, b, c, d = (res[k] for k in ("a_brushnet_vs_diffusers", "b_throughput", "c_peak_memory", "d_tiny_pipeline"))
    env = res["environment"]
    lines = [f"# GPU benchmark ({res['profile']}, {env['device_name']}, {res['dtype']})", "",
             f"torch {env['torch']}, diffusers {env['diffusers']}, {env['date']}", "",
             f"## (a) one BrushNet edit vs diffusers StableDiffusionInpaintPipeline ({a['size']}², {a['steps']} steps)",
             "", "| pipeline | median s | min | max |", "|---|---|---|---|"]
    for name, key in (("ours (BrushNetEditor)", "ours_edit"), ("diffusers inpaint", "diffusers_inpaint")):
        lines.append(f"| {name} | {a[key]['median_s']} | {a[key]['min_s']} | {a[key]['max_s']} |")
    lines += ["", f"ratio ours / diffusers: **{a['ratio_ours_over_diffusers']}**; branch forward / UNet forward: "
              f"time {a['branch_time_fraction']}"
              + (f", FLOPs {a['branch_flop_fraction']} (expected ratio ≈ {a['expected_ratio_from_flops']})"
                 if "branch_flop_fraction" in a else ""), "",
              f"FLOPs per step at these shapes (meta device): UNet {a['flops_per_step_meta']['unet_flops'] / 1e9:.3f} GFLOP, "
              f"BrushNet branch +{a['flops_per_step_meta']['brushnet']['fraction']}, "
              f"PowerPaint BrushNet-CA branch +{a['flops_per_step_meta']['brushnet_ca']['fraction']}", "",
              f"## (b) step-4 throughput (BrushNet, {b['steps']} steps)", "",
              "| batch | median s | edits/s | edits/hour |", "|---|---|---|---|"]
    lines += [f"| {r['batch']} | {r['median_s']} | {r['edits_per_s']} | {r['edits_per_hour']} |" for r in b["rows"]]
    lines += ["", "## (c) peak memory per editor", "",
              "| editor | samples | peak GiB | method | first call s (with load) |", "|---|---|---|---|---|"]
    lines += [f"| {r['editor']} | {r['samples']} | {r['peak_gib']} | {r['method']} | {r['first_call_s_with_load']} |"
              for r in c["rows"]]
    lines += ["", f"## (d) experiment=tiny ({d['samples']} samples)", "",
              f"wall {d['wall_s']} s, editor calls {d['editor_call_s']} s, overhead {d['overhead_s']} s; "
              f"runner stages: "
              + ", ".join(f"{k} {v} s" for k, v in d["stage_s"].items()), ""]
    return "\n".join(lines)


def environment(device: str) -> dict:
    import diffusers

    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or "cpu"
    return {"device": device, "device_name": name, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "cpu_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="results folder (gpu_bench.json, gpu_bench.md); required")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, 64 px, 2 steps, batch 1/2, on CPU")
    ap.add_argument("--device", default=None, help="default: cuda (full), cpu (--smoke)")
    ap.add_argument("--dtype", default=None, choices=["float16", "bfloat16", "float32"],
                    help="default: float16 (full), float32 (--smoke)")
    ap.add_argument("--weights", type=Path, default=Path(tempfile.gettempdir()) / "iiie_gpu_bench",
                    help="where the random weights are written once (and the tiny run's folders)")
    ap.add_argument("--channels-last", action="store_true", help="(a), (b): UNet/branch/VAE in channels_last")
    ap.add_argument("--compile", action="store_true", help="(a), (b): torch.compile the UNet and branch")
    ap.add_argument("--flops-only", action="store_true",
                    help="print the per-step FLOPs of UNet and branches (meta device, no weights) and stop")
    ap.add_argument("--sections", default="abcd", help="which sections to run (subset of 'abcd')")
    args = ap.parse_args(argv)
    p = SMOKE if args.smoke else FULL
    if args.flops_only:
        print(json.dumps(meta_flops(p), indent=2))
        return 0
    if args.out is None:
        ap.error("--out RESULTS_FOLDER is required")
    device = args.device or ("cpu" if args.smoke else "cuda")
    dtype = args.dtype or ("float32" if args.smoke else "float16")
    if device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("no CUDA device: run on a GPU machine, or use --smoke for the CPU run")
    if set(args.sections) - set("abcd"):
        ap.error(f"--sections takes letters of 'abcd', got {args.sections!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    speed = {"channels_last": args.channels_last, "compile": args.compile}
    res: dict = {"profile": p.name, "dtype": dtype, "speed": speed, "config": asdict(p),
                 "environment": environment(device)}
    t0 = time.perf_counter()
    weights = write_weights(args.weights, p, device, getattr(torch, dtype))
    res["weights"] = {"folder": str(weights), "seconds": round(time.perf_counter() - t0, 3)}
    sections = {"a": ("a_brushnet_vs_diffusers", lambda: section_a(weights, p, device, dtype, speed)),
                "b": ("b_throughput", lambda: section_b(weights, p, device, dtype, speed)),
                "c": ("c_peak_memory", lambda: section_c(weights, p, device, dtype)),
                "d": ("d_tiny_pipeline", lambda: section_d(p, args.weights / "tiny_run"))}
    for letter in args.sections:
        key, fn = sections[letter]
        t0 = time.perf_counter()
        res[key] = fn()
        print(f"[gpu_bench] section {letter} done in {time.perf_counter() - t0:.1f} s", flush=True)
    res["total_s"] = round(time.perf_counter() - started, 3)
    (args.out / "gpu_bench.json").write_text(json.dumps(res, indent=2))
    if set("abcd") <= set(args.sections):
        (args.out / "gpu_bench.md").write_text(markdown(res))
        print(markdown(res))
    print(f"[gpu_bench] {res['total_s']} s; written {args.out / 'gpu_bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
