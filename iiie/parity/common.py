"""Comparison and reporting shared by the parity tools."""

from __future__ import annotations

import argparse
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


@dataclass
class Report:
    """Collects checks, prints one line per tensor, and gives the exit code."""

    title: str
    checks: list[Check] = field(default_factory=list)

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
        return bool(self.checks) and all(c.ok for c in self.checks)

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
        bad = sum(not c.ok for c in self.checks)
        print(f"parity: {len(self.checks) - bad} within tolerance, {bad} over")

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
