"""editor=flux_kontext_inpaint on tiny random weights of the real FLUX.1 Kontext inpainting classes (official layout,
built here): the layout and config facts of this editor, then the checks every inpainting
editor passes (tests/inpaint_editor_checks.py)."""

from __future__ import annotations

import json

import pytest
from inpaint_editor_checks import check_inpainting, check_missing_folder

from iiie.editors.flux_kontext_inpaint import FluxKontextInpaintEditor


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from iiie.tiny_weights import flux_kontext

    root = tmp_path_factory.mktemp("tiny_fki")
    built = flux_kontext.ensure(root)
    assert flux_kontext.ensure(root) == built  # idempotent
    return built


def test_flux_kontext_inpaint_batch_paste_back_and_seed(folder, make_cfg):
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "FluxKontextPipeline"  # one folder for both Kontext editors
    node = make_cfg("editor@editor.local=tiny/flux_kontext_inpaint").editor["local"]
    assert node.model_path.endswith("tiny/FLUX.1-Kontext-dev") and node.steps == 2 and node.resolution == 64
    assert make_cfg("editor@editor.local=flux_kontext_inpaint").editor["local"].guidance_scale == 2.5
    check_inpainting(lambda: FluxKontextInpaintEditor(str(folder), steps=2, resolution=64, auto_resize=False, blur=2, max_sequence_length=64, device="cpu"),
                     "flux_kontext_inpaint", "FluxKontextInpaintPipeline", [64, 48], 3)  # both sizes map to 64x48: one call per batch


def test_flux_kontext_inpaint_missing_folder_names_the_config_key(tmp_path):
    check_missing_folder(FluxKontextInpaintEditor, tmp_path / "FLUX.1-Kontext-dev", "FLUX.1-Kontext-dev")
