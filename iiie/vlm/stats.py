"""A thread-safe counter for the run manifest (requests, retries, repairs, fallbacks).

The planner counts on its event-loop thread and is read from the caller's thread.
"""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def get(self, key: str) -> int:
        with self._lock:
            return int(self._counts.get(key, 0))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: int(v) for k, v in sorted(self._counts.items())}
