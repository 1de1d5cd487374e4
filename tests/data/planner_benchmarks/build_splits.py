"""Rebuild ``dev_benchmarks.jsonl`` and ``untouched_benchmarks.jsonl`` from ComplexBench-Edit.

Usage: ``python build_splits.py /path/to/ComplexBench-Edit OUT_DIR`` (a git checkout of
github.com/llllly26/ComplexBench-Edit; the committed files came from commit a84e0832).

Each atomic instruction of ``data/instructions/*/*.json`` whose edit type maps onto an IIIE
category becomes one row. Images are split by a hash of their group (so both halves never
share an image), the untouched half is capped at 80 rows per class, and the dev half drops
any text the untouched half has. The hashes make the split reproducible without a seed.
"""

from __future__ import annotations

import collections
import hashlib
import json
import subprocess
import sys

#: ComplexBench-Edit edit types -> IIIE categories (mapped like PIE-Bench's); "chain two" skipped.
CATEGORY = {
    "color": "local", "content": "local", "material": "local", "pose": "local", "text": "local",
    "change object": "local", "add object": "addition", "delete object": "remove",
    "change background": "background", "change style": "global",
}  # fmt: skip


def _git(repo: str, *args: str) -> str:
    return subprocess.check_output(["git", "-C", repo, *args]).decode()


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def read_rows(repo: str) -> list[dict]:
    names = [f for f in _git(repo, "ls-tree", "-r", "HEAD", "--name-only").split()
             if f.startswith("data/instructions/") and f.endswith(".json")]
    rows = []
    for name in names:
        subset = name.split("/")[2]
        for key, entry in json.loads(_git(repo, "show", f"HEAD:{name}")).items():
            lines = [ln.strip() for ln in entry["new_ins"].replace("\r", "").split("\n") if ln.strip()]
            if len(lines) != len(entry["edit pair"]):
                continue  # instruction lines and edit pairs disagree: the row's type is unknown
            for i, (text, pair) in enumerate(zip(lines, entry["edit pair"], strict=True)):
                if (category := CATEGORY.get(pair["edit_type"])) is not None:
                    rows.append({"id": f"cbe_{subset}_{key}_{i}", "instruction": " ".join(text.split()),
                                 "category": category, "source": f"ComplexBench-Edit {subset} ({pair['edit_type']})",
                                 "group": f"{subset}/{key}"})
    return rows


def cap(rows: list[dict], per_class: int) -> list[dict]:
    """At most ``per_class`` rows per category, distinct texts, chosen by hash."""
    out, seen, count = [], set(), collections.Counter()
    for row in sorted(rows, key=lambda r: _h("pick:" + r["id"])):
        text = row["instruction"].lower()
        if text not in seen and count[row["category"]] < per_class:
            seen.add(text)
            count[row["category"]] += 1
            out.append(row)
    return out


def main(repo: str, out_dir: str) -> None:
    rows = read_rows(repo)
    untouched = cap([r for r in rows if _h("split:" + r["group"]) % 2 == 0], 80)
    texts = {r["instruction"].lower() for r in untouched}
    dev = cap([r for r in rows if _h("split:" + r["group"]) % 2 and r["instruction"].lower() not in texts], 150)
    for name, split in [("untouched_benchmarks.jsonl", untouched), ("dev_benchmarks.jsonl", dev)]:
        with open(f"{out_dir}/{name}", "w", encoding="utf-8") as fh:
            for row in sorted(split, key=lambda r: r["id"]):
                fh.write(json.dumps({k: v for k, v in row.items() if k != "group"}) + "\n")
        print(name, len(split), dict(collections.Counter(r["category"] for r in split)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
