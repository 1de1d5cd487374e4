"""Benchmark metrics: hand-computed pixel values, and tiny random CLIP / DINO / SqueezeNet
models of the real classes saved to disk, loaded through the metric code, and checked
against a direct computation written independently here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iiie.data.base import GroundTruth, Sample
from iiie.metrics.backbones import load_clip, load_dino, vit_blocks
from iiie.metrics.columns import COLUMN_DOCS, COLUMN_ORDER
from iiie.metrics.distances import l1_l2_resized, psnr
from iiie.metrics.emu_edit import EmuEditMetric
from iiie.metrics.magicbrush import MagicBrushMetric
from iiie.metrics.pie_bench import PIEBenchMetric
from iiie.protocols import Scored
from iiie.types import Category, EditRequest, EditResult, MaskResult, Plan
from iiie.weights import MissingWeightsError

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])
IMNET_MEAN = np.array([0.485, 0.456, 0.406])
IMNET_STD = np.array([0.229, 0.224, 0.225])


# ------------------------------------------------------------------ tiny models on disk


def _byte_chars() -> list[str]:
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + i) for i in range(len(extra))]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    d = tmp_path_factory.mktemp("tiny_clip")
    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    eos = vocab["<|endoftext|>"]
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=eos,
            pad_token_id=eos,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=8,
    )
    CLIPModel(cfg).eval().save_pretrained(d)
    return d


def _vit_dir(tmp_path_factory, name, patch, layers):
    from transformers import ViTConfig, ViTModel

    d = tmp_path_factory.mktemp(name)
    torch.manual_seed(1)
    cfg = ViTConfig(
        hidden_size=24,
        num_hidden_layers=layers,
        num_attention_heads=3,
        intermediate_size=32,
        image_size=224,
        patch_size=patch,
        qkv_bias=True,
    )
    ViTModel(cfg, add_pooling_layer=False).eval().save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def dino16_dir(tmp_path_factory):
    return _vit_dir(tmp_path_factory, "tiny_dino_s16", 16, 2)


@pytest.fixture(scope="module")
def dino8_dir(tmp_path_factory):
    return _vit_dir(tmp_path_factory, "tiny_dino_b8", 8, 3)


@pytest.fixture(scope="module")
def squeeze_dir(tmp_path_factory):
    from torchvision.models import squeezenet1_1

    d = tmp_path_factory.mktemp("lpips")
    torch.manual_seed(2)
    torch.save(squeezenet1_1(weights=None).state_dict(), d / "squeezenet1_1-b8a52dc0.pth")
    return d


# ------------------------------------------------------------------ helpers


def _scored(image, edited, truth: GroundTruth) -> Scored:
    return Scored(
        sample=Sample(EditRequest("s", image, "edit it"), truth),
        plan=Plan(category=Category.LOCAL),
        mask=MaskResult(mask=np.zeros((image.size[1], image.size[0]), bool)),
        edit=EditResult(image=edited, editor="test"),
    )


def _rand_img(seed, size=(40, 30)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    h, w = arr.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return arr[top : top + size, left : left + size]


def _resize_short(img: Image.Image, short: int) -> Image.Image:
    w, h = img.size
    if w <= h:
        return img.resize((short, int(short * h / w)), Image.BICUBIC)
    return img.resize((int(short * w / h), short), Image.BICUBIC)


def _direct_clip_image(model, img: Image.Image, size: int) -> np.ndarray:
    arr = np.asarray(_resize_short(img, size), dtype=np.float64) / 255.0
    arr = (_center_crop(arr, size) - CLIP_MEAN) / CLIP_STD
    x = torch.tensor(arr.transpose(2, 0, 1)[None], dtype=torch.float32)
    with torch.no_grad():
        out = model.get_image_features(pixel_values=x)
    return getattr(out, "pooler_output", out)[0].double().numpy()


def _direct_clip_text(model, tok, text: str) -> np.ndarray:
    enc = tok([text], return_tensors="pt")
    with torch.no_grad():
        out = model.get_text_features(**enc)
    return getattr(out, "pooler_output", out)[0].double().numpy()


def _direct_dino_cls(model, img: Image.Image) -> np.ndarray:
    arr = np.asarray(_resize_short(img, 256), dtype=np.float64) / 255.0
    arr = (_center_crop(arr, 224) - IMNET_MEAN) / IMNET_STD
    x = torch.tensor(arr.transpose(2, 0, 1)[None], dtype=torch.float32)
    with torch.no_grad():
        return model(pixel_values=x).last_hidden_state[0, 0].double().numpy()


def _cos(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------ pixel arithmetic by hand


def test_l1_l2_by_hand_with_resize():
    out = Image.new("RGB", (8, 6), (10, 20, 30))  # resized to 4x3: a constant stays constant
    ref = Image.new("RGB", (4, 3), (13, 20, 30))
    l1, l2 = l1_l2_resized(out, ref)
    assert l1 == pytest.approx((3 / 255) / 3, rel=1e-6)
    assert l2 == pytest.approx((3 / 255) ** 2 / 3, rel=1e-6)
    assert l1_l2_resized(ref, ref) == (0.0, 0.0)


def test_psnr_by_hand_and_cap():
    a = np.zeros((2, 2, 3), np.float32)
    b = np.full((2, 2, 3), 0.1, np.float32)
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    assert psnr(a, a) == 100.0
    assert math.isinf(psnr(a, a, cap=None))


# ------------------------------------------------------------------ loaders and errors


def test_missing_folders_name_the_config_key(tmp_path, clip_dir, dino16_dir):
    with pytest.raises(MissingWeightsError, match="metrics.magicbrush.clip"):
        MagicBrushMetric(clip=str(tmp_path / "nope"), dino=str(dino16_dir))
    with pytest.raises(MissingWeightsError, match="metrics.magicbrush.dino"):
        MagicBrushMetric(clip=str(clip_dir), dino=None)
    with pytest.raises(MissingWeightsError, match="metrics.pie_bench.lpips"):
        PIEBenchMetric(clip=str(clip_dir), dino=str(dino16_dir), lpips=str(tmp_path))


def test_clip_and_dino_features_match_direct_computation(clip_dir, dino16_dir):
    from transformers import CLIPModel, CLIPTokenizer, ViTModel

    clip = load_clip(str(clip_dir), "k", "cpu")
    dino = load_dino(str(dino16_dir), "k", "cpu")
    ref_clip = CLIPModel.from_pretrained(str(clip_dir)).eval()
    tok = CLIPTokenizer.from_pretrained(str(clip_dir))
    ref_dino = ViTModel.from_pretrained(str(dino16_dir), add_pooling_layer=False).eval()
    img = _rand_img(3, (50, 37))  # not square: exercises the short-side resize and crop
    got = clip.image_features([img])[0].double().numpy()
    np.testing.assert_allclose(got, _direct_clip_image(ref_clip, img, 32), rtol=1e-4, atol=1e-5)
    got_t = clip.text_features(["a red cat"])[0].double().numpy()
    np.testing.assert_allclose(
        got_t, _direct_clip_text(ref_clip, tok, "a red cat"), rtol=1e-4, atol=1e-5
    )
    got_d = dino.cls_features([img])[0].double().numpy()
    np.testing.assert_allclose(got_d, _direct_dino_cls(ref_dino, img), rtol=1e-4, atol=1e-5)


def test_magicbrush_metric(clip_dir, dino16_dir):
    from transformers import CLIPModel, CLIPTokenizer, ViTModel

    m = MagicBrushMetric(clip=str(clip_dir), dino=str(dino16_dir), device="cpu")
    src, out, tgt = _rand_img(1), _rand_img(2, (80, 60)), _rand_img(3)
    rows = m.score_batch(
        [
            _scored(src, out, GroundTruth(target=tgt, target_caption="a dog on grass")),
            _scored(src, out, GroundTruth()),  # no target: no columns
        ]
    )
    assert rows[1] == {}
    r = rows[0]
    assert set(r) == {"mb_l1", "mb_l2", "mb_clip_i", "mb_dino", "mb_clip_t"}
    l1, l2 = l1_l2_resized(out, tgt)
    assert r["mb_l1"] == l1 and r["mb_l2"] == l2
    ref_clip = CLIPModel.from_pretrained(str(clip_dir)).eval()
    tok = CLIPTokenizer.from_pretrained(str(clip_dir))
    ref_dino = ViTModel.from_pretrained(str(dino16_dir), add_pooling_layer=False).eval()
    e_out, e_tgt = _direct_clip_image(ref_clip, out, 32), _direct_clip_image(ref_clip, tgt, 32)
    assert r["mb_clip_i"] == pytest.approx(_cos(e_out, e_tgt), abs=1e-5)
    assert r["mb_clip_t"] == pytest.approx(
        _cos(e_out, _direct_clip_text(ref_clip, tok, "a dog on grass")), abs=1e-5
    )
    assert r["mb_dino"] == pytest.approx(
        _cos(_direct_dino_cls(ref_dino, out), _direct_dino_cls(ref_dino, tgt)), abs=1e-5
    )


def test_emu_edit_metric(clip_dir, dino16_dir):
    from transformers import CLIPModel, CLIPTokenizer

    m = EmuEditMetric(clip=str(clip_dir), dino=str(dino16_dir), device="cpu", dir_preprocess="crop")
    src, out = _rand_img(4), _rand_img(5)
    truth = GroundTruth(source_caption="a cat", target_caption="a cat wearing a hat")
    r = m.score_batch([_scored(src, out, truth)])[0]
    ref = CLIPModel.from_pretrained(str(clip_dir)).eval()
    tok = CLIPTokenizer.from_pretrained(str(clip_dir))
    i0, i1 = _direct_clip_image(ref, src, 32), _direct_clip_image(ref, out, 32)
    t0, t1 = (
        _direct_clip_text(ref, tok, "a cat"),
        _direct_clip_text(ref, tok, "a cat wearing a hat"),
    )

    def unit(v):
        return v / np.linalg.norm(v)

    assert r["emu_clip_i"] == pytest.approx(_cos(i0, i1), abs=1e-5)
    assert r["emu_clip_out"] == pytest.approx(_cos(i1, t1), abs=1e-5)
    assert r["emu_clip_dir"] == pytest.approx(
        _cos(unit(i1) - unit(i0), unit(t1) - unit(t0)), abs=1e-4
    )
    assert r["emu_l1"] == pytest.approx(
        np.abs(np.asarray(out, np.float64) - np.asarray(src, np.float64)).mean() / 255, abs=1e-6
    )
    assert -1 <= r["emu_dino"] <= 1
    # no captions: only the image columns
    assert set(r) <= set(COLUMN_DOCS)
    r2 = m.score_batch([_scored(src, out, GroundTruth())])[0]
    assert set(r2) == {"emu_l1", "emu_clip_i", "emu_dino"}


# ------------------------------------------------------------------ PIE-Bench


def _direct_keys_selfsim(model, img255: np.ndarray, layer: int) -> np.ndarray:
    """Keys of block ``layer`` from the hidden state entering it, computed by hand."""
    x = torch.tensor(img255.transpose(2, 0, 1)[None], dtype=torch.float32)
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMNET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMNET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    x = (x - mean) / std
    with torch.no_grad():
        hs = model(pixel_values=x, output_hidden_states=True).hidden_states[layer]
        block = vit_blocks(model)[layer]
        attn = block.attention
        k_lin = attn.k_proj if hasattr(attn, "k_proj") else attn.attention.key
        keys = k_lin(block.layernorm_before(hs))[0].double().numpy()
    norms = np.linalg.norm(keys, axis=1, keepdims=True)
    return (keys @ keys.T) / np.maximum(norms @ norms.T, 1e-8)


def _direct_lpips(state_path, a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS(squeeze) written out: torchvision features, unit-normalised, squared diff,
    1x1 linear heads (torchmetrics' shipped weights), spatial mean, sum."""
    import inspect
    from pathlib import Path

    import torchmetrics.functional.image.lpips as tm_lpips
    from torchvision.models import squeezenet1_1

    net = squeezenet1_1(weights=None)
    net.load_state_dict(torch.load(state_path, weights_only=True))
    net.eval()
    heads = torch.load(
        Path(inspect.getfile(tm_lpips)).parent / "lpips_models" / "squeeze.pth",
        map_location="cpu",
        weights_only=True,
    )
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    taps = [1, 4, 7, 9, 10, 11, 12]

    def feats(x):
        x = (torch.tensor(x.transpose(2, 0, 1)[None]) * 2 - 1 - shift) / scale
        out = []
        for i, layer in enumerate(net.features):
            x = layer(x)
            if i in taps:
                out.append(x)
        return out

    total = 0.0
    with torch.no_grad():
        for k, (fa, fb) in enumerate(zip(feats(a), feats(b), strict=True)):
            na = fa / torch.sqrt(1e-8 + (fa**2).sum(1, keepdim=True))
            nb = fb / torch.sqrt(1e-8 + (fb**2).sum(1, keepdim=True))
            w = heads[f"lin{k}.model.1.weight"]
            total += float(torch.nn.functional.conv2d((na - nb) ** 2, w).mean())
    return total


