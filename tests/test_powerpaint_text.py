"""PowerPaint v2 task tokens, text encoder and prompt construction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTokenizer

from iiie.models.powerpaint.prompts import TASKS, build_task_prompts, normalize_task
from iiie.models.powerpaint.task_tokens import NUM_VECTORS, TaskTokenEmbedding, TaskTokenizer
from iiie.models.powerpaint.text_encoder import (
    build_task_text_encoder,
    load_task_text_encoder,
    save_task_text_encoder_state,
)

GOLDEN = Path(__file__).resolve().parents[1] / ".." / "shared" / "golden" / "powerpaint"
needs_golden = pytest.mark.skipif(
    not (GOLDEN / "run_meta.json").exists(), reason=f"golden data not found at {GOLDEN}"
)

pytestmark = pytest.mark.timeout(300)


# ---------------------------------------------------------------- prompt construction


def test_prompts_text_guided_match_reference_v2():
    p = build_task_prompts("text-guided", "a yellow flower vase", "blurry, low quality")
    assert (p.promptA, p.promptB) == (" P_obj", " P_obj")
    assert (p.negative_promptA, p.negative_promptB) == ("P_obj", "P_obj")
    assert (p.promptU, p.negative_promptU) == ("a yellow flower vase", "blurry, low quality")
    assert (p.tradoff, p.tradoff_nag) == (1.0, 1.0)


def test_prompts_object_removal_keeps_user_text_out_of_branch():
    p = build_task_prompts("object-removal", "a wooden table", "person")
    assert (p.promptA, p.promptB) == (" P_ctxt", " P_ctxt")
    assert (p.negative_promptA, p.negative_promptB) == (" P_obj", " P_obj")
    assert p.promptU == "a wooden table empty scene blur"
    assert p.negative_promptU == "person"
    empty = build_task_prompts("object-removal")
    assert empty.promptU == " empty scene blur" and empty.negative_promptU == ""


def test_prompts_shape_guided_blends_with_fitting_degree():
    p = build_task_prompts("shape-guided", "a rabbit", "ugly", fitting_degree=0.3)
    assert (p.promptA, p.promptB) == (" P_shape", " P_ctxt")
    assert (p.negative_promptA, p.negative_promptB) == ("P_shape", "P_ctxt")
    assert (p.promptU, p.negative_promptU) == ("a rabbit", "ugly")
    assert (p.tradoff, p.tradoff_nag) == (0.3, 0.3)
    with pytest.raises(ValueError, match="fitting_degree"):
        build_task_prompts("shape-guided", fitting_degree=1.5)


def test_prompts_context_aware_and_aliases():
    p = build_task_prompts("context-aware", "a beach")
    assert (p.promptA, p.negative_promptA) == (" P_ctxt", " P_obj")
    assert p.promptU == "a beach empty scene"
    assert normalize_task("image-outpainting") == "context-aware"
    assert normalize_task("Object_Removal") == "object-removal"
    assert set(TASKS) == {"text-guided", "object-removal", "shape-guided", "context-aware"}
    with pytest.raises(ValueError, match="unknown PowerPaint task"):
        normalize_task("inpaint-anything")


@needs_golden
def test_prompts_reproduce_golden_call_args():
    meta = json.loads((GOLDEN / "run_meta.json").read_text())
    for task, info in meta["tasks"].items():
        args = info["call_args"]
        p = build_task_prompts(task, info["user_prompt"], info["user_negative_prompt"],
                               fitting_degree=args["tradoff"])
        for key, value in p.as_kwargs().items():
            assert args[key] == value, (task, key)


# ---------------------------------------------------------------- tokens and embedding


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> CLIPTokenizer:
    """A real CLIP BPE tokenizer over a tiny vocabulary (no golden data needed)."""
    from iiie.tiny_weights.sd15 import write_tiny_clip_tokenizer

    folder = tmp_path_factory.mktemp("tok")
    write_tiny_clip_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(str(folder))


def test_task_tokenizer_expands_each_word_into_ten_ids(tokenizer):
    tok = tokenizer
    tt = TaskTokenizer(tok)
    base = len(tok)
    ids = tt("a red cat P_obj")[0].tolist()
    plain = tok("a red cat").input_ids
    assert ids[: len(plain) - 1] == plain[:-1]
    start = len(plain) - 1
    assert ids[start : start + NUM_VECTORS] == list(range(base + 20, base + 30))
    assert ids[start + NUM_VECTORS] == tok.eos_token_id
    assert ids[start + NUM_VECTORS + 1 :] == [tok.pad_token_id] * (len(ids) - start - NUM_VECTORS - 1)
    assert len(ids) == tok.model_max_length
    assert tt("P_ctxt")[0, 1:11].tolist() == list(range(base, base + 10))
    assert tt("P_shape")[0, 1:11].tolist() == list(range(base + 10, base + 20))
    # Text around a task word is tokenized as if the word were a separate token.
    cat = tok("cat", add_special_tokens=False).input_ids
    row = tt("catP_obj")[0].tolist()
    assert row[1 : 1 + len(cat) + NUM_VECTORS] == cat + list(range(base + 20, base + 30))
    # The plain tokenizer never produces task ids, whatever the text says.
    assert max(tok("P_obj P_ctxt", padding="max_length", max_length=77).input_ids) < base


def test_task_tokenizer_refuses_to_cut_a_task_word(tokenizer):
    tt = TaskTokenizer(tokenizer)
    n_cat = len(tokenizer("cat ", add_special_tokens=False).input_ids)
    long_text = "cat " * (70 // n_cat) + "P_obj"
    with pytest.raises(ValueError, match="too long"):
        tt(long_text)
    # Dropping whole words by truncation is fine, as in CLIP.
    assert tt("cat " * 200)[0].shape == (77,)


def test_task_embedding_substitutes_learned_vectors():
    wrapped = torch.nn.Embedding(20, 4)
    emb = TaskTokenEmbedding(wrapped, first_task_id=20, num_vectors=2)
    with torch.no_grad():
        for i, name in enumerate(("P_ctxt", "P_shape", "P_obj")):
            emb.trainable_embeddings[name].copy_(torch.full((2, 4), float(10 + i)) + torch.arange(2)[:, None])
    ids = torch.tensor([[3, 24, 25, 20, 5]])
    out = emb(ids)
    assert torch.equal(out[0, 0], wrapped.weight[3]) and torch.equal(out[0, 4], wrapped.weight[5])
    assert torch.equal(out[0, 1], torch.full((4,), 12.0))  # P_obj vector 0
    assert torch.equal(out[0, 2], torch.full((4,), 13.0))  # P_obj vector 1
    assert torch.equal(out[0, 3], torch.full((4,), 10.0))  # P_ctxt vector 0
    with pytest.raises(ValueError, match="neither in the vocabulary"):
        emb(torch.tensor([[26]]))
    assert set(emb.state_dict()) == {
        "wrapped.weight",
        "trainable_embeddings.P_ctxt",
        "trainable_embeddings.P_shape",
        "trainable_embeddings.P_obj",
    }


# ---------------------------------------------------------------- official files


@needs_golden
def test_text_encoder_loads_official_bin_and_matches_golden():
    from safetensors.torch import load_file

    base = GOLDEN / "tiny_sd15_base"
    te = load_task_text_encoder(base / "text_encoder", GOLDEN / "PowerPaint_Brushnet")
    tt = TaskTokenizer(CLIPTokenizer.from_pretrained(str(base / "tokenizer")))
    meta = json.loads((GOLDEN / "run_meta.json").read_text())
    gold = load_file(str(GOLDEN / "text_encoders.safetensors"))
    for i, (text, unpadded) in enumerate(meta["token_examples"].items()):
        ids = tt(text)
        assert ids[0, : len(unpadded)].tolist() == unpadded
        assert torch.equal(ids, gold[f"example{i}.input_ids"])
        with torch.no_grad():
            hidden = te(ids)[0]
        ref = gold[f"example{i}.text_encoder_brushnet_last_hidden_state"]
        assert (hidden - ref).abs().max().item() <= 1e-4


@needs_golden
def test_text_encoder_bin_and_safetensors_agree(tmp_path):
    import shutil

    base = GOLDEN / "tiny_sd15_base" / "text_encoder"
    only_bin = tmp_path / "bin"
    only_bin.mkdir()
    shutil.copy(GOLDEN / "PowerPaint_Brushnet" / "pytorch_model.bin", only_bin)
    a = load_task_text_encoder(base, only_bin)
    b = load_task_text_encoder(base, GOLDEN / "PowerPaint_Brushnet")
    for (ka, va), (kb, vb) in zip(sorted(a.state_dict().items()), sorted(b.state_dict().items()), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_text_encoder_round_trip_and_strict_keys(tmp_path):
    cfg = CLIPTextConfig(vocab_size=40, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, bos_token_id=38,
                         eos_token_id=39, pad_token_id=39)
    cfg.save_pretrained(tmp_path / "text_encoder")
    model = build_task_text_encoder(cfg)
    with torch.no_grad():
        for p in model.get_input_embeddings().trainable_embeddings.values():
            p.normal_()
    save_task_text_encoder_state(model, tmp_path / "pp")
    state = torch.load(tmp_path / "pp" / "pytorch_model.bin", weights_only=True)
    assert "text_model.embeddings.token_embedding.trainable_embeddings.P_obj" in state
    loaded = load_task_text_encoder(tmp_path / "text_encoder", tmp_path / "pp")
    ids = torch.tensor([[38, 3, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 39, 39]])
    with torch.no_grad():
        assert torch.equal(model(ids)[0], loaded(ids)[0])
    # A file with a missing tensor is an error naming the key, not a silent partial load.
    del state["text_model.embeddings.token_embedding.trainable_embeddings.P_obj"]
    (tmp_path / "pp" / "text_encoder_brushnet.safetensors").unlink()
    torch.save(state, tmp_path / "pp" / "pytorch_model.bin")
    with pytest.raises(ValueError, match="trainable_embeddings.P_obj"):
        load_task_text_encoder(tmp_path / "text_encoder", tmp_path / "pp")
