"""Load the original Grounding DINO checkpoints into transformers' implementation.

Why
---
Most Grounded-SAM users have ``groundingdino_swint_ogc.pth`` (or ``..._swinb_cogcoor.pth``)
from IDEA-Research's release. The package that reads them, ``groundingdino-py`` (0.4.0,
last released 2023), calls BERT internals that transformers 5 removed
(``BertModel.get_extended_attention_mask``; ``BertEmbeddings.forward`` no longer takes
``past_key_values_length``), and vLLM's environment needs transformers 5. transformers
itself ships a faithful port, ``GroundingDinoForObjectDetection``, that HF validated
against the original model on the released checkpoints (its conversion script compares
logits and boxes). So instead of depending on ``groundingdino-py`` we rename the original
checkpoint's keys onto that class at load time, with a strict ``load_state_dict``: every
original tensor must land on exactly one transformers parameter and every parameter must
be filled.

What the mapping does (original -> transformers)
------------------------------------------------
* Swin backbone ``backbone.0.*`` -> ``model.backbone.conv_encoder.model.swin.*``;
  the fused window-attention ``attn.qkv`` is split row-wise into ``q_proj``/``k_proj``/
  ``v_proj`` (timm order q, k, v); ``attn.proj`` -> ``o_proj``; ``norm1/2`` ->
  ``layernorm_before/after``; the per-stage output norms ``norm{i}`` ->
  ``hidden_states_norms.stage{i+1}`` (transformers counts the stem as stage 0).
  ``relative_position_index`` buffers are dropped after checking they equal the index
  transformers recomputes. ``swin.layernorm`` (the classifier's final norm, which the
  backbone's feature maps never pass through) has no original counterpart and is set to
  the identity.
* Text: ``bert.*`` -> ``model.text_backbone.*`` (Grounding DINO fine-tuned BERT, so the
  checkpoint's BERT weights are used; only the tokenizer and ``config.json`` come from the
  local ``bert-base-uncased`` folder). ``bert.pooler.*`` is dropped: detection never uses
  the pooled output and transformers builds the text model without a pooler.
  ``feat_map`` -> ``model.text_projection``.
* Encoder layer ``i``: ``transformer.encoder.layers.i`` (deformable) ->
  ``deformable_layer``; ``text_layers.i`` (text enhancer, an ``nn.MultiheadAttention``
  whose fused ``in_proj`` is split into ``query/key/value``) -> ``text_enhancer_layer``;
  ``fusion_layers.i`` (bi-attention, ``v``/``l`` -> ``vision``/``text``, ``gamma_*`` ->
  ``*_param``) -> ``fusion_layer``.
* Decoder layer ``i``: ``cross_attn`` -> ``encoder_attn``, ``ca_text`` ->
  ``encoder_attn_text`` (split), ``self_attn`` (split), ``norm1/2/3`` and
  ``catext_norm`` -> the matching ``*_layer_norm``; ``linear1/2`` -> ``fc1/2``.
* Heads and the rest: ``bbox_embed`` (shared across decoder layers in the release),
  ``transformer.decoder.bbox_embed``, ``transformer.enc_out_bbox_embed`` ->
  ``model.encoder_output_bbox_embed``, ``transformer.enc_output(_norm)``,
  ``transformer.tgt_embed`` -> ``model.query_position_embeddings``,
  ``transformer.level_embed``, ``transformer.decoder.ref_point_head`` ->
  ``model.decoder.reference_points_head``, ``input_proj`` -> ``model.input_proj_vision``.

The architecture is read from the tensors' shapes (Swin width, depths, heads and window;
model width, layer counts, FFN sizes, queries, feature levels, points per head), so both
released checkpoints (Swin-T OGC and Swin-B) and tiny test checkpoints load through the
same code. Two hyper-parameters leave no trace in the weights and default to the release
values: the transformer's attention heads (8) and ``max_text_len`` (256).

:func:`hf_to_original` is the inverse (used to write tiny checkpoints in the original
layout for tests and the tiny experiment).
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from iiie.weights import MissingWeightsError, require_files

SWIN = "model.backbone.conv_encoder.model"
_FIELD = {"n": r"\d+", "m": r"\d+", "p": r"[A-Za-z_]+", "rest": r".+"}

# One-to-one renames, (original template, transformers template). First full match wins.
RENAMES: list[tuple[str, str]] = [
    # Swin backbone
    ("backbone.0.patch_embed.proj.{p}", f"{SWIN}.swin.embeddings.patch_embeddings.projection.{{p}}"),
    ("backbone.0.patch_embed.norm.{p}", f"{SWIN}.swin.embeddings.norm.{{p}}"),
    ("backbone.0.layers.{n}.blocks.{m}.norm1.{p}", f"{SWIN}.swin.encoder.layers.{{n}}.blocks.{{m}}.layernorm_before.{{p}}"),
    ("backbone.0.layers.{n}.blocks.{m}.norm2.{p}", f"{SWIN}.swin.encoder.layers.{{n}}.blocks.{{m}}.layernorm_after.{{p}}"),
    ("backbone.0.layers.{n}.blocks.{m}.attn.proj.{p}", f"{SWIN}.swin.encoder.layers.{{n}}.blocks.{{m}}.attention.o_proj.{{p}}"),
    (
        "backbone.0.layers.{n}.blocks.{m}.attn.relative_position_bias_table",
        f"{SWIN}.swin.encoder.layers.{{n}}.blocks.{{m}}.attention.relative_position_bias.relative_position_bias_table",
    ),
    ("backbone.0.layers.{n}.blocks.{m}.mlp.fc1.{p}", f"{SWIN}.swin.encoder.layers.{{n}}.blocks.{{m}}.mlp.fc1.{{p}}"),
    ("backbone.0.layers.{n}.blocks.{m}.mlp.fc2.{p}", f"{SWIN}.swin.encoder.layers.{{n}}.blocks.{{m}}.mlp.fc2.{{p}}"),
    ("backbone.0.layers.{n}.downsample.reduction.{p}", f"{SWIN}.swin.encoder.layers.{{n}}.downsample.reduction.{{p}}"),
    ("backbone.0.layers.{n}.downsample.norm.{p}", f"{SWIN}.swin.encoder.layers.{{n}}.downsample.norm.{{p}}"),
    # projections, text model, two-stage parts
    ("input_proj.{n}.{m}.{p}", "model.input_proj_vision.{n}.{m}.{p}"),
    ("bert.{rest}", "model.text_backbone.{rest}"),
    ("feat_map.{p}", "model.text_projection.{p}"),
    ("transformer.level_embed", "model.level_embed"),
    ("transformer.tgt_embed.weight", "model.query_position_embeddings.weight"),
    ("transformer.enc_output.{p}", "model.enc_output.{p}"),
    ("transformer.enc_output_norm.{p}", "model.enc_output_norm.{p}"),
    ("transformer.enc_out_bbox_embed.layers.{n}.{p}", "model.encoder_output_bbox_embed.layers.{n}.{p}"),
    # encoder: deformable layer
    ("transformer.encoder.layers.{n}.self_attn.{rest}", "model.encoder.layers.{n}.deformable_layer.self_attn.{rest}"),
    ("transformer.encoder.layers.{n}.norm1.{p}", "model.encoder.layers.{n}.deformable_layer.self_attn_layer_norm.{p}"),
    ("transformer.encoder.layers.{n}.linear1.{p}", "model.encoder.layers.{n}.deformable_layer.fc1.{p}"),
    ("transformer.encoder.layers.{n}.linear2.{p}", "model.encoder.layers.{n}.deformable_layer.fc2.{p}"),
    ("transformer.encoder.layers.{n}.norm2.{p}", "model.encoder.layers.{n}.deformable_layer.final_layer_norm.{p}"),
    # encoder: text enhancer
    ("transformer.encoder.text_layers.{n}.self_attn.out_proj.{p}", "model.encoder.layers.{n}.text_enhancer_layer.self_attn.out_proj.{p}"),
    ("transformer.encoder.text_layers.{n}.linear1.{p}", "model.encoder.layers.{n}.text_enhancer_layer.fc1.{p}"),
    ("transformer.encoder.text_layers.{n}.linear2.{p}", "model.encoder.layers.{n}.text_enhancer_layer.fc2.{p}"),
    ("transformer.encoder.text_layers.{n}.norm1.{p}", "model.encoder.layers.{n}.text_enhancer_layer.layer_norm_before.{p}"),
    ("transformer.encoder.text_layers.{n}.norm2.{p}", "model.encoder.layers.{n}.text_enhancer_layer.layer_norm_after.{p}"),
    # encoder: vision-text fusion
    ("transformer.encoder.fusion_layers.{n}.gamma_v", "model.encoder.layers.{n}.fusion_layer.vision_param"),
    ("transformer.encoder.fusion_layers.{n}.gamma_l", "model.encoder.layers.{n}.fusion_layer.text_param"),
    ("transformer.encoder.fusion_layers.{n}.layer_norm_v.{p}", "model.encoder.layers.{n}.fusion_layer.layer_norm_vision.{p}"),
    ("transformer.encoder.fusion_layers.{n}.layer_norm_l.{p}", "model.encoder.layers.{n}.fusion_layer.layer_norm_text.{p}"),
    ("transformer.encoder.fusion_layers.{n}.attn.v_proj.{p}", "model.encoder.layers.{n}.fusion_layer.attn.vision_proj.{p}"),
    ("transformer.encoder.fusion_layers.{n}.attn.l_proj.{p}", "model.encoder.layers.{n}.fusion_layer.attn.text_proj.{p}"),
    ("transformer.encoder.fusion_layers.{n}.attn.values_v_proj.{p}", "model.encoder.layers.{n}.fusion_layer.attn.values_vision_proj.{p}"),
    ("transformer.encoder.fusion_layers.{n}.attn.values_l_proj.{p}", "model.encoder.layers.{n}.fusion_layer.attn.values_text_proj.{p}"),
    ("transformer.encoder.fusion_layers.{n}.attn.out_v_proj.{p}", "model.encoder.layers.{n}.fusion_layer.attn.out_vision_proj.{p}"),
    ("transformer.encoder.fusion_layers.{n}.attn.out_l_proj.{p}", "model.encoder.layers.{n}.fusion_layer.attn.out_text_proj.{p}"),
    # decoder
    ("transformer.decoder.layers.{n}.cross_attn.{rest}", "model.decoder.layers.{n}.encoder_attn.{rest}"),
    ("transformer.decoder.layers.{n}.norm1.{p}", "model.decoder.layers.{n}.encoder_attn_layer_norm.{p}"),
    ("transformer.decoder.layers.{n}.ca_text.out_proj.{p}", "model.decoder.layers.{n}.encoder_attn_text.out_proj.{p}"),
    ("transformer.decoder.layers.{n}.catext_norm.{p}", "model.decoder.layers.{n}.encoder_attn_text_layer_norm.{p}"),
    ("transformer.decoder.layers.{n}.self_attn.out_proj.{p}", "model.decoder.layers.{n}.self_attn.out_proj.{p}"),
    ("transformer.decoder.layers.{n}.norm2.{p}", "model.decoder.layers.{n}.self_attn_layer_norm.{p}"),
    ("transformer.decoder.layers.{n}.linear1.{p}", "model.decoder.layers.{n}.fc1.{p}"),
    ("transformer.decoder.layers.{n}.linear2.{p}", "model.decoder.layers.{n}.fc2.{p}"),
    ("transformer.decoder.layers.{n}.norm3.{p}", "model.decoder.layers.{n}.final_layer_norm.{p}"),
    ("transformer.decoder.norm.{p}", "model.decoder.layer_norm.{p}"),
    ("transformer.decoder.ref_point_head.layers.{n}.{p}", "model.decoder.reference_points_head.layers.{n}.{p}"),
    ("transformer.decoder.bbox_embed.{n}.layers.{m}.{p}", "model.decoder.bbox_embed.{n}.layers.{m}.{p}"),
    ("bbox_embed.{n}.layers.{m}.{p}", "bbox_embed.{n}.layers.{m}.{p}"),
]

# Fused q/k/v projections split row-wise into three, (original, [q, k, v] templates).
SPLITS: list[tuple[str, tuple[str, str, str]]] = [
    (
        "backbone.0.layers.{n}.blocks.{m}.attn.qkv.{p}",
        tuple(f"{SWIN}.swin.encoder.layers.{{n}}.blocks.{{m}}.attention.{x}_proj.{{p}}" for x in "qkv"),
    ),
    (
        "transformer.encoder.text_layers.{n}.self_attn.in_proj_{p}",
        tuple(f"model.encoder.layers.{{n}}.text_enhancer_layer.self_attn.{x}.{{p}}" for x in ("query", "key", "value")),
    ),
    (
        "transformer.decoder.layers.{n}.ca_text.in_proj_{p}",
        tuple(f"model.decoder.layers.{{n}}.encoder_attn_text.{x}.{{p}}" for x in ("query", "key", "value")),
    ),
    (
        "transformer.decoder.layers.{n}.self_attn.in_proj_{p}",
        tuple(f"model.decoder.layers.{{n}}.self_attn.{x}.{{p}}" for x in ("query", "key", "value")),
    ),
]

# Original keys with no transformers counterpart (see the module docstring).
DROPPED = [
    re.compile(r"backbone\.0\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index"),
    re.compile(r"bert\.pooler\..+"),
    re.compile(r"bert\.embeddings\.position_ids"),
]
_STAGE_NORM_ORIG = re.compile(r"backbone\.0\.norm(?P<i>\d+)\.(?P<p>weight|bias)")
_STAGE_NORM_HF = re.compile(re.escape(SWIN) + r"\.hidden_states_norms\.stage(?P<s>\d+)\.(?P<p>weight|bias)")
_SWIN_FINAL_NORM = f"{SWIN}.swin.layernorm."


def _compile(template: str) -> re.Pattern:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>{_FIELD[m.group(1)]})")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


_RENAME_FWD = [(_compile(a), b) for a, b in RENAMES]
_RENAME_BWD = [(_compile(b), a) for a, b in RENAMES]
_SPLIT_FWD = [(_compile(a), b) for a, b in SPLITS]
_SPLIT_BWD = [(_compile(b[0]), a, b) for a, b in SPLITS]
_SPLIT_KV = [_compile(t) for _, b in SPLITS for t in b[1:]]


def strip_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` prefix that DistributedDataParallel training left on keys."""
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state_dict.items()}


