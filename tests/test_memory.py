"""GPU-memory controls on tiny random weights: ``runtime.offload`` reaches every diffusion
editor's pipeline, fp16-variant folders load, and a finished stage's models are released
before the next stage runs."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iiie import offload, placement, weights
from iiie.types import Category, EditRequest, MaskResult, Plan
from tests.conftest import compose_config

#: (route config, tiny-weight writers it needs) per diffusion editor.
EDITORS = {
    "brushnet": "tiny/brushnet",
    "powerpaint": "tiny/powerpaint",
    "infedit": "tiny/infedit",
    "instructpix2pix": "tiny/instructpix2pix",
    "ledits_pp": "tiny/ledits_pp",
    "flux_kontext": "tiny/flux_kontext",
    "qwen_image_edit": "tiny/qwen_image_edit",
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """All tiny weights once per module (``paths.cache``/tiny, as experiment=tiny writes)."""
    from iiie.tiny_weights import (
        brushnet,
        flux_kontext,
        infedit,
        ledits_pp,
        powerpaint,
        qwen_image_edit,
    )

    root = tmp_path_factory.mktemp("cache")
    for ensure in (brushnet.ensure, powerpaint.ensure, infedit.ensure, infedit.ensure_instructpix2pix,
                   ledits_pp.ensure, flux_kontext.ensure, qwen_image_edit.ensure):
        ensure(root / "tiny")
    return root


def _editor(cache: Path, name: str, *overrides: str):
    from iiie.pipeline.runner import build

    cfg = compose_config([f"paths.cache={cache}", f"editor@editor.local={EDITORS[name]}", *overrides])
    return build("editor.local", cfg.editor.local)


def _sample(seed: int = 0, size: tuple[int, int] = (72, 56)):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    mask = np.zeros((size[1], size[0]), bool)
    mask[10:40, 12:50] = True
    req = EditRequest("s0", image, "make the box red")
    plan = Plan(Category.LOCAL, object="box", target_prompt="a red box", source_caption="a box",
                target_caption="a red box")
    return req, plan, MaskResult(mask)


def _edit(editor) -> np.ndarray:
    req, plan, mask = _sample()
    return np.asarray(editor.edit_batch([req], [plan], [mask], [7])[0].image)


# ---------------------------------------------------------------------- offload switch

def test_offload_is_read_from_runtime_and_checked(cache):
    assert _editor(cache, "instructpix2pix").offload == "none"
    with pytest.raises(ValueError, match=r"editor\.local\.offload=model needs a GPU"):
        _editor(cache, "brushnet", "runtime.offload=model")
    with pytest.raises(ValueError, match=r"editor\.local\.offload='everything': choose one of none, model, "):
        _editor(cache, "infedit", "runtime.offload=everything")


def test_offload_is_left_out_of_cache_keys(make_cfg):
    from iiie.pipeline.runner import Runner

    keys = [Runner(make_cfg("editor@editor.local=brushnet", f"runtime.offload={m}", "data.n=2")).keys["edit"]
            for m in ("none", "sequential")]
    assert keys[0] == keys[1]


@pytest.mark.parametrize("name", list(EDITORS))
def test_offload_hooks_are_installed_and_change_nothing(cache, monkeypatch, name):
    """The editor with model-offload hooks gives the same pixels as without. The hooks'
    execution device is the CPU here (real runs refuse offload on CPU, so the guard is
    bypassed): what is tested is that each editor loads in host memory, hands its pipeline
    to diffusers' offload method and that the pipeline then runs through the hooks.
    (``sequential`` cannot run with the CPU as execution device in accelerate: it is covered
    by the CUDA test.)"""
    mode = "model"
    weights.clear_loaded()
    editor = _editor(cache, name, "runtime.device=cpu")
    plain = _edit(editor)
    weights.clear_loaded()
    calls = []

    def on_cpu(pipe, mode, device, config_key="runtime.offload"):
        method = "enable_model_cpu_offload" if mode == "model" else "enable_sequential_cpu_offload"
        calls.append((type(pipe).__name__, mode, str(device)))
        getattr(pipe, method)(device="cpu")
        return pipe

    monkeypatch.setattr(offload, "apply_offload", on_cpu)
    editor.offload = mode
    hooked = _edit(editor)
    assert calls and all(c[1] == mode for c in calls)
    assert all(hasattr(m, "_hf_hook") for m in _modules(editor.pipeline()))
    np.testing.assert_allclose(hooked.astype(int), plain.astype(int), atol=1)
    weights.clear_loaded()


def _modules(pipe) -> list[torch.nn.Module]:
    """The torch modules of an editor's pipeline (diffusers' or InfEdit's own)."""
    parts = getattr(pipe, "components", None) or vars(pipe)
    modules = [m for m in parts.values() if isinstance(m, torch.nn.Module)]
    assert modules
    return modules