def test_pie_bench_metric(clip_dir, dino8_dir, squeeze_dir):
    from transformers import CLIPModel, CLIPTokenizer, ViTModel

    m = PIEBenchMetric(
        clip=str(clip_dir),
        dino=str(dino8_dir),
        lpips=str(squeeze_dir),
        device="cpu",
        structure_layer=2,
    )
    size = 64
    src = _rand_img(6, (size, size))
    out_arr = np.asarray(src).copy()
    out_arr[8:40, 8:40] = np.asarray(_rand_img(7, (32, 32)))  # edit inside the mask...
    out_arr[50:60, 50:60] = 0  # ...and some damage outside it
    out = Image.fromarray(out_arr)
    mask = np.zeros((size, size), bool)
    mask[8:40, 8:40] = True
    r = m.score_batch([_scored(src, out, GroundTruth(mask=mask, target_caption="a dog"))])[0]

    assert set(r) <= set(COLUMN_DOCS) and len(r) == 7
    assert set(COLUMN_ORDER) == set(COLUMN_DOCS)
    s = np.asarray(src, np.float64) / 255
    o = np.asarray(out, np.float64) / 255
    keep = (~mask)[..., None]
    mse = float((((o - s) * keep) ** 2).mean())
    assert r["pie_mse"] == pytest.approx(mse, rel=1e-5)
    assert r["pie_psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-5)
    assert 0 < r["pie_ssim"] < 1
    assert r["pie_lpips"] == pytest.approx(
        _direct_lpips(
            squeeze_dir / "squeezenet1_1-b8a52dc0.pth",
            (s * keep).astype(np.float32),
            (o * keep).astype(np.float32),
        ),
        rel=1e-4,
        abs=1e-6,
    )

    dino = ViTModel.from_pretrained(str(dino8_dir), add_pooling_layer=False).eval()
    a = _direct_keys_selfsim(dino, np.asarray(src, np.float32), 2)
    b = _direct_keys_selfsim(dino, np.asarray(out, np.float32), 2)
    assert r["pie_structure_distance"] == pytest.approx(float(((a - b) ** 2).mean()), rel=1e-4)

    clip = CLIPModel.from_pretrained(str(clip_dir)).eval()
    tok = CLIPTokenizer.from_pretrained(str(clip_dir))
    t = _direct_clip_text(clip, tok, "a dog")
    whole = max(100 * _cos(_direct_clip_image(clip, out, 32), t), 0.0)
    masked = Image.fromarray(np.uint8(np.asarray(out) * mask[..., None]))
    edited = max(100 * _cos(_direct_clip_image(clip, masked, 32), t), 0.0)
    assert r["pie_clip_whole"] == pytest.approx(whole, abs=1e-3)
    assert r["pie_clip_edited"] == pytest.approx(edited, abs=1e-3)


def test_pie_bench_constant_images_ssim_by_hand(clip_dir, dino8_dir, squeeze_dir):
    m = PIEBenchMetric(
        clip=str(clip_dir),
        dino=str(dino8_dir),
        lpips=str(squeeze_dir),
        device="cpu",
        structure_layer=0,
    )
    src = Image.new("RGB", (48, 48), (51, 51, 51))  # 0.2
    out = Image.new("RGB", (48, 48), (102, 102, 102))  # 0.4
    r = m.score_batch([_scored(src, out, GroundTruth(mask=np.zeros((48, 48), bool)))])[0]
    c1 = 0.01**2
    assert r["pie_ssim"] == pytest.approx((2 * 0.2 * 0.4 + c1) / (0.2**2 + 0.4**2 + c1), rel=1e-4)
    assert r["pie_mse"] == pytest.approx(0.04, rel=1e-5)
    assert "pie_clip_whole" not in r  # no caption
    full = m.score_batch([_scored(src, src, GroundTruth(mask=np.ones((48, 48), bool)))])[0]
    assert "pie_psnr" not in full and "pie_lpips" not in full  # no background left
    same = m.score_batch([_scored(src, src, GroundTruth(mask=np.zeros((48, 48), bool)))])[0]
    assert same["pie_psnr"] == 100.0 and same["pie_mse"] == 0.0
    assert same["pie_structure_distance"] == pytest.approx(0.0, abs=1e-10)


# ------------------------------------------------------------------ wiring: configs + runner


def _mini_pie(root):
    from iiie.data.pie_bench import encode_run_mask

    (root / "annotation_images" / "1_x").mkdir(parents=True)
    mapping = {}
    for i, (type_id, instruction) in enumerate(
        [("1", "make the square red"), ("3", "remove the square")]
    ):
        arr = np.full((64, 64, 3), 200, np.uint8)
        arr[20:40, 20:40] = (0, 0, 255)
        Image.fromarray(arr).save(root / "annotation_images" / "1_x" / f"{i}.png")
        mask = np.zeros((512, 512), bool)
        mask[150:330, 150:330] = True
        mapping[f"00{i}"] = {
            "image_path": f"1_x/{i}.png",
            "original_prompt": "a [blue] square",
            "editing_prompt": "a [red] square",
            "editing_instruction": instruction,
            "editing_type_id": type_id,
            "blended_word": "blue red",
            "mask": encode_run_mask(mask),
        }
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    return root


def test_pie_bench_end_to_end_run(make_cfg, tmp_path, clip_dir, dino8_dir, squeeze_dir):
    """data=pie_bench + metrics=pie_bench through the real run driver (tiny weights)."""
    from iiie.run import execute

    root = _mini_pie(tmp_path / "pie")
    cfg = make_cfg(
        "data=pie_bench",
        f"data.root={root}",
        "data.n=2",
        "masker.on_missing=full",
        "metrics=pie_bench",
        f"metrics.pie_bench.clip={clip_dir}",
        f"metrics.pie_bench.dino={dino8_dir}",
        f"metrics.pie_bench.lpips={squeeze_dir}",
        "metrics.pie_bench.structure_layer=2",
        "experiment_name=pie_e2e",
    )
    execute(cfg)
    per_sample = (tmp_path / "results" / "pie_e2e" / "per_sample.csv").read_text()
    header = per_sample.splitlines()[0]
    for column in ("pie_structure_distance", "pie_psnr", "pie_lpips", "pie_clip_whole"):
        assert column in header, header
    assert len(per_sample.strip().splitlines()) == 3


def test_score_folder_of_external_outputs(tmp_path, clip_dir, dino8_dir, squeeze_dir):
    """Published-output layout (``<edited>/<image_path>``), one output missing."""
    from iiie.score_folder import compose, score_folder

    root = _mini_pie(tmp_path / "pie")
    edited = tmp_path / "method_x" / "annotation_images"
    (edited / "1_x").mkdir(parents=True)
    Image.open(root / "annotation_images/1_x/0.png").save(edited / "1_x" / "0.png")  # identity
    cfg = compose(
        [
            "data=pie_bench",
            f"data.root={root}",
            "metrics=pie_bench",
            f"metrics.pie_bench.clip={clip_dir}",
            f"metrics.pie_bench.dino={dino8_dir}",
            f"metrics.pie_bench.lpips={squeeze_dir}",
            "metrics.pie_bench.structure_layer=2",
        ]
    )
    out = tmp_path / "scored"
    score_folder(cfg, edited, "{image_path}", out)
    res = json.loads((out / "results.json").read_text())
    rows = {r["id"]: r for r in res["per_sample"]}
    assert rows["000"]["pie_mse"] == 0.0 and rows["000"]["pie_psnr"] == 100.0
    assert rows["000"]["pie_structure_distance"] == pytest.approx(0.0, abs=1e-10)
    assert rows["001"]["failed_stage"] == "edit" and rows["001"]["error_type"] == "ImageLoadError"
    assert rows["001"]["category"] == "remove"
    assert (out / "table.md").exists() and (out / "manifest.json").exists()


def test_score_folder_has_no_made_up_plan_or_mask_columns(tmp_path):
    """metrics=synthetic on external outputs: no plan and no predicted mask exist, so
    category_acc / object_match / mask_iou are absent (not 1.0 / 0.0 / 0.0), and an
    unreadable *source* image is a load failure, not an edit failure."""
    from iiie.data.synthetic import SyntheticDataset
    from iiie.score_folder import compose, score_folder

    ds = SyntheticDataset(n=3, odd_inputs=True)
    edited = tmp_path / "edited"
    edited.mkdir()
    for sid in ds.ids()[:3]:
        ds.load(sid).truth.target.save(edited / f"{sid}.png")  # a perfect method
    cfg = compose(["data=synthetic", "data.n=3", "data.odd_inputs=true", "metrics=synthetic"])
    out = tmp_path / "scored"
    score_folder(cfg, edited, "{id}.png", out)
    res = json.loads((out / "results.json").read_text())
    rows = {r["id"]: r for r in res["per_sample"]}
    for sid in ds.ids()[:3]:
        assert rows[sid]["l1"] == pytest.approx(0.0, abs=1e-9) and "failed_stage" not in rows[sid]
        assert not {"category_acc", "object_match", "mask_iou"} & set(rows[sid])
    assert rows["odd_truncated"]["failed_stage"] == "load"
    assert rows["odd_truncated"]["error_type"] == "ImageLoadError"
    assert rows["odd_rgba"]["failed_stage"] == "edit"  # its edited file is missing
    header = (out / "per_sample.csv").read_text().splitlines()[0]
    assert "mask_iou" not in header and "category_acc" not in header
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["skipped_metrics"]) == ["mask", "plan"]
    only_plan = compose(["data=synthetic", "data.n=1", "metrics=synthetic", "~metrics.pixel"])
    from iiie.errors import IIIEError

    with pytest.raises(IIIEError, match="no metric left"):
        score_folder(only_plan, edited, "{id}.png", tmp_path / "x")


