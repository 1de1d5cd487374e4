"""InstructPix2Pix and LEdits++ take their checks and loader from ``DiffusionEditor``: one
load per process under their own label, no safety checker, their own error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from iiie import weights
from iiie.editors.instructpix2pix import InstructPix2PixEditor
from iiie.editors.ledits_pp import LEditsPPEditor


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    from iiie.tiny_weights import ledits_pp
    from iiie.tiny_weights.infedit import ensure_instructpix2pix

    root = tmp_path_factory.mktemp("sd15_editors")
    ensure_instructpix2pix(root)
    return {"instructpix2pix": root / "instruct-pix2pix", "ledits_pp": ledits_pp.ensure(root)}


@pytest.mark.parametrize("cls", [InstructPix2PixEditor, LEditsPPEditor])
def test_loaded_once_under_its_label_without_safety_checker(folders, cls):
    weights.clear_loaded()
    try:
        a = cls(str(folders[cls.name]), steps=2, resolution=64, device="cpu")
        b = cls(str(folders[cls.name]), steps=3, resolution=64, device="cpu")
        pipe = a.pipeline()
        assert b.pipeline() is pipe and type(pipe).__name__ == cls.pipeline_class
        assert pipe.safety_checker is None and pipe.feature_extractor is None
        assert a.stats()["loads"] == {cls.name: 1}
    finally:
        weights.clear_loaded()


def test_ledits_pp_keeps_its_settings_message(folders):
    with pytest.raises(ValueError, match=r"^editor\.global: steps must be >= 1 and resolution >= 8$"):
        LEditsPPEditor(str(folders["ledits_pp"]), steps=0, device="cpu", config_key="editor.global")
    with pytest.raises(ValueError, match="resolution >= 8"):
        LEditsPPEditor(str(folders["ledits_pp"]), resolution=4, device="cpu")


def test_instructpix2pix_settings_messages(folders):
    with pytest.raises(ValueError, match=r"editor\.global\.steps must be >= 1, got 0"):
        InstructPix2PixEditor(str(folders["instructpix2pix"]), steps=0, device="cpu", config_key="editor.global")
    with pytest.raises(ValueError, match=r"editor\.<route>\.resolution must be >= 8, got 4"):
        InstructPix2PixEditor(str(folders["instructpix2pix"]), resolution=4, device="cpu")