# ---------------------------------------------------------------------- fp16 variants

def _to_fp16_variant(src: Path, dst: Path, components: tuple[str, ...]) -> Path:
    """Copy a diffusers folder with the model components saved as ``variant="fp16"`` in
    half precision (``*.fp16.safetensors`` only), everything else unchanged."""
    import shutil

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    from iiie.models.brushnet.unet import BrushNetUNet2DConditionModel

    shutil.copytree(src, dst)
    for comp in components:
        folder = dst / comp
        cls = {"vae": AutoencoderKL, "text_encoder": CLIPTextModel}.get(comp, UNet2DConditionModel)
        if comp == "unet" and "BrushNet" in (folder / "config.json").read_text():
            cls = BrushNetUNet2DConditionModel
        model = cls.from_pretrained(folder).half()
        for f in list(folder.iterdir()):
            if f.name != "config.json":
                f.unlink()
        model.save_pretrained(folder, variant="fp16")
        assert [p.name for p in folder.glob("*.safetensors")] and all(
            ".fp16." in p.name for p in folder.glob("*.safetensors"))
    return dst


@pytest.mark.parametrize("name,folder,field", [
    ("instructpix2pix", "instruct-pix2pix", "model_path"),
    ("infedit", "LCM_Dreamshaper_v7", "model_path"),
    ("brushnet", "brushnet/realisticVisionV60B1_v51VAE", "base_path"),
    ("powerpaint", "PowerPaint_v2/realisticVisionV60B1_v51VAE", "base_path"),
    ("ledits_pp", "stable-diffusion-v1-5", "model_path"),
])
def test_fp16_variant_folders_load(cache, tmp_path, name, folder, field):
    from iiie.offload import detect_variant

    src = cache / "tiny" / folder
    assert detect_variant(src) is None
    dst = _to_fp16_variant(src, tmp_path / "fp16", ("unet", "vae", "text_encoder"))
    assert detect_variant(dst) == "fp16"
    weights.clear_loaded()
    editor = _editor(cache, name, "runtime.device=cpu", f"editor.local.{field}={dst}")
    out = _edit(editor)
    assert out.shape == (56, 72, 3)
    pipe = editor.pipeline()
    assert pipe.unet.dtype == torch.float32  # the half-precision files, loaded as configured
    weights.clear_loaded()


# ---------------------------------------------------------------------- release between stages

def _run_tiny(make_cfg, cache: Path, monkeypatch, release: bool) -> tuple[int, int]:
    """Run 2 samples through the tiny InstructPix2Pix editor on every route; returns (model
    parameters still referenced when the score stage starts, references taken). Also checks
    that the metrics built before the stages are released before planning (or kept)."""
    from iiie.pipeline.runner import Runner

    refs: list[weakref.ref] = []
    real = weights.load_once

    def tracking(key, loader, label=None):
        obj = real(key, loader, label)
        for module in getattr(obj, "components", {}).values():
            if isinstance(module, torch.nn.Module):
                refs.extend(weakref.ref(p) for p in module.parameters())
        return obj

    # The editors' base (DiffusionEditor.pipeline) looks load_once up on iiie.weights.
    monkeypatch.setattr(weights, "load_once", tracking)
    routes = [f"editor@editor.{c.value}=tiny/instructpix2pix" for c in Category]
    cfg = make_cfg(*routes, f"paths.cache={cache}", "data.n=2", "data.odd_inputs=false",
                   f"runtime.release_models={str(release).lower()}")
    runner = Runner(cfg, show_progress=False)
    alive_at_score, built_at_plan = [], []
    run_stage = runner.run_stage

    def watched(name, ids=None):
        if name == "plan":  # the metrics were built up front (to fail fast), then released
            built_at_plan.append(len(runner._built))
        if name == "score":
            gc.collect()
            alive_at_score.append(sum(r() is not None for r in refs))
        return run_stage(name, ids)

    runner.run_stage = watched
    weights.clear_loaded()
    manifest = runner.run()
    assert manifest["stages"]["edit"]["computed"] == 2
    assert (built_at_plan[0] == 0) == release
    weights.clear_loaded()
    return alive_at_score[0], len(refs)