def safe_torch_load(path: str | os.PathLike):
    """``torch.load(weights_only=True)`` with an actionable error for pickled extras."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path} holds more than tensors (weights_only=True refused it: {str(e).splitlines()[0]}). "
            "iiie never unpickles arbitrary objects; if you trust the file, re-save its state dict once with "
            "torch.save(torch.load(p, weights_only=False)['model'], 'clean.pth') and point the config at it."
        ) from None


def load_original_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``groundingdino_*.pth`` safely (``weights_only=True``) as a flat state dict."""
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a Grounding DINO checkpoint (expected a state dict or {{'model': state dict}})")
    return strip_prefix(obj)


def _swin_relative_position_index(window: int) -> torch.Tensor:
    """The Swin index into the relative-position bias table (flattened), as both codes build it."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


@dataclass
class OriginalArchitecture:
    """Hyper-parameters of an original Grounding DINO checkpoint, read from its shapes."""

    swin_embed_dim: int
    swin_depths: list[int]
    swin_num_heads: list[int]
    swin_window_size: int
    swin_patch_size: int
    swin_mlp_ratio: float
    swin_out_indices: list[int]  # original numbering: norm{i} exists for each i
    d_model: int
    text_hidden_size: int
    encoder_layers: int
    decoder_layers: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    num_queries: int
    num_feature_levels: int
    encoder_n_points: int
    decoder_n_points: int
    num_heads: int = 8
    max_text_len: int = 256
    decoder_bbox_embed_share: bool = True
    has_bert_weights: bool = True
    extra: dict = field(default_factory=dict)

    def to_hf_config(self, text_config):
        """The ``GroundingDinoConfig`` that reproduces this architecture in transformers."""
        from transformers import GroundingDinoConfig, SwinConfig

        backbone = SwinConfig(
            embed_dim=self.swin_embed_dim,
            depths=list(self.swin_depths),
            num_heads=list(self.swin_num_heads),
            window_size=self.swin_window_size,
            patch_size=self.swin_patch_size,
            mlp_ratio=self.swin_mlp_ratio,
            image_size=224,  # only matters for absolute position embeddings, which Grounding DINO lacks
            out_features=[f"stage{i + 1}" for i in self.swin_out_indices],
        )
        return GroundingDinoConfig(
            backbone_config=backbone,
            text_config=text_config,
            d_model=self.d_model,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            encoder_ffn_dim=self.encoder_ffn_dim,
            decoder_ffn_dim=self.decoder_ffn_dim,
            encoder_attention_heads=self.num_heads,
            decoder_attention_heads=self.num_heads,
            num_queries=self.num_queries,
            num_feature_levels=self.num_feature_levels,
            encoder_n_points=self.encoder_n_points,
            decoder_n_points=self.decoder_n_points,
            max_text_len=self.max_text_len,
            two_stage=True,
            embedding_init_target=True,
            decoder_bbox_embed_share=self.decoder_bbox_embed_share,
            two_stage_bbox_embed_share=False,
            positional_embedding_temperature=20,
        )


def _count(keys, pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    if found and found != set(range(max(found) + 1)):
        raise ValueError(f"non-contiguous layer indices for {pattern}: {sorted(found)}")
    return len(found)


def config_from_original(
    sd: dict[str, torch.Tensor], num_heads: int = 8, max_text_len: int = 256
) -> OriginalArchitecture:
    """Read the architecture of an original checkpoint from its tensor shapes."""
    try:
        patch = sd["backbone.0.patch_embed.proj.weight"]
        n_stages = _count(sd, r"backbone\.0\.layers\.(\d+)\.")
        depths = [_count(sd, rf"backbone\.0\.layers\.{i}\.blocks\.(\d+)\.") for i in range(n_stages)]
        heads, windows = [], set()
        for i in range(n_stages):
            table = sd[f"backbone.0.layers.{i}.blocks.0.attn.relative_position_bias_table"]
            heads.append(int(table.shape[1]))
            windows.add(int(round((math.sqrt(table.shape[0]) + 1) / 2)))
        if len(windows) != 1:
            raise ValueError(f"Swin stages disagree on the window size: {sorted(windows)}")
        fc1 = sd["backbone.0.layers.0.blocks.0.mlp.fc1.weight"]
        out_idx = sorted(int(m.group("i")) for k in sd if (m := _STAGE_NORM_ORIG.fullmatch(k)) and m.group("p") == "weight")
        feat_map = sd["feat_map.weight"]
        d_model = int(feat_map.shape[0])
        levels = int(sd["transformer.level_embed"].shape[0])
        enc_layers = _count(sd, r"transformer\.encoder\.layers\.(\d+)\.")
        dec_layers = _count(sd, r"transformer\.decoder\.layers\.(\d+)\.")
        enc_off = sd["transformer.encoder.layers.0.self_attn.sampling_offsets.weight"].shape[0]
        dec_off = sd["transformer.decoder.layers.0.cross_attn.sampling_offsets.weight"].shape[0]
    except KeyError as e:
        raise ValueError(f"not an original Grounding DINO checkpoint: missing {e.args[0]!r}") from None
    for off, what in ((enc_off, "encoder"), (dec_off, "decoder")):
        if off % (num_heads * levels * 2):
            raise ValueError(
                f"{what} sampling_offsets has {off} outputs, not a multiple of heads*levels*2 = "
                f"{num_heads}*{levels}*2; is num_heads={num_heads} right for this checkpoint?"
            )
    embeds = [sd[k] for k in sorted(sd) if re.fullmatch(r"bbox_embed\.\d+\.layers\.0\.weight", k)]
    shared = all(torch.equal(embeds[0], e) for e in embeds[1:]) if embeds else True
    return OriginalArchitecture(
        swin_embed_dim=int(patch.shape[0]),
        swin_depths=depths,
        swin_num_heads=heads,
        swin_window_size=windows.pop(),
        swin_patch_size=int(patch.shape[-1]),
        swin_mlp_ratio=float(fc1.shape[0]) / float(patch.shape[0]),
        swin_out_indices=out_idx,
        d_model=d_model,
        text_hidden_size=int(feat_map.shape[1]),
        encoder_layers=enc_layers,
        decoder_layers=dec_layers,
        encoder_ffn_dim=int(sd["transformer.encoder.layers.0.linear1.weight"].shape[0]),
        decoder_ffn_dim=int(sd["transformer.decoder.layers.0.linear1.weight"].shape[0]),
        num_queries=int(sd["transformer.tgt_embed.weight"].shape[0]),
        num_feature_levels=levels,
        encoder_n_points=enc_off // (num_heads * levels * 2),
        decoder_n_points=dec_off // (num_heads * levels * 2),
        num_heads=num_heads,
        max_text_len=max_text_len,
        decoder_bbox_embed_share=shared,
        has_bert_weights=any(k.startswith("bert.") for k in sd),
    )


def _fill(template: str, groups: dict[str, str]) -> str:
    return template.format(**groups)


def original_to_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an original state dict onto ``GroundingDinoForObjectDetection``'s keys.

    Raises ``ValueError`` listing every key that no rule covers, so a checkpoint from an
    unknown variant fails loudly instead of loading partially.
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        if any(rx.fullmatch(key) for rx in DROPPED):
            if key.endswith("relative_position_index"):
                table = sd[key.replace("relative_position_index", "relative_position_bias_table")]
                window = int(round((math.sqrt(table.shape[0]) + 1) / 2))
                if not torch.equal(value.flatten().long(), _swin_relative_position_index(window).flatten()):
                    raise ValueError(f"{key} differs from the standard Swin index for window {window}")
            continue
        m = _STAGE_NORM_ORIG.fullmatch(key)
        if m:
            out[f"{SWIN}.hidden_states_norms.stage{int(m.group('i')) + 1}.{m.group('p')}"] = value
            continue
        for rx, targets in _SPLIT_FWD:
            m = rx.fullmatch(key)
            if m:
                if value.shape[0] % 3:
                    raise ValueError(f"{key} has {value.shape[0]} rows, not a fused q/k/v projection")
                for target, part in zip(targets, value.chunk(3, dim=0), strict=True):
                    out[_fill(target, m.groupdict())] = part.clone()
                break
        else:
            for rx, target in _RENAME_FWD:
                m = rx.fullmatch(key)
                if m:
                    out[_fill(target, m.groupdict())] = value
                    break
            else:
                unknown.append(key)
    if unknown:
        raise ValueError(f"{len(unknown)} original Grounding DINO keys have no mapping: {unknown[:10]}")
    # The Swin classifier norm is not part of the backbone's output path (see docstring).
    last_stage = max((int(m.group(1)) for k in sd if (m := re.match(r"backbone\.0\.layers\.(\d+)\.", k))), default=None)
    if last_stage is not None:
        width = int(sd["backbone.0.patch_embed.proj.weight"].shape[0]) * 2**last_stage
        dtype = sd["backbone.0.patch_embed.proj.weight"].dtype
        out[_SWIN_FINAL_NORM + "weight"] = torch.ones(width, dtype=dtype)
        out[_SWIN_FINAL_NORM + "bias"] = torch.zeros(width, dtype=dtype)
    return out


def hf_to_original(sd: dict[str, torch.Tensor], window_size: int | None = None) -> dict[str, torch.Tensor]:
    """Inverse of :func:`original_to_hf`: write transformers weights in the original layout.

    Adds what the original checkpoints carry and transformers does not: the Swin
    ``relative_position_index`` buffers and a zero ``bert.pooler`` (unused by detection).
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        if key.startswith(_SWIN_FINAL_NORM):
            continue
        m = _STAGE_NORM_HF.fullmatch(key)
        if m:
            out[f"backbone.0.norm{int(m.group('s')) - 1}.{m.group('p')}"] = value
            continue
        handled = False
        for rx, orig, targets in _SPLIT_BWD:
            m = rx.fullmatch(key)
            if m:
                g = m.groupdict()
                parts = [sd[_fill(t, g)] for t in targets]
                out[_fill(orig, g)] = torch.cat(parts, dim=0)
                handled = True
                break
        if handled:
            continue
        if any(rx.fullmatch(key) for rx in _SPLIT_KV):
            continue  # k and v parts were consumed together with q
        for rx, orig in _RENAME_BWD:
            m = rx.fullmatch(key)
            if m:
                out[_fill(orig, m.groupdict())] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"{len(unknown)} transformers keys have no original counterpart: {unknown[:10]}")
    for key in list(out):
        if key.endswith("attn.relative_position_bias_table"):
            w = window_size or int(round((math.sqrt(out[key].shape[0]) + 1) / 2))
            out[key.replace("relative_position_bias_table", "relative_position_index")] = _swin_relative_position_index(w)
    hidden = out["feat_map.weight"].shape[1]
    dtype = out["feat_map.weight"].dtype
    out["bert.pooler.dense.weight"] = torch.zeros(hidden, hidden, dtype=dtype)
    out["bert.pooler.dense.bias"] = torch.zeros(hidden, dtype=dtype)
    return out


