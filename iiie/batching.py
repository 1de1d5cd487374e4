"""Splitting work into batches (stages, editors): one definition for the whole package."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items (``size`` < 1 counts as 1)."""
    size = max(1, int(size))
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
