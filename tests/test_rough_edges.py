"""Issue 19, item 6: the rough edges a new user hit, each with the behaviour it has now."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iiie.data.base import check_n
from iiie.data.folder import FolderDataset
from iiie.errors import ConfigurationError, ImageLoadError
from iiie.imageio import load_image

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("bad", ["abc", "1.5", -3, True, [1]])
def test_data_n_that_is_no_count_is_a_clear_configuration_error(bad):
    with pytest.raises(ConfigurationError, match="data.n"):
        check_n(bad)


@pytest.mark.parametrize("good,n", [(None, None), (0, 0), ("12", 12), (7, 7)])
def test_data_n_counts_are_accepted(good, n):
    assert check_n(good) == n


def test_run_with_data_n_abc_prints_one_line(tmp_path):
    res = _run(["iiie.run", "data.n=abc", f"paths.runs={tmp_path}/r", f"paths.results={tmp_path}/s"])
    assert res.returncode == 2
    assert "error: data.n must be a whole number" in res.stderr and "TypeError" not in res.stderr


def test_huge_image_error_names_no_missing_key_and_pil_stays_quiet(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (40, 40)).save(path)  # 1600 px: over PIL's warning level set below
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (PIL's DecompressionBombWarning) fails
        Image.MAX_IMAGE_PIXELS, old = 1000, Image.MAX_IMAGE_PIXELS
        try:
            with pytest.raises(ImageLoadError) as info:
                load_image(path, max_pixels=1500)
        finally:
            Image.MAX_IMAGE_PIXELS = old
    assert "data.max_pixels" not in str(info.value) and "downscale" in str(info.value)


def test_folder_sample_with_unreadable_image_keeps_its_category(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "samples.jsonl").write_text(
        json.dumps({"id": "a", "image": "bad.png", "instruction": "remove the dog", "category": "remove"}) + "\n")
    ds = FolderDataset(str(tmp_path))
    with pytest.raises(ImageLoadError):
        ds.load("a")
    assert ds.known_category("a").value == "remove"
    res = _run(["iiie.run", "data=folder", f"data.root={tmp_path}", "runtime.progress=false",
                f"paths.runs={tmp_path}/runs", f"paths.results={tmp_path}/res", "experiment_name=t"])
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads((tmp_path / "res" / "t" / "results.json").read_text())["table"]
    assert any(r["category"] == "remove" and r["failed"] == 1 for r in rows), rows


def test_ad_hoc_run_warns_before_overwriting_tables(tmp_path):
    args = ["iiie.run", "data.n=2", "runtime.progress=false", f"paths.runs={tmp_path}/r", f"paths.results={tmp_path}/s"]
    first = _run(args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "overwritten" not in first.stderr
    second = _run(args)
    assert second.returncode == 0 and "experiment_name=NAME" in second.stderr
    named = _run([*args, "experiment_name=smoke"])
    assert "overwritten" not in named.stderr


def test_edit_mask_of_the_wrong_size_is_said(tmp_path):
    img = tmp_path / "in.png"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(img)
    square = tmp_path / "square.png"
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(square)
    res = _run(["iiie.edit", f"image={img}", f"output={tmp_path / 'o.png'}", f"mask={square}",
                "--instruction", "remove the dog"])
    assert res.returncode == 2 and "their shapes differ" in res.stderr
    half = tmp_path / "half.png"
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(half)
    res = _run(["iiie.edit", f"image={img}", f"output={tmp_path / 'o.png'}", f"mask={half}",
                "--instruction", "remove the dog"])
    assert res.returncode == 0, res.stderr
    assert "was resized to the image's 64x48" in res.stderr
