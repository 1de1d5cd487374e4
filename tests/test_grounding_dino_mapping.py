"""The original Grounding DINO checkpoint layout -> transformers mapping.

A tiny random model is written twice by ``iiie.maskers.tiny``: in transformers' layout and,
with the same weights, as ``groundingdino_swint_ogc.pth`` in the original IDEA-Research
key layout. The key list the original code produces is spelled out here independently
(from the original modules' attribute names), so the tiny checkpoint is known to be in the
release layout; the mapping must load it strictly and give the same outputs as the native
transformers load.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from iiie.maskers import tiny
from iiie.models.grounding_dino import (
    config_from_original,
    hf_to_original,
    load_original_checkpoint,
    load_original_grounding_dino,
    original_to_hf,
)
from iiie.weights import MissingWeightsError

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny.ensure(tmp_path_factory.getbasetemp() / "tiny_masker_weights")


@pytest.fixture(scope="module")
def native(root):
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    return GroundingDinoForObjectDetection.from_pretrained(root / "grounding-dino").eval(), AutoProcessor.from_pretrained(
        root / "grounding-dino"
    )


@pytest.fixture(scope="module")
def mapped(root):
    return load_original_grounding_dino(root / "groundingdino_swint_ogc.pth", root / "bert-base-uncased")


def _lin(prefix):
    return {f"{prefix}.weight", f"{prefix}.bias"}


def expected_original_keys(bert_keys, depths=(1, 1, 2, 1), enc=1, dec=2, levels=4, out_norms=(1, 2, 3)):
    """Keys of groundingdino's GroundingDINO module (SwinT OGC config), from its source."""
    keys = set()
    b = "backbone.0"
    keys |= _lin(f"{b}.patch_embed.proj") | _lin(f"{b}.patch_embed.norm")
    for i, depth in enumerate(depths):
        for j in range(depth):
            p = f"{b}.layers.{i}.blocks.{j}"
            keys |= _lin(f"{p}.norm1") | _lin(f"{p}.norm2") | _lin(f"{p}.attn.qkv") | _lin(f"{p}.attn.proj")
            keys |= _lin(f"{p}.mlp.fc1") | _lin(f"{p}.mlp.fc2")
            keys |= {f"{p}.attn.relative_position_bias_table", f"{p}.attn.relative_position_index"}
        if i < len(depths) - 1:
            keys |= {f"{b}.layers.{i}.downsample.reduction.weight"} | _lin(f"{b}.layers.{i}.downsample.norm")
    for k in out_norms:
        keys |= _lin(f"{b}.norm{k}")
    keys |= {f"bert.{k}" for k in bert_keys}
    keys |= _lin("feat_map")
    for i in range(levels):
        keys |= _lin(f"input_proj.{i}.0") | _lin(f"input_proj.{i}.1")
    mlp3 = lambda p: set().union(*(_lin(f"{p}.layers.{k}") for k in range(3)))  # noqa: E731
    for i in range(dec):
        keys |= mlp3(f"bbox_embed.{i}") | mlp3(f"transformer.decoder.bbox_embed.{i}")
    t = "transformer"
    keys |= {f"{t}.level_embed", f"{t}.tgt_embed.weight"} | _lin(f"{t}.enc_output") | _lin(f"{t}.enc_output_norm")
    keys |= mlp3(f"{t}.enc_out_bbox_embed")
    for n in range(enc):
        e = f"{t}.encoder.layers.{n}"
        for m in ("sampling_offsets", "attention_weights", "value_proj", "output_proj"):
            keys |= _lin(f"{e}.self_attn.{m}")
        keys |= _lin(f"{e}.norm1") | _lin(f"{e}.norm2") | _lin(f"{e}.linear1") | _lin(f"{e}.linear2")
        tl = f"{t}.encoder.text_layers.{n}"
        keys |= {f"{tl}.self_attn.in_proj_weight", f"{tl}.self_attn.in_proj_bias"} | _lin(f"{tl}.self_attn.out_proj")
        keys |= _lin(f"{tl}.linear1") | _lin(f"{tl}.linear2") | _lin(f"{tl}.norm1") | _lin(f"{tl}.norm2")
        f = f"{t}.encoder.fusion_layers.{n}"
        keys |= {f"{f}.gamma_v", f"{f}.gamma_l"} | _lin(f"{f}.layer_norm_v") | _lin(f"{f}.layer_norm_l")
        for m in ("v_proj", "l_proj", "values_v_proj", "values_l_proj", "out_v_proj", "out_l_proj"):
            keys |= _lin(f"{f}.attn.{m}")
    for n in range(dec):
        d = f"{t}.decoder.layers.{n}"
        for m in ("sampling_offsets", "attention_weights", "value_proj", "output_proj"):
            keys |= _lin(f"{d}.cross_attn.{m}")
        for m in ("ca_text", "self_attn"):
            keys |= {f"{d}.{m}.in_proj_weight", f"{d}.{m}.in_proj_bias"} | _lin(f"{d}.{m}.out_proj")
        for m in ("norm1", "catext_norm", "norm2", "linear1", "linear2", "norm3"):
            keys |= _lin(f"{d}.{m}")
    keys |= _lin(f"{t}.decoder.norm") | _lin(f"{t}.decoder.ref_point_head.layers.0") | _lin(f"{t}.decoder.ref_point_head.layers.1")
    return keys


