"""Comparison and reporting shared by the parity tools.

A golden folder is made of *sections* (module goldens, pipeline runs, text encoders...).
Every section the format defines either runs, or is reported as missing (a failure), or is
skipped because the user asked for it with a ``--skip-<section>`` flag (printed, not a
failure). A tool must never pass because a file was absent: a copy of a golden folder that
lost its pipeline files, or the folder of another model, is not a successful parity run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).cpu().numpy()
    return np.asarray(x, dtype=np.float64)


@dataclass
class Check:
    name: str
    max_abs: float
    max_rel: float
    tol: float
    kind: str  # "abs" or "rel": which error the tolerance applies to
    shape: tuple
    note: str = ""

    @property
    def ok(self) -> bool:
        err = self.max_abs if self.kind == "abs" else self.max_rel
        return bool(np.isfinite(err) and err <= self.tol)


class GoldenFolderError(Exception):
    """The folder is not a golden folder of the kind the tool reads (wrong model, not a
    golden folder at all); the tool stops before comparing anything."""


@dataclass
class Section:
    name: str
    status: str  # "missing" or "skipped"
    why: str


@dataclass
class Report:
    """Collects checks and section notes, prints one line per tensor and per missing or
    skipped section, and gives the exit code (non-zero on any failing check or missing
    section)."""

    title: str
    checks: list[Check] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def missing(self, section: str, why: str) -> None:
        """A section the format defines could not run: a failure."""
        self.sections.append(Section(section, "missing", why))

    def skipped(self, section: str, why: str) -> None:
        """A section the user asked not to run: printed, not a failure."""
        self.sections.append(Section(section, "skipped", why))

    @property
    def missing_sections(self) -> list[Section]:
        return [s for s in self.sections if s.status == "missing"]

    @property
    def skipped_sections(self) -> list[Section]:
        return [s for s in self.sections if s.status == "skipped"]

    def compare(self, name: str, ours, ref, tol: float, kind: str = "abs", note: str = "") -> Check:
        a, b = _np(ours), _np(ref)
        if a.shape != b.shape:
            check = Check(name, float("inf"), float("inf"), tol, kind, tuple(b.shape),
                          f"shape {a.shape} != reference {b.shape}")
        else:
            diff = np.abs(a - b)
            max_abs = float(diff.max()) if diff.size else 0.0
            scale = float(np.abs(b).max()) if b.size else 0.0
            max_rel = max_abs / max(scale, 1e-12)
            check = Check(name, max_abs, max_rel, tol, kind, tuple(b.shape), note)
        self.checks.append(check)
        return check

    def add(self, check: Check) -> None:
        self.checks.append(check)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks) and not self.missing_sections

    def print(self) -> None:
        print(f"== {self.title}")
        width = max((len(c.name) for c in self.checks), default=10)
        for c in self.checks:
            status = "ok  " if c.ok else "FAIL"
            extra = f"  {c.note}" if c.note else ""
            print(
                f"{status} {c.name:<{width}}  max_abs={c.max_abs:.3e}  max_rel={c.max_rel:.3e}"
                f"  tol({c.kind})={c.tol:.0e}{extra}"
            )
        for s in self.sections:
            status = "FAIL missing" if s.status == "missing" else "skip"
            print(f"{status} section {s.name}: {s.why}")
        bad = sum(not c.ok for c in self.checks)
        line = f"parity: {len(self.checks) - bad} within tolerance, {bad} over"
        if self.sections:
            line += f"; {len(self.missing_sections)} missing section(s), {len(self.skipped_sections)} skipped"
        print(line)

    def exit_code(self) -> int:
        return 0 if self.ok else 1


def tolerance_parser(name: str, description: str | None) -> argparse.ArgumentParser:
    """Command line of the inpainting parity tools (BrushNet, PowerPaint): the golden
    folder, the device, and the per-module, per-step (relative) and image tolerances."""
    parser = argparse.ArgumentParser(prog=f"python -m iiie.parity {name}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("golden_dir", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--module-tol", type=float, default=1e-4)
    parser.add_argument("--step-rtol", type=float, default=1e-4)
    parser.add_argument("--image-tol", type=float, default=1e-3)
    return parser


def add_skip_flags(parser: argparse.ArgumentParser, sections: dict[str, str]) -> None:
    """One ``--skip-<name>`` flag per optional section (``sections``: name -> what it checks)."""
    for name, what in sections.items():
        parser.add_argument(f"--skip-{name}", action="store_true",
                            help=f"do not check {what} (reported as skipped, not a failure)")


def skip_set(args: argparse.Namespace, sections: dict[str, str]) -> frozenset[str]:
    """The section names whose ``--skip-<name>`` flag was given."""
    return frozenset(n for n in sections if getattr(args, f"skip_{n.replace('-', '_')}"))


def fail_folder(exc: Exception) -> int:
    """Print why the folder cannot be checked; the exit code for it (2)."""
    print(f"FAIL golden folder: {exc}")
    return 2


# ---------------------------------------------------------------------------- folder kinds
_NAMES = {"brushnet": "a BrushNet", "powerpaint": "a PowerPaint", "infedit": "an InfEdit"}
_EXPECTED = {
    "brushnet": "a sub-folder whose config.json is a BrushNetModel without cross-attention blocks "
                "(golden README, section A)",
    "powerpaint": "a sub-folder whose config.json is a BrushNetModel with cross-attention blocks "
                  "(BrushNet-CA, golden README, section B)",
    "infedit": "a run_meta.json that lists 'runs' (the InfEdit golden format)",
}


def golden_kind(golden: Path) -> str | None:
    """Which tool's folder this is: ``brushnet`` / ``powerpaint`` by the branch config's block
    types (PowerPaint's BrushNet-CA has cross-attention blocks, TencentARC's has none),
    ``infedit`` by a ``run_meta.json`` with ``runs``; None when it is none of them."""
    for cfg in sorted(Path(golden).glob("*/config.json")):
        try:
            config = json.loads(cfg.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if config.get("_class_name") == "BrushNetModel":
            blocks = [*config.get("down_block_types", ()), config.get("mid_block_type") or "",
                      *config.get("up_block_types", ())]
            return "powerpaint" if any("CrossAttn" in b for b in blocks) else "brushnet"
    try:
        meta = json.loads((Path(golden) / "run_meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return "infedit" if isinstance(meta, dict) and isinstance(meta.get("runs"), dict) else None


def require_kind(golden: Path, want: str) -> None:
    """Raise :class:`GoldenFolderError` unless ``golden`` is a folder of kind ``want``, naming
    the right tool when it is another tool's folder."""
    kind = golden_kind(golden)
    if kind == want:
        return
    if kind is None:
        raise GoldenFolderError(f"{golden} is not {_NAMES[want]} golden folder: expected {_EXPECTED[want]}")
    raise GoldenFolderError(f"{golden} is {_NAMES[kind]} golden folder (it has {_EXPECTED[kind]}), "
                            f"not {_NAMES[want]} one; check it with `python -m iiie.parity {kind} {golden}`")
