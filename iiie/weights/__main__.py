"""``python -m iiie.weights fetch|verify|check``: get, verify and check the model folders.

  fetch [experiment=NAME | method=NAME | all | ENTRY...] [overrides] [--dry-run]
        download what that selection needs (conf/weights.yaml) into the weights root and
        write weights/weights.lock (resolved revision + sha256 per file)
  verify [ENTRY...]      offline: re-hash against the lock (missing / corrupt / extra)
  check [overrides]      what the composed config needs, what is missing, the fetch command

The weights root is ``paths.weights`` (``weights/``, ``IIIE_WEIGHTS`` or a
``paths.weights=`` override). Exit status: 0 ok, 1 something missing or corrupt, 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import os
import sys

from iiie.weights.manifest import Entry, load_manifest


def _root(overrides: list[str]) -> str:
    for o in overrides:
        if o.startswith("paths.weights="):
            return o.split("=", 1)[1]
    return os.environ.get("IIIE_WEIGHTS", "weights")


def select(args: list[str], entries: dict[str, Entry]) -> tuple[list[Entry], list[str]]:
    """Entries for ``fetch``'s arguments: ``all``, entry names, or Hydra overrides (composed
    like ``check``: ``experiment=paper``, ``method=iiie``, ``masker=grounded_sam`` ...)."""
    if args == ["all"]:
        return list(entries.values()), []
    names = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise SystemExit(f"error: not in conf/weights.yaml: {', '.join(unknown)} (names: {', '.join(entries)})")
    chosen = {n: entries[n] for n in names}
    notes: list[str] = []
    if overrides or not names:
        from iiie.weights.needs import needs_of

        _, needs, notes = needs_of(overrides, entries)
        for rel, n in needs.items():
            if n.entry is None:
                notes.append(f"{rel} (from `{n.keys[0]}`) is not in conf/weights.yaml: cannot fetch it")
            else:
                chosen.setdefault(n.entry.name, n.entry)
    return list(chosen.values()), notes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iiie.weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download into the weights root, write weights.lock")
    f.add_argument("what", nargs="*", help="experiment=NAME | method=NAME | all | ENTRY ... | overrides")
    f.add_argument("--dry-run", action="store_true", help="print sources and sizes, download nothing")
    v = sub.add_parser("verify", help="offline re-hash against weights.lock")
    v.add_argument("names", nargs="*")
    v.add_argument("--root", default=None, help="weights root (default: IIIE_WEIGHTS or weights/)")
    c = sub.add_parser("check", help="what a composed config needs and what is missing")
    c.add_argument("overrides", nargs="*")
    a = p.parse_args(argv)

    if a.cmd == "check":
        from iiie.weights.needs import check

        return check(a.overrides)
    if a.cmd == "verify":
        from iiie.weights.lock import LOCK_NAME, verify

        root = a.root or _root([])
        if not os.path.exists(os.path.join(root, LOCK_NAME)):
            print(f"error: no {os.path.join(root, LOCK_NAME)}: run `python -m iiie.weights fetch ...` first", file=sys.stderr)
            return 1
        rep = verify(root, a.names or None)
        print("\n".join(rep.lines()))
        return 0 if rep.clean else 1
    from iiie.weights.fetch import fetch

    entries = load_manifest()
    chosen, notes = select(a.what, entries)
    for n in notes:
        print(f"note: {n}")
    if not chosen:
        print("nothing to fetch: this selection needs no weights")
        return 0
    failed = fetch(chosen, _root(a.what), dry_run=a.dry_run)
    if failed:
        print(f"not fetched ({len(failed)}): {', '.join(failed)}: see the notes above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