# ------------------------------------------------------------------ reference re-implementations
# Each helper below restates one published scoring step; the comment names its source line.


def _ref_pie_mask_decode(encoded, shape=(512, 512)) -> np.ndarray:
    """PnPInversion evaluation/evaluate.py ``mask_decode``: runs clipped at the end, then
    the one-pixel border forced to 1 ("to avoid annotation errors in boundary")."""
    length = shape[0] * shape[1]
    flat = np.zeros((length,))
    for i in range(0, len(encoded), 2):
        splice = min(encoded[i + 1], length - encoded[i])
        flat[encoded[i] : encoded[i] + splice] = 1
    m = flat.reshape(shape)
    m[0, :] = m[-1, :] = 1
    m[:, 0] = m[:, -1] = 1
    return m


def _ref_pie_tgt(tgt: Image.Image) -> Image.Image:
    """evaluate.py: ``if tgt_image.size[0] != tgt_image.size[1]: tgt_image =
    tgt_image.crop((w-512, h-512, w, h))`` ("to evaluate editing")."""
    w, h = tgt.size
    return tgt.crop((w - 512, h - 512, w, h)) if w != h else tgt


def _ref_pie_background(src: Image.Image, tgt: Image.Image, mask3: np.ndarray) -> dict:
    """matrics_calculator.py ``calculate_psnr/mse/ssim`` on the unedited part: float32
    /255 arrays times ``1 - mask``, torchmetrics PeakSignalNoiseRatio(data_range=1),
    MeanSquaredError, StructuralSimilarityIndexMeasure(data_range=1)."""
    from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
    from torchmetrics.regression import MeanSquaredError

    keep = (1 - mask3).astype(np.float32)
    # evaluate.py calls ``calculate_psnr(src_image, tgt_image, 1-src_mask, 1-tgt_mask)``:
    # img_pred = the source, img_gt = the edited image
    a = np.array(src).astype(np.float32) / 255 * keep
    b = np.array(tgt).astype(np.float32) / 255 * keep
    ta = torch.tensor(a).permute(2, 0, 1).unsqueeze(0)
    tb = torch.tensor(b).permute(2, 0, 1).unsqueeze(0)
    return {
        "pie_psnr": float(PeakSignalNoiseRatio(data_range=1.0)(ta, tb)),
        "pie_mse": float(MeanSquaredError()(ta[0].contiguous(), tb[0].contiguous())),
        "pie_ssim": float(StructuralSimilarityIndexMeasure(data_range=1.0)(ta, tb)),
    }