def test_models_of_a_finished_stage_are_released(make_cfg, cache, monkeypatch):
    alive, taken = _run_tiny(make_cfg, cache, monkeypatch, release=True)
    assert taken > 0 and alive == 0


def test_without_release_the_models_stay(make_cfg, cache, monkeypatch):
    """The control: the weak references above do see a resident model."""
    alive, taken = _run_tiny(make_cfg, cache, monkeypatch, release=False)
    assert alive == taken > 0


# ---------------------------------------------------------------------- on a GPU

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (fp16 + offload hooks)")
@pytest.mark.parametrize("mode", ["none", "model", "sequential"])
def test_fp16_editors_on_cuda(cache, mode):
    """Each diffusion editor in float16 on the GPU, with each offload mode: finite output of
    the input's size; with offload the weights live in host memory between calls."""
    for name in EDITORS:
        weights.clear_loaded()
        torch.cuda.reset_peak_memory_stats()
        editor = _editor(cache, name, "runtime=gpu", "runtime.device=cuda", f"runtime.offload={mode}")
        assert editor.dtype == torch.float16
        out = _edit(editor)
        assert out.shape == (56, 72, 3) and np.isfinite(out).all(), name
        if mode == "model":  # after the call every model is back in host memory
            assert all(next(m.parameters()).device.type == "cpu" for m in _modules(editor.pipeline())), name
    weights.clear_loaded()
    placement.free_memory()


def test_offload_on_cpu_stops_the_run_before_any_stage(make_cfg):
    """runtime.offload=model on a CPU run names every component that would take it (the
    editors, the Grounded-SAM masker, the VLM engine) in one error, before the plan stage
    runs: the masker alone would only check when the mask stage builds it."""
    from iiie.offload import OffloadError
    from iiie.placement import check_config_offload

    base = ("experiment=tiny", "masker=tiny/grounded_sam", "runtime.device=cpu", "runtime.offload=model")
    with pytest.raises(OffloadError) as err:
        check_config_offload(make_cfg(*base))
    text = str(err.value)
    assert "editor.local.offload=model needs a GPU" in text
    assert "masker.offload=model needs a GPU" in text
    assert "vlm.serve" not in text  # engine=server: the run builds no in-process VLM
    with pytest.raises(OffloadError, match=r"vlm\.serve\.offload=model needs a GPU"):
        check_config_offload(make_cfg(*base, "vlm.engine=transformers"))
    check_config_offload(make_cfg("experiment=tiny", "runtime.device=cpu"))  # offload=none passes


def test_a_cpu_smoke_run_does_not_import_torch(tmp_path):
    """A CPU smoke run (rule planner, oracle masks, classical editors) needs no torch: the
    run's module, its before-any-stage checks and the release of models between stages must
    not pull it in (about 600 MB of the run's memory otherwise)."""
    import subprocess
    import sys

    from conftest import REPO

    code = (
        "import sys; sys.path.insert(0, 'tests'); from conftest import compose_config; from iiie.run import execute; "
        f"execute(compose_config(['experiment=smoke', 'data.n=12', 'runtime.progress=false', "
        f"'paths.runs={tmp_path}/runs', 'paths.results={tmp_path}/results', 'paths.cache={tmp_path}/cache'])); "
        "assert 'torch' not in sys.modules, 'the smoke run imported torch'"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
