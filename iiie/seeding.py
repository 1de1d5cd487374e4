"""Per-sample seeds: re-running one sample reproduces it, whatever else is in the run."""

from __future__ import annotations

import hashlib


def sample_seed(run_seed: int, sample_id: str) -> int:
    """A 31-bit seed derived from (run seed, sample id), stable across processes."""
    digest = hashlib.sha256(f"{int(run_seed)}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
