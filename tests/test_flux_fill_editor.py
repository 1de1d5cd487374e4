"""editor=flux_fill on tiny random weights of the real FLUX.1 Fill classes (official layout,
built here): the layout and config facts of this editor, then the checks every inpainting
editor passes (tests/inpaint_editor_checks.py)."""

from __future__ import annotations

import json

import pytest
from inpaint_editor_checks import check_inpainting, check_missing_folder

from iiie.editors.flux_fill import FluxFillEditor


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from iiie.tiny_weights import flux_fill

    root = tmp_path_factory.mktemp("tiny_ff")
    built = flux_fill.ensure(root)
    assert flux_fill.ensure(root) == built  # idempotent
    return built


def test_flux_fill_batch_paste_back_and_seed(folder, make_cfg):
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "FluxFillPipeline"
    assert json.loads((folder / "transformer" / "config.json").read_text())["in_channels"] == 16 + 16 + 256
    node = make_cfg("editor@editor.local=tiny/flux_fill").editor["local"]
    assert node.model_path.endswith("tiny/FLUX.1-Fill-dev") and node.steps == 2 and node.resolution == 64
    assert make_cfg("editor@editor.local=flux_fill").editor["local"].guidance_scale == 30.0
    check_inpainting(lambda: FluxFillEditor(str(folder), steps=2, resolution=64, blur=2, max_sequence_length=64, device="cpu"),
                     "flux_fill", "FluxFillPipeline", [64, 48], 3)  # both sizes map to 64x48: one call per batch


def test_flux_fill_missing_folder_names_the_config_key(tmp_path):
    check_missing_folder(FluxFillEditor, tmp_path / "FLUX.1-Fill-dev", "FLUX.1-Fill-dev")
