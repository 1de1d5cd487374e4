"""The command lines a researcher types: plan, edit and the ablation sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iiie.data.synthetic import SyntheticDataset
from iiie.masks import mask_to_image

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_plan_cli_prints_accuracy_and_keeps_going(tmp_path):
    img = tmp_path / "imgs" / "a.png"
    img.parent.mkdir()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(img)
    lines = [
        {"id": "1", "instruction": "remove the red circle", "category": "remove", "image": "imgs/a.png"},
        {"id": "2", "instruction": "", "category": "local"},
        {"id": "3", "instruction": "make the photo black and white", "category": "global"},
        {"id": "4", "instruction": "add a cat in the top left", "category": "addition", "image": "imgs/missing.png"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    dst = tmp_path / "out.jsonl"
    res = _run(["iiie.plan", f"input={src}", f"output={dst}", "runtime.progress=false"], tmp_path)
    assert res.returncode == 0, res.stderr
    out = [json.loads(x) for x in dst.read_text().splitlines()]
    assert [o["id"] for o in out] == ["1", "2", "3", "4", "line5"]
    assert out[0]["category"] == "remove" and out[0]["gold_category"] == "remove"
    assert "error" in out[1] and "error" in out[3] and "error" in out[4]
    assert out[2]["category"] == "global"
    assert "overall accuracy" in res.stdout and "| remove |" in res.stdout


def test_plan_cli_missing_input_is_one_clear_error(tmp_path):
    res = _run(["iiie.plan", f"input={tmp_path / 'nope.jsonl'}", f"output={tmp_path / 'o.jsonl'}"], tmp_path)
    assert res.returncode == 2 and "input file not found" in res.stderr


def test_edit_cli_writes_result_and_mask(tmp_path):
    sample = SyntheticDataset(n=2).load("syn0000")  # a removal
    src, mask = tmp_path / "in.png", tmp_path / "mask.png"
    sample.request.image.save(src)
    mask_to_image(sample.truth.mask).save(mask)
    out = tmp_path / "res" / "out.png"
    res = _run(
        ["iiie.edit", f"image={src}", f"instruction={sample.request.instruction}", f"output={out}", f"mask={mask}"],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert '"category": "remove"' in res.stdout
    result, written_mask = Image.open(out), Image.open(tmp_path / "res" / "out_mask.png")
    assert result.size == sample.request.image.size
    assert (np.asarray(written_mask) > 0).sum() == sample.truth.mask.sum()
    far = ~np.asarray(Image.open(mask).convert("L")).astype(bool)
    from iiie.masks import dilate

    far = ~dilate(~far, 4)
    assert (np.asarray(result)[far] == np.asarray(sample.request.image)[far]).all()


def test_edit_cli_bad_image_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    res = _run(["iiie.edit", f"image={bad}", "instruction=remove the dog", f"output={tmp_path / 'o.png'}"], tmp_path)
    assert res.returncode == 2 and "cannot read image" in res.stderr


def test_ablation_sweep_plans_once_and_collects(tmp_path):
    res = _run(
        [
            "iiie.run", "experiment=ablate_smoke", "data.n=10", "runtime.progress=false",
            f"paths.runs={tmp_path / 'runs'}", f"paths.results={tmp_path / 'results'}",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    sweep = tmp_path / "results" / "ablate_smoke"
    data = json.loads((sweep / "comparison.json").read_text())
    assert len(data["rows"]) == 6  # 3 dilations x 2 inpainting methods
    assert data["totals"]["plan_calls"] == 10  # the planner ran once per sample over the sweep
    assert data["totals"]["mask_calls"] == 30  # masks once per dilation value
    assert "Comparison: ablate_smoke" in (sweep / "comparison.md").read_text()


def test_edit_cli_usage_errors_and_whole_image_warning(tmp_path):
    img = tmp_path / "in.png"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(img)
    res = _run(["iiie.edit", f"image={img}", f"output={tmp_path / 'o.png'}"], tmp_path)
    assert res.returncode == 2 and "instruction is required" in res.stderr and "usage:" in res.stderr
    res = _run(["iiie.edit", f"image={img}", "instruction=make the ball blue", f"output={tmp_path / 'o'}"], tmp_path)
    assert res.returncode == 2 and "image extension" in res.stderr
    res = _run(["iiie.edit", f"image={img}", "instruction=make the ball blue", f"output={tmp_path / 'o.png'}"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "warning: the whole image was edited" in res.stderr


@pytest.mark.slow
def test_edit_cli_tiny_profile_writes_its_weights_first(tmp_path):
    img = tmp_path / "in.png"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(img)
    out = tmp_path / "o.png"
    res = _run(
        ["iiie.edit", "experiment=tiny", f"paths.cache={tmp_path / 'cache'}", f"image={img}",
         "instruction=make the image black and white", f"output={out}"],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert '"category": "global"' in res.stdout and "infedit" in res.stdout.lower()
    assert Image.open(out).size == (64, 48)


def test_plan_cli_missing_output_is_a_usage_error(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "remove the cat", "category": "removal"}\n')
    res = _run(["iiie.plan", f"input={src}"], tmp_path)
    assert res.returncode == 2 and "output is required" in res.stderr
    res = _run(["iiie.plan", f"input={src}", f"output={tmp_path / 'o.jsonl'}", "runtime.progress=false"], tmp_path)
    assert res.returncode == 0 and "ignored lines whose category is not one of" in res.stdout


def test_edit_cli_takes_any_sentence_verbatim(tmp_path):
    """Issue 19: apostrophes, commas and non-ASCII letters broke Hydra's override parser."""
    from iiie.edit import UsageError, take_instruction

    assert take_instruction(["image=a.png", "--instruction", "let's see it in winter, please"]) == (
        ["image=a.png"], "let's see it in winter, please")
    assert take_instruction(["instruction=let's go, ok", "seed=1"]) == (["seed=1"], "let's go, ok")
    assert take_instruction(["make it pop, please", "-m", "seed=1,2"])[1] == "make it pop, please"
    (tmp_path / "i.txt").write_text("enlève le chat\n", encoding="utf-8")
    assert take_instruction([f"--instruction-file={tmp_path / 'i.txt'}"])[1] == "enlève le chat"
    with pytest.raises(UsageError, match="more than once"):
        take_instruction(["--instruction", "a", "instruction=b"])
    with pytest.raises(UsageError, match="not found"):
        take_instruction(["--instruction-file", str(tmp_path / "none.txt")])
    img = tmp_path / "in.png"
    Image.new("RGB", (32, 24), (10, 200, 10)).save(img)
    res = _run(["iiie.edit", f"image={img}", f"output={tmp_path / 'o.png'}",
                "--instruction", "let's see it in winter, please"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert '"category": "global"' in res.stdout


def test_edit_cli_says_when_nothing_was_edited(tmp_path):
    """A no-op (unknown filter on the CPU default) is a warning and "noop": true, and the
    false "whole image was edited" note is not printed."""
    img = tmp_path / "in.png"
    Image.new("RGB", (32, 24), (10, 200, 10)).save(img)
    res = _run(["iiie.edit", f"image={img}", f"output={tmp_path / 'o.png'}",
                "--instruction", "turn it into a watercolor painting"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "warning: nothing was edited" in res.stderr and '"noop": true' in res.stdout
    assert "whole image was edited" not in res.stderr
    assert Image.open(tmp_path / "o.png").tobytes() == Image.open(img).tobytes()


def test_edit_cli_other_language_names_the_vlm_planner(tmp_path):
    img = tmp_path / "in.png"
    Image.new("RGB", (32, 24), (10, 200, 10)).save(img)
    res = _run(["iiie.edit", f"image={img}", f"output={tmp_path / 'o.png'}", "--instruction", "enlève le chat"],
               tmp_path)
    assert res.returncode == 2 and "planner=vlm" in res.stderr


def test_make_help_names_every_experiment_the_readme_runs():
    """Every ``make reproduce EXPERIMENT=...`` of the README is in ``make help``, and each is
    an experiment of conf/experiment/."""
    import re
    import shutil

    if shutil.which("make") is None:
        pytest.skip("no make")
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"make reproduce EXPERIMENT=(\w+)", readme)) | {"smoke"}
    assert documented >= {"smoke", "tiny", "paper", "paper_tiny"}
    assert all((REPO / "conf" / "experiment" / f"{e}.yaml").is_file() for e in documented)
    text = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert {e for e in documented if not re.search(rf"\b{e}\b", text)} == set()


def test_readme_smoke_table_is_what_make_reproduce_gives(make_cfg, tmp_path):
    """README's "What `make reproduce` gives today" block is the smoke run's table, number
    for number (regenerate it from results/smoke/table.md when a change moves a number)."""
    from iiie.run import execute

    execute(make_cfg("experiment=smoke"))
    made = (tmp_path / "results" / "smoke" / "table.md").read_text().split("\n\n")[1].strip()
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### What `make reproduce` gives today"):]
    quoted = section.split("```\n")[1].strip()
    assert quoted == made
