"""Emu Edit test set (``data=emu_edit``) from a local copy of the Hub dataset.

Layouts read: the Hub repository's parquet shards (``data/test-0000x-of-00003-*.parquet``)
or a ``save_to_disk`` folder (``test/data-*.arrow``). Fields used: ``instruction``,
``image``, ``task``, ``input_caption``, ``output_caption``, ``idx``, ``hash``.

The companion dataset ``facebook/emu_edit_test_set_generations`` (the same rows plus
Emu Edit's own ``edited_image``) has its split *names* swapped relative to the test set:
the test set's ``test`` split has 3,589 rows and ``validation`` 2,022, while the
generations dataset calls its 3,589-row split ``validation``. Pointing ``root`` at the
generations dataset (detected by its ``edited_image`` column, or ``generations: true``)
therefore reads the other split name, and exposes Emu Edit's output as
``truth.extra["reference_edit"]`` so it can be scored as a baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iiie.data.base import Dataset, GroundTruth, Sample
from iiie.data.categories import EMU_EDIT, lookup
from iiie.data.tables import HFTable, decode_image, find_split_files
from iiie.imageio import check_decode
from iiie.types import EditRequest

#: split name in the test set -> split name holding the same rows in the generations set.
GENERATIONS_SPLIT = {"test": "validation", "validation": "test"}
TEXT_COLUMNS = ["instruction", "task", "input_caption", "output_caption"]


class EmuEditDataset(Dataset):
    """Rows of one split; ids are the dataset's ``idx`` values (row numbers if absent)."""

    name = "emu_edit"

    def __init__(
        self,
        root: str,
        split: str = "test",
        n: int | None = None,
        generations: bool | None = None,
        decode: str = "reference",
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = str(split)
        self.n = None if n is None else int(n)
        self.decode = check_decode(decode)
        probe = HFTable(find_split_files(self.root, None, "emu_edit")[:1])
        has_edits = "edited_image" in probe.column_names
        self.generations = has_edits if generations is None else bool(generations)
        if self.generations and not has_edits:
            raise ValueError(
                f"{self.root}: generations=true but the data has no 'edited_image' column"
            )
        file_split = (
            GENERATIONS_SPLIT.get(self.split, self.split) if self.generations else self.split
        )
        self.file_split = file_split
        self.table = HFTable(find_split_files(self.root, file_split, "emu_edit"))
        names = self.table.column_names
        missing = [c for c in TEXT_COLUMNS + ["image"] if c not in names]
        if missing:
            raise ValueError(
                f"{self.root}: not the Emu Edit test set layout; missing columns {missing}"
            )
        extra = [c for c in ("idx", "hash") if c in names]
        self._meta = self.table.read_columns(TEXT_COLUMNS + extra)
        if "idx" in self._meta:
            keys = [str(v) for v in self._meta["idx"]]
            if len(set(keys)) != len(keys):
                raise ValueError(f"{self.root}: duplicate idx values in split {file_split!r}")
        else:
            keys = [str(i) for i in range(self.table.num_rows)]
        self._row_of = {k: i for i, k in enumerate(keys)}
        self._ids = keys if self.n is None else keys[: self.n]

    def ids(self) -> list[str]:
        return list(self._ids)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": 1,
            "root": str(self.root.resolve()),
            "split": self.split,
            "file_split": self.file_split,
            "decode": self.decode,
            "files": self.table.signature(),
        }

    def load(self, sample_id: str) -> Sample:
        if sample_id not in self._row_of:
            raise KeyError(f"emu_edit: unknown sample id {sample_id!r}")
        i = self._row_of[sample_id]
        image_cols = ["image"] + (["edited_image"] if self.generations else [])
        cells = self.table.row(i, image_cols)
        where = f"emu_edit {self.file_split} row {i}"
        base = self.table.files[0].parent
        image = decode_image(cells["image"], base, f"{where} image", self.decode)
        task = self._meta["task"][i]
        extra: dict[str, Any] = {"task": task}
        for c in ("idx", "hash"):
            if c in self._meta:
                extra[c] = self._meta[c][i]
        if self.generations:
            extra["reference_edit"] = decode_image(
                cells["edited_image"], base, f"{where} edited_image", self.decode
            )
        truth = GroundTruth(
            category=lookup(EMU_EDIT, task, "emu_edit"),
            source_caption=self._meta["input_caption"][i],
            target_caption=self._meta["output_caption"][i],
            extra=extra,
        )
        request = EditRequest(
            id=sample_id,
            image=image,
            instruction=self._meta["instruction"][i],
            meta={"benchmark": self.name, "task": task},
        )
        return Sample(request=request, truth=truth)
