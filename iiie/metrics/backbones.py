"""Feature networks behind the benchmark metrics, loaded from local folders only.

* CLIP: a transformers ``CLIPModel`` folder (e.g. ``openai/clip-vit-base-patch32`` for
  MagicBrush / Emu Edit, ``openai/clip-vit-large-patch14`` for PIE-Bench).
* DINO: a transformers ``ViTModel`` folder (``facebook/dino-vits16`` for MagicBrush's
  DINO score, ``facebook/dino-vitb8`` for PIE-Bench's structure distance).
* LPIPS: torchmetrics' LPIPS network with the SqueezeNet backbone; the backbone weights
  come from a local copy of torchvision's ``squeezenet1_1-b8a52dc0.pth`` (torchmetrics
  would otherwise download it), the linear heads from the file torchmetrics ships.

The preprocessing is written out here rather than taken from an image processor,
because the published numbers used specific pipelines: OpenAI CLIP's ``preprocess``
(torchvision Resize(bicubic) on the PIL image, CenterCrop, CLIP mean/std) and DINO's
Resize(256, bicubic) + CenterCrop(224) + ImageNet mean/std. Each model is loaded once
per process (:func:`iiie.weights.load_once`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from iiie.devices import resolve_device, resolve_dtype
from iiie.weights import MissingWeightsError, load_once, require_files

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

HF_MODEL_FILES = ["config.json", ("model.safetensors", "pytorch_model.bin")]
CLIP_TOKENIZER_FILES = [("tokenizer.json", "vocab.json")]
CLIP_FILES = HF_MODEL_FILES + CLIP_TOKENIZER_FILES
SQUEEZENET_FILES = ("squeezenet1_1-b8a52dc0.pth", "squeezenet1_1.pth")
#: How :meth:`Clip.text_features` cuts captions over the context length.
TEXT_TRUNCATIONS = ("eos", "slice")
#: How :meth:`Clip.image_features` brings an image to the model's input size.
CLIP_PREPROCESS = ("crop", "squash")


def clip_transform(size: int) -> transforms.Compose:
    """OpenAI CLIP's ``preprocess`` for a ``size`` px model (224 for ViT-B/32 and ViT-L/14)."""
    return transforms.Compose(
        [
            transforms.Resize(size, interpolation=InterpolationMode.BICUBIC),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )


def squash_input(image: Image.Image, size: int) -> torch.Tensor:
    """InstructPix2Pix ``ClipSimilarity.encode_image``: the [0, 1] image tensor
    interpolated (bicubic, ``align_corners=False``, no antialias) to ``size`` x ``size``
    whatever its aspect ratio, no crop, then CLIP mean/std. Returns (3, size, size)."""
    x = transforms.functional.to_tensor(image.convert("RGB")).unsqueeze(0)
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return ((x - mean) / std)[0]


def dino_transform() -> transforms.Compose:
    """MagicBrush's DINO pipeline: Resize(256, bicubic), CenterCrop(224), ImageNet norm."""
    return transforms.Compose(
        [
            transforms.Resize(256, interpolation=InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def _pooled(out) -> torch.Tensor:
    """transformers 5 returns an output object from ``get_*_features``; older a tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@dataclass
class Clip:
    """A CLIP model with the reference preprocessing; features are *not* normalised."""

    model: object
    tokenizer: object
    image_size: int
    device: torch.device
    dtype: torch.dtype

    @torch.no_grad()
    def image_features(self, images: Sequence[Image.Image], preprocess: str = "crop") -> torch.Tensor:
        """``preprocess="crop"``: OpenAI CLIP's ``preprocess`` (:func:`clip_transform`);
        ``"squash"``: InstructPix2Pix's resize without crop (:func:`squash_input`)."""
        if preprocess not in CLIP_PREPROCESS:
            raise ValueError(f"preprocess must be one of {CLIP_PREPROCESS}, got {preprocess!r}")
        if preprocess == "squash":
            batch = torch.stack([squash_input(im, self.image_size) for im in images])
        else:
            tf = clip_transform(self.image_size)
            batch = torch.stack([tf(im.convert("RGB")) for im in images])
        batch = batch.to(self.device, self.dtype)
        return _pooled(self.model.get_image_features(pixel_values=batch)).float().cpu()

    @torch.no_grad()
    def text_features(self, texts: Sequence[str], truncation: str = "eos") -> torch.Tensor:
        """Text features; captions longer than the context (77 tokens) are cut one of the
        two ways the references do (:data:`TEXT_TRUNCATIONS`):

        * ``"eos"``: the first 76 tokens then the end token, as OpenAI
          ``clip.tokenize(text, truncate=True)`` (InstructPix2Pix's ``ClipSimilarity``)
          and the tokenizer's own ``truncation=True``;
        * ``"slice"``: tokenise the whole caption and keep the first 77 ids and mask
          entries, as torchmetrics' ``CLIPScore`` does (PIE-Bench): no end token remains,
          so the pooled feature is read where the model's pooling rule then points.
        """
        if truncation not in TEXT_TRUNCATIONS:
            raise ValueError(f"truncation must be one of {TEXT_TRUNCATIONS}, got {truncation!r}")
        max_len = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        if truncation == "eos":
            tok = self.tokenizer(
                list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt"
            )
        else:
            tok = self.tokenizer(list(texts), padding=True, return_tensors="pt")
            tok = {k: tok[k][..., :max_len] for k in ("input_ids", "attention_mask")}
        out = self.model.get_text_features(
            input_ids=tok["input_ids"].to(self.device),
            attention_mask=tok["attention_mask"].to(self.device),
        )
        return _pooled(out).float().cpu()


def load_clip(folder: str | os.PathLike, config_key: str, device="auto", dtype="float32") -> Clip:
    """Load a CLIP folder (model + tokenizer); a missing folder names ``config_key``."""
    path = require_files(folder, CLIP_FILES, config_key, _hint("CLIP"))
    dev, dt = resolve_device(device), resolve_dtype(dtype)

    def build() -> Clip:
        from transformers import CLIPModel, CLIPTokenizer

        model = CLIPModel.from_pretrained(str(path), dtype=dt).to(dev).eval()
        tokenizer = CLIPTokenizer.from_pretrained(str(path))
        size = int(model.config.vision_config.image_size)
        return Clip(model=model, tokenizer=tokenizer, image_size=size, device=dev, dtype=dt)

    return load_once(("clip", str(Path(path).resolve()), str(dev), str(dt)), build, label="clip")


@dataclass
class Dino:
    """A DINO ViT (transformers ``ViTModel``)."""

    model: object
    device: torch.device
    dtype: torch.dtype

    @torch.no_grad()
    def cls_features(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The final-norm CLS token, as ``torch.hub`` DINO's ``model(x)`` returns."""
        tf = dino_transform()
        batch = torch.stack([tf(im.convert("RGB")) for im in images]).to(self.device, self.dtype)
        out = self.model(pixel_values=batch)
        return out.last_hidden_state[:, 0].float().cpu()

    def _key_linear(self, layer: int) -> torch.nn.Module:
        blocks = vit_blocks(self.model)
        if not -len(blocks) <= layer < len(blocks):
            raise ValueError(f"DINO model has {len(blocks)} blocks; layer {layer} does not exist")
        attn = blocks[layer].attention
        for name in ("k_proj", "key"):
            if hasattr(attn, name):
                return getattr(attn, name)
            inner = getattr(attn, "attention", None)
            if inner is not None and hasattr(inner, name):
                return getattr(inner, name)
        raise AttributeError("cannot find the key projection in this ViT implementation")

    @torch.no_grad()
    def keys(self, pixel_values: torch.Tensor, layer: int) -> torch.Tensor:
        """Attention keys of block ``layer`` for one image: (tokens, heads*head_dim).

        The head-major column order equals the reference's ``keys.transpose(0, 1)
        .reshape(t, h * d)`` of DINO's fused qkv output.
        """
        captured: list[torch.Tensor] = []
        handle = self._key_linear(layer).register_forward_hook(
            lambda _m, _i, out: captured.append(out)
        )
        try:
            h, w = pixel_values.shape[-2:]
            size = self.model.config.image_size
            self.model(
                pixel_values=pixel_values.to(self.device, self.dtype),
                interpolate_pos_encoding=(h, w) != (size, size),
            )
        finally:
            handle.remove()
        return captured[0][0].float().cpu()


def vit_blocks(model) -> torch.nn.ModuleList:
    """The transformer blocks of a ViTModel (``layers`` in transformers 5, ``encoder.layer``
    before)."""
    if hasattr(model, "layers"):
        return model.layers
    return model.encoder.layer


def load_dino(folder: str | os.PathLike, config_key: str, device="auto", dtype="float32") -> Dino:
    path = require_files(folder, HF_MODEL_FILES, config_key, _hint("DINO ViT"))
    dev, dt = resolve_device(device), resolve_dtype(dtype)

    def build() -> Dino:
        from transformers import ViTModel

        model = ViTModel.from_pretrained(str(path), dtype=dt, add_pooling_layer=False)
        return Dino(model=model.to(dev).eval(), device=dev, dtype=dt)

    return load_once(("dino", str(Path(path).resolve()), str(dev), str(dt)), build, label="dino")


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity in float64 (scipy's ``1 - cosine`` in the references)."""
    return F.cosine_similarity(a.double(), b.double(), dim=-1)


def load_lpips_squeeze(
    folder: str | os.PathLike, config_key: str, device="auto"
) -> torch.nn.Module:
    """torchmetrics' LPIPS(net='squeeze') with a locally stored SqueezeNet 1.1 backbone.

    ``folder`` holds torchvision's ``squeezenet1_1-b8a52dc0.pth``; a ``squeeze.pth`` there
    replaces the linear heads torchmetrics ships (same file as richzhang/PerceptualSimilarity
    v0.1). Call the module with images in [-1, 1] (N, 3, H, W).
    """
    path = require_files(folder, [SQUEEZENET_FILES], config_key, _hint("SqueezeNet 1.1 (LPIPS)"))
    dev = resolve_device(device)

    def build() -> torch.nn.Module:
        from torchmetrics.functional.image.lpips import _NoTrainLpips

        heads = path / "squeeze.pth"
        net = _NoTrainLpips(
            net="squeeze",
            pretrained=True,
            pnet_rand=True,
            model_path=str(heads) if heads.exists() else None,
        )
        file = next(path / f for f in SQUEEZENET_FILES if (path / f).exists())
        state = torch.load(file, map_location="cpu", weights_only=True)
        remapped = {}
        for s, block in enumerate(net.net.slices):
            for name in block._modules:
                prefix = f"features.{name}."
                for k, v in state.items():
                    if k.startswith(prefix):
                        remapped[f"net.slices.{s}.{name}.{k[len(prefix) :]}"] = v
        expected = {k for k in net.state_dict() if k.startswith("net.")}
        if set(remapped) != expected:
            raise MissingWeightsError(
                f"{file} (from `{config_key}`) is not a torchvision squeezenet1_1 state dict"
            )
        net.load_state_dict(remapped, strict=False)
        return net.to(dev).eval()

    return load_once(("lpips_squeeze", str(Path(path).resolve()), str(dev)), build, label="lpips")


def _hint(what: str) -> str:
    return f"Put a local copy of the {what} weights there (see docs/EVALUATION.md, 'Models')."