def test_pie_bench_panel_output_is_cropped_like_the_reference(clip_dir, dino8_dir, squeeze_dir):
    """A released-style 2048x512 panel (four 512 tiles, the edit bottom-right)."""
    from iiie.data.pie_bench import decode_run_mask, encode_run_mask
    from iiie.metrics.pie_bench import fit_output

    src = _rand_img(20, (512, 512))
    edit = np.asarray(src).copy()
    edit[100:300, 120:360] = np.asarray(_rand_img(21, (240, 200)))  # inside the mask
    edit[400:420, 400:470] //= 2  # background damage the metric must see
    tiles = [np.asarray(src), np.asarray(_rand_img(22, (512, 512))),
             np.asarray(_rand_img(23, (512, 512))), edit]  # fmt: skip
    panel = Image.fromarray(np.concatenate(tiles, axis=1))
    assert panel.size == (2048, 512)
    region = np.zeros((512, 512), bool)
    region[100:300, 120:360] = True
    runs = encode_run_mask(region)
    mask = decode_run_mask(runs)  # our loader's decoding, border forced
    ref_mask3 = _ref_pie_mask_decode(runs)[:, :, np.newaxis].repeat([3], axis=2)
    np.testing.assert_array_equal(mask, ref_mask3[..., 0].astype(bool))

    m = PIEBenchMetric(clip=str(clip_dir), dino=str(dino8_dir), lpips=str(squeeze_dir),
                       device="cpu", structure_layer=2)  # fmt: skip
    truth = GroundTruth(mask=mask, target_caption="a dog")
    got = m.score_batch([_scored(src, panel, truth)])[0]
    ref_tgt = _ref_pie_tgt(panel)
    np.testing.assert_array_equal(np.asarray(ref_tgt), edit)
    ref = _ref_pie_background(src, ref_tgt, ref_mask3)
    assert got["pie_psnr"] == pytest.approx(ref["pie_psnr"], rel=1e-5)
    assert got["pie_mse"] == pytest.approx(ref["pie_mse"], rel=1e-5)
    assert got["pie_ssim"] == pytest.approx(ref["pie_ssim"], rel=1e-5)
    # every column, the model-based ones included, equals scoring the edit tile itself
    same = m.score_batch([_scored(src, Image.fromarray(edit), truth)])[0]
    assert got == pytest.approx(same, rel=1e-6)
    # the old rule (resize the whole panel) is far off, and still available by config
    resized = PIEBenchMetric(clip=str(clip_dir), dino=str(dino8_dir), lpips=str(squeeze_dir),
                             device="cpu", structure_layer=2, panel_crop="none")  # fmt: skip
    old = resized.score_batch([_scored(src, panel, truth)])[0]
    assert abs(old["pie_psnr"] - got["pie_psnr"]) > 3
    # square outputs of another size are resized (the reference would stop), tiny panels refused
    assert fit_output(Image.new("RGB", (1024, 1024)), (512, 512)).size == (512, 512)
    from iiie.errors import SampleError

    with pytest.raises(SampleError, match="smaller than"):
        fit_output(Image.new("RGB", (600, 300)), (512, 512))
    with pytest.raises(ValueError, match="panel_crop"):
        PIEBenchMetric(clip=str(clip_dir), dino=str(dino8_dir), lpips=str(squeeze_dir),
                       panel_crop="left")  # fmt: skip