def test_tiny_checkpoint_is_in_the_original_layout(root):
    from transformers import BertModel

    raw = torch.load(root / "groundingdino_swint_ogc.pth", weights_only=True)
    assert set(raw) == {"model"} and all(k.startswith("module.") for k in raw["model"])
    bert_keys = BertModel(tiny._bert_config(), add_pooling_layer=True).state_dict().keys()
    sd = load_original_checkpoint(root / "groundingdino_swint_ogc.pth")
    assert set(sd) == expected_original_keys(bert_keys)
    assert sd["backbone.0.layers.0.blocks.0.attn.relative_position_index"].shape == (16, 16)


def test_architecture_is_read_from_shapes(root):
    arch = config_from_original(load_original_checkpoint(root / "groundingdino_swint_ogc.pth"))
    cfg = tiny.dino_config()
    assert arch.swin_embed_dim == cfg.backbone_config.embed_dim
    assert arch.swin_depths == list(cfg.backbone_config.depths)
    assert arch.swin_num_heads == list(cfg.backbone_config.num_heads)
    assert arch.swin_window_size == cfg.backbone_config.window_size
    assert arch.swin_out_indices == [1, 2, 3]
    assert (arch.d_model, arch.encoder_layers, arch.decoder_layers) == (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers)
    assert (arch.encoder_n_points, arch.decoder_n_points, arch.num_queries) == (2, 2, cfg.num_queries)
    assert arch.decoder_bbox_embed_share and arch.has_bert_weights


def test_mapping_is_a_bijection_on_the_weights(native):
    model, _ = native
    sd = model.state_dict()
    back = original_to_hf(hf_to_original(sd))
    assert set(back) == set(sd)
    for k, v in sd.items():
        if ".swin.layernorm." not in k:  # no original counterpart; set to identity
            assert torch.equal(back[k], v), k


def test_strict_load_gives_native_outputs(native, mapped):
    (ref, processor), (model, mapped_processor) = native, mapped
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8))
    enc = processor(images=[image, image], text=["red circle.", "blue square . green star."], padding="longest",
                    return_tensors="pt")
    with torch.no_grad():
        a, b = ref(**enc), model(**enc)
    torch.testing.assert_close(b.logits, a.logits, rtol=0, atol=1e-6)  # -inf padding compares equal
    torch.testing.assert_close(b.pred_boxes, a.pred_boxes, rtol=0, atol=1e-6)
    # the mapped loader's tokenizer (from the BERT folder) gives the same ids
    ids = mapped_processor.tokenizer(["red circle.", "blue square . green star."], padding="longest", return_tensors="pt")
    assert torch.equal(ids["input_ids"], enc["input_ids"])


