"""The tiny Qwen2.5-VL folder loads with the real classes and generates (no download)."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")


def test_tiny_qwen2_5_vl_roundtrip_generate(tmp_path):
    from PIL import Image
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from iiie.tiny_weights import qwen2_5_vl

    folder = qwen2_5_vl.ensure(tmp_path)
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    assert qwen2_5_vl.ensure(tmp_path) == folder  # idempotent
    proc = AutoProcessor.from_pretrained(folder)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder).eval()
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "remove the cat"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "<|image_pad|>" in text
    inputs = proc(text=[text], images=[Image.new("RGB", (56, 56))], return_tensors="pt")
    n_pad = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_pad > 1  # the processor expanded the image into its merged patch tokens
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