def test_score_folder_rotated_jpeg_keeps_the_pie_mask_aligned(tmp_path, clip_dir, dino8_dir, squeeze_dir):
    """A PIE-Bench source stored as a JPEG with an EXIF rotation, and a method's output
    that changed only the masked region of the stored pixels: decoded as the reference
    does (no EXIF), the background is untouched (PSNR capped, MSE 0); decoded with EXIF
    rotation, the mask would sit on the wrong pixels."""
    from iiie.data.pie_bench import encode_run_mask
    from iiie.score_folder import compose, score_folder

    root = tmp_path / "pie"
    (root / "annotation_images" / "1_x").mkdir(parents=True)
    arr = np.zeros((512, 512, 3), np.uint8)
    arr[:, :256] = (220, 30, 30)
    arr[:, 256:] = (30, 30, 220)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90°
    src_path = root / "annotation_images" / "1_x" / "0.jpg"
    Image.fromarray(arr).save(src_path, "JPEG", quality=95, exif=exif.tobytes())
    region = np.zeros((512, 512), bool)
    region[40:200, 300:480] = True
    (root / "mapping_file.json").write_text(json.dumps({"000": {
        "image_path": "1_x/0.jpg", "original_prompt": "a [blue] wall", "editing_prompt": "a [green] wall",
        "editing_instruction": "make it green", "editing_type_id": "6", "blended_word": "blue green",
        "mask": encode_run_mask(region)}}))  # fmt: skip
    stored = np.array(Image.open(src_path).convert("RGB"))  # evaluate.py's Image.open, no EXIF
    out = stored.copy()
    out[region] = (30, 200, 30)
    edited = tmp_path / "method" / "annotation_images"
    (edited / "1_x").mkdir(parents=True)
    Image.fromarray(out).save(edited / "1_x" / "0.jpg", "PNG")  # same name as the source
    overrides = ["data=pie_bench", f"data.root={root}", "metrics=pie_bench",
                 f"metrics.pie_bench.clip={clip_dir}", f"metrics.pie_bench.dino={dino8_dir}",
                 f"metrics.pie_bench.lpips={squeeze_dir}", "metrics.pie_bench.structure_layer=2"]  # fmt: skip
    score_folder(compose(overrides), edited, "{image_path}", tmp_path / "ref")
    row = json.loads((tmp_path / "ref" / "results.json").read_text())["per_sample"][0]
    ref_mask3 = _ref_pie_mask_decode(encode_run_mask(region))[:, :, None].repeat(3, axis=2)
    ref = _ref_pie_background(Image.fromarray(stored), Image.fromarray(out), ref_mask3)
    assert math.isinf(ref["pie_psnr"]) and row["pie_psnr"] == 100.0  # capped +inf
    assert row["pie_mse"] == ref["pie_mse"] == 0.0
    assert row["pie_ssim"] == pytest.approx(ref["pie_ssim"], abs=1e-6)
    score_folder(compose([*overrides, "data.decode=friendly"]), edited, "{image_path}", tmp_path / "fr")
    rotated = json.loads((tmp_path / "fr" / "results.json").read_text())["per_sample"][0]
    assert rotated["pie_mse"] > 0.01  # the misalignment the reference decoding avoids


# ------------------------------------------------------------------ GEdit-Bench aggregation

# Step1X-Edit GEdit-Bench/calculate_statistics.py: ``GROUPS`` (the 11 task types).
_GEDIT_GROUPS = ["background_change", "color_alter", "material_alter", "motion_change", "ps_human",
                 "style_change", "subject-add", "subject-remove", "subject-replace", "text_change",
                 "tone_transfer"]  # fmt: skip


