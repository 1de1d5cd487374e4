"""``vlm.engine=transformers``: the VLM in-process with Hugging Face ``generate``, no vLLM.

Why: CPU machines, CI and users without vLLM still need the real model classes, chat
template and processor behind the planner and the judge. The request is the one the server
path sends (OpenAI messages with data-URL images plus a ``json_schema`` response format);
this engine turns it into what vLLM would feed the model:

* images: the data URLs are decoded (the same JPEG bytes the server would decode, already
  resized by :func:`iiie.vlm.images.prepare_image`), and the processor is called with
  ``size={shortest_edge: vlm.min_pixels, longest_edge: vlm.max_pixels}``, so its own
  ``smart_resize`` leaves them as they are, like vLLM's does;
* text: the folder's chat template (``processor.apply_chat_template``), image parts as
  ``{"type": "image"}``, ``vlm.extra_body.chat_template_kwargs`` passed on;
* sampling: only explicit fields (:mod:`iiie.vlm.sampling`): temperature 0 is greedy,
  ``max_tokens`` new tokens, the per-request seed, the ``extra_body`` sampling keys that
  ``generate`` has; nothing is read from the folder's ``generation_config.json`` except the
  stop and pad tokens (as ``--generation-config vllm``);
* structured output: the request's JSON schema compiled by xgrammar (vLLM's default
  structured-output backend) into a logits processor, so the reply follows the schema even
  from random weights. Free whitespace is not allowed, as with vLLM's
  ``disable_any_whitespace``: a reply is one line with ``json.dumps``'s separators
  (``", "`` and ``": "``), which keeps it short, and a weak model cannot spend its token
  budget on blanks.

Calls run one at a time (no padding, so a reply does not depend on its batch neighbours).
The model and processor are loaded once per process (:func:`iiie.weights.load_once`), shared
by the planner and the judge.

GPU memory: ``vlm.serve.offload`` (``runtime.offload`` by default; GPU only) is handed to
:func:`iiie.offload.offload_module`: ``model`` keeps the weights in host memory and moves
the whole model to the GPU for each engine batch (one :meth:`TransformersEngine.chat`),
back after it, so the VLM does not sit next to the masker and editors when models are kept
between stages; ``sequential`` streams the decoder and vision blocks
(``_no_split_modules``) from host memory one at a time (least memory, slow).
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from iiie.errors import BackendUnavailableError
from iiie.vlm.client import ChatResult
from iiie.vlm.dialogue import Call
from iiie.vlm.sampling import split_extra_body
from iiie.vlm.settings import VLMSettings

#: ``vlm.extra_body`` sampling keys and their ``GenerationConfig`` names; any other key is
#: refused rather than silently ignored.
GENERATE_KEYS = {
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "min_tokens": "min_new_tokens",
    "stop_token_ids": None,  # added to the stop tokens
    "skip_special_tokens": None,  # used when decoding
}


def _decode_data_url(url: str) -> Any:
    """A ``data:image/...;base64,`` URL (what :func:`prepare_image` writes) as a PIL image."""
    from PIL import Image

    if not url.startswith("data:") or ";base64," not in url:
        raise ValueError(
            f"vlm.engine=transformers reads images from base64 data URLs only, got {url[:40]!r}"
        )
    raw = base64.b64decode(url.split(";base64,", 1)[1])
    return Image.open(io.BytesIO(raw)).convert("RGB")


def to_hf_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    """OpenAI chat messages -> (chat-template messages, images in order of appearance)."""
    out: list[dict[str, Any]] = []
    images: list[Any] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str) or content is None:
            out.append({"role": m["role"], "content": content or ""})
            continue
        parts = []
        for part in content:
            kind = part.get("type")
            if kind == "image_url":
                url = part["image_url"]["url"] if isinstance(part["image_url"], Mapping) else part["image_url"]
                images.append(_decode_data_url(str(url)))
                parts.append({"type": "image"})
            elif kind == "text":
                parts.append({"type": "text", "text": part["text"]})
            else:
                raise ValueError(f"unsupported message part type {kind!r} for vlm.engine=transformers")
        out.append({"role": m["role"], "content": parts})
    return out, images


class TransformersEngine:
    """The ``ChatEngine`` of :mod:`iiie.planners.vlm_offline`, on ``transformers``."""

    name = "transformers"

    def __init__(self, settings: VLMSettings, serve: Mapping[str, Any]) -> None:
        self.settings = settings
        self.serve = dict(serve or {})
        sampling, chat = split_extra_body(settings)
        unknown = sorted(k for k in sampling if k not in GENERATE_KEYS)
        if unknown:
            raise ValueError(
                f"vlm.extra_body keys {unknown} have no transformers.generate equivalent; "
                f"vlm.engine=transformers supports: {', '.join(GENERATE_KEYS)}, chat_template_kwargs"
            )
        self.sampling = sampling
        self.chat_kwargs = dict(chat.get("chat_template_kwargs") or {})
        from iiie.offload import check_module_offload

        self.device = str(self.serve.get("device") or _default_device())
        self.offload = check_module_offload(self.serve.get("offload"), self.device, "vlm.serve.offload")
        self._bundle: dict[str, Any] | None = None
        self._config: Any = None  # the GenerationConfig of every call, built at load
        self._grammars: dict[str, Any] = {}

    # ----------------------------------------------------------------- loading

    def load(self) -> dict[str, Any]:
        """Model, processor and grammar compiler, loaded once (raises for a bad folder)."""
        if self._bundle is None:
            from iiie.weights import load_once, require_files

            path = require_files(
                self.serve.get("model_path"),
                ["config.json", ("preprocessor_config.json", "processor_config.json")],
                "vlm.serve.model_path",
                hint="It must be a Hugging Face model folder (config, weights, tokenizer, "
                "processor); see README, Weights.",
            )
            dtype = str(self.serve.get("dtype") or "auto")
            device, offload = self.device, self.offload
            self._bundle = load_once(
                ("vlm_transformers", str(path.resolve()), device, dtype, offload),
                lambda: _load(path, device, dtype, offload),
                label="vlm_transformers",
            )
            self._config = self._generation_config(self._bundle)
        return self._bundle

    # ----------------------------------------------------------------- chat

    def chat(self, calls: Sequence[Call], seeds: Sequence[int | None]) -> list[ChatResult]:
        bundle = self.load()
        # one generate at a time: the model is shared by planner and judge; offload=model:
        # on the GPU for this batch only
        with bundle["lock"], bundle["placement"].running():
            return [self._one(bundle, c, s) for c, s in zip(calls, seeds, strict=True)]

    def _grammar(self, bundle: dict[str, Any], schema: dict[str, Any]) -> Any:
        key = json.dumps(schema)  # property order matters: it is the reply order
        if key not in self._grammars:
            self._grammars[key] = bundle["compiler"].compile_json_schema(
                key, any_whitespace=False, strict_mode=True
            )
        return self._grammars[key]

    def inputs(self, bundle: dict[str, Any], call: Call) -> Any:
        """The model inputs of one call: chat template applied, images on the client's grid."""
        processor = bundle["processor"]
        messages, images = to_hf_messages(call.messages)
        text = processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **self.chat_kwargs
        )
        s = self.settings
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
            kwargs["size"] = {"shortest_edge": int(s.min_pixels), "longest_edge": int(s.max_pixels)}
        return processor(**kwargs).to(bundle["device"])  # where it runs (offloaded weights wait elsewhere)

    def _one(self, bundle: dict[str, Any], call: Call, seed: int | None) -> ChatResult:
        import torch
        import xgrammar

        model, processor = bundle["model"], bundle["processor"]
        inputs = self.inputs(bundle, call)
        schema = call.response_format.get("json_schema", {}).get("schema") if call.response_format else None
        processors = []
        if schema is not None:
            processors.append(xgrammar.contrib.hf.LogitsProcessor(self._grammar(bundle, schema)))
        config = self._config
        device = bundle["device"]
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
            if seed is not None:
                torch.manual_seed(int(seed))
            with torch.inference_mode():
                out = model.generate(**inputs, generation_config=config, logits_processor=processors)
        new = out[0, inputs["input_ids"].shape[1]:].tolist()
        stops = set(config.eos_token_id or [])
        finish = "stop" if new and new[-1] in stops else "length"
        reply = processor.tokenizer.decode(
            new, skip_special_tokens=bool(self.sampling.get("skip_special_tokens", True))
        )
        return ChatResult(reply, finish)

    def _generation_config(self, bundle: dict[str, Any]) -> Any:
        """Explicit sampling only (like ``vllm serve --generation-config vllm``).

        ``generate`` fills every field left ``None`` from the folder's
        ``generation_config.json`` (Qwen2.5-VL's ``repetition_penalty: 1.05``, ``top_k``,
        ``do_sample: true``...), so every field with a neutral default is set here. Built
        once, at :meth:`load`: it depends only on the settings and the folder's stop and pad
        tokens (``generate`` copies it before filling anything in)."""
        from transformers import GenerationConfig

        s = self.settings
        stops = list(bundle["stop_token_ids"]) + list(self.sampling.get("stop_token_ids") or [])
        neutral = GenerationConfig()._get_default_generation_params()
        fields: dict[str, Any] = {
            **{k: v for k, v in neutral.items() if v is not None},
            "max_new_tokens": int(s.max_tokens),
            "do_sample": float(s.temperature) > 0,
            "eos_token_id": stops,
            "pad_token_id": bundle["pad_token_id"],
        }
        fields.pop("max_length", None)
        if fields["do_sample"]:
            fields["temperature"] = float(s.temperature)
            fields["top_k"] = 0  # vLLM's default: no top-k (transformers' default is 50)
        for key, value in self.sampling.items():
            name = GENERATE_KEYS.get(key)
            if name is None:
                continue
            if key == "top_k" and int(value) < 0:  # vLLM's -1 = off
                value = 0
            fields[name] = value
        return GenerationConfig(**fields)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load(path: Any, device: str, dtype: str, offload: str = "none") -> dict[str, Any]:
    """Load the folder: processor, ``AutoModelForImageTextToText`` (the config picks
    Qwen2.5-VL, Qwen3-VL, ...) placed for ``offload`` (in host memory unless ``none``), and
    an xgrammar compiler over the model's vocabulary."""
    try:
        import xgrammar
    except ImportError as exc:
        raise BackendUnavailableError(
            "vlm.engine=transformers needs xgrammar for JSON-schema constrained decoding: "
            "pip install -c requirements/constraints.txt xgrammar (the dev extra has it) "
            f"({exc})"
        ) from exc
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from iiie.offload import load_device, offload_module

    try:
        processor = AutoProcessor.from_pretrained(path)
        host = load_device(torch.device(device), offload)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(host).eval()
    except (OSError, ValueError, KeyError) as exc:
        raise BackendUnavailableError(
            f"vlm.serve.model_path={path} could not be loaded as a transformers VLM "
            f"({type(exc).__name__}: {str(exc)[:300]})"
        ) from exc
    gen = model.generation_config
    eos = gen.eos_token_id if gen.eos_token_id is not None else processor.tokenizer.eos_token_id
    stops = [int(t) for t in (eos if isinstance(eos, list) else [eos]) if t is not None]
    pad = gen.pad_token_id if gen.pad_token_id is not None else processor.tokenizer.pad_token_id
    vocab = model.get_output_embeddings().weight.shape[0]
    info = xgrammar.TokenizerInfo.from_huggingface(
        processor.tokenizer, vocab_size=vocab, stop_token_ids=stops
    )
    placement = offload_module(model, offload, device, config_key="vlm.serve.offload")
    return {
        "model": model,
        "placement": placement,
        "device": placement.device,
        "processor": processor,
        "compiler": xgrammar.GrammarCompiler(info),
        "stop_token_ids": stops,
        "pad_token_id": pad if pad is not None else stops[0],
        "lock": threading.Lock(),
    }
