"""``editor=infedit``: InfEdit (inversion-free editing with an LCM) for the global route.

Global edits ("let's see it in winter", "make it a watercolor") change the whole image, so
the editor needs two captions instead of a mask: ``plan.source_caption`` (what the image
shows) and ``plan.target_caption`` (what it should show), written by the planner for the
global category. When one is missing the editor falls back and records it in
``EditResult.params["fallbacks"]``: the target falls back to ``plan.target_prompt``, then to
the instruction; the source to ``source_fallback`` ("a photo").

Each sample is resized to the model resolution (long side ``resolution``, multiples of 8);
samples of equal resolution are edited together (up to ``batch_size`` per UNet batch of
6 x B rows) by :class:`iiie.models.infedit.InfEditPipeline`, each with its own seeded CPU
generator, captions and token alignment, and mapped back to the input's size. The mask of the global route covers the whole image,
so the result is the model output; a smaller mask is honoured with
:func:`iiie.masks.paste_back` (pixels outside its feathered edge stay the input's).

Settings (``settings`` in config) are the fields of
:class:`iiie.models.infedit.InfEditSettings`; ``conf/editor/infedit.yaml`` holds the
reference app's defaults and ``conf/editor/infedit_piebench.yaml`` the reference's PIE-Bench
script settings. The model folder is an LCM SD1.5 folder (``SimianLuo/LCM_Dreamshaper_v7``
layout), loaded once per process with diffusers' ``from_pretrained`` (fp16-only folders with
``variant="fp16"``) and placed like the other diffusion editors' pipelines (``offload``:
diffusers' hooks, freed by the pipeline at the end of each call); ``compile`` /
``channels_last`` are the opt-in speed switches of
:func:`iiie.editors.diffusion_common.speed_options`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iiie.devices import resolve_device, resolve_dtype
from iiie.editors import diffusion_common as dc
from iiie.types import EditRequest, EditResult, MaskResult, Plan
from iiie.weights import load_once, require_files

_HINT = (
    "InfEdit needs an LCM SD1.5 folder in diffusers layout (SimianLuo/LCM_Dreamshaper_v7: "
    "unet, vae, text_encoder, tokenizer, scheduler); see README 'Weights'. For a CPU smoke run "
    "use experiment=tiny."
)


class InfEditEditor(dc.SingleFromBatch):
    """Edit the whole image from a source caption to a target caption with InfEdit."""

    name = "infedit"

    def __init__(
        self,
        model_path: str,
        settings: Mapping[str, Any] | None = None,
        resolution: int = 512,
        blur: int = 0,
        source_fallback: str = "a photo",
        local_from_plan: bool = False,
        batch_size: int = 4,
        device: str = "auto",
        dtype: str = "float32",
        offload: str = "none",
        compile: bool = False,
        channels_last: bool = False,
        config_key: str = "editor.<route>",  # the runner puts the mounted route in errors
    ) -> None:
        from iiie.models.infedit import MODEL_FILES, InfEditSettings

        self.model_path = require_files(model_path, MODEL_FILES, f"{config_key}.model_path", _HINT)
        for sub in ("unet", "vae", "text_encoder"):
            require_files(self.model_path / sub, [("diffusion_pytorch_model.safetensors",
                                                   "diffusion_pytorch_model.bin",
                                                   "diffusion_pytorch_model.fp16.safetensors",
                                                   "model.safetensors", "pytorch_model.bin",
                                                   "model.fp16.safetensors")],
                          f"{config_key}.model_path", _HINT)
        try:
            self.settings = InfEditSettings.from_dict(dict(settings or {}))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{config_key}.settings: {err}") from None
        if int(resolution) < 8:
            raise ValueError(f"{config_key}.resolution must be >= 8, got {resolution}")
        self.resolution, self.blur = int(resolution), int(blur)
        self.source_fallback = source_fallback
        self.local_from_plan = bool(local_from_plan)
        if int(batch_size) < 1:
            raise ValueError(f"{config_key}.batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.offload = dc.check_placement(self.device, offload, config_key)
        #: runtime.compile / runtime.channels_last: speed only (results equal up to float
        #: rounding), so like ``offload`` they are neither in the params nor in the load key.
        self.compile, self.channels_last = bool(compile), bool(channels_last)
        self.config_key = config_key
        self._counts = {"samples": 0, "model_batches": 0, "caption_fallbacks": 0, "empty_masks": 0,
                        "blend_words_dropped": 0}

    def pipeline(self):
        """The InfEdit pipeline for (folder, device, dtype, offload), built once per process:
        loaded in host memory, placed on the device or given diffusers' offload hooks, then
        the speed switches applied once (a pipeline shared by several editors gets those of
        the editor that built it)."""
        from iiie.models.infedit import InfEditPipeline

        def build():
            pipe = InfEditPipeline.from_pretrained(str(self.model_path), dtype=self.dtype,
                                                   variant=dc.weight_variant(self.model_path))
            return dc.ready(pipe, self.device, self.offload, self.config_key,
                            channels_last=self.channels_last, compile=self.compile)

        key = ("infedit", str(self.model_path), str(self.device), str(self.dtype), self.offload)
        return load_once(key, build, label="infedit")

    # ------------------------------------------------------------------ captions
    def captions(self, request: EditRequest, plan: Plan) -> tuple[str, str, list[str]]:
        """(source, target, fallbacks used) for one sample."""
        notes = []
        source = (plan.source_caption or "").strip()
        target = (plan.target_caption or "").strip()
        if not target:
            for label, text in (("target_prompt", plan.target_prompt), ("instruction", request.instruction)):
                if text and text.strip():
                    target = text.strip()
                    notes.append(f"empty target_caption: used the plan's {label}")
                    break
        if not source:
            source = self.source_fallback
            notes.append(f"empty source_caption: used {self.source_fallback!r}")
        if source == target:
            notes.append("source and target captions are identical: expect a near reconstruction")
        return source, target, notes

    def _blend_words(self, plan: Plan, target: str) -> tuple[str, str]:
        """(local, mutual) blend words: from settings, or the plan's object if configured."""
        local, mutual = self.settings.local, self.settings.mutual
        if self.local_from_plan and not local and plan.object and plan.object.strip():
            word = plan.object.strip().split()[-1]
            if word in target.split():
                local = word
        return local, mutual

    # ------------------------------------------------------------------ editing
    def edit_batch(
        self,
        requests: Sequence[EditRequest],
        plans: Sequence[Plan],
        masks: Sequence[MaskResult],
        seeds: Sequence[int],
    ) -> list[EditResult]:
        from dataclasses import replace

        from iiie.models.infedit import AlignmentError

        batch = dc.start_batch(self.name, requests, plans, masks, seeds, self.resolution, self._counts)
        if not batch.todo:
            return batch.done()
        jobs: list[dict[str, Any]] = []
        for i in batch.todo:
            source, target, notes = self.captions(requests[i], plans[i])
            if any(note.startswith("empty") for note in notes):
                self._counts["caption_fallbacks"] += 1
            jobs.append({"source": source, "target": target, "notes": notes,
                         "words": self._blend_words(plans[i], target)})
        pipe = self.pipeline()
        for job in jobs:  # token alignment per sample; bad blend words are dropped
            local, mutual = job["words"]
            if self.settings.control:
                try:
                    job["alignment"] = pipe.align(job["source"], job["target"], local, mutual)
                except AlignmentError as err:
                    self._counts["blend_words_dropped"] += 1
                    job["notes"].append(f"{err}: local blend words dropped")
                    local = mutual = ""
                    job["alignment"] = pipe.align(job["source"], job["target"], local, mutual)
            job["settings"] = replace(self.settings, local=local, mutual=mutual)
        for size, chunk in batch.groups(self.batch_size):
            # the pipeline frees its offload hooks itself at the end of the call
            out = pipe(
                [batch.inputs[k].image for k in chunk],
                [jobs[k]["source"] for k in chunk], [jobs[k]["target"] for k in chunk],
                self.settings, generator=batch.generators(seeds, chunk),
                alignments=[jobs[k].get("alignment") for k in chunk], output_type="pil",
            )
            self._counts["model_batches"] += 1
            for j, k in enumerate(chunk):
                i = batch.todo[k]
                edited = out.images[j]
                mask = np.asarray(masks[i].mask, bool)
                if mask.all():  # the global route: the whole image is the edit
                    final = edited.resize(requests[i].image.size, _bicubic())
                else:
                    final = dc.finish(requests[i].image, edited, mask, self.blur)
                job = jobs[k]
                params = self._params(job["source"], job["target"], job["settings"], size,
                                      job["notes"] + out.notes[j])
                batch.results[i] = EditResult(final, self.name, params, int(seeds[i]))
        return batch.done()

    def _params(self, source, target, settings, size, notes) -> dict[str, Any]:
        from dataclasses import asdict

        params: dict[str, Any] = {
            "source_caption": source,
            "target_caption": target,
            "settings": asdict(settings),
            "resolution": list(size),
            "model": Path(self.model_path).name,
            "dtype": dc.dtype_name(self.dtype),
        }
        if notes:
            params["notes"] = notes
        return params

    def stats(self) -> dict[str, Any]:
        """Counters for the run manifest."""
        return {**self._counts, "loads": dc.load_counts("infedit")}


def _bicubic():
    from PIL import Image

    return Image.BICUBIC


__all__ = ["InfEditEditor"]
