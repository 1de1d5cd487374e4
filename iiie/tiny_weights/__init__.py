"""Generators of tiny random-weight models in the official on-disk layouts.

Each module exposes ``ensure(root) -> Path``: write the folder if missing (idempotent,
atomic), return its path. The ``tiny`` experiment calls them before a run, so the real
step-4 code runs end to end on CPU without any download.
"""
