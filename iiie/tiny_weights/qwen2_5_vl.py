"""Tiny random-weight Qwen2.5-VL in the official Hugging Face layout, built offline.

Why: CI and CPU runs need a real ``Qwen2_5_VLForConditionalGeneration`` (its chat
template, processor and ``generate``) without any download. The tokenizer is a small
word-level vocabulary plus every Qwen special token the processor and template use, so
``AutoProcessor.from_pretrained(folder)`` works like it does on the real checkpoint.

Every weight is random except the token embeddings and the LM head (:func:`_close_values`):
a random language model under a JSON grammar (``vlm.engine=transformers``) loops inside a
string or a number until ``max_tokens`` runs out, so no reply would ever end. Those two
matrices make the next-token preference depend on the class of the current token, so that
a value is closed right after its first character. Unconstrained, this model writes
``"r"r"r...``, not JSON: only the grammar makes its replies parse, in some 30 tokens.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

from iiie.tiny_weights.common import ensure_folder

NAME = "qwen2_5_vl"

#: Special tokens of the real Qwen2.5-VL tokenizer that the processor/template rely on.
SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<|object_ref_start|>",
    "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
]

#: Minimal Qwen2-VL style chat template (system/user/assistant turns, images as vision pads).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' or 'image' in c %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _write_tokenizer(folder: Path) -> None:
    """Character-level vocab (any JSON text is encodable) plus the Qwen specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.printable))
    vocab = {"<unk>": 0}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=SPECIALS,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)


def write(folder: Path) -> None:
    """Write config, safetensors, tokenizer and processor configs into ``folder``."""
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

    _write_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=4096,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         bos_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2,
                           out_hidden_size=32, patch_size=14, spatial_merge_size=2,
                           temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    _close_values(model, tok)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder, safe_serialization=True)
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor
    improc = Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16)
    try:
        proc = Qwen2_5_VLProcessor(image_processor=improc, tokenizer=tok, chat_template=CHAT_TEMPLATE)
    except TypeError:  # processors that also require a video processor
        from transformers import Qwen2VLVideoProcessor
        proc = Qwen2_5_VLProcessor(image_processor=improc, tokenizer=tok,
                                   video_processor=Qwen2VLVideoProcessor(),
                                   chat_template=CHAT_TEMPLATE)
    proc.save_pretrained(folder)
    (folder / "README.md").write_text("Tiny random-weight Qwen2.5-VL (iiie.tiny_weights.qwen2_5_vl); not a real model.\n")


#: Next-token preferences by the class of the current token (:func:`_token_class`; higher
#: wins, and the grammar removes what it does not allow, so the best allowed one is taken).
#: After a quote: a letter ('r'; 'y' or 'n' where an enum allows only those); after ":",
#: "[", "{" or a blank: open a string, else an array, else the number "1", else "n" (null);
#: after a digit: close the number; after anything else (a letter, "]", "}"): a quote
#: (closing a free string after its first letter), else ",", "]", "}" (the blank after
#: "," and ":" is the grammar's). So the tiny model's values are placeholders (free strings
#: read "r", numbers 1), and a reply is JSON only under the grammar. Changing these scores
#: changes what :func:`write` writes: bump :data:`VERSION`.
_PREFER = {
    "quote": {"r": 9, "y": 8, "n": 7},
    "other": {'"': 9, ",": 8, "]": 7, "}": 6},
    "space": {'"': 9, "[": 8, "1": 7, "n": 6},
    "digit": {",": 9, "]": 8, "}": 7},
}


def _token_class(token: str) -> str:
    if token == '"':
        return "quote"
    if token in (" ", ":", "[", "{"):
        return "space"
    if token.isdigit():
        return "digit"
    return "other"


def _close_values(model, tok) -> None:
    """Class embeddings and an LM head scoring :data:`_PREFER` (see the module doc)."""
    import torch

    classes = list(_PREFER)
    lm = model.get_output_embeddings()
    emb = model.get_input_embeddings()
    if lm.weight.data_ptr() == emb.weight.data_ptr():
        lm.weight = torch.nn.Parameter(lm.weight.detach().clone())
    hidden = emb.weight.shape[1]
    with torch.no_grad():
        emb.weight.mul_(0.05)
        lm.weight.mul_(0.05)
        for token_id in range(emb.weight.shape[0]):
            c = classes.index(_token_class(tok.convert_ids_to_tokens(token_id) or ""))
            emb.weight[token_id, c] += 4.0
        for c, name in enumerate(classes):
            for token, score in _PREFER[name].items():
                lm.weight[tok.convert_tokens_to_ids(token), c] += float(score)
    assert len(classes) <= hidden


#: Bump when :func:`write` changes what it writes (2: the JSON-shaped preferences above).
VERSION = 2


def ensure(root: str | os.PathLike) -> Path:
    """Build ``root/qwen2_5_vl`` once (atomic, idempotent) and return it; a folder written
    by an older version of :func:`write` is rebuilt."""
    return ensure_folder(root, NAME, write, version=VERSION)
