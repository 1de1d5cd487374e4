"""The stages of a run as small objects, for the runner's one stage loop.

A stage says only what differs between stages: the config slice its key hashes, which
route (category) a sample takes, how to load one sample's inputs, how to call its backend
on a batch, and what to write for one result. Everything they share (pending samples,
chunks, per-sample failures, counters, progress, cache keys) is the runner's loop, so a
new stage (verify-and-retry, say) is one more class here and one more name in
:data:`STAGES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from iiie.pipeline import records as R
from iiie.pipeline.cache import StageDir, plain, redact, without_keys
from iiie.protocols import Scored
from iiie.seeding import sample_seed
from iiie.types import Category, mark_noop
from iiie.vlm.settings import NON_SEMANTIC_KEYS

if TYPE_CHECKING:
    from iiie.pipeline.runner import Runner

#: Keys that decide where and how fast a component runs (device, offload hooks, the diffusion editors'
#: torch.compile / channels-last switches), not what it computes: left out of cache keys, so data-parallel
#: processes on different GPUs share one folder and a run with the speed switches reuses one without.
PLACEMENT_KEYS = frozenset({"device", "offload", "compile", "channels_last"})


class Stage:
    """One step of the run. ``per_route`` stages keep one folder per category route."""

    name: ClassVar[str]
    upstream: ClassVar[str | None] = None
    per_route: ClassVar[bool] = False

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.cfg = runner.cfg

    @classmethod
    def enabled(cls, cfg: Any) -> bool:
        """Whether a run with this config has this stage (optional stages say no)."""
        return True

    def config(self, route: Category | None) -> Any:
        """The config slice this stage's key hashes (with its upstream key and code)."""
        raise NotImplementedError

    def meta(self, route: Category | None) -> Any:
        """What ``_key.json`` records, so a folder can be traced back to its config."""
        return redact(self.config(route))

    def route_of(self, sample_id: str) -> Category | None:
        """The route a sample takes: its planned category for per-route stages."""
        return self.runner.plan_of(sample_id).category if self.per_route else None

    def backend(self, route: Category | None) -> Any:
        raise NotImplementedError

    def load(self, sample_id: str, route: Category | None) -> Any:
        """One sample's inputs (raises for an unreadable one: recorded as its error)."""
        raise NotImplementedError

    def call(self, backend: Any, items: list[Any], route: Category | None) -> list[Any]:
        raise NotImplementedError

    def save(self, d: StageDir, sample_id: str, item: Any, out: Any, info: dict[str, Any], backend: Any) -> None:
        raise NotImplementedError

    def error_info(self, item: Any) -> dict[str, Any]:
        """Context kept with a per-sample error."""
        return {}

    def discard(self, sample_id: str, backend: Any) -> None:
        """Forget whatever the backend kept about a sample that failed."""

    @property
    def batch_key(self) -> str:
        return f"runtime.{self.name}_batch_size"

    def batch_size(self) -> int:
        return int(self.cfg.runtime[f"{self.name}_batch_size"])


def _name(component: Any) -> str:
    return getattr(component, "name", "?")


class PlanStage(Stage):
    """Steps 1-2: instruction (+ image) -> plan."""

    name = "plan"

    def config(self, route):
        return {"planner": without_keys(self.cfg.planner, NON_SEMANTIC_KEYS)}

    def meta(self, route):
        return {"planner": redact(self.cfg.planner), "data": self.runner.dataset.fingerprint()}

    def backend(self, route):
        return self.runner.component("planner", self.cfg.planner)

    def load(self, sample_id, route):
        return self.runner.sample(sample_id)

    def call(self, backend, items, route):
        if (by_sample := getattr(backend, "plan_samples", None)) is not None:  # planner=none: truth
            return by_sample(items)
        return backend.plan_batch([s.request for s in items])

    def save(self, d, sample_id, item, out, info, backend):
        info = {"planner": _name(backend), "instruction": item.request.instruction, **info}
        if out.raw.get("provisional"):
            info["provisional"] = True  # bridged an outage: recomputed by the next run
        if out.raw.get("engine"):
            info["planner_engine"] = str(out.raw["engine"])  # server | vllm | transformers
        R.save_plan(d, sample_id, out, info)

    def error_info(self, item):
        return {"instruction": item.request.instruction}


