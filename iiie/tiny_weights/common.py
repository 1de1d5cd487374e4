"""Write a generated weight folder once, atomically.

Every tiny-weight generator has the same needs: a run that is killed half-way must not
leave a folder that later looks usable, two processes (pytest-xdist workers, a test and
the ``tiny`` experiment) may build the same folder at once, and a second call must be
free. :func:`ensure_folder` gives all of that to a plain ``writer(folder)`` function.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Marker file written last; a folder without it is incomplete and gets rebuilt.
DONE = ".complete"


def _is_current(target: Path, version: int | None) -> bool:
    try:
        marker = (target / DONE).read_text()
    except FileNotFoundError:
        return False
    return version is None or f"version {version}" in marker


def ensure_folder(
    root: str | os.PathLike, name: str, writer: Callable[[Path], None], version: int | None = None
) -> Path:
    """Return ``root/name``, first building it with ``writer`` unless it is complete.

    ``writer`` fills a temporary sibling folder, which is marked complete and renamed into
    place, so readers never see a partial folder. An incomplete folder left by a crash is
    replaced. If another process renames its copy in first, that copy is kept. A writer
    whose output changed passes a new ``version``: folders built by an older one are rebuilt
    instead of silently reused.
    """
    target = Path(root).expanduser() / name
    if _is_current(target, version):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        writer(tmp)
        who = getattr(writer, "__module__", None) or "iiie.tiny_weights"
        stamp = "" if version is None else f", version {version}"
        (tmp / DONE).write_text(f"tiny random weights ({who}{stamp})\n")
        if target.exists() and not _is_current(target, version):
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if not _is_current(target, version):  # not a lost race with another writer
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
