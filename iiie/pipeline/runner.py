"""The run driver: one loop over the stages (:mod:`iiie.pipeline.stages`), with cache and
resume.

For each stage the loop

* computes its content key (config slice + code fingerprint + upstream key) and folder,
* finds the samples still pending there (upstream done, this stage neither done nor
  finally failed; a record whose upstream record changed since is stale, hence pending),
* builds the backend only if something is pending (a fully cached re-run loads no model),
* calls the backend's batch method in chunks, writing one record per sample atomically,
* records a per-sample failure as ``<id>.error.json`` and goes on; an outage
  (:class:`~iiie.errors.TransientBackendError`) is recorded as *retryable*.

Errors that make the whole run pointless (server down, weights missing, the GPU out of
memory at batch size 1) propagate.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from iiie import weights
from iiie.batching import FATAL, chunks, guarded_batch
from iiie.data.base import Dataset, Sample, check_n, report_fields
from iiie.errors import ConfigurationError, IIIEError, PreviousTurnMissingError
from iiie.logs import log, stage_line
from iiie.pipeline import records as R
from iiie.pipeline.cache import StageDir, plain, redact, stable_hash
from iiie.pipeline.fingerprint import code_fingerprint
from iiie.pipeline.stages import STAGES, Stage, stats_of
from iiie.protocols import Metric, Scored
from iiie.types import Category

#: Samples kept in memory by a runner (least recently used are dropped).
SAMPLE_CACHE = 256
#: Stage states that let a sample go on downstream ("usable": a provisional record).
PASSED = ("done", "usable")


@dataclass
class StageCounters:
    pending: int = 0
    computed: int = 0
    cached: int = 0
    errors: int = 0
    retryable_errors: int = 0  # of ``errors``: outages, computed again by the next run
    skipped_upstream: int = 0
    failed_before: int = 0  # failures recorded by an earlier run (not retried)
    model_calls: int = 0
    retried: int = 0
    seconds: float = 0.0
    backend: dict[str, Any] = field(default_factory=dict)


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


class Runner:
    """Runs the stages for one composed config (one experiment or one sweep variant)."""

    def __init__(self, cfg: DictConfig, dataset: Dataset | None = None, show_progress: bool = True) -> None:
        self.cfg = cfg
        self.root = Path(cfg.paths.runs) / str(cfg.experiment_name)
        if dataset is None and "n" in cfg.data:
            check_n(cfg.data.n)  # a clear error for data.n=abc, before any loader sees it
        self.dataset: Dataset = dataset if dataset is not None else instantiate(cfg.data)
        self.show_progress = show_progress
        self.stages: dict[str, Stage] = {cls.name: cls(self) for cls in STAGES if cls.enabled(cfg)}
        self.order = list(self.stages.values())
        self.counters = {s: StageCounters() for s in self.stages}
        self._built: dict[str, Any] = {}
        self._samples: OrderedDict[str, Sample] = OrderedDict()
        check_routes(cfg)
        self.ids = self._shard(self.dataset.ids())
        self.retry_errors = bool(cfg.runtime.get("retry_errors", False))
        self.cache_code = bool(cfg.runtime.get("cache_code", True))
        self.release_models = bool(cfg.runtime.get("release_models", True))
        self.collect_only = bool(cfg.runtime.get("collect_only", False))
        self.keys = self._keys()

    # ------------------------------------------------------------------ setup

    def _shard(self, ids: list[str]) -> list[str]:
        """Every n-th sample; the turns of one multi-turn chain stay in one shard."""
        n = int(self.cfg.runtime.get("num_shards", 1) or 1)
        k = int(self.cfg.runtime.get("shard_index", 0) or 0)
        if not 0 <= k < n:
            raise ValueError(f"runtime.shard_index={k} must be in [0, num_shards={n})")
        roots = list(dict.fromkeys(self._chain(i)[0] for i in ids))
        mine = set(roots[k::n])
        return [i for i in ids if self._chain(i)[0] in mine]

    def _chain(self, sample_id: str) -> list[str]:
        """The multi-turn chain that ends at ``sample_id``, first turn first."""
        chain = [sample_id]
        while (prev := self.dataset.previous(chain[0])) is not None:
            if prev in chain:
                raise ConfigurationError(f"the dataset's turns form a cycle at {prev!r}")
            chain.insert(0, prev)
        return chain

    def _waves(self) -> list[list[str]]:
        """Samples grouped by turn (one wave for single-turn data): every stage of turn N
        runs before turn N+1, whose input is turn N's edited image."""
        depth: dict[int, list[str]] = {}
        for i in self.ids:
            depth.setdefault(len(self._chain(i)), []).append(i)
        return [depth[d] for d in sorted(depth)]

    def _code(self, node: Any) -> dict[str, str]:
        """The code fingerprint a key includes (empty with ``runtime.cache_code=false``)."""
        return code_fingerprint(plain(node)) if self.cache_code else {}

    def _keys(self) -> dict[str, Any]:
        """Each stage's key hashes its config slice, the code behind it and its upstream
        key, so a change anywhere upstream changes every key downstream."""
        ds = type(self.dataset)
        keys: dict[str, Any] = {
            "data": stable_hash({"data": self.dataset.fingerprint(), "code": self._code({"_target_": f"{ds.__module__}.{ds.__qualname__}"})})
        }
        for st in self.order:
            def key(route: Category | None, st: Stage = st) -> str:
                up = keys[st.upstream] if st.upstream else keys["data"]
                if isinstance(up, dict):
                    up = up[route.value]
                config = st.config(route)
                return stable_hash({**config, "upstream": up, "code": self._code(config)})

            keys[st.name] = {c.value: key(c) for c in Category} if st.per_route else key(None)
        return keys

    def stage_dir(self, stage: str, category: Category | None = None) -> StageDir:
        key = self.keys[stage]
        if isinstance(key, dict):
            if category is None:
                raise ValueError(f"stage {stage!r} is keyed per category route")
            key = key[category.value]
        return StageDir(self.root, stage, key)

    def sample(self, sample_id: str) -> Sample:
        """Load one sample (raises for unreadable inputs), keeping the most recent
        ``SAMPLE_CACHE`` in memory: a stage touches each sample a few times in a row, and a
        benchmark of thousands of images must not stay resident."""
        if sample_id in self._samples:
            self._samples.move_to_end(sample_id)
            return self._samples[sample_id]
        sample = self.dataset.load(sample_id)
        if (prev := self.dataset.previous(sample_id)) is not None:
            sample = replace(sample, request=replace(sample.request, image=self._edited_image(prev)))
        self._samples[sample_id] = sample
        if len(self._samples) > SAMPLE_CACHE:
            self._samples.popitem(last=False)
        return sample

    def _edited_image(self, sample_id: str):
        """A finished sample's edited image (the next turn's input)."""
        plan_dir = self.stage_dir("plan")
        if plan_dir.is_done(sample_id):
            edit_dir = self.stage_dir(self.result_stage, self.plan_of(sample_id).category)
            if edit_dir.is_done(sample_id):
                return R.load_edit(edit_dir, sample_id).image
        raise PreviousTurnMissingError(f"the previous turn {sample_id!r} has no edited image (it failed or did not run)")

    @property
    def result_stage(self) -> str:
        """The stage whose images are a sample's result (``verify`` when it runs)."""
        return "verify" if "verify" in self.stages else "edit"

    def component(self, name: str, node: Any) -> Any:
        """Instantiate a config node once per run (routes with equal configs share one)."""
        key = stable_hash(plain(node))
        if key not in self._built:
            self._built[key] = build(name, node)
        return self._built[key]

    def metrics(self) -> list[Metric]:
        """``metrics`` is either one component (has ``_target_``) or a dict of them; each
        must follow the :class:`~iiie.protocols.Metric` contract."""
        node = self.cfg.metrics
        named = [("metrics", node)] if "_target_" in node else [
            (f"metrics.{k}", v) for k, v in node.items() if v is not None and "_target_" in v
        ]
        built = [(name, self.component(name, v)) for name, v in named]
        for name, m in built:
            if not isinstance(m, Metric):
                raise ConfigurationError(f"{name} ({type(m).__name__}) is not a metric: it needs `name` and `score_batch(items)`")
        return [m for _, m in built]

    def plan_of(self, sample_id: str):
        return R.load_plan(self.stage_dir("plan"), sample_id)

    # ------------------------------------------------------------------ sample states

    def _upstream_digest(self, st: Stage, route: Category | None, sample_id: str) -> str | None:
        """Digest of the record this one is computed from: the upstream stage's for this
        sample, or for a first stage, the previous turn's edit (None for single-turn data)."""
        if st.upstream is None:
            prev = self.dataset.previous(sample_id)
            if prev is None or not self.stage_dir("plan").is_done(prev):
                return None
            return self.stage_dir(self.result_stage, self.plan_of(prev).category).digest(prev)
        up = self.stages[st.upstream]
        return self.stage_dir(up.name, route if up.per_route else None).digest(sample_id)

    def _state(self, st: Stage, route: Category | None, sample_id: str) -> str:
        """``done``, ``usable`` (a provisional record: used downstream, recomputed here),
        ``failed`` (a final failure) or ``todo`` (nothing yet, a retryable failure, or a
        record made from an upstream record that has changed since)."""
        d = self.stage_dir(st.name, route)
        if d.is_done(sample_id):
            rec = R.read_json(d.record(sample_id))
            if rec.get("upstream") == self._upstream_digest(st, route, sample_id):
                return "usable" if rec.get("provisional") else "done"
            return "todo"
        err = R.load_error(d, sample_id)
        if err is not None and not self.retry_errors and not err.get("retryable"):
            return "failed"
        return "todo"

    def _walk(self, sample_id: str, upto: int) -> tuple[int, str, Category | None]:
        """``(k, state, route)``: the first stage ``k <= upto`` that the sample has not
        passed, or ``upto`` itself, with the sample's state and route there."""
        for k, st in enumerate(self.order[: upto + 1]):
            route = st.route_of(sample_id)
            state = self._state(st, route, sample_id)
            if k == upto or state not in PASSED:
                return k, state, route
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ the loop

    def run(self) -> dict[str, Any]:
        started = time.time()
        if self.collect_only:
            self._check_collected()
        if self._scoring_pending():
            # Build the metrics first: a missing backbone folder or a judge server that is
            # down must stop the run before hours of planning, masking and editing.
            resident = self._resident()
            self.metrics()
            if self.release_models:  # checked; the score stage loads them again when it runs
                self.release_since(resident)
        waves = self._waves()
        for w, wave in enumerate(waves):
            for st in self.order:
                t0 = time.perf_counter()
                resident = self._resident()
                self.run_stage(st.name, wave)
                if self.release_models:
                    self.release_since(resident)
                self.counters[st.name].seconds = round(self.counters[st.name].seconds + time.perf_counter() - t0, 3)
                if w == len(waves) - 1:  # one line per stage (totals over the turns), in run.log
                    log.info(stage_line(st.name, self.counters[st.name]))
        return self.manifest(started)

    def _resident(self) -> tuple[set[str], set[Any]]:
        """(built components, cached models) now, to tell what a stage adds."""
        return set(self._built), weights.loaded_keys()

    def release_since(self, resident: tuple[set[str], set[Any]]) -> None:
        """Drop what was built and loaded since ``resident`` (``runtime.release_models``).

        Why: each stage's models (planner VLM, masker, editors, metric backbones) are needed
        by that stage only, and keeping them resident makes the next stage's models share
        the GPU with them. The metrics, built up front to fail fast, are released right
        after that check. A later stage that needs a released component (verify re-edits
        with the route's editor, score its metrics) builds it again.
        """
        from iiie.placement import free_memory

        built, loaded = resident
        for key in set(self._built) - built:
            del self._built[key]
        weights.release(weights.loaded_keys() - loaded)
        free_memory()

    def _check_collected(self) -> None:
        """``runtime.collect_only=true`` (the final step of a sharded run): every sample must
        already be finished (scored, or failed for good) by the shards, so that this run
        only reads records; otherwise stop with the samples that are missing, instead of
        computing them on whatever machine runs the collect step."""
        last = len(self.order) - 1
        missing = [(i, self.order[w[0]].name) for i in self.ids if (w := self._walk(i, last))[1] not in ("done", "failed")]
        if missing:
            shown = ", ".join(f"{i} ({stage})" for i, stage in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise ConfigurationError(
                f"runtime.collect_only=true but {len(missing)} of {len(self.ids)} samples are not finished: "
                f"{shown}{more} (stage where each stopped); run the missing shards first, or drop "
                "collect_only to compute them here")

    def _scoring_pending(self) -> bool:
        """Will this run score anything (some sample neither scored nor finally failed)?"""
        last = len(self.order) - 1
        return any(self._walk(i, last)[1] not in ("done", "failed") for i in self.ids)

    def run_stage(self, name: str, ids: list[str] | None = None) -> None:
        """Compute one stage for every sample (of ``ids``) pending there (see the module
        docstring)."""
        st, c = self.stages[name], self.counters[name]
        index = self.order.index(st)
        pending: dict[Category | None, list[str]] = {}
        routes: set[Category | None] = set()
        for sid in self.ids if ids is None else ids:
            k, state, route = self._walk(sid, index)
            if k < index:
                c.skipped_upstream += 1
                continue
            routes.add(route)
            if state == "done":
                c.cached += 1
            elif state == "failed":
                c.failed_before += 1
            else:
                pending.setdefault(route, []).append(sid)
        for route in routes:
            d = self.stage_dir(name, route)
            d.write_meta(st.meta(route))
            d.clean_tmp()
        c.pending = sum(len(v) for v in pending.values())
        if not pending:
            return
        bar = tqdm(total=c.pending, desc=name, disable=not self.show_progress, leave=False)
        for route in sorted(pending, key=lambda r: list(Category).index(r) if r is not None else -1):
            backend = st.backend(route)
            d = self.stage_dir(name, route)

            def failed(sid: str, exc: BaseException, extra: dict[str, Any], d: StageDir = d, backend: Any = backend) -> None:
                st.discard(sid, backend)
                R.save_error(d, sid, exc, extra)
                d.record(sid).unlink(missing_ok=True)  # a stale record must not count as done
                c.errors += 1
                c.retryable_errors += bool(R.load_error(d, sid).get("retryable"))
                bar.update(1)

            def ok(it: tuple[str, Any], out: Any, seconds: float, d: StageDir = d, backend: Any = backend, route=route) -> None:
                sid, item = it
                info: dict[str, Any] = {"seconds": round(seconds, 4)}
                if (upstream := self._upstream_digest(st, route, sid)) is not None:
                    info["upstream"] = upstream
                st.save(d, sid, item, out, info, backend)
                c.computed += 1
                bar.update(1)

            for chunk in chunks(pending[route], st.batch_size()):
                items = []
                for sid in chunk:
                    try:
                        items.append((sid, st.load(sid, route)))
                    except FATAL:
                        raise
                    except Exception as exc:  # noqa: BLE001 - an unreadable input is its error
                        failed(sid, exc, {})
                if items:
                    sent, again = guarded_batch(
                        lambda its, b=backend, r=route: st.call(b, [x for _, x in its], r),
                        items, ok, lambda it, exc: failed(it[0], exc, st.error_info(it[1])), st.batch_key,
                    )
                    if getattr(backend, "calls_model", True):  # planner=none, masker=none: no
                        c.model_calls += sent
                        c.retried += again
            stats = stats_of(backend)
            if route is not None:
                c.backend[route.value] = stats
            elif stats:
                c.backend = stats
        bar.close()

    # ------------------------------------------------------------------ results

    def sample_status(self, sample_id: str) -> dict[str, Any]:
        """Where one sample ended: its score row, or the stage and error that stopped it.

        A sample that failed after planning keeps its ground-truth category and the
        plan-level columns (metrics marked ``stage = "plan"``), so a masker that misses
        objects does not hide step-1/2 accuracy.
        """
        row: dict[str, Any] = {"id": sample_id}
        try:  # the ground-truth category and benchmark labels, when the input is readable
            sample = self.sample(sample_id)
            if sample.truth.category is not None:
                row["category"] = sample.truth.category.value
            row.update(report_fields(sample))
        except Exception:  # noqa: BLE001 - the input itself is what failed
            known = self.dataset.known_category(sample_id)  # still file it under its category
            if known is not None:
                row["category"] = known.value
        last = len(self.order) - 1
        k, state, route = self._walk(sample_id, last)
        row.update(self._provenance(sample_id, k, route))
        st = self.order[k]
        if k == last and state in PASSED:
            rec = R.read_json(self.stage_dir(st.name, route).record(sample_id))
            edit_rec = self.stage_dir("edit", route).record(sample_id)
            noop = edit_rec.is_file() and bool(R.read_json(edit_rec).get("noop", False))
            return {**row, "plan_category": rec["plan_category"], "category": rec["category"], **rec["scores"],
                    "noop": noop}
        err = R.load_error(self.stage_dir(st.name, route), sample_id)
        if k == 0:
            return {**row, "failed_stage": st.name, **_failure(err)}
        plan = self.plan_of(sample_id)
        row["plan_category"] = plan.category.value
        return {**row, **self._plan_columns(sample_id, plan), "failed_stage": st.name, **_failure(err)}

    def _provenance(self, sample_id: str, reached: int, route: Category | None) -> dict[str, str]:
        """Which method, planner (and its VLM engine), masker and editor made a sample's
        records (those it reached)."""
        fields = {"plan": ("planner", "planner_engine"), "mask": ("masker",), "edit": ("editor",)}
        out: dict[str, str] = {}
        for st in self.order[:reached + 1]:
            d = self.stage_dir(st.name, route if st.per_route else None)
            if st.name in fields and d.is_done(sample_id):
                record = R.read_json(d.record(sample_id))
                main, *extra = fields[st.name]
                out[main] = str(record.get(main, ""))
                out.update({f: str(record[f]) for f in extra if f in record})
        return out

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
            "cache_code": self.cache_code,
            "stages": {s: asdict(c) for s, c in self.counters.items()},
            "model_loads": dict(weights.LOAD_COUNTS),
            "config": redact(OmegaConf.to_container(self.cfg, resolve=True)),
        }


def _failure(err: dict[str, Any] | None) -> dict[str, str]:
    if err:
        return {"error": err["message"], "error_type": err["type"]}
    return {"error": "not run", "error_type": "Pending"}
