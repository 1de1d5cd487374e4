"""Fingerprints of the code behind a config node, for code-aware cache keys.

A stage key that hashed config alone would keep serving plans made by last week's rule
grammar after the grammar changed. So each key also hashes the code that computes it: for
every ``_target_`` in the stage's config node, the module that defines it and, transitively,
every ``iiie`` module it imports. A module is hashed by its syntax tree (``ast.dump``), so
comments and formatting do not invalidate a cache, while any change to code does
(docstrings included: they are part of the tree). Computed once per module per process.

What is *not* covered: third-party packages (pin them: ``requirements/constraints.txt``),
data files read at run time (prompt files carry their own version in the config), and
modules imported lazily inside functions (the project imports at module top, except
optional heavy dependencies). ``runtime.cache_code=false`` turns fingerprints off, for
users who change code that they know does not change results.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path
from typing import Any

PACKAGE = "iiie"
ROOT = Path(__file__).resolve().parents[1]  # the iiie package folder


def targets(node: Any) -> list[str]:
    """Every ``_target_`` string in a plain config tree, in a stable order."""
    found: set[str] = set()

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            target = obj.get("_target_")
            if isinstance(target, str):
                found.add(target)
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(node)
    return sorted(found)


def _source_file(module: str) -> Path | None:
    """The source file of a project module, found on disk without importing anything
    (importing would pull in torch and diffusers just to compute a cache key)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py") if parts[1:] else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def module_of(target: str) -> str | None:
    """The project module that defines a dotted ``_target_`` (``iiie.a.b.Class`` ->
    ``iiie.a.b``); None for targets outside the project."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        if _source_file(name) is not None:
            return name
    return None


@functools.cache
def _source_tree(module: str) -> tuple[str, tuple[str, ...]] | None:
    """(hash of the module's syntax tree, the project modules it imports), or None when it
    is not a project module."""
    path = _source_file(module)
    if path is None:
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    digest = hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()
    is_package = path.name == "__init__.py"
    imports: set[str] = set()
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.Import):
            imports.update(alias.name for alias in stmt.names)
        elif isinstance(stmt, ast.ImportFrom):
            base = _absolute(module, stmt.module, stmt.level, is_package)
            if base is None:
                continue
            imports.add(base)
            # ``from iiie.planners import rules`` imports the submodule ``rules``.
            imports.update(f"{base}.{alias.name}" for alias in stmt.names)
    deps = tuple(sorted(m for m in imports if _source_file(m) is not None))
    return digest, deps


def _absolute(module: str, name: str | None, level: int, is_package: bool) -> str | None:
    if level == 0:
        return name
    parts = module.split(".")
    keep = len(parts) - level + (1 if is_package else 0)
    if keep <= 0:
        return None
    base = ".".join(parts[:keep])
    return f"{base}.{name}" if name else base


@functools.cache
def module_fingerprint(module: str) -> str:
    """Hash of ``module`` and every project module it imports, transitively."""
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        info = _source_tree(name)
        if info is None:
            continue
        seen[name], deps = info
        todo.extend(d for d in deps if d not in seen)
    text = "\n".join(f"{k}:{v}" for k, v in sorted(seen.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_fingerprint(node: Any) -> dict[str, str]:
    """``{target: fingerprint}`` for every ``_target_`` in ``node`` (a plain config tree)."""
    out = {}
    for target in targets(node):
        module = module_of(target)
        out[target] = module_fingerprint(module) if module else "external"
    return out
