"""Tiny random-weight Grounding DINO, BERT and SAM in their real on-disk layouts.

``ensure(root)`` writes (once, atomically) everything ``masker=grounded_sam`` needs for
both implementations, so tests and the ``tiny`` experiment run the real loading and
inference code on CPU without any download:

* ``bert-base-uncased/``      BERT config + ``vocab.txt`` (+ weights), HF layout
* ``grounding-dino/``         ``GroundingDinoForObjectDetection`` + processor, HF layout
* ``groundingdino_swint_ogc.pth``  the *same* detector weights in the original
  IDEA-Research key layout (``{"model": {"module.<key>": tensor}}``)
* ``sam/``                    ``SamModel`` + ``SamProcessor``, HF layout
* ``sam_vit_h_4b8939.pth``    a tiny ``segment_anything`` SAM state dict (original layout)

The vocabulary puts ``[CLS] [SEP] . ?`` at bert-base-uncased's ids (101, 102, 1012, 1029)
because transformers' Grounding DINO hard-codes those ids to split captions into phrases.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from iiie.tiny_weights.common import ensure_folder

#: Words the synthetic benchmark and the tests use; everything else tokenizes to [UNK].
WORDS = (
    "red green blue yellow orange purple pink white black cyan circle square triangle star diamond "
    "hexagon brick wall sky grass wooden floor sandy beach checkerboard night background main subject "
    "the a an of object cat dog"
).split()


def _vocab() -> list[str]:
    vocab = [f"[unused{i}]" for i in range(1030)]
    vocab[0], vocab[100], vocab[101], vocab[102], vocab[103] = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
    vocab[1012], vocab[1029] = ".", "?"
    return vocab + [w for w in dict.fromkeys(WORDS)]


def _bert_config():
    from transformers import BertConfig

    return BertConfig(vocab_size=len(_vocab()), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)


def write_bert(folder: Path) -> None:
    from transformers import BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    tok = BertTokenizer.from_pretrained(folder)  # from a folder: see TESTING-WITHOUT-WEIGHTS
    tok.save_pretrained(folder)
    torch.manual_seed(1)
    BertModel(_bert_config()).save_pretrained(folder)


def dino_config():
    """A ~0.2 M parameter Grounding DINO: 4-stage Swin, 1 encoder and 2 decoder layers."""
    from transformers import GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(embed_dim=8, depths=[1, 1, 2, 1], num_heads=[1, 1, 2, 2], window_size=4, image_size=32,
                          out_features=["stage2", "stage3", "stage4"])
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=_bert_config(), d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=8, decoder_attention_heads=8,
        num_queries=12, encoder_n_points=2, decoder_n_points=2, max_text_len=256,
    )


def write_dino(folder: Path, pth: Path, bert: Path) -> None:
    """The same random weights twice: HF layout in ``folder``, original layout in ``pth``."""
    from transformers import (
        BertTokenizer,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    from iiie.models.grounding_dino.original import hf_to_original

    torch.manual_seed(2)
    model = GroundingDinoForObjectDetection(dino_config()).eval()
    model.save_pretrained(folder)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 192}),
        tokenizer=BertTokenizer.from_pretrained(bert),
    )
    processor.save_pretrained(folder)
    original = hf_to_original(model.state_dict())
    torch.save({"model": {f"module.{k}": v.clone().contiguous() for k, v in original.items()}}, pth)


def sam_hf_config():
    from transformers import (
        SamConfig,
        SamMaskDecoderConfig,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    return SamConfig(
        vision_config=SamVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=64,
                                      patch_size=16, output_channels=32, global_attn_indexes=[0], window_size=2,
                                      mlp_dim=32, num_pos_feats=16),
        prompt_encoder_config=SamPromptEncoderConfig(hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4),
        mask_decoder_config=SamMaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=8, iou_head_hidden_dim=32),
    )


def write_sam_hf(folder: Path) -> None:
    from transformers import SamImageProcessor, SamModel, SamProcessor

    torch.manual_seed(3)
    SamModel(sam_hf_config()).save_pretrained(folder)
    SamProcessor(SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})).save_pretrained(folder)


def build_tiny_original_sam():
    """A tiny ``segment_anything`` SAM (64 px input, one global-attention block)."""
    from functools import partial

    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    return Sam(
        image_encoder=ImageEncoderViT(depth=1, embed_dim=16, img_size=64, mlp_ratio=4, num_heads=2, patch_size=16,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), qkv_bias=True, use_rel_pos=True,
                                      global_attn_indexes=(0,), window_size=0, out_chans=32),
        prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(4, 4), input_image_size=(64, 64), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=8),
                                 transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()


def write_sam_original(pth: Path) -> None:
    torch.manual_seed(4)
    torch.save(build_tiny_original_sam().state_dict(), pth)


def write_all(folder: Path) -> None:
    """Every file listed in the module docstring, under its real name."""
    write_bert(folder / "bert-base-uncased")
    write_dino(folder / "grounding-dino", folder / "groundingdino_swint_ogc.pth", folder / "bert-base-uncased")
    write_sam_hf(folder / "sam")
    write_sam_original(folder / "sam_vit_h_4b8939.pth")


def ensure(root: str | os.PathLike) -> Path:
    """Write the tiny masker weights under ``root/grounded_sam`` if missing; return that folder
    (idempotent and atomic, see :func:`iiie.tiny_weights.common.ensure_folder`)."""
    return ensure_folder(root, "grounded_sam", write_all)