def _ref_gedit_analyze_scores(csv_dir, model, language):
    """calculate_statistics.py ``analyze_scores`` restated with the csv module: for each
    group read ``{model}_{group}_gpt_score.csv``, keep rows of ``language``,
    ``overall = sqrt(semantics * quality)``, the intersection subset ``if
    intersection_exist``; np.mean per group, then np.mean over GROUPS."""
    import csv

    full = {"sc": [], "pq": [], "o": []}
    inter = {"sc": [], "pq": [], "o": []}
    for group in _GEDIT_GROUPS:
        with open(csv_dir / f"{model}_{group}_gpt_score.csv", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["instruction_language"] == language]
        sc = [float(r["sementics_score"]) for r in rows]
        pq = [float(r["quality_score"]) for r in rows]
        o = [math.sqrt(a * b) for a, b in zip(sc, pq, strict=True)]
        # pandas reads the CSV's True/False back as booleans
        keep = [r["intersection_exist"] == "True" for r in rows]
        for key, values in (("sc", sc), ("pq", pq), ("o", o)):
            full[key].append(np.mean(values))
            inter[key].append(np.mean([v for v, k in zip(values, keep, strict=True) if k]))
    return ({k: float(np.mean(v)) for k, v in full.items()},
            {k: float(np.mean(v)) for k, v in inter.items()})  # fmt: skip


def _gedit_parquet(root, counts):
    """GEdit-Bench's Hub layout (one parquet shard): ``counts[(task, lang)]`` rows each."""
    import io as _io

    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {k: [] for k in ("key", "task_type", "instruction", "instruction_language",
                            "input_image", "Intersection_exist")}  # fmt: skip
    k = 0
    for (task, lang), n in counts.items():
        for j in range(n):
            buf = _io.BytesIO()
            Image.new("RGB", (16, 16), (k % 256, 0, 0)).save(buf, "PNG")
            cols["key"].append(f"{k:05d}")
            cols["task_type"].append(task)
            cols["instruction"].append(f"{task} #{k}")
            cols["instruction_language"].append(lang)
            cols["input_image"].append({"bytes": buf.getvalue(), "path": None})
            cols["Intersection_exist"].append(j % 3 != 1)  # each group's first is in it
            k += 1
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), root / "train-00000-of-00001.parquet")
    return root


def test_gedit_headline_is_the_benchmarks_mean_of_task_type_means(tmp_path):
    """Two languages, every task type present with unequal counts (1..6 per language)."""
    import csv

    from iiie.data.base import report_fields
    from iiie.data.gedit_bench import GEditBenchDataset
    from iiie.pipeline.report import write_results

    counts = {}
    for i, task in enumerate(_GEDIT_GROUPS):
        counts[(task, "en")] = 1 + i % 6
        counts[(task, "cn")] = 1 + (i * 5 + 2) % 4
    ds = GEditBenchDataset(str(_gedit_parquet(tmp_path / "gedit", counts)), language="all")
    rng = np.random.default_rng(0)
    rows, ref_rows = [], {g: [] for g in _GEDIT_GROUPS}
    for sid in ds.ids():
        s = ds.load(sid)
        sc, pq_ = int(rng.integers(0, 11)), int(rng.integers(0, 11))
        rows.append({"id": sid, "category": s.truth.category.value, **report_fields(s),
                     "vie_sc": float(sc), "vie_pq": float(pq_), "vie_overall": math.sqrt(sc * pq_)})  # fmt: skip
        # test_gedit_score.py's per-group CSV row (its fieldnames, its spelling)
        ref_rows[s.truth.extra["task_type"]].append({
            "source_image": f"{sid}_SRCIMG.png", "edited_image": f"{sid}.png",
            "instruction": s.request.instruction, "sementics_score": sc, "quality_score": pq_,
            "intersection_exist": s.truth.extra["intersection_exist"],
            "instruction_language": s.truth.extra["language"]})  # fmt: skip
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    for group, group_rows in ref_rows.items():
        with open(ref_dir / f"m_{group}_gpt_score.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(group_rows[0]))
            w.writeheader()
            w.writerows(group_rows)

    out = tmp_path / "res"
    write_results(out, rows, {}, "gedit")
    head = json.loads((out / "results.json").read_text())["headline"]["gedit_bench"]["rows"]
    got = {(r["language"], r["subset"]): r for r in head}
    assert [(r["language"], r["subset"]) for r in head] == [
        ("en", "full"), ("en", "intersection"), ("cn", "full"), ("cn", "intersection")]  # fmt: skip
    for lang in ("en", "cn"):
        ref_full, ref_inter = _ref_gedit_analyze_scores(ref_dir, "m", lang)
        for subset, ref in (("full", ref_full), ("intersection", ref_inter)):
            r = got[(lang, subset)]
            assert r["task_types"] == 11
            assert r["G_SC"] == pytest.approx(ref["sc"], abs=1e-12)
            assert r["G_PQ"] == pytest.approx(ref["pq"], abs=1e-12)
            assert r["G_O"] == pytest.approx(ref["o"], abs=1e-12)
        plain = np.mean([x["vie_sc"] for x in rows if x["language"] == lang])
        assert abs(plain - ref_full["sc"]) > 1e-3  # the old plain mean is not the headline
    assert got[("en", "full")]["n"] == sum(v for (_, lang), v in counts.items() if lang == "en")
    # labels per sample in per_sample.csv; our 5-category table is kept as the breakdown
    with open(out / "per_sample.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert first["task_type"] in _GEDIT_GROUPS and first["language"] in ("en", "cn")
    assert "intersection_exist" in first
    table = json.loads((out / "results.json").read_text())["table"]
    assert {r["category"] for r in table} >= {"local", "global", "overall"}
    assert "intersection_exist" not in table[0]  # a label, not averaged as a score
    assert "GEdit-Bench headline" in (out / "table.md").read_text()


def test_score_folder_writes_gedit_labels_per_sample(tmp_path):
    """GEdit-Bench's published output layout ``fullset/<task_type>/<lang>/<key>.png``."""
    import csv

    from iiie.score_folder import compose, score_folder

    root = _gedit_parquet(tmp_path / "gedit", {("color_alter", "en"): 2, ("ps_human", "cn"): 1})
    edited = tmp_path / "method"
    for key, task, lang in (("00000", "color_alter", "en"), ("00002", "ps_human", "cn")):
        (edited / "fullset" / task / lang).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16)).save(edited / "fullset" / task / lang / f"{key}.png")
    cfg = compose(["data=gedit_bench", f"data.root={root}", "data.language=all",
                   "metrics=synthetic", "~metrics.plan", "~metrics.mask"])  # fmt: skip
    score_folder(cfg, edited, "fullset/{task_type}/{language}/{key}.png", tmp_path / "out")
    with open(tmp_path / "out" / "per_sample.csv", newline="") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert rows["00000-en"]["task_type"] == "color_alter" and rows["00000-en"]["language"] == "en"
    assert rows["00002-cn"]["language"] == "cn" and not rows["00002-cn"]["failed_stage"]
    assert rows["00001-en"]["failed_stage"] == "edit"  # missing output, labels still written
    assert rows["00001-en"]["task_type"] == "color_alter"


