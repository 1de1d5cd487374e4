"""What a composed config needs under the weights root: ``check`` and the run's preflight.

A config needs every string it names under ``paths.weights`` (walking the whole composed
config, so a new component is covered without registering it). The top-level ``vlm`` node
counts only where a component refers to it (``planner.vlm``, ``metrics.*.vlm``); its
``serve.model_path`` is read by the VLM server process (``make serve-vlm``, maybe on
another host), so the preflight of a run skips it unless the VLM runs in-process
(``planner=vlm_offline`` or an in-process ``vlm.engine``). ``check`` lists it either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from iiie.weights import MissingWeightsError
from iiie.weights.lock import read_lock
from iiie.weights.manifest import CONF_DIR, Entry, entry_for, load_manifest, size_text

_SKIP_TOP = ("paths", "hydra", "vlm")
#: Why a folder counts in ``check`` but not in the run's preflight.
SERVER_READS = "read by the VLM server (make serve-vlm)"
SERVER_NOTE = f"{SERVER_READS}, not by the run"
_SERVER_ENGINES = ("server", "openai", "None", "")


@dataclass
class Need:
    relpath: str  # relative to the weights root
    path: Path
    keys: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    served: bool = True  # only the VLM server reads it (every key is under a `serve` node)
    entry: Entry | None = None
    locked: dict[str, Any] | None = None  # its weights.lock record, when there is one

    @property
    def present(self) -> bool:
        """On disk: every locked file with its size (cheap; ``verify`` re-hashes), or, with
        no lock record (folders put there by hand), a non-empty folder or the file."""
        if self.locked:
            base = self.path.parent if self.locked.get("is_file") else self.path
            return all((base / rel).is_file() and (base / rel).stat().st_size == int(m["size"])
                       for rel, m in self.locked["files"].items())
        return self.path.is_file() or (self.path.is_dir() and any(self.path.iterdir()))


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, resolved value) of every leaf; unresolvable or ??? leaves are skipped."""
    if isinstance(node, DictConfig):
        items = [(str(k), k) for k in node.keys()]
    elif isinstance(node, ListConfig):
        items = [(f"[{i}]", i) for i in range(len(node))]
    else:
        yield prefix, node
        return
    for label, k in items:
        key = label if not prefix else (f"{prefix}{label}" if label.startswith("[") else f"{prefix}.{label}")
        try:
            if OmegaConf.is_missing(node, k):
                continue
            value = node[k]
        except Exception:  # an interpolation that cannot resolve here (e.g. ${hydra:...})
            continue
        yield from _leaves(value, key)


def vlm_in_process(cfg: DictConfig) -> bool:
    target = str(OmegaConf.select(cfg, "planner._target_", default="") or "")
    engine = str(OmegaConf.select(cfg, "vlm.engine", default="server", throw_on_missing=False))
    return target.endswith("VLMOfflinePlanner") or engine not in _SERVER_ENGINES


def weight_needs(cfg: DictConfig, entries: dict[str, Entry] | None = None) -> dict[str, Need]:
    """Every path under ``paths.weights`` that ``cfg`` names, by path relative to the root."""
    entries = load_manifest() if entries is None else entries
    root = os.path.abspath(str(cfg.paths.weights))
    others = [os.path.abspath(str(v)) for k, v in cfg.paths.items() if k != "weights" and isinstance(v, str)]
    others = [o for o in others if o.startswith(root + os.sep)]  # e.g. IIIE_WEIGHTS=. holds runs/
    in_process = vlm_in_process(cfg)
    try:
        locks = read_lock(root)["entries"]
    except ValueError:  # a lock of another version: presence by folder only
        locks = {}
    needs: dict[str, Need] = {}
    for top in cfg.keys():
        if str(top) in _SKIP_TOP:
            continue
        try:
            sub = cfg[top]
        except Exception:
            continue
        for key, value in _leaves(sub, str(top)):
            if not isinstance(value, str) or not value:
                continue
            full = os.path.abspath(os.path.expanduser(value))
            if not full.startswith(root + os.sep) or any(full == o or full.startswith(o + os.sep) for o in others):
                continue
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            entry = entry_for(rel, entries)
            rel = entry.name if entry is not None else rel
            need = needs.setdefault(rel, Need(rel, Path(root) / rel, entry=entry, locked=locks.get(rel)))
            need.keys.append(key)
            need.served = need.served and ".serve." in f".{key}." and not in_process
    return needs


