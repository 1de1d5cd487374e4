"""Content-addressed stage folders and atomic file writes.

A stage's folder is ``runs/<experiment>/<stage>/<key>/`` where ``key`` hashes the config
slice the stage reads plus its upstream key. Two runs that agree on everything a stage
depends on share its folder, so an ablation of step 4 reuses the plans and masks already
on disk, and an interrupted run resumes where it stopped.

Every file is written to a temporary name in the same folder and renamed into place
(atomic on POSIX), and a sample counts as done only when its ``.json`` record exists, which
is always written last. A run killed at any instant therefore leaves either a complete
record or none, plus at most some ``*.tmp`` files that the next run removes.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from PIL import Image

TMP_SUFFIX = ".tmp"


def plain(obj: Any) -> Any:
    """OmegaConf containers -> plain Python (resolved), anything else unchanged."""
    if isinstance(obj, (DictConfig, ListConfig)):
        return OmegaConf.to_container(obj, resolve=True)
    return obj


SECRET_KEYS = frozenset({"api_key", "token", "password"})


def without_keys(obj: Any, drop: frozenset[str]) -> Any:
    """A plain copy of ``obj`` with every mapping key in ``drop`` removed, at any depth."""
    obj = plain(obj)
    if isinstance(obj, dict):
        return {k: without_keys(v, drop) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list):
        return [without_keys(v, drop) for v in obj]
    return obj


def redact(obj: Any) -> Any:
    """A plain copy with secrets (``api_key``, ...) replaced, for files written to disk."""
    obj = plain(obj)
    if isinstance(obj, dict):
        return {k: ("***" if k in SECRET_KEYS and v else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def stable_hash(obj: Any, length: int = 12) -> str:
    """Hash of a JSON-able value, independent of dict order."""
    text = json.dumps(plain(obj), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


_HOST = socket.gethostname().replace(".", "_")


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it
    (``/proc/self/status``): ``os.umask`` can only be read by setting it, which would race
    with files other threads create meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's host and pid are in the temp name, so a cleanup in another process
    # (data-parallel shards share folders) only removes leftovers of dead writers.
    prefix = f".{path.name}.{_HOST}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp creates 0600 (private temp files); a result file gets the mode a plain
        # open() would give it, so results and stage records stay readable by the group /
        # others as the user's umask allows (shared result folders, web servers).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    data = json.dumps(plain(obj), indent=1, sort_keys=True, default=str).encode()
    atomic_write_bytes(path, data)


def atomic_save_png(path: Path, image: Image.Image) -> None:
    _atomic_write(Path(path), lambda fh: image.save(fh, format="PNG"))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _writer_alive(tmp_name: str) -> bool:
    """Is the process that is writing ``tmp_name`` still running (unknown host: assume so)?"""
    parts = tmp_name.split(".")
    try:
        host, pid = parts[-4], int(parts[-3])
    except (IndexError, ValueError):
        return False  # not one of ours (old naming): treat as a leftover
    if host != _HOST:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Record fields that describe how a result was computed, not what it is (left out of digests).
VOLATILE_FIELDS = frozenset({"seconds"})


class StageDir:
    """One stage's content-addressed folder: ``<id>.json`` = done, ``<id>.error.json`` =
    failed (final, unless the error is marked ``retryable`` (a backend outage) or the run
    sets ``runtime.retry_errors=true``)."""

    def __init__(self, root: Path, stage: str, key: str) -> None:
        self.stage, self.key = stage, key
        self.path = Path(root) / stage / key
        self.path.mkdir(parents=True, exist_ok=True)

    def record(self, sample_id: str) -> Path:
        return self.path / f"{sample_id}.json"

    def error(self, sample_id: str) -> Path:
        return self.path / f"{sample_id}.error.json"

    def file(self, sample_id: str, suffix: str) -> Path:
        return self.path / f"{sample_id}{suffix}"

    def is_done(self, sample_id: str) -> bool:
        return self.record(sample_id).exists()

    def digest(self, sample_id: str) -> str | None:
        """Hash of a sample's record without its timing: downstream records store their
        upstream's, so a sample whose upstream changed (a provisional plan replaced, a turn
        that came out differently) is redone, and one recomputed identically is not."""
        try:
            record = read_json(self.record(sample_id))
        except FileNotFoundError:
            return None
        content = {k: v for k, v in record.items() if k not in VOLATILE_FIELDS} if isinstance(record, dict) else record
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def is_failed(self, sample_id: str) -> bool:
        return self.error(sample_id).exists()

    def clear_error(self, sample_id: str) -> None:
        """Forget a recorded failure (after a retry succeeded)."""
        self.error(sample_id).unlink(missing_ok=True)

    def clean_tmp(self, stale_after_s: float = 86400.0) -> int:
        """Remove leftovers of writes interrupted by a kill; returns how many.

        A temp file is removed when its writer (host and pid in its name) is this host's
        and no longer running, or when it is older than ``stale_after_s`` (writers on other
        hosts). Live writers' files are left alone. Leftovers are harmless either way: a
        sample is done only when its record exists.
        """
        count = 0
        now = time.time()
        for p in self.path.glob(f".*{TMP_SUFFIX}"):
            if _writer_alive(p.name) and now - _mtime(p) < stale_after_s:
                continue
            p.unlink(missing_ok=True)
            count += 1
        return count

    def write_meta(self, config_slice: Any) -> None:
        """Record what the key hashes, once, so a folder can be traced to its config."""
        meta = self.path / "_key.json"
        if not meta.exists():
            atomic_write_json(meta, {"stage": self.stage, "key": self.key, "config": config_slice})