# ------------------------------------------------------------------ MagicBrush output naming


def _ref_mb_digits_sort(items):
    # image_eval.py: ``.sort(key=lambda x: int(''.join(filter(str.isdigit, x))))``
    return sorted(items, key=lambda x: int("".join(filter(str.isdigit, x))))


def _ref_mb_final_turn(d, img_type):
    """image_eval.py ``get_final_turn_img``."""
    import os

    names = [s for s in os.listdir(d) if ".png" in s or ".jpg" in s]
    names = [s for s in names if "mask" not in s]
    if img_type == "generated":
        if len(names) == 1:
            assert "_1" in names[0]
            return os.path.join(d, names[0])
        return os.path.join(d, _ref_mb_digits_sort([s for s in names if "iter_" in s])[-1])
    return os.path.join(d, _ref_mb_digits_sort([s for s in names if "output" in s])[-1])


def _ref_mb_all_turns(d, img_type):
    """image_eval.py ``get_all_turn_imgs``."""
    import os

    names = [s for s in os.listdir(d) if ".png" in s or ".jpg" in s]
    names = [s for s in names if "mask" not in s]
    if img_type == "generated":
        if len(names) == 1:
            return [os.path.join(d, names[0])]
        gen = [os.path.join(d, s) for s in names if "_1" in s]
        gen.extend([os.path.join(d, s) for s in names if "inde_" in s])
        return _ref_mb_digits_sort(gen)
    return _ref_mb_digits_sort([os.path.join(d, s) for s in names if "output" in s])


def _ref_mb_eval_distance(pairs, metric):
    """image_eval.py ``eval_distance``: PIL default resize of the output to the gt size,
    ``ToTensor``, ``nn.L1Loss``/``nn.MSELoss``, mean over pairs."""
    from torchvision.transforms import transforms

    crit = torch.nn.L1Loss() if metric == "l1" else torch.nn.MSELoss()
    total = 0.0
    for gen_p, gt_p in pairs:
        gen = Image.open(gen_p).convert("RGB")
        gt = Image.open(gt_p).convert("RGB")
        gen = gen.resize(gt.size)
        total += crit(transforms.ToTensor()(gen), transforms.ToTensor()(gt)).item()
    return total / len(pairs)


def _mb_fixture(tmp_path):
    """MagicBrush test layout: session 100001 with 3 turns, 100002 with 1; the method's
    outputs named as image_eval.py expects (``_1``, ``inde_<t>``, ``iter_<t>``)."""
    root, gen = tmp_path / "mb", tmp_path / "gen"
    sessions, local = {}, {}
    for k, (sid, n) in enumerate((("100001", 3), ("100002", 1))):
        d = root / "images" / sid
        d.mkdir(parents=True)
        _rand_img(100 + k, (24, 18)).save(d / f"{sid}-input.png")
        turns = []
        for t in range(1, n + 1):
            _rand_img(110 + 10 * k + t, (24, 18)).save(d / f"{sid}-output{t}.png")
            Image.new("L", (24, 18), 0).save(d / f"{sid}-mask{t}.png")
            prev = f"{sid}-input.png" if t == 1 else f"{sid}-output{t - 1}.png"
            turns.append({"input": prev, "mask": f"{sid}-mask{t}.png",
                          "output": f"{sid}-output{t}.png", "instruction": f"edit {t}"})  # fmt: skip
        sessions[sid] = turns
        local[sid] = {f"{sid}-output{t}.png": f"thing {t}" for t in range(1, n + 1)}
        g = gen / sid
        g.mkdir(parents=True)
        _rand_img(200 + 10 * k, (48, 36)).save(g / f"{sid}_1.png")  # other size: resized
        for t in range(2, n + 1):
            _rand_img(200 + 10 * k + t, (48, 36)).save(g / f"{sid}_inde_{t}.png")
            _rand_img(300 + 10 * k + t, (48, 36)).save(g / f"{sid}_iter_{t}.png")
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    (root / "local_descriptions.json").write_text(json.dumps(local))
    return root, gen


def test_score_folder_magicbrush_naming_matches_image_eval(tmp_path, clip_dir, dino16_dir):
    from iiie.score_folder import compose, score_folder

    root, gen = _mb_fixture(tmp_path)
    base = ["data=magicbrush", f"data.root={root}", "metrics=magicbrush",
            f"metrics.magicbrush.clip={clip_dir}", f"metrics.magicbrush.dino={dino16_dir}"]  # fmt: skip
    # image_eval.py load_data: pairs per turn (all turns) and the final-turn pairs
    all_pairs, final_pairs = [], []
    for sid in sorted(p.name for p in gen.iterdir()):
        g, t = str(gen / sid), str(root / "images" / sid)
        final_pairs.append((_ref_mb_final_turn(g, "generated"), _ref_mb_final_turn(t, "gt")))
        all_pairs += list(zip(_ref_mb_all_turns(g, "generated"), _ref_mb_all_turns(t, "gt"), strict=True))
    assert [Path(p).name for p, _ in all_pairs] == [
        "100001_1.png", "100001_inde_2.png", "100001_inde_3.png", "100002_1.png"]  # fmt: skip
    assert [Path(p).name for p, _ in final_pairs] == ["100001_iter_3.png", "100002_1.png"]

    for setting, pairs in (("independent", all_pairs), ("final_turn", final_pairs)):
        out = tmp_path / setting
        table = score_folder(compose([*base, f"data.setting={setting}"]), gen, "magicbrush", out)
        res = json.loads((out / "results.json").read_text())
        assert not any("failed_stage" in r for r in res["per_sample"]), res["per_sample"]
        overall = next(r for r in table if r["category"] == "overall")
        assert overall["n"] == len(pairs)
        for col, metric in (("mb_l1", "l1"), ("mb_l2", "l2")):
            assert overall[col] == pytest.approx(_ref_mb_eval_distance(pairs, metric), rel=1e-6)

    # a session whose turn files do not match its turns is that sample's error, not a
    # silent pairing of turn 2 with another turn's file
    (gen / "100001" / "100001_inde_3.png").unlink()
    out = tmp_path / "broken"
    score_folder(compose([*base, "data.setting=independent"]), gen, "magicbrush", out)
    rows = {r["id"]: r for r in json.loads((out / "results.json").read_text())["per_sample"]}
    assert rows["100001-t2"]["failed_stage"] == "edit" and "2 turn files" in rows["100001-t2"]["error"]
    assert "mb_l1" in rows["100002-t1"]


# ------------------------------------------------------------------ CLIP text over 77 tokens