def preflight(cfg: DictConfig) -> None:
    """Raise one :class:`MissingWeightsError` listing every folder this run reads that is
    not on disk (run after ``prepare:``, which may write tiny weights)."""
    needs = list(weight_needs(cfg).values())
    missing = [n for n in needs if not n.served and not n.present]
    if missing:
        raise MissingWeightsError(missing_message(missing, fetch_args=[n.relpath for n in missing],
                                                  served=[n for n in needs if n.served]))


def missing_message(missing: list[Need], fetch_args: list[str], served: list[Need] = ()) -> str:
    """The preflight's error. ``served``: the VLM server's folders, which the run does not
    read and so does not check; named at the end, so that the count here adding up to
    fewer than ``python -m iiie.weights check`` lists is explained where it is seen."""
    total = sum(n.entry.size_gb for n in missing if n.entry)
    lines = [f"{len(missing)} weights folder(s) missing (about {size_text(total)}):"]
    for n in sorted(missing, key=lambda n: n.relpath):
        size = size_text(n.entry.size_gb) if n.entry else "?"
        src = n.entry.source() if n.entry else "not in conf/weights.yaml"
        lines.append(f"  {n.path}  [{size}]  from `{n.keys[0]}`  <- {src}")
    lines.append("get them with:  python -m iiie.weights fetch " + " ".join(fetch_args))
    lines.append("(or point paths.weights / IIIE_WEIGHTS at a folder that has them)")
    if served:
        names = ", ".join(sorted(n.relpath for n in served))
        lines.append(f"not checked here: {names}: {SERVER_NOTE} (`python -m iiie.weights check` lists them with the rest)")
    return "\n".join(lines)


# --- composing configs (check, fetch experiment=...) --------------------------------------

def _sweep_jobs(overrides: list[str], params: dict[str, Any] | None) -> list[list[str]]:
    """Every job's overrides of a multirun: sweeper params, then the command line's."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [f"{k}={v}" for k, v in (params or {}).items()] + list(overrides)
    parsed = OverridesParser.create().parse_overrides(args)
    batches = BasicSweeper.split_arguments(parsed, None)
    return [list(job) for batch in batches for job in batch]


@dataclass
class _Failed:
    """A job whose config did not compose, and its config without the ``method=`` override."""

    error: Exception
    rest: DictConfig | None


def compose_jobs(overrides: list[str]) -> tuple[str, list[tuple[list[str], DictConfig | _Failed]]]:
    """Compose ``config`` with ``overrides``; a multirun (``hydra.mode: MULTIRUN`` or sweep
    syntax) gives one config per job. A job that does not compose gives its exception.
    Returns the weights root too (absolute)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    def run() -> tuple[str, list[tuple[list[str], DictConfig | _Failed]]]:
        head = compose("config", overrides=[o for o in overrides if "," not in o], return_hydra_config=True)
        multi = head.hydra.mode == RunMode.MULTIRUN or any("," in o for o in overrides)
        jobs = _sweep_jobs(overrides, OmegaConf.to_container(head.hydra.sweeper.get("params") or {})) if multi else [list(overrides)]
        out: list[tuple[list[str], DictConfig | _Failed]] = []
        for job in jobs:
            try:
                out.append((job, compose("config", overrides=job)))
            except Exception as exc:  # a method whose configs are not there yet
                try:  # the rest of the job (metrics, judge) without the method
                    rest = compose("config", overrides=[o for o in job if not o.startswith("method=")])
                except Exception:
                    rest = None
                out.append((job, _Failed(exc, rest)))
        return os.path.abspath(str(head.paths.weights)), out

    if GlobalHydra.instance().is_initialized():
        return run()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return run()


def _label(job: list[str], base: list[str]) -> str:
    own = [o for o in job if o not in base]
    return ",".join(own) or "run"


def needs_of(overrides: list[str], entries: dict[str, Entry] | None = None) -> tuple[str, dict[str, Need], list[str]]:
    """Needs of every job of the composed ``overrides``, and notes on jobs that did not compose
    (their method's folders then come from the manifest's ``needed_by.methods``)."""
    entries = load_manifest() if entries is None else entries
    merged: dict[str, Need] = {}
    notes: list[str] = []
    root, jobs = compose_jobs(overrides)
    for job, cfg in jobs:
        label = _label(job, overrides)
        if isinstance(cfg, _Failed):
            method = next((o.split("=", 1)[1] for o in job if o.startswith("method=")), None)
            err = str(cfg.error).strip()
            first = err.splitlines()[0] if err else type(cfg.error).__name__
            notes.append(f"{label}: config does not compose ({first}); its method's folders are "
                         "listed from the manifest's needed_by")
            if cfg.rest is not None:
                _merge(merged, weight_needs(cfg.rest, entries), label)
            if method:
                for e in entries.values():
                    if method in e.needed_by.get("methods", []):
                        n = merged.setdefault(e.name, Need(e.name, Path(root) / e.name, entry=e))
                        n.keys.append(f"(manifest: method {method})")
                        if label not in n.jobs:
                            n.jobs.append(label)
                        n.served = n.served and e.name in _vlm_folders(entries)
            continue
        _merge(merged, weight_needs(cfg, entries), label)
    return root, merged, notes


