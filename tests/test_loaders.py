"""Benchmark loaders on miniature datasets written here in each benchmark's real layout."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from iiie.data import categories
from iiie.data.emu_edit import EmuEditDataset
from iiie.data.folder import FolderDataset, load_mask
from iiie.data.gedit_bench import GEditBenchDataset
from iiie.data.magicbrush import MagicBrushDataset
from iiie.data.pie_bench import PIEBenchDataset, decode_run_mask, encode_run_mask
from iiie.errors import ImageLoadError
from iiie.types import Category

REPO = Path(__file__).resolve().parents[1]


def _img(color, size=(16, 12), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ PIE-Bench run lists


def test_decode_run_mask_matches_self_encoded_masks():
    rng = np.random.default_rng(0)
    for _ in range(5):
        mask = rng.random((512, 512)) > 0.7
        runs = encode_run_mask(mask)
        assert np.array_equal(decode_run_mask(runs, border=False), mask)
        with_border = mask.copy()
        with_border[0, :] = with_border[-1, :] = with_border[:, 0] = with_border[:, -1] = True
        assert np.array_equal(decode_run_mask(runs), with_border)


def test_decode_run_mask_by_hand_row_major_and_clipping():
    # 4x5 array: run (6, 3) covers row 1 cols 1..3; (18, 10) is clipped at the end (18, 19).
    m = decode_run_mask([6, 3, 18, 10, 50, 2], shape=(4, 5), border=False)
    expected = np.zeros((4, 5), bool)
    expected[1, 1:4] = True
    expected[3, 3:5] = True
    assert np.array_equal(m, expected)
    b = decode_run_mask([], shape=(4, 5))
    assert b.sum() == 4 * 5 - 2 * 3  # everything but the 2x3 interior
    with pytest.raises(ValueError, match="odd length"):
        decode_run_mask([1, 2, 3])


def _pie(tmp_path: Path) -> Path:
    root = tmp_path / "pie"
    (root / "annotation_images" / "1_change_object_80").mkdir(parents=True, exist_ok=True)
    (root / "annotation_images" / "0_random_140").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (512, 512), (10, 20, 30)).save(
        root / "annotation_images/1_change_object_80/a.jpg"
    )
    Image.new("RGB", (512, 512), (40, 50, 60)).save(root / "annotation_images/0_random_140/b.jpg")
    mask = np.zeros((512, 512), bool)
    mask[100:200, 50:300] = True
    mapping = {
        "111000000000": {
            "image_path": "1_change_object_80/a.jpg",
            "original_prompt": "a [cat] sitting on a mat",
            "editing_prompt": "a [dog] sitting on a mat",
            "editing_instruction": "Change the cat to a dog",
            "editing_type_id": "1",
            "blended_word": "cat dog",
            "mask": encode_run_mask(mask),
        },
        "000000000001": {
            "image_path": "0_random_140/b.jpg",
            "original_prompt": "a [red] car",
            "editing_prompt": "a [blue] car in watercolor",
            "editing_instruction": "make it blue watercolor",
            "editing_type_id": "0",
            "blended_word": "",
            "mask": [],
        },
    }
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    return root


def test_pie_bench_loader(tmp_path):
    ds = PIEBenchDataset(str(_pie(tmp_path)))
    assert ds.ids() == ["111000000000", "000000000001"]
    s = ds.load("111000000000")
    assert s.request.instruction == "Change the cat to a dog"
    assert s.request.image.size == (512, 512) and s.request.image.mode == "RGB"
    assert s.truth.category is Category.LOCAL
    assert s.truth.source_caption == "a cat sitting on a mat"
    assert s.truth.target_caption == "a dog sitting on a mat"
    assert s.truth.mask.dtype == bool and s.truth.mask[150, 100] and not s.truth.mask[300, 300]
    assert s.truth.mask[0, 300] and s.truth.mask[300, 511]  # reference border
    assert ds.load("000000000001").truth.category is None  # random editing: no category
    only = PIEBenchDataset(str(_pie(tmp_path)), editing_types=["1"])
    assert only.ids() == ["111000000000"]
    assert PIEBenchDataset(str(_pie(tmp_path)), n=1).ids() == ["111000000000"]
    fp = ds.fingerprint()
    assert fp["name"] == "pie_bench" and fp["entries"] == 2


def test_pie_bench_bad_image_is_sample_error(tmp_path):
    root = _pie(tmp_path)
    (root / "annotation_images/0_random_140/b.jpg").write_bytes(b"not a jpeg")
    ds = PIEBenchDataset(str(root))
    with pytest.raises(ImageLoadError):
        ds.load("000000000001")
    ds.load("111000000000")  # the others still load


# ------------------------------------------------------------------ MagicBrush


def _magicbrush(tmp_path: Path) -> Path:
    root = tmp_path / "mb"
    d = root / "images" / "327726"
    d.mkdir(parents=True, exist_ok=True)
    _img((200, 0, 0)).save(d / "327726-input.png")
    _img((0, 200, 0)).save(d / "327726-output1.png")
    _img((0, 0, 200)).save(d / "327726-output2.png")
    # turn 1 mask: DALL-E style, transparent pixels = edit
    m1 = Image.new("RGBA", (16, 12), (200, 0, 0, 255))
    for x in range(2, 5):
        m1.putpixel((x, 3), (255, 255, 255, 0))
    m1.save(d / "327726-mask1.png")
    # turn 2 mask: white-on-black
    m2 = Image.new("L", (16, 12), 0)
    m2.putpixel((10, 8), 255)
    m2.save(d / "327726-mask2.png")
    sessions = {
        "327726": [
            {
                "input": "327726-input.png",
                "mask": "327726-mask1.png",
                "output": "327726-output1.png",
                "instruction": "make the shirt green",
            },
            {
                "input": "327726-output1.png",
                "mask": "327726-mask2.png",
                "output": "327726-output2.png",
                "instruction": "add a blue hat",
            },
        ]
    }
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    (root / "local_descriptions.json").write_text(
        json.dumps(
            {"327726": {"327726-output1.png": "green shirt", "327726-output2.png": "blue hat"}}
        )
    )
    (root / "global_descriptions.json").write_text(
        json.dumps(
            {
                "327726": {
                    "327726-input.png": "a man",
                    "327726-output1.png": "a man in green",
                    "327726-output2.png": "a man in green with a blue hat",
                }
            }
        )
    )
    return root


def test_magicbrush_independent(tmp_path):
    ds = MagicBrushDataset(str(_magicbrush(tmp_path)))
    assert ds.ids() == ["327726-t1", "327726-t2"]
    s1, s2 = ds.load("327726-t1"), ds.load("327726-t2")
    assert s1.request.image.getpixel((0, 0)) == (200, 0, 0)
    assert s1.truth.target.getpixel((0, 0)) == (0, 200, 0)
    assert s2.request.image.getpixel((0, 0)) == (0, 200, 0)  # turn 2 starts from gt output1
    assert s2.request.instruction == "add a blue hat"
    assert s1.truth.target_caption == "green shirt"  # local description
    assert s1.truth.source_caption == "a man"
    assert s1.truth.mask.sum() == 3 and s1.truth.mask[3, 2:5].all()
    assert s2.truth.mask.sum() == 1 and s2.truth.mask[8, 10]
    assert s1.truth.category is None
    assert (s2.truth.extra["session"], s2.truth.extra["turn"]) == ("327726", "2")


def test_magicbrush_final_turn(tmp_path):
    ds = MagicBrushDataset(str(_magicbrush(tmp_path)), setting="final_turn")
    assert ds.ids() == ["327726"]
    s = ds.load("327726")
    assert s.request.image.getpixel((0, 0)) == (200, 0, 0)
    assert s.truth.target.getpixel((0, 0)) == (0, 0, 200)
    assert s.request.meta["turns"] == ["make the shirt green", "add a blue hat"]
    assert s.truth.mask.sum() == 4  # union of both turns
    assert s.truth.target_caption == "blue hat"
    with pytest.raises(ValueError):
        MagicBrushDataset(str(_magicbrush(tmp_path)), setting="iterative")


# ------------------------------------------------------------------ Emu Edit


def _emu_rows(n, tasks, edited=False):
    rows = {
        "instruction": [f"do {t}" for t in tasks[:n]],
        "image": [{"bytes": _png_bytes(_img((i * 10, 0, 0))), "path": None} for i in range(n)],
        "task": list(tasks[:n]),
        "split": ["x"] * n,
        "idx": list(range(100, 100 + n)),
        "hash": [f"h{i}" for i in range(n)],
        "input_caption": [f"in {i}" for i in range(n)],
        "output_caption": [f"out {i}" for i in range(n)],
    }
    if edited:
        rows["edited_image"] = [
            {"bytes": _png_bytes(_img((0, i * 10, 0))), "path": None} for i in range(n)
        ]
        rows["model"] = ["emu_edit"] * n
    return pa.table(rows)


def test_emu_edit_parquet(tmp_path):
    root = tmp_path / "emu" / "data"
    root.mkdir(parents=True, exist_ok=True)
    tasks = ["add", "background", "global", "local", "remove", "style", "texture", "add"]
    t = _emu_rows(8, tasks)
    pq.write_table(t.slice(0, 5), root / "test-00000-of-00002-abc.parquet", row_group_size=2)
    pq.write_table(t.slice(5), root / "test-00001-of-00002-def.parquet", row_group_size=2)
    pq.write_table(_emu_rows(2, tasks), root / "validation-00000-of-00001-x.parquet")
    ds = EmuEditDataset(str(tmp_path / "emu"))
    assert ds.ids() == [str(i) for i in range(100, 108)]
    s = ds.load("106")
    assert s.request.image.getpixel((0, 0)) == (60, 0, 0)
    assert s.request.instruction == "do texture"
    assert s.truth.category is Category.LOCAL
    assert (s.truth.source_caption, s.truth.target_caption) == ("in 6", "out 6")
    got = [ds.load(i).truth.category for i in ds.ids()]
    assert got == [categories.EMU_EDIT[t] for t in tasks]
    assert len(EmuEditDataset(str(tmp_path / "emu"), split="validation")) == 2
    assert EmuEditDataset(str(tmp_path / "emu"), n=3).ids() == ["100", "101", "102"]


def test_emu_edit_generations_swapped_split_save_to_disk(tmp_path):
    root = tmp_path / "gens"
    tasks = ["add", "remove", "local"]
    for split, n in (
        ("validation", 3),
        ("test", 1),
    ):  # generations: 'validation' holds the test rows
        (root / split).mkdir(parents=True, exist_ok=True)
        table = _emu_rows(n, tasks, edited=True)
        with pa.OSFile(str(root / split / "data-00000-of-00001.arrow"), "wb") as sink:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
    ds = EmuEditDataset(str(root), split="test")
    assert ds.generations and ds.file_split == "validation"
    assert len(ds) == 3
    s = ds.load("101")
    assert s.truth.category is Category.REMOVE
    assert s.truth.extra["reference_edit"].getpixel((0, 0)) == (0, 10, 0)


# ------------------------------------------------------------------ GEdit-Bench


def test_gedit_bench(tmp_path):
    root = tmp_path / "gedit"
    root.mkdir()
    tasks = sorted(categories.GEDIT_BENCH)
    n = len(tasks)
    table = pa.table(
        {
            "task_type": tasks + tasks[:1],
            "key": [f"k{i}" for i in range(n)] + ["k0"],
            "instruction": [f"edit {t}" for t in tasks] + ["把背景换掉"],
            "instruction_language": ["en"] * n + ["cn"],
            "input_image": [
                {"bytes": _png_bytes(_img((i, i, i))), "path": None} for i in range(n + 1)
            ],
            "input_image_raw": [
                {"bytes": _png_bytes(_img((i, 0, 0), size=(32, 24))), "path": None}
                for i in range(n + 1)
            ],
            "Intersection_exist": [True] * (n + 1),
        }
    )
    pq.write_table(table, root / "train-00000-of-00001.parquet", row_group_size=4)
    ds = GEditBenchDataset(str(root))
    assert len(ds) == n
    for i, t in enumerate(tasks):
        s = ds.load(f"k{i}")
        assert s.truth.category == categories.GEDIT_BENCH[t]
        assert s.request.image.getpixel((0, 0)) == (i, i, i)
    both = GEditBenchDataset(str(root), language="all")
    assert "k0-cn" in both.ids() and len(both) == n + 1
    raw = GEditBenchDataset(str(root), image_column="input_image_raw")
    assert raw.load("k1").request.image.size == (32, 24)


def test_unknown_labels_are_errors(tmp_path):
    root = tmp_path / "gedit"
    root.mkdir()
    pq.write_table(
        pa.table(
            {
                "task_type": ["teleport"],
                "key": ["a"],
                "instruction": ["x"],
                "instruction_language": ["en"],
                "input_image": [{"bytes": _png_bytes(_img((1, 1, 1))), "path": None}],
            }
        ),
        root / "train-0.parquet",
    )
    with pytest.raises(ValueError, match="unknown edit type 'teleport'"):
        GEditBenchDataset(str(root))


# ------------------------------------------------------------------ folder


def test_folder_loader(tmp_path):
    (tmp_path / "imgs").mkdir()
    _img((1, 2, 3)).save(tmp_path / "imgs" / "a.png")
    _img((9, 9, 9), mode="RGB").save(tmp_path / "target.png")
    Image.fromarray((np.eye(12, 16) * 255).astype(np.uint8)).save(tmp_path / "m.png")
    abs_img = tmp_path / "abs.png"
    _img((4, 5, 6), mode="RGBA").save(abs_img)
    lines = [
        {
            "id": "a",
            "image": "imgs/a.png",
            "instruction": "make it red",
            "category": "Local",
            "object": "cup",
            "mask": "m.png",
            "target": "target.png",
            "note": "kept",
        },
        {"id": "b", "image": str(abs_img), "instruction": "remove the cup"},
    ]
    (tmp_path / "samples.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    ds = FolderDataset(str(tmp_path))
    assert ds.ids() == ["a", "b"]
    a = ds.load("a")
    assert a.request.image.getpixel((0, 0)) == (1, 2, 3)
    assert a.truth.category is Category.LOCAL and a.truth.object == "cup"
    assert a.truth.mask.shape == (12, 16) and a.truth.mask.sum() == 12
    assert a.truth.target.getpixel((0, 0)) == (9, 9, 9)
    assert a.truth.extra == {"note": "kept"}
    b = ds.load("b")
    assert b.request.image.mode == "RGB" and b.truth.category is None and b.truth.mask is None
    assert FolderDataset(str(tmp_path / "samples.jsonl"), n=1).ids() == ["a"]
    fp1 = ds.fingerprint()
    (tmp_path / "samples.jsonl").write_text(json.dumps(lines[0]) + "\n")
    assert FolderDataset(str(tmp_path)).fingerprint() != fp1


def test_folder_loader_errors(tmp_path):
    (tmp_path / "samples.jsonl").write_text('{"id": "a", "image": "x.png"}\n')
    with pytest.raises(ValueError, match="missing required key 'instruction'"):
        FolderDataset(str(tmp_path))
    (tmp_path / "samples.jsonl").write_text('{"id": "a", "image": "x.png", "instruction": "hi"}\n')
    with pytest.raises(ImageLoadError):
        FolderDataset(str(tmp_path)).load("a")
    (tmp_path / "samples.jsonl").write_text(
        '{"id": "a", "image": "x.png", "instruction": "hi", "category": "zoom"}\n'
    )
    with pytest.raises(ValueError, match="unknown edit category"):
        FolderDataset(str(tmp_path))


def test_load_mask_conventions(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 255))
    rgba.putpixel((1, 2), (0, 0, 0, 0))
    rgba.save(tmp_path / "t.png")
    m = load_mask(tmp_path / "t.png")
    assert m.sum() == 1 and m[2, 1]
    opaque = Image.new("RGBA", (4, 4), (255, 255, 255, 255))
    opaque.save(tmp_path / "o.png")
    assert load_mask(tmp_path / "o.png").all()  # opaque: read as white = change


# ------------------------------------------------------------------ docs agree with tables


@pytest.mark.parametrize("bench", sorted(categories.TABLES))
def test_category_tables_documented(bench):
    text = (REPO / "docs" / "EVALUATION.md").read_text(encoding="utf-8")
    section = text.split(f"<!-- categories:{bench} -->", 1)[1].split("<!-- /categories -->", 1)[0]
    rows = dict(
        re.findall(r"^\|\s*`([^`]+)`\s*\|[^|]*\|\s*([a-z]+|—)\s*\|\s*$", section, flags=re.M)
    )
    expected = {k: (v.value if v else "—") for k, v in categories.TABLES[bench].items()}
    assert rows == expected


# ------------------------------------------------------------------ configs


def test_data_configs_compose_and_instantiate(tmp_path):
    from conftest import compose_config
    from hydra.utils import instantiate

    (tmp_path / "folder").mkdir()
    _img((1, 2, 3)).save(tmp_path / "folder" / "a.png")
    (tmp_path / "folder" / "samples.jsonl").write_text(
        json.dumps({"id": "a", "image": "a.png", "instruction": "x"}) + "\n"
    )
    roots = {
        "pie_bench": _pie(tmp_path),
        "magicbrush": _magicbrush(tmp_path),
        "folder": tmp_path / "folder",
    }
    for name, root in roots.items():
        # the default experiment (smoke) sets synthetic-only data keys: drop them here
        cfg = compose_config([f"data={name}", f"data.root={root}"])
        ds = instantiate(cfg.data)
        assert ds.name == name and ds.ids()
        ds.load(ds.ids()[0])
    cfg = compose_config(["data=emu_edit"])
    assert cfg.data.root.endswith("/emu_edit") and cfg.data.split == "test"


def test_stale_duplicate_shards_are_refused(tmp_path):
    root = tmp_path / "emu" / "data"
    root.mkdir(parents=True)
    t = _emu_rows(2, ["add", "remove"])
    pq.write_table(t, root / "test-00000-of-00001-aaa.parquet")
    pq.write_table(t, root / "test-00000-of-00001-bbb.parquet")
    with pytest.raises(ValueError, match="two files hold shard"):
        EmuEditDataset(str(tmp_path / "emu"))


# ------------------------------------------------------------------ fingerprints ignore n


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "folder"
    root.mkdir(exist_ok=True)
    rows = []
    for i in range(7):
        _img((i, i, i)).save(root / f"{i}.png")
        rows.append({"id": f"s{i}", "image": f"{i}.png", "instruction": f"edit {i}"})
    (root / "samples.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def _emu(tmp_path: Path) -> Path:
    root = tmp_path / "emu_n" / "data"
    root.mkdir(parents=True, exist_ok=True)
    tasks = ["add", "background", "global", "local", "remove", "style", "texture"]
    pq.write_table(_emu_rows(7, tasks), root / "test-00000-of-00001-a.parquet")
    return root.parent


def _gedit(tmp_path: Path) -> Path:
    root = tmp_path / "gedit_n"
    root.mkdir(exist_ok=True)
    tasks = sorted(categories.GEDIT_BENCH)[:7]
    n = len(tasks)
    table = pa.table(
        {
            "task_type": tasks,
            "key": [f"k{i}" for i in range(n)],
            "instruction": [f"edit {t}" for t in tasks],
            "instruction_language": ["en"] * n,
            "input_image": [{"bytes": _png_bytes(_img((i, i, i))), "path": None} for i in range(n)],
        }
    )
    pq.write_table(table, root / "train-00000-of-00001.parquet")
    return root


def _magicbrush_many(tmp_path: Path) -> Path:
    root = _magicbrush(tmp_path)
    sessions = json.loads((root / "edit_sessions.json").read_text())
    for k in range(3):  # 3 more two-turn sessions (only their ids are used): 8 ids in all
        sessions[f"327726{k}"] = sessions["327726"]
        (root / "images" / f"327726{k}").mkdir(exist_ok=True)
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    return root


@pytest.mark.parametrize(
    "make,cls",
    [
        (_folder, FolderDataset),
        (_pie, PIEBenchDataset),
        (_magicbrush_many, MagicBrushDataset),
        (_emu, EmuEditDataset),
        (_gedit, GEditBenchDataset),
    ],
)
def test_fingerprint_ignores_n(tmp_path, make, cls):
    """data.n is a limit, not content: growing it must not change the plan cache key."""
    root = str(make(tmp_path))
    full = cls(root)
    k = min(5, len(full.ids()) - 1)
    assert k >= 1
    small, bigger = cls(root, n=k), cls(root, n=k + 1)
    assert small.fingerprint() == bigger.fingerprint() == full.fingerprint()
    assert bigger.ids()[:k] == small.ids() == full.ids()[:k]
    assert len(bigger.ids()) == k + 1


# ------------------------------------------------------------------ missing data folders


@pytest.mark.parametrize(
    "cls,name",
    [
        (FolderDataset, "folder"),
        (PIEBenchDataset, "pie_bench"),
        (MagicBrushDataset, "magicbrush"),
        (EmuEditDataset, "emu_edit"),
        (GEditBenchDataset, "gedit_bench"),
    ],
)
def test_missing_dataset_folder_names_the_config_keys(tmp_path, cls, name):
    from iiie.errors import DatasetNotFoundError, IIIEError

    with pytest.raises(DatasetNotFoundError) as info:
        cls(str(tmp_path / "nowhere"))
    msg = str(info.value)
    assert isinstance(info.value, IIIEError) and isinstance(info.value, FileNotFoundError)
    assert "`data.root`" in msg and "`paths.data`" in msg and name in msg
    assert str(tmp_path / "nowhere") in msg


def test_missing_split_names_the_config_keys(tmp_path):
    from iiie.errors import DatasetNotFoundError

    root = _emu(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"split 'dev'.*`data.root`"):
        EmuEditDataset(str(root), split="dev")


# ------------------------------------------------------------------ oracle masks from GT


def test_loaders_give_the_oracle_their_ground_truth_masks(tmp_path):
    """pie_bench / magicbrush / folder samples carry meta["edit_mask"] (and objects when
    the object is named), so masker=oracle finds a region instead of failing."""
    from iiie.maskers.oracle import OracleMasker
    from iiie.types import Plan

    oracle = OracleMasker(categories={c.value: {"dilate": 0.0, "shape": "mask"} for c in Category})
    # PIE-Bench: no phrase; the oracle edit region has no forced evaluation border
    pie = PIEBenchDataset(str(_pie(tmp_path)))
    s = pie.load("111000000000")
    edit = s.request.meta["edit_mask"]
    assert "objects" not in s.request.meta
    assert edit.sum() == 100 * 250 and not edit[0].any()
    assert s.truth.mask[0].all()  # the metric mask keeps the reference border
    r = oracle.mask(s.request, Plan(Category.LOCAL, "whatever the planner said"))
    assert r.source == "oracle:edit-mask" and (r.mask == edit).all()
    assert "edit_mask" not in pie.load("000000000001").request.meta  # empty mask: nothing
    # MagicBrush: the drawn mask (union over turns in final_turn)
    mb = MagicBrushDataset(str(_magicbrush(tmp_path)), setting="final_turn").load("327726")
    assert mb.request.meta["edit_mask"].sum() == 4
    r = oracle.mask(mb.request, Plan(Category.REMOVE, "hat"))
    assert r.source == "oracle:edit-mask" and r.mask.sum() == 4
    # folder: object named -> objects lookup, planner mistakes still fail
    root = tmp_path / "f"
    root.mkdir()
    _img((1, 2, 3)).save(root / "a.png")
    m = np.zeros((12, 16), bool)
    m[2:6, 3:9] = True
    Image.fromarray(m).save(root / "m.png")
    rows = [
        {"id": "named", "image": "a.png", "instruction": "x", "object": "cup", "mask": "m.png",
         "category": "local"},
        {"id": "unnamed", "image": "a.png", "instruction": "x", "mask": "m.png"},
        {"id": "bg", "image": "a.png", "instruction": "x", "object": "cup", "mask": "m.png",
         "category": "background"},
        {"id": "add", "image": "a.png", "instruction": "x", "object": "hat", "mask": "m.png",
         "category": "addition"},
        {"id": "nocat", "image": "a.png", "instruction": "x", "object": "cup", "mask": "m.png"},
    ]
    (root / "samples.jsonl").write_text("\n".join(json.dumps(x) for x in rows) + "\n")
    ds = FolderDataset(str(root))
    named, unnamed = ds.load("named"), ds.load("unnamed")
    assert set(named.request.meta["objects"]) == {"cup"}
    r = oracle.mask(named.request, Plan(Category.LOCAL, "the cup"))
    assert r.source == "oracle:exact" and (r.mask == m).all()
    from iiie.errors import SampleError

    with pytest.raises(SampleError, match="mug"):
        oracle.mask(named.request, Plan(Category.LOCAL, "mug"))
    r = oracle.mask(unnamed.request, Plan(Category.BACKGROUND, "cup"))
    assert r.source == "oracle:edit-mask" and (r.mask == m).all()  # not complemented
    # background line: the named subject is the complement of the change region
    bg = ds.load("bg")
    assert (bg.request.meta["objects"]["cup"] == ~m).all()
    r = oracle.mask(bg.request, Plan(Category.BACKGROUND, "cup"))
    assert r.source == "oracle:exact" and (r.mask == m).all()
    # an object to add is not in the source; without a category the relation is unknown
    for sid in ("add", "nocat"):
        meta = ds.load(sid).request.meta
        assert "objects" not in meta and (meta["edit_mask"] == m).all()


# ------------------------------------------------------------------ decoding as the references do


def _rotated_jpeg(path: Path, orientation: int = 6) -> np.ndarray:
    """A 512x512 JPEG whose EXIF says "rotate 90° to display" (orientation 6); returns the
    stored pixels as the references read them."""
    arr = np.zeros((512, 512, 3), np.uint8)
    arr[:, :256] = (220, 30, 30)  # left half red: a rotation moves it to the top or bottom
    arr[:, 256:] = (30, 30, 220)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(path, "JPEG", quality=95, exif=exif.tobytes())
    # PnPInversion evaluate.py: ``src_image = Image.open(src_image_path)`` (then np.array);
    # MagicBrush image_eval.py: ``Image.open(path).convert('RGB')``; neither applies EXIF.
    return np.array(Image.open(path).convert("RGB"))


def test_benchmark_images_decode_like_the_reference_scripts(tmp_path):
    """A rotated JPEG in the PIE-Bench layout: the reference decoding keeps the stored
    pixel order (the run-length mask is over it); the friendly one would rotate it."""
    root = _pie(tmp_path)
    ref = _rotated_jpeg(root / "annotation_images/1_change_object_80/a.jpg")
    s = PIEBenchDataset(str(root)).load("111000000000")  # decode: reference by default
    np.testing.assert_array_equal(np.asarray(s.request.image), ref)
    # the annotated region (rows 100..200, cols 50..300) covers stored red and blue pixels
    assert s.truth.mask[150, 100] and tuple(ref[150, 100]) == tuple(np.asarray(s.request.image)[150, 100])
    friendly = PIEBenchDataset(str(root), decode="friendly").load("111000000000")
    assert not np.array_equal(np.asarray(friendly.request.image), ref)
    # orientation 6 = rotate 90° clockwise for display: the stored left half ends up on top
    np.testing.assert_array_equal(np.asarray(friendly.request.image), np.rot90(ref, k=-1))
    assert PIEBenchDataset(str(root)).fingerprint()["decode"] == "reference"
    with pytest.raises(ValueError, match="data.decode"):
        PIEBenchDataset(str(root), decode="exif")


def test_alpha_is_dropped_by_reference_decoding_and_composited_for_own_images(tmp_path):
    from iiie.imageio import load_image

    arr = np.zeros((16, 16, 4), np.uint8)
    arr[..., 1] = 200
    arr[:8, :, 3] = 0  # top half transparent, green underneath
    arr[8:, :, 3] = 255
    p = tmp_path / "a.png"
    Image.fromarray(arr, "RGBA").save(p)
    # reference: Image.open(p).convert('RGB') keeps the colour under the transparent pixels
    np.testing.assert_array_equal(
        np.asarray(load_image(p, decode="reference")), np.array(Image.open(p).convert("RGB"))
    )
    assert (np.asarray(load_image(p))[:8] == 255).all()  # friendly: over white
    (tmp_path / "samples.jsonl").write_text(
        json.dumps({"id": "a", "image": "a.png", "instruction": "x"}) + "\n"
    )
    own = FolderDataset(str(tmp_path))  # users' own images: friendly by default
    assert (np.asarray(own.load("a").request.image)[:8] == 255).all()
    assert "decode" not in own.fingerprint()  # the default keeps existing cache keys
