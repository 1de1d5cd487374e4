"""``python -m iiie.parity MODEL GOLDEN_DIR [options]``: dispatch to ``iiie.parity.MODEL``.

Each model module exposes ``main(argv: list[str]) -> int``.
"""

from __future__ import annotations

import importlib
import sys

MODELS = ("brushnet", "powerpaint", "infedit")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in MODELS:
        print(f"usage: python -m iiie.parity {{{','.join(MODELS)}}} GOLDEN_DIR [options]")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"iiie.parity.{argv[0]}")
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
