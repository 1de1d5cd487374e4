"""Load PowerPaint v2's ``text_encoder_brushnet`` from the official files.

The official ``PowerPaint_Brushnet/`` folder holds only the state dict of this encoder
(``pytorch_model.bin``, a plain tensor dict); its architecture is the base model's
``text_encoder/config.json``. The reference builds a CLIP text model from that config,
wraps its token embedding for the task tokens and loads the state dict. We do the same,
with a strict key check (the reference loads with ``strict=False``, which would hide a
wrong file) and ``torch.load(weights_only=True)`` (no pickled code runs).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from iiie.models.powerpaint.task_tokens import TaskTokenEmbedding

TEXT_ENCODER_FILES = ("text_encoder_brushnet.safetensors", "pytorch_model.bin")
"""Accepted file names for the task-token text encoder, in order of preference."""

# transformers < 5 named every text-model key "text_model.<...>"; transformers 5 dropped the
# "text_model." level from CLIPTextModel. Official checkpoints use the old names.
_OLD_PREFIX = "text_model."
_IGNORED_KEYS = ("embeddings.position_ids",)  # a buffer some transformers versions saved


def read_text_encoder_state(powerpaint_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of the official text encoder file (safetensors copy preferred)."""
    folder = Path(powerpaint_dir)
    for name in TEXT_ENCODER_FILES:
        path = folder / name
        if not path.exists():
            continue
        if name.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
        return state
    raise FileNotFoundError(
        f"{folder} holds none of {', '.join(TEXT_ENCODER_FILES)} (PowerPaint's text encoder)"
    )


def _to_model_keys(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        k = key
        if k not in model_keys and k.startswith(_OLD_PREFIX) and k[len(_OLD_PREFIX):] in model_keys:
            k = k[len(_OLD_PREFIX):]
        if k.removeprefix(_OLD_PREFIX) in _IGNORED_KEYS:
            continue
        out[k] = value
    return out


def build_task_text_encoder(config: CLIPTextConfig, first_task_id: int | None = None) -> CLIPTextModel:
    """A CLIP text model (random weights) whose token embedding understands task ids."""
    model = CLIPTextModel(config)
    emb = model.get_input_embeddings()
    model.set_input_embeddings(TaskTokenEmbedding(emb, first_task_id=first_task_id))
    return model


def task_token_embedding(model: CLIPTextModel) -> TaskTokenEmbedding:
    emb = model.get_input_embeddings()
    if not isinstance(emb, TaskTokenEmbedding):
        raise TypeError("this text encoder has no task-token embedding")
    return emb


def load_task_text_encoder(
    base_text_encoder_dir: str | os.PathLike,
    powerpaint_dir: str | os.PathLike,
    first_task_id: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> CLIPTextModel:
    """Build ``text_encoder_brushnet`` from the base config and load the official weights.

    Every tensor of the file must land on a parameter and every parameter must come from
    the file; anything else raises with the offending key names.
    """
    config = CLIPTextConfig.from_pretrained(str(base_text_encoder_dir))
    model = build_task_text_encoder(config, first_task_id=first_task_id)
    model_keys = set(model.state_dict())
    state = _to_model_keys(read_text_encoder_state(powerpaint_dir), model_keys)
    missing = sorted(model_keys - set(state))
    unexpected = sorted(set(state) - model_keys)
    if missing or unexpected:
        raise ValueError(
            f"PowerPaint text encoder in {powerpaint_dir} does not match the base config "
            f"{base_text_encoder_dir}: missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    model.load_state_dict(state, strict=True)
    return model.to(dtype=dtype).eval()


def save_task_text_encoder_state(model: CLIPTextModel, folder: str | os.PathLike) -> None:
    """Write the encoder as the official files: ``pytorch_model.bin`` + safetensors copy.

    Keys use the official ``text_model.`` names so the reference code can read them too.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in model.state_dict().items():
        key = k if k.startswith(_OLD_PREFIX) else _OLD_PREFIX + k
        state[key] = v.detach().to("cpu").contiguous().clone()
    torch.save(state, folder / "pytorch_model.bin")
    save_file(state, str(folder / "text_encoder_brushnet.safetensors"))