def _bert_weights_from_folder(folder: Path) -> dict[str, torch.Tensor]:
    """BERT weights from an HF folder, keyed like the original checkpoint (``bert.*``)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, add_pooling_layer=False)
    return {f"bert.{k}": v for k, v in model.state_dict().items()}


def load_original_grounding_dino(
    checkpoint: str | os.PathLike,
    bert: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    num_heads: int = 8,
    max_text_len: int = 256,
    checkpoint_key: str = "masker.dino_checkpoint",
    bert_key: str = "masker.bert",
    on_load: Callable[[str], None] | None = None,
):
    """Build ``(GroundingDinoForObjectDetection, GroundingDinoProcessor)`` from the originals.

    ``checkpoint`` is ``groundingdino_swint_ogc.pth`` (or another original release);
    ``bert`` a local ``bert-base-uncased`` folder giving ``config.json`` and the tokenizer
    (and the text weights when the checkpoint has none). Missing files raise
    :class:`MissingWeightsError` naming the config key.
    """
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    ckpt = Path(str(checkpoint)).expanduser()
    if str(checkpoint) in ("", "None", "???") or not ckpt.is_file():
        raise MissingWeightsError(
            f"Grounding DINO checkpoint not found: {ckpt} (from `{checkpoint_key}`). Get "
            "groundingdino_swint_ogc.pth from IDEA-Research's GroundingDINO release and put it there."
        )
    bert_dir = require_files(
        bert,
        ["config.json", ("vocab.txt", "tokenizer.json")],
        bert_key,
        hint="Grounding DINO's original checkpoint needs the bert-base-uncased config and tokenizer "
        "(e.g. a local copy of google-bert/bert-base-uncased).",
    )
    sd = load_original_checkpoint(ckpt)
    arch = config_from_original(sd, num_heads=num_heads, max_text_len=max_text_len)
    text_config = AutoConfig.from_pretrained(bert_dir)
    if text_config.hidden_size != arch.text_hidden_size:
        raise ValueError(
            f"{bert_dir} has hidden_size {text_config.hidden_size} but the checkpoint's feat_map "
            f"expects {arch.text_hidden_size}: wrong text model folder in `{bert_key}`"
        )
    if not arch.has_bert_weights:
        require_files(bert_dir, [("model.safetensors", "pytorch_model.bin")], bert_key,
                      hint="this checkpoint has no BERT weights, so they are read from the folder.")
        sd = {**sd, **_bert_weights_from_folder(bert_dir)}
    hf_sd = original_to_hf(sd)
    model = GroundingDinoForObjectDetection(arch.to_hf_config(text_config))
    try:
        model.load_state_dict(hf_sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{ckpt} does not fit the architecture read from it: {e}") from None
    model.eval().to(device=device, dtype=dtype)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(),
        tokenizer=AutoTokenizer.from_pretrained(bert_dir),
    )
    if on_load:
        on_load(str(ckpt))
    return model, processor
