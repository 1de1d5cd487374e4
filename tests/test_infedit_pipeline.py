"""``InfEditPipeline`` as a diffusers ``DiffusionPipeline``: loading (official layout),
``save_pretrained`` round trip, output types, settings as keywords, progress bar, input
checks. The sampler itself is tested in ``test_infedit.py``."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

from iiie.models.infedit import InfEditPipeline, InfEditPipelineOutput, InfEditSettings

SRC, TGT = "a cat sitting on the table", "a dog sitting on the table"
FAST = InfEditSettings(num_inference_steps=2, local="dog", mutual="table")


@pytest.fixture(scope="module")
def pipe(tiny_lcm) -> InfEditPipeline:
    pipe = InfEditPipeline.from_pretrained(tiny_lcm)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _pil(w=48, h=40, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _call(pipe, image=None, settings=FAST, seed=0, **kw):
    return pipe(_pil() if image is None else image, SRC, TGT, settings,
                generator=torch.Generator().manual_seed(seed), **kw)


def test_loads_the_official_layout_without_its_safety_checker(tiny_lcm, pipe, tmp_path):
    import shutil

    from diffusers import LatentConsistencyModelPipeline

    index = json.loads((tiny_lcm / "model_index.json").read_text())
    assert index["_class_name"] == "LatentConsistencyModelPipeline"
    assert index["safety_checker"] == ["stable_diffusion", "StableDiffusionSafetyChecker"]
    stock = LatentConsistencyModelPipeline.from_pretrained(tiny_lcm)  # the folder is complete
    assert stock.safety_checker is not None
    assert isinstance(pipe, DiffusionPipeline)
    assert sorted(pipe.components) == ["scheduler", "text_encoder", "tokenizer", "unet", "vae"]
    assert pipe._execution_device == torch.device("cpu") and pipe.dtype == torch.float32
    # as conf/weights.yaml downloads it: model_index.json names a safety checker that is absent
    shutil.copytree(tiny_lcm, tmp_path / "download", ignore=shutil.ignore_patterns("safety_checker",
                                                                                    "feature_extractor"))
    assert not (tmp_path / "download" / "safety_checker").exists()
    downloaded = InfEditPipeline.from_pretrained(tmp_path / "download")
    assert sorted(downloaded.components) == sorted(pipe.components)


def test_save_pretrained_round_trip_gives_the_same_edit(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "model_index.json").read_text())["_class_name"] == "InfEditPipeline"
    again = InfEditPipeline.from_pretrained(tmp_path / "saved")
    again.set_progress_bar_config(disable=True)
    a, b = _call(pipe, output_type="np").images, _call(again, output_type="np").images
    assert np.array_equal(a, b)


def test_output_types_agree(pipe):
    pt = _call(pipe, output_type="pt")
    assert isinstance(pt, InfEditPipelineOutput) and pt.images.shape == (1, 3, 40, 48)
    assert pt.images.min() >= 0 and pt.images.max() <= 1
    arr = _call(pipe, output_type="np").images
    np.testing.assert_array_equal(arr, pt.images.permute(0, 2, 3, 1).numpy())
    (pil,) = _call(pipe).images
    assert np.array_equal(np.asarray(pil), (arr[0] * 255).round().astype(np.uint8))
    latent, pred_x0, alignments, notes = _call(pipe, output_type="latent", return_dict=False)
    assert torch.equal(latent, pt.pred_x0) and torch.equal(pred_x0, pt.pred_x0) and latent.shape == (1, 4, 5, 6)
    assert alignments[0].target_len == pt.alignments[0].target_len and notes == pt.notes == [[]]
    # the same image as a [0, 1] tensor: equal up to the rounding of another memory layout
    tensor = torch.from_numpy(np.asarray(_pil(), np.float32) / 255).permute(2, 0, 1)[None]
    torch.testing.assert_close(_call(pipe, tensor, output_type="pt").images, pt.images, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="output_type"):
        _call(pipe, output_type="jpeg")


def test_settings_can_be_given_as_keywords(pipe):
    by_settings = _call(pipe, output_type="pt").images
    by_knobs = _call(pipe, settings=None, num_inference_steps=2, local="dog", mutual="table",
                     output_type="pt").images
    assert torch.equal(by_settings, by_knobs)
    with pytest.raises(ValueError, match="unknown InfEdit settings"):
        _call(pipe, steps=3)


def test_progress_bar_counts_the_denoising_steps(tiny_lcm):
    pipe = InfEditPipeline.from_pretrained(tiny_lcm)
    log = io.StringIO()
    pipe.set_progress_bar_config(file=log, disable=False)
    _call(pipe, settings=InfEditSettings(num_inference_steps=3, denoise_model=True, strength=0.7))
    assert "2/2" in log.getvalue()  # trunc(3 * 0.7) = 2 steps run


def test_inputs_are_checked(pipe):
    with pytest.raises(ValueError, match="share one size"):
        pipe([_pil(), _pil(w=56)], [SRC, SRC], [TGT, TGT], FAST)
    with pytest.raises(ValueError, match="2 source but 1 target"):
        pipe([_pil(), _pil()], [SRC, SRC], [TGT], FAST)
    with pytest.raises(ValueError, match="1 images but 2 caption pairs"):
        pipe(_pil(), [SRC, SRC], [TGT, TGT], FAST)
    with pytest.raises(ValueError, match="entries in generator"):
        pipe([_pil(), _pil()], [SRC, SRC], [TGT, TGT], FAST, generator=[torch.Generator()])
    with pytest.raises(ValueError, match="multiple of 8"):
        pipe(_pil(w=44), SRC, TGT, FAST)