def _merge(merged: dict[str, Need], needs: dict[str, Need], label: str) -> None:
    for rel, need in needs.items():
        n = merged.setdefault(rel, Need(rel, need.path, entry=need.entry, served=need.served, locked=need.locked))
        n.keys += [k for k in need.keys if k not in n.keys]
        if label not in n.jobs:
            n.jobs.append(label)
        n.served = n.served and need.served


def _vlm_folders(entries: dict[str, Entry]) -> set[str]:
    return {e.name for e in entries.values() if any(c.startswith("vlm=") for c in e.needed_by.get("components", []))}


def check(overrides: list[str], say=print) -> int:
    """Print what the composed config needs and what is missing; 0 if nothing is missing."""
    root, needs, notes = needs_of(overrides)
    what = " ".join(overrides) or "the default config"
    if not needs:
        for n in notes:
            say(f"note: {n}")
        say(f"{what}: needs no weights")
        return 0
    served = sum(1 for n in needs.values() if n.served)
    split = (f": {len(needs) - served} read by the run (what its preflight checks), "
             f"{served} {SERVER_READS}") if served else ""
    say(f"{what}: {len(needs)} weights folder(s) under {root}/{split}")
    missing = []
    n_jobs = len({j for n in needs.values() for j in n.jobs})
    for rel in sorted(needs):
        n = needs[rel]
        state = "ok     " if n.present else "MISSING"
        size = size_text(n.entry.size_gb) if n.entry else "?"
        if n_jobs > 1 and len(n.jobs) == n_jobs:
            who = f"all {n_jobs} jobs"
        else:
            who = ",".join(n.jobs) if n.jobs and n.jobs != ["run"] else n.keys[0]
        extra = f"  ({SERVER_NOTE})" if n.served else ""
        say(f"  {state} {size:>9s}  {rel:45s} {who}{extra}")
        if not n.present:
            missing.append(n)
    for n in notes:
        say(f"note: {n}")
    manual = [n for n in missing if n.entry is not None and n.entry.kind == "manual"]
    unknown = [n for n in missing if n.entry is None]
    if not missing:
        say("all present")
        return 0
    total = sum(n.entry.size_gb for n in missing if n.entry)
    by_server = sum(1 for n in missing if n.served)
    of_server = f" ({by_server} of them the VLM server's)" if by_server else ""
    say(f"{len(missing)} of {len(needs)} missing{of_server}, about {size_text(total)}; get them with:")
    say(f"  python -m iiie.weights fetch {' '.join(overrides) or ' '.join(n.relpath for n in missing)}")
    for n in manual:
        say(f"  {n.relpath}: {' '.join(str(n.entry.manual).split())}")
    for n in unknown:
        say(f"  {n.relpath}: not in conf/weights.yaml (from `{n.keys[0]}`): add an entry or put the folder there")
    return 1


def sweep_preflight(config: DictConfig) -> list[Need]:
    """Missing folders of every job of the multirun whose primary ``config`` (with its
    ``hydra`` node) is given: the sweep stops before its first job with one list for all
    jobs, not at the first job that lacks one. Jobs with ``prepare:`` steps (tiny weights
    written at run time) and jobs that do not compose are left to their own preflight."""
    return sweep_needs(config)[0]


def sweep_needs(config: DictConfig) -> tuple[list[Need], list[Need]]:
    """:func:`sweep_preflight`'s missing folders, and the VLM server's folders of those jobs
    (not checked: the error names them, see :func:`missing_message`)."""
    overrides = list(config.hydra.overrides.task)
    try:
        _, jobs = compose_jobs(overrides)
    except Exception:  # a sweep syntax this expansion does not know: each job checks itself
        return [], []
    missing: dict[str, Need] = {}
    served: dict[str, Need] = {}
    by_run: set[str] = set()  # read in-process by some job: checked there
    for job, cfg in jobs:
        if isinstance(cfg, _Failed) or cfg.get("prepare"):
            continue
        label = _label(job, overrides)
        for rel, n in weight_needs(cfg).items():
            if n.served:
                served.setdefault(rel, n)
                continue
            by_run.add(rel)
            if not n.present:
                m = missing.setdefault(rel, n)
                if label not in m.jobs:
                    m.jobs.append(label)
    return list(missing.values()), [n for rel, n in served.items() if rel not in by_run]