def test_fused_in_proj_split_matches_torch_multihead_attention(root, mapped):
    """The q/k/v split order is checked against nn.MultiheadAttention running the original tensors."""
    sd = load_original_checkpoint(root / "groundingdino_swint_ogc.pth")
    model, _ = mapped
    d = model.config.d_model
    for orig_prefix, hf_attn, heads in (
        ("transformer.decoder.layers.1.self_attn", model.model.decoder.layers[1].self_attn, model.config.decoder_attention_heads),
        ("transformer.decoder.layers.0.ca_text", model.model.decoder.layers[0].encoder_attn_text, model.config.decoder_attention_heads),
        ("transformer.encoder.text_layers.0.self_attn", model.model.encoder.layers[0].text_enhancer_layer.self_attn,
         model.config.encoder_attention_heads // 2),
    ):
        mha = torch.nn.MultiheadAttention(d, heads)
        mha.load_state_dict({k[len(orig_prefix) + 1 :]: v for k, v in sd.items() if k.startswith(orig_prefix + ".")})
        q, k, v = (torch.randn(2, 5, d, generator=torch.Generator().manual_seed(s)) for s in range(3))
        with torch.no_grad():
            want = mha(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1))[0].transpose(0, 1)
            got = hf_attn(q, k, v)[0]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_swin_qkv_split_rows_in_q_k_v_order(root, mapped):
    sd = load_original_checkpoint(root / "groundingdino_swint_ogc.pth")
    model, _ = mapped
    qkv = sd["backbone.0.layers.2.blocks.1.attn.qkv.weight"]
    att = model.model.backbone.conv_encoder.model.swin.encoder.layers[2].blocks[1].attention
    c = qkv.shape[1]
    for part, proj in zip(range(3), (att.q_proj, att.k_proj, att.v_proj), strict=True):
        assert torch.equal(proj.weight, qkv[part * c : (part + 1) * c])


def test_unmapped_or_missing_keys_fail_loudly(root):
    sd = load_original_checkpoint(root / "groundingdino_swint_ogc.pth")
    with pytest.raises(ValueError, match="no mapping"):
        original_to_hf({**sd, "transformer.decoder.some_new_head.weight": torch.zeros(1)})
    bad = dict(sd)
    bad["backbone.0.layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    with pytest.raises(ValueError, match="relative_position_index"):
        original_to_hf(bad)


def test_strict_load_rejects_a_truncated_checkpoint(root, tmp_path):
    sd = load_original_checkpoint(root / "groundingdino_swint_ogc.pth")
    del sd["transformer.decoder.norm.weight"]
    torch.save({"model": sd}, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="does not fit"):
        load_original_grounding_dino(tmp_path / "broken.pth", root / "bert-base-uncased")


def test_bert_weights_come_from_the_folder_when_the_checkpoint_has_none(root, tmp_path):
    from transformers import BertModel

    sd = {k: v for k, v in load_original_checkpoint(root / "groundingdino_swint_ogc.pth").items() if not k.startswith("bert.")}
    torch.save(sd, tmp_path / "no_bert.pth")  # also: a bare state dict without {"model": ...}
    model, _ = load_original_grounding_dino(tmp_path / "no_bert.pth", root / "bert-base-uncased")
    folder = BertModel.from_pretrained(root / "bert-base-uncased", add_pooling_layer=False).state_dict()
    got = model.model.text_backbone.state_dict()
    assert all(torch.equal(got[k], folder[k]) for k in folder)


def test_missing_files_name_the_config_key(root, tmp_path):
    with pytest.raises(MissingWeightsError, match="masker.dino"):
        load_original_grounding_dino(tmp_path / "nope.pth", root / "bert-base-uncased", checkpoint_key="masker.dino")
    with pytest.raises(MissingWeightsError, match="masker.bert"):
        load_original_grounding_dino(root / "groundingdino_swint_ogc.pth", tmp_path / "no-bert", bert_key="masker.bert")


def test_wrong_text_model_folder_is_named(root, tmp_path):
    import json
    import shutil

    folder = tmp_path / "bert-large"
    shutil.copytree(root / "bert-base-uncased", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["hidden_size"] = 24
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="hidden_size 24"):
        load_original_grounding_dino(root / "groundingdino_swint_ogc.pth", folder)


def test_checkpoints_with_pickled_objects_are_refused_with_advice(tmp_path):
    import argparse

    torch.save({"model": {"x": torch.zeros(1)}, "args": argparse.Namespace(lr=1.0)}, tmp_path / "with_args.pth")
    with pytest.raises(ValueError, match="weights_only=True refused"):
        load_original_checkpoint(tmp_path / "with_args.pth")
