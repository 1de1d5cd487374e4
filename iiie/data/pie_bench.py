"""PIE-Bench (``data=pie_bench``): ``mapping_file.json`` plus ``annotation_images/``.

Each entry of the mapping file has ``image_path`` (relative to ``annotation_images``),
``original_prompt`` and ``editing_prompt`` (with ``[...]`` around the edited words),
``editing_instruction``, ``editing_type_id`` ("0".."9"), ``blended_word`` and ``mask``.

The mask is a flat run list ``[start, length, start, length, ...]`` over a row-major
512x512 array, 1 = the edited region. The reference evaluation (PnPInversion's
``evaluation/evaluate.py``) also sets the one-pixel image border to 1 "to avoid
annotation errors in boundary"; :func:`decode_run_mask` does the same by default, so
the background metrics see the exact pixels the published numbers used. Brackets are
removed from the prompts as the reference does.

Images are decoded as the reference reads them (``decode: reference``: ``Image.open``,
no EXIF orientation), so the run-length mask, which is over the stored pixel order,
stays aligned with the image even for a JPEG that carries an EXIF rotation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from iiie.data.base import Dataset, GroundTruth, Sample, oracle_meta
from iiie.data.categories import PIE_BENCH, PIE_BENCH_NAMES, lookup
from iiie.errors import DatasetNotFoundError
from iiie.imageio import check_decode, load_image
from iiie.types import EditRequest

MASK_SHAPE = (512, 512)


def decode_run_mask(
    runs: Sequence[int], shape: tuple[int, int] = MASK_SHAPE, border: bool = True
) -> np.ndarray:
    """Decode PIE-Bench's ``[start, length, ...]`` run list to an HxW bool mask.

    Runs are clipped at the end of the array, as in the reference decoder; a run that
    starts past the end is ignored. ``border=True`` forces the outermost rows and
    columns to True like the reference.
    """
    values = [int(v) for v in runs]
    if len(values) % 2:
        raise ValueError(
            f"PIE-Bench mask run list has odd length {len(values)}; expected start/length pairs"
        )
    h, w = shape
    total = h * w
    flat = np.zeros(total, dtype=bool)
    for start, length in zip(values[0::2], values[1::2], strict=True):
        if start < 0 or length < 0:
            raise ValueError(f"PIE-Bench mask run ({start}, {length}) has a negative value")
        if start < total:
            flat[start : min(start + length, total)] = True
    mask = flat.reshape(h, w)
    if border:
        mask[0, :] = mask[-1, :] = True
        mask[:, 0] = mask[:, -1] = True
    return mask


def encode_run_mask(mask: np.ndarray) -> list[int]:
    """Inverse of :func:`decode_run_mask` without the border (used by tests and tools)."""
    flat = np.asarray(mask, dtype=bool).reshape(-1).astype(np.int8)
    edges = np.diff(np.concatenate([[0], flat, [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    out: list[int] = []
    for s, e in zip(starts, ends, strict=True):
        out += [int(s), int(e - s)]
    return out


def strip_brackets(prompt: str) -> str:
    return prompt.replace("[", "").replace("]", "")


class PIEBenchDataset(Dataset):
    """Entries of ``mapping_file.json`` in file order; ids are its keys."""

    name = "pie_bench"

    def __init__(
        self,
        root: str,
        n: int | None = None,
        editing_types: list[str] | None = None,
        mapping_file: str = "mapping_file.json",
        images_dir: str = "annotation_images",
        border: bool = True,
        decode: str = "reference",
    ) -> None:
        self.root = Path(root).expanduser()
        self.mapping_path = self.root / mapping_file
        self.images = self.root / images_dir
        if not self.mapping_path.is_file():
            raise DatasetNotFoundError.for_root(
                "pie_bench", f"mapping file not found: {self.mapping_path}"
            )
        with open(self.mapping_path, encoding="utf-8") as fh:
            self._entries: dict[str, dict[str, Any]] = json.load(fh)
        self.n = None if n is None else int(n)
        self.editing_types = sorted(str(t) for t in editing_types) if editing_types else None
        self.border = bool(border)
        self.decode = check_decode(decode)
        keys = []
        for key, entry in self._entries.items():
            type_id = str(entry.get("editing_type_id", ""))
            lookup(PIE_BENCH, type_id, "pie_bench")
            if self.editing_types and type_id not in self.editing_types:
                continue
            keys.append(str(key))
        self._ids = keys if self.n is None else keys[: self.n]

    def ids(self) -> list[str]:
        return list(self._ids)

    def fingerprint(self) -> dict[str, Any]:
        st = self.mapping_path.stat()
        return {
            "name": self.name,
            "version": 1,
            "root": str(self.root.resolve()),
            "mapping_file": [self.mapping_path.name, st.st_size],
            "entries": len(self._entries),
            "editing_types": self.editing_types,
            "border": self.border,
            "decode": self.decode,
        }

    @staticmethod
    def _fit(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The benchmark's images are 512x512; a resized copy gets its mask resized too."""
        if size == (mask.shape[1], mask.shape[0]):
            return mask
        return np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))

    def load(self, sample_id: str) -> Sample:
        if sample_id not in self._entries:
            raise KeyError(f"pie_bench: unknown sample id {sample_id!r}")
        e = self._entries[sample_id]
        image = load_image(self.images / e["image_path"], decode=self.decode)
        runs = e.get("mask") or []
        mask = self._fit(decode_run_mask(runs, MASK_SHAPE, border=self.border), image.size)
        # The oracle edits the annotated region only, never the evaluation's forced border.
        edit_region = self._fit(decode_run_mask(runs, MASK_SHAPE, border=False), image.size)
        type_id = str(e["editing_type_id"])
        source_caption = strip_brackets(e.get("original_prompt", ""))
        target_caption = strip_brackets(e.get("editing_prompt", ""))
        extra = {
            "editing_type_id": type_id,
            "editing_type": PIE_BENCH_NAMES[type_id],
            "blended_word": e.get("blended_word", ""),
            "image_path": e["image_path"],
            "original_prompt": e.get("original_prompt", ""),
            "editing_prompt": e.get("editing_prompt", ""),
        }
        return Sample(
            request=EditRequest(
                id=sample_id,
                image=image,
                instruction=e.get("editing_instruction", ""),
                meta={
                    "benchmark": self.name,
                    "editing_type_id": type_id,
                    **oracle_meta(edit_region),
                },
            ),
            truth=GroundTruth(
                category=lookup(PIE_BENCH, type_id, "pie_bench"),
                mask=mask,
                source_caption=source_caption,
                target_caption=target_caption,
                extra=extra,
            ),
        )
