"""The run driver: plan -> mask -> edit -> score over a dataset, with cache and resume.

Each stage

* computes its content key (config slice + upstream key) and folder,
* finds the samples still pending there (upstream done, this stage neither done nor failed),
* builds its backend only if something is pending (a fully cached re-run loads no model),
* calls the backend's batch method in chunks, writing one record per sample atomically,
* records a per-sample failure as ``<id>.error.json`` and goes on.

Errors that make the whole run pointless (server down, weights missing) propagate.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from iiie import weights
from iiie.batching import chunks
from iiie.data.base import Dataset, Sample
from iiie.errors import ConfigurationError, IIIEError
from iiie.protocols import Scored
from iiie.pipeline import records as R
from iiie.pipeline.cache import StageDir, plain, redact, stable_hash, without_keys
from iiie.seeding import sample_seed
from iiie.types import Category
from iiie.vlm.settings import NON_SEMANTIC_KEYS

#: Exceptions that stop the run instead of being recorded against one sample.
FATAL = (ConfigurationError, weights.MissingWeightsError, KeyboardInterrupt, MemoryError, SystemExit)
STAGES = ("plan", "mask", "edit", "score")
#: Samples kept in memory by a runner (least recently used are dropped).
SAMPLE_CACHE = 256


@dataclass
class StageCounters:
    pending: int = 0
    computed: int = 0
    cached: int = 0
    errors: int = 0
    skipped_upstream: int = 0
    failed_before: int = 0  # failures recorded by an earlier run (not retried)
    model_calls: int = 0
    retried: int = 0
    seconds: float = 0.0
    backend: dict[str, Any] = field(default_factory=dict)


def guarded_batch(fn: Callable[[list], list], items: list, on_ok: Callable, on_error: Callable) -> tuple[int, int]:
    """Run ``fn`` on a batch; if it raises, retry item by item so that one bad sample
    fails alone. ``on_ok(item, output, seconds)`` gets the batch time divided by its size.

    Returns ``(sent, retried)``: the items given to the backend, and the extra one-item
    calls made to isolate a failure (counted apart, so "calls per sample" stays exact)."""
    t0 = time.perf_counter()
    try:
        outs = fn(items)
    except FATAL:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded per sample below
        if len(items) == 1:
            on_error(items[0], exc)
            return 1, 0
        retried = 0
        for it in items:
            _, again = guarded_batch(fn, [it], on_ok, on_error)
            retried += 1 + again
        return len(items), retried
    if len(outs) != len(items):
        raise RuntimeError(f"backend returned {len(outs)} results for {len(items)} inputs")
    seconds = (time.perf_counter() - t0) / max(len(items), 1)
    for it, out in zip(items, outs, strict=True):
        on_ok(it, out, seconds)
    return len(items), 0


def build(name: str, node: Any) -> Any:
    """Instantiate one config node; a backend's own configuration error (missing weights,
    server down) comes out unwrapped and names ``name``, the config key being built."""
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, (IIIEError, weights.MissingWeightsError)):
            # An editor cannot know which route it is mounted on: fill that in.
            raise type(cause)(f"[{name}] " + str(cause).replace("editor.<route>", name)) from exc
        raise


def check_routes(cfg: DictConfig) -> None:
    """Every category route must be an editor node; catch ``editor.remove=powerpaint``
    (a string) before any stage runs, with the form that was meant."""
    for cat in Category:
        node = cfg.editor.get(cat.value)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise IIIEError(
                f"editor.{cat.value} is {node!r}, "
                f"not an editor config: choose one with `editor@editor.{cat.value}=<name>` "
                "(names: the files in conf/editor/)"
            )


#: Keys that decide where a component runs, not what it computes: left out of cache keys,
#: so data-parallel processes on different GPUs share one folder.
PLACEMENT_KEYS = frozenset({"device"})


class Runner:
    """Runs the four stages for one composed config (one experiment or one sweep variant)."""

    def __init__(self, cfg: DictConfig, dataset: Dataset | None = None, show_progress: bool = True) -> None:
        self.cfg = cfg
        self.root = Path(cfg.paths.runs) / str(cfg.experiment_name)
        self.dataset: Dataset = dataset if dataset is not None else instantiate(cfg.data)
        self.show_progress = show_progress
        self.counters = {s: StageCounters() for s in STAGES}
        self._built: dict[str, Any] = {}
        self._samples: OrderedDict[str, Sample] = OrderedDict()
        check_routes(cfg)
        self.ids = self._shard(self.dataset.ids())
        self.retry_errors = bool(cfg.runtime.get("retry_errors", False))
        self.keys = self._keys()

    # ------------------------------------------------------------------ setup

    def _shard(self, ids: list[str]) -> list[str]:
        n = int(self.cfg.runtime.get("num_shards", 1) or 1)
        k = int(self.cfg.runtime.get("shard_index", 0) or 0)
        if not 0 <= k < n:
            raise ValueError(f"runtime.shard_index={k} must be in [0, num_shards={n})")
        return ids[k::n]

    def _keys(self) -> dict[str, Any]:
        cfg = self.cfg
        data = stable_hash(self.dataset.fingerprint())
        # Server address, concurrency, timeouts... change how plans are made, not what they
        # are: moving the VLM server must not invalidate cached plans.
        plan = stable_hash({"planner": without_keys(cfg.planner, NON_SEMANTIC_KEYS), "data": data})
        mask = stable_hash({"masker": without_keys(cfg.masker, PLACEMENT_KEYS), "plan": plan})
        edit = {
            c.value: stable_hash(
                {
                    "editor": without_keys(cfg.editor[c.value], PLACEMENT_KEYS),
                    "seed": int(cfg.seed),
                    "dtype": str(cfg.runtime.dtype),
                    "mask": mask,
                }
            )
            for c in Category
        }
        metrics = without_keys(cfg.metrics, PLACEMENT_KEYS)
        score = {c: stable_hash({"metrics": metrics, "edit": k}) for c, k in edit.items()}
        return {"data": data, "plan": plan, "mask": mask, "edit": edit, "score": score}

    def stage_dir(self, stage: str, category: Category | None = None) -> StageDir:
        key = self.keys[stage]
        if isinstance(key, dict):
            if category is None:
                raise ValueError(f"stage {stage!r} is keyed per category route")
            key = key[category.value]
        return StageDir(self.root, stage, key)

    def _todo(self, d: StageDir, sample_id: str) -> bool:
        """Pending here: no record, and no recorded failure (unless ``runtime.retry_errors``)."""
        if d.is_done(sample_id):
            return False
        return self.retry_errors or not d.is_failed(sample_id)

    def sample(self, sample_id: str) -> Sample:
        """Load one sample (raises for unreadable inputs), keeping the most recent
        ``SAMPLE_CACHE`` in memory: a stage touches each sample a few times in a row, and a
        benchmark of thousands of images must not stay resident."""
        if sample_id in self._samples:
            self._samples.move_to_end(sample_id)
            return self._samples[sample_id]
        sample = self.dataset.load(sample_id)
        self._samples[sample_id] = sample
        if len(self._samples) > SAMPLE_CACHE:
            self._samples.popitem(last=False)
        return sample

    def component(self, name: str, node: Any) -> Any:
        """Instantiate a config node once per run (routes with equal configs share one)."""
        key = stable_hash(plain(node))
        if key not in self._built:
            self._built[key] = build(name, node)
        return self._built[key]

    def _bar(self, total: int, desc: str):
        return tqdm(total=total, desc=desc, disable=not self.show_progress or total == 0, leave=False)

    # ------------------------------------------------------------------ stages

    def run(self) -> dict[str, Any]:
        started = time.time()
        if self._scoring_pending():
            # Build the metrics first: a missing backbone folder or a judge server that is
            # down must stop the run before hours of planning, masking and editing.
            self.metrics()
        for stage in STAGES:
            t0 = time.perf_counter()
            getattr(self, f"run_{stage}")()
            self.counters[stage].seconds = round(time.perf_counter() - t0, 3)
        return self.manifest(started)

    def _scoring_pending(self) -> bool:
        """Will this run score anything (some sample neither scored nor failed)?"""
        plan_dir, mask_dir = self.stage_dir("plan"), self.stage_dir("mask")
        for i in self.ids:
            if plan_dir.is_failed(i) and not self.retry_errors:
                continue
            if not plan_dir.is_done(i):
                return True
            if mask_dir.is_failed(i) and not self.retry_errors:
                continue
            cat = self.plan_of(i).category
            edit_dir = self.stage_dir("edit", cat)
            if edit_dir.is_failed(i) and not self.retry_errors:
                continue
            if self._todo(self.stage_dir("score", cat), i):
                return True
        return False

    def plan_of(self, sample_id: str):
        return R.load_plan(self.stage_dir("plan"), sample_id)

    def run_plan(self) -> None:
        d = self.stage_dir("plan")
        d.write_meta({"planner": redact(self.cfg.planner), "data": self.dataset.fingerprint()})
        d.clean_tmp()
        c = self.counters["plan"]
        pending = [i for i in self.ids if self._todo(d, i)]
        c.cached = sum(d.is_done(i) for i in self.ids)
        c.failed_before = len(self.ids) - len(pending) - c.cached
        c.pending = len(pending)
        if not pending:
            return
        planner = self.component("planner", self.cfg.planner)
        bar = self._bar(len(pending), "plan")
        for chunk in chunks(pending, self.cfg.runtime.plan_batch_size):
            loaded = []
            for sid in chunk:
                try:
                    loaded.append(self.sample(sid))
                except FATAL:
                    raise
                except Exception as exc:  # noqa: BLE001
                    R.save_error(d, sid, exc)
                    c.errors += 1
                    bar.update(1)

            def ok(sample, plan, seconds):
                info = {"planner": getattr(planner, "name", "?"), "instruction": sample.request.instruction, "seconds": round(seconds, 4)}
                R.save_plan(d, sample.request.id, plan, info)
                c.computed += 1
                bar.update(1)

            def err(sample, exc):
                R.save_error(d, sample.request.id, exc, {"instruction": sample.request.instruction})
                c.errors += 1
                bar.update(1)

            if loaded:
                _add_calls(c, guarded_batch(lambda items: planner.plan_batch([s.request for s in items]), loaded, ok, err))
        bar.close()
        c.backend = _stats(planner)

    def run_mask(self) -> None:
        d, up = self.stage_dir("mask"), self.stage_dir("plan")
        d.write_meta({"masker": plain(self.cfg.masker), "plan": self.keys["plan"]})
        d.clean_tmp()
        c = self.counters["mask"]
        ready = [i for i in self.ids if up.is_done(i)]
        c.skipped_upstream = len(self.ids) - len(ready)
        pending = [i for i in ready if self._todo(d, i)]
        c.cached = sum(d.is_done(i) for i in ready)
        c.failed_before = len(ready) - len(pending) - c.cached
        c.pending = len(pending)
        if not pending:
            return
        masker = self.component("masker", self.cfg.masker)
        bar = self._bar(len(pending), "mask")
        for chunk in chunks(pending, self.cfg.runtime.mask_batch_size):
            items = [(self.sample(i), self.plan_of(i)) for i in chunk]

            def ok(item, result, seconds):
                info = {"masker": getattr(masker, "name", "?"), "category": item[1].category.value, "seconds": round(seconds, 4)}
                R.save_mask(d, item[0].request.id, result, info)
                c.computed += 1
                bar.update(1)

            def err(item, exc):
                R.save_error(d, item[0].request.id, exc, {"category": item[1].category.value, "object": item[1].object})
                c.errors += 1
                bar.update(1)

            _add_calls(c, guarded_batch(
                lambda its: masker.mask_batch([s.request for s, _ in its], [p for _, p in its]), items, ok, err
            ))
        bar.close()
        c.backend = _stats(masker)

    def run_edit(self) -> None:
        up = self.stage_dir("mask")
        c = self.counters["edit"]
        ready = [i for i in self.ids if up.is_done(i)]
        c.skipped_upstream = len(self.ids) - len(ready)
        by_route: dict[Category, list[str]] = {}
        for i in ready:
            by_route.setdefault(self.plan_of(i).category, []).append(i)
        todo: dict[Category, list[str]] = {}
        for cat, ids in by_route.items():
            d = self.stage_dir("edit", cat)
            d.write_meta({"editor": plain(self.cfg.editor[cat.value]), "mask": self.keys["mask"], "seed": int(self.cfg.seed)})
            d.clean_tmp()
            pend = [i for i in ids if self._todo(d, i)]
            done = sum(d.is_done(i) for i in ids)
            c.cached += done
            c.failed_before += len(ids) - len(pend) - done
            if pend:
                todo[cat] = pend
        c.pending = sum(len(v) for v in todo.values())
        if not todo:
            return
        bar = self._bar(c.pending, "edit")
        for cat in Category:
            if cat not in todo:
                continue
            d = self.stage_dir("edit", cat)
            editor = self.component(f"editor.{cat.value}", self.cfg.editor[cat.value])
            for chunk in chunks(todo[cat], self.cfg.runtime.edit_batch_size):
                items = [(self.sample(i), self.plan_of(i), R.load_mask(up, i)) for i in chunk]

                def ok(item, result, seconds, _d=d):
                    R.save_edit(_d, item[0].request.id, result, {"route": item[1].category.value, "seconds": round(seconds, 4)})
                    c.computed += 1
                    bar.update(1)

                def err(item, exc, _d=d):
                    R.save_error(_d, item[0].request.id, exc, {"route": item[1].category.value})
                    c.errors += 1
                    bar.update(1)

                def call(its, _editor=editor):
                    seeds = [sample_seed(int(self.cfg.seed), s.request.id) for s, _, _ in its]
                    return _editor.edit_batch([s.request for s, _, _ in its], [p for _, p, _ in its], [m for _, _, m in its], seeds)

                _add_calls(c, guarded_batch(call, items, ok, err))
            c.backend[cat.value] = _stats(editor)
        bar.close()

    def run_score(self) -> None:
        c = self.counters["score"]
        mask_dir = self.stage_dir("mask")
        pending: dict[Category, list[str]] = {}
        for i in self.ids:
            if not mask_dir.is_done(i):
                continue
            cat = self.plan_of(i).category
            ed = self.stage_dir("edit", cat)
            if not ed.is_done(i):
                continue
            d = self.stage_dir("score", cat)
            if d.is_done(i):
                c.cached += 1
            elif not self._todo(d, i):
                c.failed_before += 1
            else:
                pending.setdefault(cat, []).append(i)
        c.pending = sum(len(v) for v in pending.values())
        if not pending:
            return
        metrics = self.metrics()
        bar = self._bar(c.pending, "score")
        for cat, ids in pending.items():
            d, ed = self.stage_dir("score", cat), self.stage_dir("edit", cat)
            d.write_meta({"metrics": plain(self.cfg.metrics), "edit": self.keys["edit"][cat.value]})
            d.clean_tmp()
            for chunk in chunks(ids, self.cfg.runtime.score_batch_size):
                items = [Scored(self.sample(i), self.plan_of(i), R.load_mask(mask_dir, i), R.load_edit(ed, i)) for i in chunk]

                def ok(item: Scored, row: dict, seconds: float, _d=d):
                    sid = item.sample.request.id
                    truth = item.sample.truth.category
                    record = {
                        "id": sid,
                        "category": (truth or item.plan.category).value,
                        "plan_category": item.plan.category.value,
                        "scores": row,
                        "seconds": round(seconds, 4),
                    }
                    # Metrics that keep per-sample evidence (judge replies and votes) expose
                    # it as ``details[sample_id]``; it is stored with the scores.
                    details = {
                        getattr(m, "name", type(m).__name__): m.details.pop(sid)
                        for m in metrics
                        if isinstance(getattr(m, "details", None), dict) and sid in m.details
                    }
                    if details:
                        record["details"] = details
                    R.atomic_write_json(_d.record(sid), record)
                    _d.clear_error(sid)
                    c.computed += 1
                    bar.update(1)

                def err(item: Scored, exc, _d=d):
                    R.save_error(_d, item.sample.request.id, exc)
                    c.errors += 1
                    bar.update(1)

                def call(its):
                    rows = [dict() for _ in its]
                    for metric in metrics:
                        for row, extra in zip(rows, metric.score_batch(its), strict=True):
                            row.update(extra)
                    return rows

                _add_calls(c, guarded_batch(call, items, ok, err))
        bar.close()

    def metrics(self) -> list[Any]:
        """``metrics`` is either one component (has ``_target_``) or a dict of them."""
        node = self.cfg.metrics
        if "_target_" in node:
            return [self.component("metrics", node)]
        return [self.component(f"metrics.{k}", v) for k, v in node.items() if v is not None and "_target_" in v]

    # ------------------------------------------------------------------ results

    def sample_status(self, sample_id: str) -> dict[str, Any]:
        """Where one sample ended: its score row, or the stage and error that stopped it.

        A sample that failed after planning keeps its ground-truth category and the
        plan-level columns (metrics marked ``stage = "plan"``), so a masker that misses
        objects does not hide step-1/2 accuracy.
        """
        row: dict[str, Any] = {"id": sample_id}
        try:  # the ground-truth category, when the input is readable
            truth = self.sample(sample_id).truth.category
            if truth is not None:
                row["category"] = truth.value
        except Exception:  # noqa: BLE001 - the input itself is what failed
            pass
        plan_dir = self.stage_dir("plan")
        err = R.load_error(plan_dir, sample_id)
        if err or not plan_dir.is_done(sample_id):
            return {**row, "failed_stage": "plan", **_failure(err)}
        plan = self.plan_of(sample_id)
        row["plan_category"] = plan.category.value
        stages = (
            ("mask", self.stage_dir("mask")),
            ("edit", self.stage_dir("edit", plan.category)),
            ("score", self.stage_dir("score", plan.category)),
        )
        for stage, d in stages:
            err = R.load_error(d, sample_id)
            if err or not d.is_done(sample_id):
                return {**row, **self._plan_columns(sample_id, plan), "failed_stage": stage, **_failure(err)}
        rec = R.read_json(self.stage_dir("score", plan.category).record(sample_id))
        return {**row, "category": rec["category"], **rec["scores"]}

    def _plan_columns(self, sample_id: str, plan) -> dict[str, float]:
        """Plan-only metric columns for a sample that stopped after planning."""
        out: dict[str, float] = {}
        plan_metrics = [m for m in self.metrics() if getattr(m, "stage", None) == "plan"]
        if plan_metrics:
            item = Scored(self.sample(sample_id), plan, None, None)
            for m in plan_metrics:
                out.update(m.score_batch([item])[0])
        return out

    def manifest(self, started: float) -> dict[str, Any]:
        return {
            "experiment": str(self.cfg.experiment_name),
            "samples": len(self.ids),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "seconds": round(time.time() - started, 3),
            "keys": self.keys,
            "stages": {s: asdict(c) for s, c in self.counters.items()},
            "model_loads": dict(weights.LOAD_COUNTS),
            "config": redact(OmegaConf.to_container(self.cfg, resolve=True)),
        }


def _failure(err: dict[str, Any] | None) -> dict[str, str]:
    if err:
        return {"error": err["message"], "error_type": err["type"]}
    return {"error": "not run", "error_type": "Pending"}


def _add_calls(c: StageCounters, sent_retried: tuple[int, int]) -> None:
    c.model_calls += sent_retried[0]
    c.retried += sent_retried[1]


def _stats(component: Any) -> dict[str, Any]:
    fn = getattr(component, "stats", None)
    return dict(fn()) if callable(fn) else {}
