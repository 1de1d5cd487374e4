"""GEdit-Bench (``data=gedit_bench``) from a local copy of ``stepfun-ai/GEdit-Bench``.

Fields used: ``key``, ``task_type``, ``instruction``, ``instruction_language`` ("en" or
"cn"), ``input_image`` (``image_column`` chooses ``input_image_raw`` instead) and
``Intersection_exist`` when present. ``truth.extra`` holds ``task_type``, ``language``,
``key`` and ``intersection_exist``; the first two and the last go into every result row,
for the benchmark's own aggregation (:mod:`iiie.metrics.headlines`). Parquet shards or ``save_to_disk`` Arrow files are
both read (see :mod:`iiie.data.tables`). Ids are ``<key>`` when one language is
selected, ``<key>-<language>`` when ``language: all``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iiie.data.base import Dataset, GroundTruth, Sample
from iiie.data.categories import GEDIT_BENCH, lookup
from iiie.data.tables import HFTable, decode_image, find_split_files
from iiie.imageio import check_decode
from iiie.types import EditRequest

TEXT_COLUMNS = ["key", "task_type", "instruction", "instruction_language"]


class GEditBenchDataset(Dataset):
    name = "gedit_bench"

    def __init__(
        self,
        root: str,
        language: str = "en",
        split: str | None = None,
        n: int | None = None,
        image_column: str = "input_image",
        task_types: list[str] | None = None,
        decode: str = "reference",
    ) -> None:
        self.root = Path(root).expanduser()
        self.language = str(language)
        self.split = split
        self.n = None if n is None else int(n)
        self.image_column = str(image_column)
        self.decode = check_decode(decode)
        self.task_types = sorted(task_types) if task_types else None
        self.table = HFTable(find_split_files(self.root, split, "gedit_bench"))
        names = self.table.column_names
        missing = [c for c in TEXT_COLUMNS + [self.image_column] if c not in names]
        if missing:
            raise ValueError(f"{self.root}: not the GEdit-Bench layout; missing columns {missing}")
        extra_cols = [c for c in ("Intersection_exist",) if c in names]
        self._meta = self.table.read_columns(TEXT_COLUMNS + extra_cols)
        for t in set(self._meta["task_type"]):  # fail early on an unknown task type
            lookup(GEDIT_BENCH, t, "gedit_bench")
        rows: dict[str, int] = {}
        for i, (key, lang, task) in enumerate(
            zip(
                self._meta["key"],
                self._meta["instruction_language"],
                self._meta["task_type"],
                strict=True,
            )
        ):
            if self.language != "all" and lang != self.language:
                continue
            if self.task_types and task not in self.task_types:
                continue
            sid = str(key) if self.language != "all" else f"{key}-{lang}"
            if sid in rows:
                raise ValueError(f"gedit_bench: duplicate sample id {sid!r} in {self.root}")
            rows[sid] = i
        if not rows:
            raise ValueError(
                f"gedit_bench: no rows with language={self.language!r} under {self.root}"
            )
        self._row_of = rows
        keys = list(rows)
        self._ids = keys if self.n is None else keys[: self.n]

    def ids(self) -> list[str]:
        return list(self._ids)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": 1,
            "root": str(self.root.resolve()),
            "language": self.language,
            "split": self.split,
            "image_column": self.image_column,
            "task_types": self.task_types,
            "decode": self.decode,
            "files": self.table.signature(),
        }

    def load(self, sample_id: str) -> Sample:
        if sample_id not in self._row_of:
            raise KeyError(f"gedit_bench: unknown sample id {sample_id!r}")
        i = self._row_of[sample_id]
        cell = self.table.row(i, [self.image_column])[self.image_column]
        image = decode_image(
            cell,
            self.table.files[0].parent,
            f"gedit_bench {sample_id} {self.image_column}",
            self.decode,
        )
        task = self._meta["task_type"][i]
        extra: dict[str, Any] = {
            "task_type": task,
            "language": self._meta["instruction_language"][i],
            "key": str(self._meta["key"][i]),  # for score_folder's fullset/{task_type}/{language}/{key}.png
        }
        if "Intersection_exist" in self._meta:
            extra["intersection_exist"] = self._meta["Intersection_exist"][i]
        return Sample(
            request=EditRequest(
                id=sample_id,
                image=image,
                instruction=self._meta["instruction"][i],
                meta={"benchmark": self.name, "task_type": task},
            ),
            truth=GroundTruth(category=lookup(GEDIT_BENCH, task, "gedit_bench"), extra=extra),
        )