class MaskStage(Stage):
    """Step 3: (request, plan) -> mask."""

    name = "mask"
    upstream = "plan"

    def config(self, route):
        return {"masker": without_keys(self.cfg.masker, PLACEMENT_KEYS)}

    def meta(self, route):
        return {"masker": plain(self.cfg.masker), "plan": self.runner.keys["plan"]}

    def backend(self, route):
        return self.runner.component("masker", self.cfg.masker)

    def load(self, sample_id, route):
        return self.runner.sample(sample_id), self.runner.plan_of(sample_id)

    def call(self, backend, items, route):
        return backend.mask_batch([s.request for s, _ in items], [p for _, p in items])

    def save(self, d, sample_id, item, out, info, backend):
        R.save_mask(d, sample_id, out, {"masker": _name(backend), "category": item[1].category.value, **info})

    def error_info(self, item):
        return {"category": item[1].category.value, "object": item[1].object}


class EditStage(Stage):
    """Step 4: the route's editor on (request, plan, mask, seed)."""

    name = "edit"
    upstream = "mask"
    per_route = True

    def config(self, route):
        return {
            "editor": without_keys(self.cfg.editor[route.value], PLACEMENT_KEYS),
            "seed": int(self.cfg.seed),
            "dtype": str(self.cfg.runtime.dtype),
        }

    def meta(self, route):
        return {"editor": plain(self.cfg.editor[route.value]), "mask": self.runner.keys["mask"], "seed": int(self.cfg.seed)}

    def backend(self, route):
        return self.runner.component(f"editor.{route.value}", self.cfg.editor[route.value])

    def load(self, sample_id, route):
        r = self.runner
        return r.sample(sample_id), r.plan_of(sample_id), R.load_mask(r.stage_dir("mask"), sample_id)

    def call(self, backend, items, route):
        seeds = [sample_seed(int(self.cfg.seed), s.request.id) for s, _, _ in items]
        return backend.edit_batch([s.request for s, _, _ in items], [p for _, p, _ in items], [m for _, _, m in items], seeds)

    def save(self, d, sample_id, item, out, info, backend):
        mark_noop(item[0].request.image, out)
        R.save_edit(d, sample_id, out, {"route": item[1].category.value, **info})

    def error_info(self, item):
        return {"route": item[1].category.value}


def verify_enabled(cfg: Any) -> bool:
    node = cfg.get("verify")
    return bool(node is not None and node.get("enabled", False))


class VerifyStage(Stage):
    """Optional (``verify=judge``): the VLM judge checks each edit and the failed ones are
    redone (:mod:`iiie.verify`); its records are the kept images, with every round."""

    name = "verify"
    upstream = "edit"
    per_route = True

    @classmethod
    def enabled(cls, cfg):
        return verify_enabled(cfg)

    def config(self, route):
        return {"verify": without_keys(self.cfg.verify, NON_SEMANTIC_KEYS | PLACEMENT_KEYS)}

    def meta(self, route):
        return {"verify": redact(self.cfg.verify), "edit": self.runner.keys["edit"][route.value]}

    def backend(self, route):
        return self.runner.component("verify", self.cfg.verify)

    def load(self, sample_id, route):
        r = self.runner
        edit = R.load_edit(r.stage_dir("edit", route), sample_id)
        return Scored(r.sample(sample_id), r.plan_of(sample_id), R.load_mask(r.stage_dir("mask"), sample_id), edit)

    def call(self, backend, items, route):
        # re-edits use the route's own editor (the same instance as the edit stage's)
        editor = self.runner.component(f"editor.{route.value}", self.cfg.editor[route.value])
        seeds = [sample_seed(int(self.cfg.seed), it.sample.request.id) for it in items]
        return backend.verify_batch(items, editor, seeds)

    def save(self, d, sample_id, item, out, info, backend):
        R.save_edit(d, sample_id, out.edit, {
            "route": item.plan.category.value, "verified": out.verified, "kept_round": out.kept_round,
            "rounds": out.rounds, **info,
        })

    def error_info(self, item):
        return {"route": item.plan.category.value}

    def batch_size(self) -> int:
        rt = self.cfg.runtime
        return int(rt.get("verify_batch_size") or rt["edit_batch_size"])


