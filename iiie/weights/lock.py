"""``weights/weights.lock``: the resolved revision and sha256 of every fetched file, and the
offline ``verify`` against it.

The lock is JSON (``{"version": 1, "entries": {name: {"source", "revision", "files":
{relpath: {"sha256", "size"}}}}}``), written by ``fetch`` and read by a later ``fetch``
(which then asks for the same revisions) and by ``verify``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCK_NAME = "weights.lock"
LOCK_VERSION = 1
#: Bookkeeping a download leaves inside a folder; never part of the weights.
SKIP_DIRS = (".cache", ".partial")


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def list_files(path: Path) -> list[str]:
    """Files of a weights folder (or the single file), relative to it, sorted."""
    if path.is_file():
        return [path.name]
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for f in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, f), path).replace(os.sep, "/"))
    return sorted(out)


def hash_tree(path: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file of ``path`` (a folder or one file)."""
    base = path.parent if path.is_file() else path
    return {rel: {"sha256": sha256_file(base / rel), "size": (base / rel).stat().st_size} for rel in list_files(path)}


def read_lock(root: str | Path) -> dict[str, Any]:
    p = Path(root) / LOCK_NAME
    if not p.exists():
        return {"version": LOCK_VERSION, "entries": {}}
    data = json.loads(p.read_text())
    if int(data.get("version", 0)) != LOCK_VERSION:
        raise ValueError(f"{p}: lock version {data.get('version')} is not {LOCK_VERSION}")
    data.setdefault("entries", {})
    return data


def write_lock(root: str | Path, data: dict[str, Any]) -> Path:
    """Atomic write, sorted keys (a lock diff shows only what changed)."""
    p = Path(root) / LOCK_NAME
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".lock.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, p)
    return p


@dataclass
class VerifyReport:
    missing: list[str] = field(default_factory=list)  # "entry/file" (or "entry/" for a whole folder)
    corrupt: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    ok: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missing or self.corrupt or self.extra)

    def lines(self) -> list[str]:
        out = [f"missing  {m}" for m in self.missing]
        out += [f"corrupt  {c}" for c in self.corrupt]
        out += [f"extra    {x}" for x in self.extra]
        out.append(f"{self.ok} files ok, {len(self.missing)} missing, {len(self.corrupt)} corrupt, {len(self.extra)} extra")
        return out


def verify(root: str | Path, names: list[str] | None = None) -> VerifyReport:
    """Re-hash every locked file under ``root`` (offline): missing, corrupt (size or sha256
    differ) and extra files (on disk in a locked folder, not in the lock)."""
    root = Path(root)
    lock = read_lock(root)["entries"]
    if names:
        unknown = [n for n in names if n not in lock]
        if unknown:
            raise KeyError(f"not in {root / LOCK_NAME}: {', '.join(unknown)}")
    rep = VerifyReport()
    for name in sorted(names or lock):
        item = lock[name]
        path = root / name
        base = path.parent if item.get("is_file") else path
        if not path.exists():
            rep.missing.append(f"{name}/ (whole {'file' if item.get('is_file') else 'folder'})")
            continue
        for rel, want in sorted(item["files"].items()):
            f = base / rel
            label = name if item.get("is_file") else f"{name}/{rel}"
            if not f.is_file():
                rep.missing.append(label)
            elif f.stat().st_size != int(want["size"]) or sha256_file(f) != want["sha256"]:
                rep.corrupt.append(label)
            else:
                rep.ok += 1
        if not item.get("is_file"):
            rep.extra += [f"{name}/{rel}" for rel in list_files(path) if rel not in item["files"]]
    return rep
