"""Pieces of the VLM planner that need no server: coordinates, image grid, schemas, prompt
files, settings and the ``vllm serve`` command line."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from iiie.errors import BackendUnavailableError
from iiie.types import Category
from iiie.vlm import serve
from iiie.vlm.coords import Coords, box_hint, coords_for, to_original
from iiie.vlm.images import prepare_image, resized_size
from iiie.vlm.prompts import default_prompts_dir, load_prompts
from iiie.vlm.schema import ReplyError, json_schema, parse_reply, response_format
from iiie.vlm.settings import VLMSettings

# ----------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize(
    ("coords", "raw", "resized", "expected"),
    [
        # Qwen2.5-VL: pixels of the 320x240 grid it saw, original 640x480 -> x2
        (Coords.ABSOLUTE_RESIZED, [10, 20, 100, 120], (320, 240), (20, 40, 200, 240)),
        # anisotropic grid: x and y scale separately
        (Coords.ABSOLUTE_RESIZED, [28, 28, 56, 56], (280, 420), (64, 32, 128, 64)),
        (Coords.RELATIVE_1000, [100, 200, 500, 800], (999, 999), (64, 96, 320, 384)),
        (Coords.RELATIVE_1, [0.1, 0.2, 0.5, 0.8], (999, 999), (64, 96, 320, 384)),
    ],
)
def test_box_conversion_per_convention(coords, raw, resized, expected):
    result = to_original(raw, coords, (640, 480), resized)
    assert result.reason is None
    assert result.box == pytest.approx(expected)


def test_box_is_clamped_and_corners_reordered():
    clamped = to_original([900, 900, 1200, 1100], Coords.RELATIVE_1000, (640, 480), (1, 1))
    assert clamped.box == pytest.approx((576, 432, 640, 480))
    swapped = to_original([500, 800, 100, 200], Coords.RELATIVE_1000, (640, 480), (1, 1))
    assert swapped.box == pytest.approx((64, 96, 320, 384))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([10, 10, 10, 50], "box_degenerate"),
        ([10, 10, 200, 10.5], "box_degenerate"),
        ([1100, 1100, 1200, 1200], "box_outside_image"),
        ([-50, 10, -10, 50], "box_outside_image"),
        ([1, 2, 3], "box_invalid"),
        ([1, 2, 3, math.nan], "box_invalid"),
        (["a", 2, 3, 4], "box_invalid"),
    ],
)
def test_unusable_boxes_are_rejected_with_a_reason(raw, reason):
    result = to_original(raw, Coords.RELATIVE_1000, (640, 480), (1, 1))
    assert result.box is None
    assert result.reason == reason


def test_family_conventions_and_hints():
    assert coords_for("qwen2_5_vl") is Coords.ABSOLUTE_RESIZED
    assert coords_for("qwen2_vl") is Coords.RELATIVE_1000
    assert coords_for("qwen3_vl") is Coords.RELATIVE_1000
    assert coords_for("qwen2_5_vl", "relative_1") is Coords.RELATIVE_1
    with pytest.raises(ValueError, match="vlm.coords"):
        coords_for("llava")
    assert "336x224" in box_hint(Coords.ABSOLUTE_RESIZED, (336, 224))
    assert "0-1000" in box_hint(Coords.RELATIVE_1000, (336, 224))


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("patch", [14, 16])
def test_resized_size_follows_qwen_vl_utils_rules(patch):
    factor = 2 * patch
    for size in [(640, 480), (33, 1000), (4000, 3000), (100, 100)]:
        w, h = resized_size(size, min_pixels=4 * factor**2, max_pixels=256 * factor**2, patch_size=patch)
        assert w % factor == 0 and h % factor == 0
        assert 4 * factor**2 <= w * h <= 256 * factor**2
        # aspect ratio kept within one grid cell
        assert abs(w / h - size[0] / size[1]) <= (factor / min(w, h)) * (size[0] / size[1]) + 0.05


def test_resized_size_matches_qwen_vl_utils_fetch_image():
    from qwen_vl_utils import fetch_image

    img = Image.new("RGB", (613, 419), (10, 20, 30))
    theirs = fetch_image({"image": img, "min_pixels": 3136, "max_pixels": 100352})
    assert resized_size(img.size, 3136, 100352, 14) == theirs.size


def test_prepare_image_data_url_decodes_to_the_grid_size():
    img = Image.new("RGB", (640, 480), (200, 10, 10))
    prepared = prepare_image(img, 3136, 50176, 14, "PNG")
    assert prepared.original_size == (640, 480)
    assert prepared.data_url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(prepared.data_url.split(",", 1)[1])))
    assert decoded.size == prepared.size == resized_size((640, 480), 3136, 50176, 14)
    assert decoded.convert("RGB").getpixel((5, 5)) == (200, 10, 10)


def test_prepare_image_flattens_alpha_on_white_and_rejects_extreme_aspect():
    rgba = Image.new("RGBA", (56, 56), (0, 0, 0, 0))
    prepared = prepare_image(rgba, 3136, 50176, 14, "PNG")
    decoded = Image.open(io.BytesIO(base64.b64decode(prepared.data_url.split(",", 1)[1])))
    assert decoded.convert("RGB").getpixel((3, 3)) == (255, 255, 255)
    with pytest.raises(ValueError, match="aspect ratio"):
        prepare_image(Image.new("RGB", (3000, 10)), 3136, 50176)
    with pytest.raises(ValueError, match="image_format"):
        prepare_image(Image.new("RGB", (56, 56)), 3136, 50176, image_format="GIF")


# ----------------------------------------------------------------------------- schemas


def test_schema_uses_standard_features_only():
    schema = json_schema(["category", "object", "box"])
    assert schema["required"] == ["category", "object", "box"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["category"]["enum"] == [c.value for c in Category]
    assert schema["properties"]["box"] == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 4,
        "maxItems": 4,
    }
    block = response_format(["category"], "category turn!")
    assert block["type"] == "json_schema"
    assert block["json_schema"]["strict"] is True
    assert block["json_schema"]["name"] == "category_turn_"
    with pytest.raises(ValueError, match="unknown"):
        json_schema(["colour"])


def test_parse_reply_accepts_valid_and_fenced_json():
    assert parse_reply('{"category": " Remove "}', ["category"]) == {"category": Category.REMOVE}
    fenced = '```json\n{"object": " cat ", "box": [1, 2, 3, 4]}\n```'
    values = parse_reply(fenced, ["object", "box"], Category.ADDITION)
    assert values == {"object": "cat", "box": [1.0, 2.0, 3.0, 4.0]}


@pytest.mark.parametrize(
    ("content", "fields", "category", "match"),
    [
        ("", ["category"], None, "empty"),
        ("{'category': 'local'}", ["category"], None, "not valid JSON"),
        ('["local"]', ["category"], None, "JSON object"),
        ('{"category": "recolor"}', ["category"], None, "category"),
        ('{"object": "cat"}', ["object", "target_prompt"], Category.LOCAL, "target_prompt"),
        ('{"box": [1, 2, 3]}', ["box"], Category.ADDITION, "box"),
        ('{"object": "  "}', ["object"], Category.REMOVE, "must not be empty"),
        ('{"source_caption": "a", "target_caption": ""}', ["source_caption", "target_caption"],
         Category.GLOBAL, "target_caption"),
    ],
)
def test_parse_reply_rejects_schema_breaking_replies(content, fields, category, match):
    with pytest.raises(ReplyError, match=match):
        parse_reply(content, fields, category)


def test_empty_fields_a_category_does_not_need_are_fine():
    # single_call asks for every field; a removal leaves the captions empty
    values = parse_reply(
        json.dumps({"category": "remove", "object": "cup", "target_prompt": "", "box": [0, 0, 0, 0]}),
        ["category", "object", "target_prompt", "box"],
    )
    assert values["object"] == "cup"


# ----------------------------------------------------------------------------- prompt files


def test_shipped_prompt_sets_load():
    multi = load_prompts("multi_turn", "v1")
    assert [t.fields for t in multi.first] == [("category",)]
    assert set(multi.followups) == set(Category)
    assert any("box" in t.fields for t in multi.followups[Category.ADDITION])
    assert {f for t in multi.followups[Category.GLOBAL] for f in t.fields} == {
        "source_caption",
        "target_caption",
    }
    single = load_prompts("single_call", "v1")
    assert len(single.first) == 1 and not single.followups
    assert set(single.first[0].fields) == {
        "category", "object", "target_prompt", "source_caption", "target_caption", "box"
    }
    assert multi.system and multi.sha == single.sha
    text = multi.followups[Category.ADDITION][1].render(
        {"instruction": "add a hat", "object": "hat", "box_hint": "HINT", "width": 1, "height": 2}
    )
    assert "hat" in text and "HINT" in text and "$" not in text


@pytest.mark.parametrize("strategy", ["multi_turn", "single_call"])
def test_prompt_set_v2_asks_object_boxes_only_with_grounding(strategy):
    on = load_prompts(strategy, "v2", ground_objects=True)
    off = load_prompts(strategy, "v2", ground_objects=False)
    assert on.asks_object_box and not off.asks_object_box
    assert on.ground_objects and not off.ground_objects and on.sha == off.sha
    assert not load_prompts(strategy, "v1", ground_objects=True).asks_object_box
    grounded = {Category.LOCAL, Category.REMOVE, Category.BACKGROUND}
    if strategy == "single_call":
        v1 = load_prompts(strategy, "v1").first
        assert [(t.fields, t.template.template) for t in off.first] == [
            (t.fields, t.template.template) for t in v1]
        assert on.first[0].fields[-1] == "object_box" and not on.first[0].optional
        return
    def names(turns):
        return [(t.name, t.fields, t.template.template) for t in turns]

    for category in Category:
        with_box = [t for t in on.turns_after(category) if "object_box" in t.fields]
        without = names(off.turns_after(category))
        if category in grounded:  # one extra question, the last, asking only for the box
            assert len(with_box) == 1 and on.turns_after(category)[-1] is with_box[0]
            assert with_box[0].optional and with_box[0].grounding is True
            assert names(on.turns_after(category)[:-1]) == without
        else:
            assert with_box == [] and names(on.turns_after(category)) == without


def test_object_box_turn_must_be_marked_grounding(tmp_path):
    followups = "followups:\n" + "".join(
        f"  {c.value}:\n    - {{prompt: all.txt, fields: [object, target_prompt, source_caption, "
        f"target_caption, box]}}\n    - {{prompt: all.txt, fields: [object_box]}}\n" for c in Category
    )
    root = _prompt_dir(tmp_path, "Instruction: $instruction", followups)
    with pytest.raises(ValueError, match="grounding: true"):
        load_prompts("multi_turn", "v9", root)


def test_object_box_schema_is_nullable_and_parsing_is_lenient():
    schema = json_schema(["object_box"])
    assert schema["required"] == ["object_box"]
    assert schema["properties"]["object_box"] == {"anyOf": [
        {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        {"type": "null"},
    ]}
    # a malformed box is the box check's business (a recorded reason), not a schema failure
    for value in ([1, 2, 3], None, ["a", 1, 2, 3], [1, 2, 3, 4]):
        assert parse_reply(json.dumps({"object_box": value}), ["object_box"]) == {"object_box": value}
    with pytest.raises(ReplyError, match="object_box"):
        parse_reply("{}", ["object_box"])


def _prompt_dir(tmp_path: Path, category_text: str, followups: str = "") -> Path:
    root = tmp_path / "prompts"
    folder = root / "v9"
    folder.mkdir(parents=True)
    (folder / "category.txt").write_text(category_text)
    (folder / "repair.txt").write_text("fix: $error $schema")
    (folder / "all.txt").write_text("all fields for $instruction")
    manifest = "first:\n  - {prompt: category.txt, fields: [category]}\n" + followups
    (folder / "multi_turn.yaml").write_text(manifest)
    return root


def test_prompt_loading_errors_are_clear(tmp_path):
    root = _prompt_dir(tmp_path, "Instruction: $instruction, $colour")
    with pytest.raises(ValueError, match="colour"):
        load_prompts("multi_turn", "v9", root)
    root2 = _prompt_dir(tmp_path / "b", "Instruction: $instruction")
    with pytest.raises(ValueError, match="needs"):
        load_prompts("multi_turn", "v9", root2)  # no follow-ups: categories lack fields
    with pytest.raises(FileNotFoundError, match="prompt_version"):
        load_prompts("multi_turn", "v404")
    with pytest.raises(ValueError, match="strategy"):
        load_prompts("three_turns", "v1")
    assert default_prompts_dir().name == "prompts"


def test_custom_prompt_set_with_one_followup_for_all_fields(tmp_path):
    fields = "[object, target_prompt, source_caption, target_caption, box]"
    followups = "followups:\n" + "".join(
        f"  {c.value}:\n    - {{prompt: all.txt, fields: {fields}}}\n" for c in Category
    )
    root = _prompt_dir(tmp_path, "Instruction: $instruction", followups)
    prompts = load_prompts("multi_turn", "v9", root)
    assert prompts.system == ""
    assert prompts.turns_after(Category.LOCAL)[0].name == "all"


# ----------------------------------------------------------------------------- settings


def test_settings_reject_typos_and_bad_values():
    with pytest.raises(ValueError, match="concurency"):
        VLMSettings.from_config({"model": "m", "family": "qwen2_vl", "concurency": 8})
    with pytest.raises(ValueError, match="concurrency"):
        VLMSettings.from_config({"model": "m", "family": "qwen2_vl", "concurrency": 0})
    with pytest.raises(ValueError, match="base_url"):
        VLMSettings.from_config({"base_url": "127.0.0.1:8000", "family": "qwen2_vl"})
    with pytest.raises(ValueError, match="vlm.coords"):
        VLMSettings.from_config({"family": "mystery"})
    s = VLMSettings.from_config({"family": "qwen3_vl", "serve": {"port": 1}, "extra_body": None})
    assert s.vision_patch_size == 16 and s.coord_convention is Coords.RELATIVE_1000


def test_api_key_resolution(monkeypatch):
    monkeypatch.delenv("IIIE_VLM_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert VLMSettings().resolved_api_key() == "EMPTY"
    monkeypatch.setenv("OPENAI_API_KEY", "openai")
    assert VLMSettings().resolved_api_key() == "openai"
    monkeypatch.setenv("IIIE_VLM_API_KEY", "ours")
    assert VLMSettings().resolved_api_key() == "ours"
    assert VLMSettings(api_key="explicit").resolved_api_key() == "explicit"


def test_every_shipped_vlm_config_composes_and_validates(make_cfg):
    folder = Path(serve.CONF_DIR) / "vlm"
    names = sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "base")
    assert "qwen2_5_vl_7b" in names and len(names) >= 4
    for name in names:
        cfg = make_cfg("planner=vlm", f"vlm={name}")
        settings = VLMSettings.from_config(cfg.vlm)
        assert settings.model and settings.family in ("qwen2_5_vl", "qwen2_vl", "qwen3_vl")
        assert cfg.planner.vlm.model == settings.model


# ----------------------------------------------------------------------------- serving


def test_serve_command_from_config():
    vlm = serve.compose_vlm(["vlm=qwen3_vl_8b", "vlm.serve.port=8123", "paths.weights=/w"])
    cmd = serve.build_command(vlm)
    assert cmd[:3] == ["vllm", "serve", "/w/Qwen3-VL-8B-Instruct"]
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert flags["--served-model-name"] == "Qwen3-VL-8B-Instruct"
    assert flags["--host"] == "127.0.0.1" and flags["--port"] == "8123"
    assert json.loads(flags["--limit-mm-per-prompt"]) == {"image": 2}
    assert flags["--max-model-len"] == str(vlm["serve"]["max_model_len"])
    assert flags["--gpu-memory-utilization"] == str(vlm["serve"]["gpu_memory_utilization"])
    assert "--max-num-seqs" not in flags  # null -> vLLM's default
    # base_url still says 8000: the mismatch is pointed out
    assert "8123" in serve.check_base_url(vlm)
    vlm["base_url"] = "http://localhost:8123/v1"
    assert serve.check_base_url(vlm) is None


def test_serve_dry_run_prints_the_command(capsys):
    assert serve.main(["--dry-run", "vlm=qwen2_vl_7b", "vlm.serve.extra_args=[--enforce-eager]"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("$ ") and "serve" in out and "--enforce-eager" in out
    assert "Qwen2-VL-7B-Instruct" in out
    assert serve.main(["--bogus"]) == 2


def test_serve_checks_weights_then_execs_vllm(tmp_path, monkeypatch, capsys):
    from iiie.weights import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="vlm.serve.model_path"):
        serve.serve([f"paths.weights={tmp_path}"])
    # the CLI entry prints one error line (no traceback) and exits 2
    capsys.readouterr()
    assert serve.main([f"paths.weights={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: weights folder not found") and "vlm.serve.model_path" in err
    assert "Traceback" not in err
    model = tmp_path / "Qwen2.5-VL-7B-Instruct"
    model.mkdir()
    (model / "config.json").write_text("{}")
    monkeypatch.setattr(serve.shutil, "which", lambda name: None)
    with pytest.raises(BackendUnavailableError, match=r"constraints-gpu\.txt"):
        serve.serve([f"paths.weights={tmp_path}"])
    assert serve.main([f"paths.weights={tmp_path}"]) == 2
    assert capsys.readouterr().err.startswith("error: the `vllm` command is not on PATH")
    calls = []
    monkeypatch.setattr(serve.shutil, "which", lambda name: f"/opt/bin/{name}")
    monkeypatch.setattr(serve.os, "execvpe", lambda f, argv, env: calls.append((f, argv, env)))
    monkeypatch.setenv("IIIE_VLM_API_KEY", "s3cret")
    serve.main([f"paths.weights={tmp_path}"])
    (file, argv, env), = calls
    assert file == "/opt/bin/vllm" and argv[2] == str(model)
    assert env["VLLM_API_KEY"] == "s3cret" and "s3cret" not in argv


# ----------------------------------------------------------------------------- event loop


def test_background_loop_from_sync_async_and_after_close():
    import asyncio

    from iiie.vlm.aio import BackgroundLoop

    bg = BackgroundLoop()

    async def where():
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    first = bg.run(where())
    assert bg.run(where()) is first  # one loop across calls (the HTTP pool stays bound to it)

    async def from_another_loop():
        return await bg.arun(where())

    assert asyncio.run(from_another_loop()) is first

    async def reenter():
        return bg.run(where())  # a blocking call from the loop's own thread would deadlock

    with pytest.raises(RuntimeError, match="own loop"):
        bg.run(reenter())
    bg.close()
    assert first.is_closed()
    assert bg.run(where()) is not first  # usable again after close
    bg.close()
