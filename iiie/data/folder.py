"""Your own data (``data=folder``): a JSONL file, one sample per line.

Each line is an object with ``id``, ``image`` and ``instruction``, and optionally the
ground truth: ``category`` (one of local/remove/background/addition/global), ``object``,
``mask`` (image file, white or transparent = region to change), ``target`` (reference
edited image), ``source_caption``, ``target_caption``; any other keys are kept in
``truth.extra``. Image paths are absolute or relative to the JSONL file's folder.

Images are decoded the friendly way by default (``decode: friendly``: EXIF orientation
applied, transparency over white; see :mod:`iiie.imageio`).

Example::

    {"id": "cat1", "image": "imgs/cat.jpg", "instruction": "make the cat black",
     "category": "local", "object": "cat", "mask": "masks/cat.png"}
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from iiie.data.base import Dataset, GroundTruth, Sample, oracle_meta
from iiie.errors import DatasetNotFoundError, ImageLoadError
from iiie.imageio import check_decode, load_image
from iiie.types import Category, EditRequest

KNOWN_KEYS = {
    "id",
    "image",
    "instruction",
    "category",
    "object",
    "mask",
    "target",
    "source_caption",
    "target_caption",
}


def load_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask image as HxW bool, True = region to change.

    Two conventions exist in the wild: a white-on-black mask (white = change) and the
    DALL-E 2 style image whose *transparent* pixels mark the edit (DALL-E 2 made MagicBrush's
    edits; its released mask files were not available to check which one they use).
    An image with an alpha channel that has any transparent pixel is read the second way,
    anything else the first way (gray >= 128 = change). ``size`` (w, h) resizes with
    nearest neighbour to match the image it belongs to.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                alpha = np.asarray(im.convert("RGBA"))[..., 3]
                if (alpha < 255).any():
                    mask = alpha < 128
                else:
                    mask = np.asarray(im.convert("L")) >= 128
            else:
                mask = np.asarray(im.convert("L")) >= 128
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(f"{path}: cannot read mask ({exc.__class__.__name__}: {exc})") from exc
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        mask = np.asarray(Image.fromarray(mask).resize(tuple(size), Image.Resampling.NEAREST))
    return mask.astype(bool)


class FolderDataset(Dataset):
    """Samples listed in a JSONL file, in file order."""

    name = "folder"

    def __init__(
        self, root: str, file: str = "samples.jsonl", n: int | None = None, decode: str = "friendly"
    ) -> None:
        root_path = Path(root).expanduser()
        self.jsonl = root_path if root_path.is_file() else root_path / file
        if not self.jsonl.is_file():
            raise DatasetNotFoundError.for_root("folder", f"JSONL file not found: {self.jsonl}")
        self.base = self.jsonl.parent
        self.decode = check_decode(decode)
        self.n = None if n is None else int(n)
        self._rows: dict[str, dict[str, Any]] = {}
        with open(self.jsonl, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{self.jsonl}:{lineno}: not valid JSON ({exc.msg})") from None
                for key in ("id", "image", "instruction"):
                    if key not in row:
                        raise ValueError(f"{self.jsonl}:{lineno}: missing required key {key!r}")
                sid = str(row["id"])
                if sid in self._rows:
                    raise ValueError(f"{self.jsonl}:{lineno}: duplicate id {sid!r}")
                if row.get("category") is not None:
                    Category.parse(row["category"])  # fail at load time, with the line number below
                self._rows[sid] = row
        keys = list(self._rows)
        self._ids = keys if self.n is None else keys[: self.n]

    def _path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base / p

    def ids(self) -> list[str]:
        return list(self._ids)

    def fingerprint(self) -> dict[str, Any]:
        # The JSONL is small: hash it whole (image files are named in it, not hashed).
        digest = hashlib.sha256(self.jsonl.read_bytes()).hexdigest()
        fp = {
            "name": self.name,
            "version": 1,
            "jsonl": str(self.jsonl.resolve()),
            "sha256": digest,
        }
        if self.decode != "friendly":  # the default keeps existing cache keys
            fp["decode"] = self.decode
        return fp

    def known_category(self, sample_id: str) -> Category | None:
        """The JSONL's ``category``, readable even when the image file is not."""
        value = self._rows.get(sample_id, {}).get("category")
        return Category.parse(value) if value is not None else None

    def load(self, sample_id: str) -> Sample:
        if sample_id not in self._rows:
            raise KeyError(f"folder: unknown sample id {sample_id!r}")
        row = self._rows[sample_id]
        image = load_image(self._path(row["image"]), decode=self.decode)
        truth = GroundTruth(
            category=Category.parse(row["category"]) if row.get("category") is not None else None,
            object=row.get("object"),
            mask=load_mask(self._path(row["mask"]), image.size) if row.get("mask") else None,
            target=(
                load_image(self._path(row["target"]), decode=self.decode) if row.get("target") else None
            ),
            source_caption=row.get("source_caption"),
            target_caption=row.get("target_caption"),
            extra={k: v for k, v in row.items() if k not in KNOWN_KEYS},
        )
        return Sample(
            request=EditRequest(
                id=sample_id,
                image=image,
                instruction=str(row["instruction"]),
                meta={"benchmark": self.name, **oracle_meta(truth.mask, truth.object, truth.category)},
            ),
            truth=truth,
        )