class ScoreStage(Stage):
    """The metrics on finished samples; per route, since each route's edits differ. With
    ``verify=judge`` it scores the verify stage's kept images and adds its columns."""

    name = "score"
    per_route = True

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        self.upstream = "verify" if verify_enabled(self.cfg) else "edit"

    def config(self, route):
        return {"metrics": without_keys(self.cfg.metrics, PLACEMENT_KEYS)}

    def meta(self, route):
        return {"metrics": plain(self.cfg.metrics), self.upstream: self.runner.keys[self.upstream][route.value]}

    def backend(self, route):
        return self.runner.metrics()

    def load(self, sample_id, route):
        r = self.runner
        edit = R.load_edit(r.stage_dir(self.upstream, route), sample_id)
        return Scored(r.sample(sample_id), r.plan_of(sample_id), R.load_mask(r.stage_dir("mask"), sample_id), edit)

    def call(self, backend, items, route):
        rows: list[Any] = [dict() for _ in items]
        for metric in backend:  # a metric's error in a sample's slot is that sample's result
            for k, extra in enumerate(metric.score_batch(items)):
                if isinstance(rows[k], dict):
                    rows[k] = extra if isinstance(extra, Exception) else {**rows[k], **extra}
        return rows

    def save(self, d, sample_id, item: Scored, out, info, backend):
        truth = item.sample.truth.category
        record = {
            "id": sample_id,
            "category": (truth or item.plan.category).value,
            "plan_category": item.plan.category.value,
            "scores": out,
            **info,
        }
        if self.upstream == "verify":  # the table's verified / rounds columns
            v = R.read_json(self.runner.stage_dir("verify", item.plan.category).record(sample_id))
            record["scores"] = {**out, "verified": float(v["verified"]), "rounds": float(1 + max(r["round"] for r in v["rounds"]))}
        # Metrics that keep per-sample evidence (judge replies and votes) expose it as
        # ``details[sample_id]``; it is stored with the scores.
        details = {_metric_name(m): m.details.pop(sample_id) for m in backend if sample_id in _details(m)}
        if details:
            record["details"] = details
        R.atomic_write_json(d.record(sample_id), record)
        d.clear_error(sample_id)

    def discard(self, sample_id, backend):
        for m in backend:
            _details(m).pop(sample_id, None)


def _details(metric: Any) -> dict:
    details = getattr(metric, "details", None)
    return details if isinstance(details, dict) else {}


def _metric_name(metric: Any) -> str:
    return getattr(metric, "name", type(metric).__name__)


#: The stages in run order.
STAGES: tuple[type[Stage], ...] = (PlanStage, MaskStage, EditStage, VerifyStage, ScoreStage)


def stats_of(backend: Any) -> dict[str, Any]:
    """A backend's counters for the manifest (a list of metrics: each one's, by name)."""
    if isinstance(backend, Sequence) and not isinstance(backend, str):
        return {_metric_name(m): s for m in backend if (s := stats_of(m))}
    fn = getattr(backend, "stats", None)
    try:
        return dict(fn()) if callable(fn) else {}
    except Exception:  # noqa: BLE001 - counters are informative, never a reason to fail
        return {}
