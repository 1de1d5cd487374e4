"""``python -m iiie.weights fetch``: download manifest entries into the weights root and
record what was taken in ``weights.lock``.

Hub entries go through ``huggingface_hub.snapshot_download`` (resumable, its own progress
bars, the token of ``hf auth login`` / ``HF_TOKEN`` for gated repos) pinned to the commit
the revision resolves to; a locked entry asks for its locked commit again. URL entries are
fetched with HTTP range requests into ``<file>.part``. The downloader is an object with
``resolve`` / ``snapshot`` / ``url`` so that tests replace it (no test touches the network).
This module is never imported by an experiment run.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from iiie.weights.lock import hash_tree, list_files, read_lock, sha256_file, write_lock
from iiie.weights.manifest import Entry, size_text

_SHA = re.compile(r"^[0-9a-f]{40}$")


class Downloader(Protocol):
    def resolve(self, entry: Entry, revision: str) -> str: ...
    def snapshot(self, entry: Entry, revision: str, local_dir: Path, allow: list[str] | None, ignore: list[str] | None) -> None: ...
    def url(self, url: str, dest: Path) -> None: ...


class HubDownloader:
    """The real downloader: huggingface_hub for repos, urllib with resume for URLs."""

    def __init__(self) -> None:
        from iiie import weights as W

        # iiie.weights switches the hub offline for experiment runs; lift that for this
        # process only (unless the user set HF_HUB_OFFLINE themselves).
        if W.OFFLINE_SET_HERE:
            os.environ["HF_HUB_OFFLINE"] = "0"
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = os.environ.get("IIIE_FETCH_PROGRESS", "0")
        import huggingface_hub
        from huggingface_hub import constants

        if W.OFFLINE_SET_HERE:
            constants.HF_HUB_OFFLINE = False
        huggingface_hub.utils.enable_progress_bars()
        self.hub = huggingface_hub

    def resolve(self, entry: Entry, revision: str) -> str:
        info = self.hub.HfApi().repo_info(entry.repo, repo_type=entry.repo_type, revision=revision)
        return str(info.sha)

    def snapshot(self, entry, revision, local_dir, allow, ignore) -> None:
        self.hub.snapshot_download(
            entry.repo, repo_type=entry.repo_type, revision=revision, local_dir=str(local_dir),
            allow_patterns=allow, ignore_patterns=ignore,
        )

    def url(self, url: str, dest: Path) -> None:
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        with urllib.request.urlopen(req, timeout=60) as r:
            mode = "ab" if have and r.status == 206 else "wb"  # 200: the server ignored Range
            total = int(r.headers.get("Content-Length") or 0) + (have if mode == "ab" else 0)
            done = have if mode == "ab" else 0
            with open(part, mode) as f:
                while block := r.read(1 << 22):
                    f.write(block)
                    done += len(block)
                    if total:
                        print(f"\r  {dest.name}: {done / 2**20:.0f}/{total / 2**20:.0f} MB", end="", flush=True)
        print()
        os.replace(part, dest)


def _patterns(entry: Entry) -> tuple[list[str] | None, list[str] | None]:
    def under(pats: Iterable[str]) -> list[str]:
        return [f"{entry.subfolder}/{p}" for p in pats] if entry.subfolder else list(pats)

    allow = under(entry.allow_patterns) if entry.allow_patterns else (under(["*"]) if entry.subfolder else None)
    ignore = under(entry.ignore_patterns) or None
    return allow, ignore


def _up_to_date(entry: Entry, root: Path, locked: dict[str, Any] | None) -> bool:
    """Locked and every locked file on disk with its size (a cheap check; verify re-hashes)."""
    if not locked:
        return False
    base = entry.path(root).parent if locked.get("is_file") else entry.path(root)
    return all((base / rel).is_file() and (base / rel).stat().st_size == int(m["size"]) for rel, m in locked["files"].items())


def _move_tree(src: Path, dst: Path) -> None:
    for rel in list_files(src):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(src / rel, dst / rel)


def fetch_entry(entry: Entry, root: Path, dl: Downloader, locked: dict[str, Any] | None, say: Callable[[str], None]) -> dict[str, Any] | None:
    """Download one entry; returns its lock record (None: manual entry not on disk)."""
    target = entry.path(root)
    if entry.kind == "manual":
        if not target.exists() or not list_files(target):
            say(f"  {entry.name}: cannot be downloaded by script. " + " ".join(str(entry.manual).split()))
            return None
        return {"source": entry.source(), "revision": "manual", "files": hash_tree(target), "is_file": target.is_file()}
    if entry.kind == "url":
        dest = target / entry.file if entry.file else target
        dl.url(entry.url, dest)
        digest = sha256_file(dest)
        if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix):
            bad = dest.with_name(dest.name + ".corrupt")
            os.replace(dest, bad)
            raise ValueError(f"{entry.name}: sha256 {digest[:12]}... does not start with {entry.sha256_prefix} "
                             f"(the release's published prefix); moved to {bad}")
        return {"source": entry.url, "revision": digest, "files": hash_tree(target), "is_file": entry.is_file}
    want = (locked or {}).get("revision") or entry.revision or "main"
    sha = want if _SHA.match(want) else dl.resolve(entry, want)
    allow, ignore = _patterns(entry)
    if entry.subfolder:  # the repo's subfolder becomes the entry's folder
        staging = root / ".partial" / entry.name
        dl.snapshot(entry, sha, staging, allow, ignore)
        src = staging / entry.subfolder
        if not src.is_dir():
            raise FileNotFoundError(f"{entry.name}: {entry.repo}@{sha[:10]} has no folder {entry.subfolder}/")
        target.mkdir(parents=True, exist_ok=True)
        _move_tree(src, target)
        shutil.rmtree(staging, ignore_errors=True)
        for parent in staging.relative_to(root).parents:  # empty staging parents, .partial too
            if parent != Path(".") and (root / parent).is_dir() and not any((root / parent).iterdir()):
                (root / parent).rmdir()
    else:
        dl.snapshot(entry, sha, target, allow, ignore)
    files = hash_tree(target)
    if not files:
        raise FileNotFoundError(f"{entry.name}: nothing matched {allow} in {entry.repo}@{sha[:10]}")
    return {"source": entry.source(), "revision": sha, "files": files, "is_file": False}


def fetch(entries: list[Entry], root: str | Path, downloader: Downloader | None = None,
          dry_run: bool = False, say: Callable[[str], None] = print) -> list[str]:
    """Fetch ``entries`` into ``root`` and update ``root/weights.lock`` after each one.
    Returns the names that could not be fetched (manual entries not on disk, failures)."""
    root = Path(root)
    lock = read_lock(root)
    total = sum(e.size_gb for e in entries)
    say(f"{len(entries)} entries, about {size_text(total)} in all, into {root}/")
    for e in entries:
        state = "locked" if e.name in lock["entries"] else "new"
        say(f"  {e.name:45s} {size_text(e.size_gb):>9s}  {e.licence:30.30s}  {e.source()[:100]}  [{state}]")
    if dry_run:
        say("dry run: nothing downloaded")
        return []
    dl = downloader if downloader is not None else HubDownloader()
    failed = []
    for e in entries:
        locked = lock["entries"].get(e.name)
        pinned_elsewhere = e.kind == "repo" and _SHA.match(e.revision or "") and locked and locked["revision"] != e.revision
        if _up_to_date(e, root, locked) and not pinned_elsewhere:
            say(f"{e.name}: up to date ({str(locked['revision'])[:10]})")
            continue
        say(f"{e.name}: fetching from {e.source()}")
        try:
            record = fetch_entry(e, root, dl, locked, say)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad entry does not stop the others; a rerun resumes
            gated = "gated" in type(exc).__name__.lower() or "401" in str(exc) or "403" in str(exc)
            hint = (f" Accept the licence at https://huggingface.co/{e.repo} and log in "
                    "(`hf auth login` or HF_TOKEN)." if gated and e.repo else "")
            say(f"{e.name}: FAILED: {type(exc).__name__}: {exc}.{hint}")
            failed.append(e.name)
            continue
        if record is None:
            failed.append(e.name)
            continue
        lock["entries"][e.name] = record
        write_lock(root, lock)
        say(f"{e.name}: {len(record['files'])} files, revision {str(record['revision'])[:10]}")
    return failed
