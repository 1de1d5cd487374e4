"""FLUX.1 Kontext and Qwen-Image-Edit end to end, on tiny random weights of the real classes
saved in the official diffusers layouts (built here, no download): a 2-image batch keeps the
input sizes, a seed fixes the pixels, params record the settings, and `method=tiny/flux_kontext`
runs through the Runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from iiie import weights
from iiie.maskers.none import NoneMasker
from iiie.types import Category, EditRequest, Plan
from iiie.weights import MissingWeightsError


def _req(w, h, text, seed):
    rng = np.random.default_rng(seed)
    return EditRequest(f"s{seed}", Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), text)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny_fq")


def _batch(editor, seeds):
    reqs = [_req(50, 34, "make it winter", 0), _req(52, 36, "remove the cat", 1)]
    plans = [Plan(Category.GLOBAL), Plan(Category.REMOVE, object="cat")]
    masks = [NoneMasker().mask(r, p) for r, p in zip(reqs, plans, strict=True)]
    return (reqs, plans, masks), editor.edit_batch(reqs, plans, masks, seeds)


def _check_editor(editor, name):
    weights.clear_loaded()
    (reqs, plans, masks), first = _batch(editor, [0, 1])
    assert [r.image.size for r in first] == [(50, 34), (52, 36)]
    assert all(r.image.mode == "RGB" and r.editor == name for r in first)
    assert [r.params["prompt"] for r in first] == ["make it winter", "remove the cat"]
    assert first[0].params["steps"] == 2 and first[0].params["model"] == editor.model_path.name
    assert first[0].params["resolution"] == [64, 48]  # long side 64, multiples of 16
    _, again = _batch(editor, [0, 1])
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert not np.array_equal(np.asarray(first[0].image), np.asarray(reqs[0].image))  # it did edit
    other = editor.edit(reqs[0], plans[0], masks[0], 5)  # one sample: the Qwen condition costs ~2 s each
    assert not np.array_equal(np.asarray(other.image), np.asarray(first[0].image))
    assert editor.stats()["model_batches"] == 3 and editor.stats()["loads"] == {name: 1}  # loaded once
    return first, (reqs, plans, masks)


def test_flux_kontext_tiny_layout_and_batch(tiny_root, make_cfg):
    from diffusers import FluxKontextPipeline

    from iiie.editors.flux_kontext import FluxKontextEditor
    from iiie.tiny_weights import flux_kontext

    folder = flux_kontext.ensure(tiny_root)
    assert flux_kontext.ensure(tiny_root) == folder  # idempotent
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "FluxKontextPipeline"
    assert index["transformer"] == ["diffusers", "FluxTransformer2DModel"]
    assert index["text_encoder_2"] == ["transformers", "T5EncoderModel"]
    assert isinstance(FluxKontextPipeline.from_pretrained(folder), FluxKontextPipeline)
    cfg = make_cfg("editor@editor.global=tiny/flux_kontext")
    node = cfg.editor["global"]
    assert node.model_path.endswith("tiny/FLUX.1-Kontext-dev") and node.steps == 2 and node.resolution == 64
    assert make_cfg("editor@editor.global=flux_kontext").editor["global"].guidance_scale == 2.5
    editor = FluxKontextEditor(str(folder), steps=2, resolution=64, auto_resize=False,
                               max_sequence_length=64, device="cpu")
    first, inputs = _check_editor(editor, "flux_kontext")
    reqs, plans, masks = inputs
    reworded = EditRequest(reqs[0].id, reqs[0].image, "add a dog")
    assert not np.array_equal(np.asarray(editor.edit(reworded, plans[0], masks[0], 0).image),
                              np.asarray(first[0].image))  # the instruction reaches the model
    assert first[0].params["guidance_scale"] == 2.5 and first[0].params["auto_resize"] is False


def test_qwen_image_edit_tiny_layout_and_batch(tiny_root, make_cfg):
    from iiie.editors.qwen_image_edit import QwenImageEditEditor
    from iiie.tiny_weights import qwen_image_edit

    folder = qwen_image_edit.ensure(tiny_root)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "QwenImageEditPipeline"
    assert index["text_encoder"] == ["transformers", "Qwen2_5_VLForConditionalGeneration"]
    assert index["processor"] == ["transformers", "Qwen2VLProcessor"]
    assert index["vae"] == ["diffusers", "AutoencoderKLQwenImage"]
    node = make_cfg("editor@editor.global=tiny/qwen_image_edit").editor["global"]
    assert node.model_path.endswith("tiny/Qwen-Image-Edit") and node.steps == 2
    real = make_cfg("editor@editor.global=qwen_image_edit").editor["global"]
    assert real.true_cfg_scale == 4.0 and real.steps == 50 and real.negative_prompt == " "
    editor = QwenImageEditEditor(str(folder), steps=2, resolution=64, max_sequence_length=64, device="cpu")
    first, _ = _check_editor(editor, "qwen_image_edit")
    assert first[0].params["true_cfg_scale"] == 4.0 and first[0].params["negative_prompt"] == " "
    with pytest.raises(ValueError, match="negative_prompt"):
        QwenImageEditEditor(str(folder), negative_prompt="", config_key="editor.global")


def test_missing_folder_names_the_config_key(tmp_path):
    from iiie.editors.flux_kontext import FluxKontextEditor
    from iiie.editors.qwen_image_edit import QwenImageEditEditor

    with pytest.raises(MissingWeightsError, match=r"editor\.local\.model_path.*FLUX"):
        FluxKontextEditor(str(tmp_path / "nope"), config_key="editor.local")
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "model_index.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match="transformer/config.json"):
        QwenImageEditEditor(str(tmp_path / "q"), config_key="editor.local")


@pytest.mark.parametrize("method", ["flux_kontext", "tiny/flux_kontext", "qwen_image_edit", "tiny/qwen_image_edit"])
def test_method_composes(make_cfg, method):
    cfg = make_cfg(f"method={method}")
    assert cfg.planner._target_.endswith("NonePlanner") and cfg.masker._target_.endswith("NoneMasker")
    name = method.split("/")[-1]
    assert cfg.method_name == name
    assert {cfg.editor[r]._target_.rsplit(".", 2)[-2] for r in cfg.editor} == {name}


def test_tiny_flux_kontext_method_runs_through_the_runner(make_cfg, tmp_path):
    from iiie.pipeline.runner import Runner
    from iiie.tiny_weights import flux_kontext

    flux_kontext.ensure(tmp_path / "cache" / "tiny")  # make_cfg puts paths.cache in tmp_path
    weights.clear_loaded()
    cfg = make_cfg("method=tiny/flux_kontext", "data=synthetic", "data.n=3", "data.odd_inputs=false",
                   "runtime.device=cpu")
    runner = Runner(cfg)
    manifest = runner.run()
    stages = manifest["stages"]
    assert stages["plan"]["model_calls"] == 0 and stages["mask"]["model_calls"] == 0
    assert manifest["model_loads"].get("flux_kontext") == 1  # one pipeline for every route
    rows = [runner.sample_status(sid) for sid in runner.ids]
    assert len(rows) == 3 and all("failed_stage" not in r for r in rows), rows
    assert {r["editor"] for r in rows} == {"flux_kontext"}
