"""``python -m iiie.collect results/<sweep>``: merge a sweep's variants into one table.

The multirun callback does this automatically at the end of a sweep; this command redoes
it by hand (for example after adding a variant with a separate run).
"""

from __future__ import annotations

import sys
from pathlib import Path

from iiie.pipeline.ablation import ablation_spec, ablation_table
from iiie.pipeline.report import collect


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m iiie.collect results/<experiment>")
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        spec = ablation_spec(Path(args[0]))
        if spec is not None:  # a step's ablation sweep: its own table (default, deltas, skipped)
            ablation_table(Path(args[0]), **spec)
        else:
            collect(Path(args[0]))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print((Path(args[0]) / "comparison.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
