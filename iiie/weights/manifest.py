"""The weights manifest ``conf/weights.yaml``: where every local model folder comes from.

One :class:`Entry` per path under the weights root that a config names. The manifest is
data for the ``fetch`` / ``verify`` / ``check`` commands and the run's preflight; it is
read with plain YAML (it is not a Hydra config group).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"
MANIFEST_PATH = CONF_DIR / "weights.yaml"
_KINDS = ("repo", "url", "manual")


@dataclass(frozen=True)
class Entry:
    """One weights folder (or single file) under the weights root."""

    name: str  # path relative to the weights root, e.g. "brushnet/random_mask_brushnet_ckpt"
    repo: str | None = None
    repo_type: str = "model"
    subfolder: str | None = None
    revision: str | None = None
    allow_patterns: tuple[str, ...] = ()
    ignore_patterns: tuple[str, ...] = ()
    url: str | None = None
    file: str | None = None  # url entries: the file's name inside the folder `name`
    sha256_prefix: str | None = None
    manual: str | None = None
    gated: bool = False
    licence: str = "unknown"
    size_gb: float = 0.0
    needed_by: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "repo" if self.repo else "url" if self.url else "manual"

    @property
    def is_file(self) -> bool:
        """A url entry without ``file`` is itself the file (``sam_vit_h_4b8939.pth``)."""
        return self.kind == "url" and not self.file

    def source(self) -> str:
        """Human-readable source, as printed by ``check`` and ``fetch --dry-run``."""
        if self.repo:
            s = f"hf:{self.repo}" + (f"/{self.subfolder}" if self.subfolder else "")
            s += f"@{self.revision}" if self.revision else ""
            return s + (" (gated: accept the licence, log in)" if self.gated else "")
        if self.url:
            return self.url
        return "manual: " + " ".join(str(self.manual).split())

    def path(self, root: str | Path) -> Path:
        return Path(root) / self.name


def _entry(name: str, raw: dict[str, Any]) -> Entry:
    if not isinstance(raw, dict):
        raise ValueError(f"{MANIFEST_PATH.name}: entry {name!r} must be a mapping")
    kinds = [k for k in _KINDS if raw.get(k)]
    if len(kinds) != 1:
        raise ValueError(f"{MANIFEST_PATH.name}: entry {name!r} needs exactly one of {_KINDS}, has {kinds or 'none'}")
    known = set(Entry.__dataclass_fields__) - {"name"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{MANIFEST_PATH.name}: entry {name!r} has unknown fields {sorted(unknown)}")
    kw = dict(raw)
    for key in ("allow_patterns", "ignore_patterns"):
        kw[key] = tuple(kw.get(key) or ())
    kw["size_gb"] = float(kw.get("size_gb") or 0.0)
    kw["needed_by"] = {k: [str(x) for x in v] for k, v in (kw.get("needed_by") or {}).items()}
    return Entry(name=name, **kw)


def load_manifest(path: str | Path | None = None) -> dict[str, Entry]:
    """Entries by name (their path relative to the weights root)."""
    path = Path(path) if path is not None else MANIFEST_PATH
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("entries") or {}
    return {str(name): _entry(str(name), raw) for name, raw in entries.items()}


def entry_for(relpath: str, entries: dict[str, Entry]) -> Entry | None:
    """The entry holding ``relpath`` (the entry itself or a path inside it; longest match)."""
    rel = relpath.strip("/")
    best = None
    for name, e in entries.items():
        if rel == name or rel.startswith(name + "/"):
            if best is None or len(name) > len(best.name):
                best = e
    return best


def size_text(gb: float) -> str:
    return f"{gb * 1024:.0f} MB" if gb < 1 else f"{gb:.1f} GB"