def test_pie_clip_score_of_long_captions_equals_torchmetrics(clip_dir):
    """PIE-Bench's CLIP score is torchmetrics' CLIPScore (matrics_calculator.py
    ``CLIPScore(model_name_or_path="openai/clip-vit-large-patch14")``); torchmetrics' own
    text path (``_get_features``, which slices the ids of a caption over 77 tokens) runs
    here on the same tiny model, with a caption far over 77 tokens."""
    from torchmetrics.functional.multimodal.clip_score import _get_features
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    from iiie.metrics.pie_bench import clip_score

    tok = CLIPTokenizer.from_pretrained(str(clip_dir))
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tok,
    )
    model = _Tensors(CLIPModel.from_pretrained(str(clip_dir)).eval())
    long = "a small brown dog running across a wide green field under a cloudy sky " * 3
    assert len(tok(long)["input_ids"]) > 77
    clip = load_clip(str(clip_dir), "k", "cpu")
    texts = [long, "a dog"]
    with torch.no_grad(), pytest.warns(UserWarning, match="truncate"):
        ref_text = _get_features(texts, "text", torch.device("cpu"), model, processor)
    ours_text = clip.text_features(texts, truncation="slice")
    torch.testing.assert_close(ours_text, ref_text.float(), rtol=0, atol=1e-6)
    # the score itself: torchmetrics' formula ``100 * cos`` clamped at 0 (clip_score.py
    # ``torch.max(score, zeros)``) on those text features and our image features
    imgs = [_rand_img(30, (48, 48)), _rand_img(31, (48, 48))]
    f_img = clip.image_features(imgs)
    ref = [max(100 * _cos(f_img[k].double().numpy(), ref_text[k].double().numpy()), 0.0) for k in range(2)]
    assert clip_score(clip, imgs, texts) == pytest.approx(ref, abs=1e-6)
    # the end-token truncation (InstructPix2Pix ``clip.tokenize(truncate=True)``) differs
    eos = clip.text_features([long])[0]
    assert not torch.allclose(eos, ours_text[0])
    # and equals OpenAI's truncate=True: the first 76 tokens, then the end token
    ids = tok(long)["input_ids"][:76] + [tok.eos_token_id]
    with torch.no_grad():
        direct = model.get_text_features(input_ids=torch.tensor([ids]))
    torch.testing.assert_close(eos, direct[0].float(), rtol=0, atol=1e-6)
    short_eos, short_slice = clip.text_features(["a dog"]), clip.text_features(["a dog"], "slice")
    assert torch.allclose(short_eos, short_slice)  # identical under the context length


class _Tensors:
    """The CLIP model as transformers 4 returned features (tensors), which torchmetrics
    1.9's CLIPScore code expects; transformers 5 returns output objects."""

    def __init__(self, model):
        self.model, self.config = model, model.config

    def to(self, device):
        self.model.to(device)
        return self

    def get_image_features(self, *a, **k):
        out = self.model.get_image_features(*a, **k)
        return getattr(out, "pooler_output", out)

    def get_text_features(self, *a, **k):
        out = self.model.get_text_features(*a, **k)
        return getattr(out, "pooler_output", out)


# ------------------------------------------------------------------ Emu Edit CLIP-dir


def _ref_ip2p_sim_direction(model, tok, image_0, image_1, text_0, text_1, size=32):
    """InstructPix2Pix metrics/clip_similarity.py ``ClipSimilarity.forward`` restated on
    the HF model: ``encode_image`` = ``F.interpolate(image.float(), size=self.size,
    mode="bicubic", align_corners=False)``, minus CLIP mean, over CLIP std, encode,
    unit-normalise; ``encode_text`` = ``clip.tokenize(text, truncate=True)`` (first 76
    tokens + end token), encode, unit-normalise; ``sim_direction =
    cosine(image_features_1 - image_features_0, text_features_1 - text_features_0)``."""
    import torch.nn.functional as F
    from torchvision.transforms.functional import to_tensor

    mean = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)
    std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)

    def enc_img(img):
        x = to_tensor(img)[None]  # "Input images in range [0, 1]"
        x = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False)
        with torch.no_grad():
            f = model.get_image_features(pixel_values=(x - mean) / std)
        f = getattr(f, "pooler_output", f)
        return f / f.norm(dim=1, keepdim=True)

    def enc_txt(text):
        ids = tok(text)["input_ids"]
        if len(ids) > 77:
            ids = ids[:76] + [tok.eos_token_id]
        with torch.no_grad():
            f = model.get_text_features(input_ids=torch.tensor([ids]))
        f = getattr(f, "pooler_output", f)
        return f / f.norm(dim=1, keepdim=True)

    d_img = enc_img(image_1) - enc_img(image_0)
    d_txt = enc_txt(text_1) - enc_txt(text_0)
    return float(F.cosine_similarity(d_img.double(), d_txt.double())[0])


def test_emu_clip_dir_follows_instructpix2pix_clip_similarity(tmp_path, clip_dir, dino16_dir):
    import shutil

    from transformers import CLIPModel, CLIPTokenizer

    dir_clip = tmp_path / "dir_clip"  # a second folder: the direction score's own CLIP
    shutil.copytree(clip_dir, dir_clip)
    m = EmuEditMetric(clip=str(clip_dir), dino=str(dino16_dir), device="cpu", dir_clip=str(dir_clip))
    src, out = _rand_img(40, (60, 30)), _rand_img(41, (60, 30))  # 2:1, squashed not cropped
    long = "a cat sitting on a red sofa next to a window with white curtains " * 3
    truth = GroundTruth(source_caption="a cat on a sofa", target_caption=long)
    r = m.score_batch([_scored(src, out, truth)])[0]
    ref = CLIPModel.from_pretrained(str(dir_clip)).eval()
    tok = CLIPTokenizer.from_pretrained(str(dir_clip))
    assert len(tok(long)["input_ids"]) > 77
    expected = _ref_ip2p_sim_direction(ref, tok, src, out, "a cat on a sofa", long)
    assert r["emu_clip_dir"] == pytest.approx(expected, abs=1e-5)
    crop = EmuEditMetric(clip=str(clip_dir), dino=str(dino16_dir), device="cpu",
                         dir_clip=None, dir_preprocess="crop")  # fmt: skip
    assert abs(crop.score_batch([_scored(src, out, truth)])[0]["emu_clip_dir"] - expected) > 1e-4
    with pytest.raises(MissingWeightsError, match="metrics.emu_edit.dir_clip"):
        EmuEditMetric(clip=str(clip_dir), dino=str(dino16_dir), dir_clip=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="dir_preprocess"):
        EmuEditMetric(clip=str(clip_dir), dino=str(dino16_dir), dir_preprocess="pad")
