"""editor=qwen_image_edit_inpaint on tiny random weights of the real Qwen-Image-Edit inpainting classes (official layout,
built here): the layout and config facts of this editor, then the checks every inpainting
editor passes (tests/inpaint_editor_checks.py)."""

from __future__ import annotations

import json

import pytest
from inpaint_editor_checks import check_inpainting, check_missing_folder

from iiie.editors.qwen_image_edit_inpaint import QwenImageEditInpaintEditor


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from iiie.tiny_weights import qwen_image_edit

    root = tmp_path_factory.mktemp("tiny_qei")
    built = qwen_image_edit.ensure(root)
    assert qwen_image_edit.ensure(root) == built  # idempotent
    return built


def test_qwen_image_edit_inpaint_batch_paste_back_and_seed(folder, make_cfg):
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "QwenImageEditPipeline"  # one folder for both Qwen-Image-Edit editors
    node = make_cfg("editor@editor.local=tiny/qwen_image_edit_inpaint").editor["local"]
    assert node.model_path.endswith("tiny/Qwen-Image-Edit") and node.steps == 2 and node.resolution == 64
    assert make_cfg("editor@editor.local=qwen_image_edit_inpaint").editor["local"].true_cfg_scale == 4.0
    check_inpainting(lambda: QwenImageEditInpaintEditor(str(folder), steps=2, resolution=64, blur=2, max_sequence_length=64, device="cpu"),
                     "qwen_image_edit_inpaint", "QwenImageEditInpaintPipeline", [64, 48], 3)  # both sizes map to 64x48: one call per batch


def test_qwen_image_edit_inpaint_missing_folder_names_the_config_key(tmp_path):
    check_missing_folder(QwenImageEditInpaintEditor, tmp_path / "Qwen-Image-Edit", "Qwen-Image-Edit")
