"""Read Hugging Face datasets stored locally, without the ``datasets`` library.

Benchmarks on the Hub (Emu Edit, GEdit-Bench) come either as the repository's parquet
shards or as a ``save_to_disk`` folder of Arrow IPC stream files. Both are plain Arrow
data, so pyarrow reads them directly: the text columns for all rows up front (cheap), and
one row's image only when that sample is loaded. Parquet is read one row group at a time
with the last group kept, so walking the ids in order decodes each group once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from iiie.errors import DatasetNotFoundError, ImageLoadError
from iiie.imageio import load_image

SUFFIXES = (".parquet", ".arrow")


def find_split_files(root: str | Path, split: str | None, benchmark: str = "dataset") -> list[Path]:
    """Data files of one split under ``root``, in name order.

    A file belongs to ``split`` when its name starts with ``<split>-`` or ``<split>.``
    (Hub parquet shards: ``data/test-00000-of-00003-<hash>.parquet``) or when one of
    its folders below ``root`` is named ``split`` (``save_to_disk`` of a DatasetDict:
    ``test/data-00000-of-00001.arrow``). ``split=None`` takes every data file.
    A missing folder or split is a :class:`DatasetNotFoundError` naming ``benchmark``'s
    ``data.root``.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetNotFoundError.for_root(benchmark, f"dataset folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    if split is None:
        chosen = files
    else:
        chosen = [
            p
            for p in files
            if p.name.startswith((f"{split}-", f"{split}."))
            or split in p.relative_to(root).parts[:-1]
        ]
    if not chosen:
        have = sorted({p.relative_to(root).as_posix() for p in files})[:10]
        raise DatasetNotFoundError.for_root(
            benchmark,
            f"no .parquet/.arrow files for split {split!r} under {root} (found: {have or 'none'})",
        )
    _check_shards(chosen)
    return chosen


def _check_shards(files: list[Path]) -> None:
    """Refuse two files claiming the same shard (``test-00000-of-00003-<hash>`` twice).

    Some Hub revisions of these datasets briefly held re-uploaded shards beside the old
    ones; reading both would silently duplicate rows.
    """
    seen: dict[tuple[str, str, str, str], Path] = {}
    for f in files:
        m = re.match(r"^(.*?)-(\d+)-of-(\d+)", f.name)
        if not m:
            continue
        key = (str(f.parent), m.group(1), m.group(2), m.group(3))
        if key in seen:
            raise ValueError(
                f"two files hold shard {m.group(2)} of {m.group(3)}: {seen[key]} and {f}; "
                "remove the stale one"
            )
        seen[key] = f


def _open_arrow(path: Path) -> pa.Table:
    source = pa.memory_map(str(path), "r")
    try:
        return pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        return pa.ipc.open_file(source).read_all()


class HFTable:
    """Rows of several parquet/arrow files seen as one table, read lazily."""

    def __init__(self, files: list[Path]):
        if not files:
            raise ValueError("HFTable needs at least one file")
        self.files = list(files)
        self._parts: list[tuple[Path, int, int]] = []  # (file, row group or -1, rows)
        self._arrow: dict[Path, pa.Table] = {}
        for f in self.files:
            if f.suffix == ".parquet":
                meta = pq.ParquetFile(f).metadata
                for g in range(meta.num_row_groups):
                    self._parts.append((f, g, meta.row_group(g).num_rows))
            else:
                table = _open_arrow(f)
                self._arrow[f] = table
                self._parts.append((f, -1, table.num_rows))
        self._starts: list[int] = []
        total = 0
        for _, _, n in self._parts:
            self._starts.append(total)
            total += n
        self.num_rows = total
        self._cached: tuple[tuple[Path, int, tuple[str, ...]], pa.Table] | None = None

    @property
    def column_names(self) -> list[str]:
        f = self.files[0]
        if f.suffix == ".parquet":
            return list(pq.ParquetFile(f).schema_arrow.names)
        return list(self._arrow[f].column_names)

    def read_columns(self, names: list[str]) -> dict[str, list[Any]]:
        """Whole columns (use for the small text columns only)."""
        missing = [n for n in names if n not in self.column_names]
        if missing:
            raise KeyError(f"columns {missing} not in {self.files[0]} (has: {self.column_names})")
        out: dict[str, list[Any]] = {n: [] for n in names}
        for f in self.files:
            t = (
                pq.read_table(f, columns=names)
                if f.suffix == ".parquet"
                else self._arrow[f].select(names)
            )
            for n in names:
                out[n].extend(t.column(n).to_pylist())
        return out

    def row(self, index: int, names: list[str]) -> dict[str, Any]:
        """One row's values for ``names`` (image cells come back as dicts)."""
        if not 0 <= index < self.num_rows:
            raise IndexError(f"row {index} out of range (table has {self.num_rows} rows)")
        part = max(i for i, s in enumerate(self._starts) if s <= index)
        f, group, _ = self._parts[part]
        offset = index - self._starts[part]
        if group < 0:
            table = self._arrow[f].select(names)
        else:
            key = (f, group, tuple(names))
            if self._cached is None or self._cached[0] != key:
                self._cached = (key, pq.ParquetFile(f).read_row_group(group, columns=names))
            table = self._cached[1]
        return {n: table.column(n)[offset].as_py() for n in names}

    def signature(self) -> list[list[Any]]:
        """Cheap content signature: file names and sizes."""
        return [[f.name, f.stat().st_size] for f in self.files]


def decode_image(
    cell: Any, base: Path | None = None, what: str = "image", decode: str = "friendly"
) -> Image.Image:
    """Decode a Hub ``Image`` cell (``{"bytes": ..., "path": ...}``) to PIL RGB, with
    :func:`iiie.imageio.load_image`'s ``decode`` rule."""
    if isinstance(cell, Image.Image):
        return load_image(cell, decode=decode)
    if isinstance(cell, (bytes, bytearray)):
        return load_image(bytes(cell), decode=decode)
    if isinstance(cell, dict):
        data = cell.get("bytes")
        if data:
            return load_image(bytes(data), decode=decode)
        path = cell.get("path")
        if path:
            p = Path(path)
            if not p.is_absolute() and base is not None:
                p = base / p
            return load_image(p, decode=decode)
    raise ImageLoadError(f"{what}: empty or unreadable image cell ({type(cell).__name__})")
