"""Verify-and-retry: the VLM judge checks each edit and the failed ones are redone.

IIIE is open-loop: a wrong mask or a failed inpaint goes straight into the results. Here
(``verify=judge``, the ``verify`` stage between edit and score) a VLM looks at the source,
the edited image, the mask and the instruction and answers with a JSON schema whether the
edit succeeded, which step failed if not (``category``, ``mask``, ``inpaint``) and a 0-10
quality score. A failed sample is redone, up to ``max_rounds`` rounds in all, with the
action that ``policy`` gives its failure kind:

* ``reseed``: the same editor, mask and plan with a new seed (a poor inpaint is often bad
  luck);
* ``dilate``: a larger mask (``dilate_fraction`` of the image's short side more per round),
  for an object the mask cut short;
* ``keep``: stop retrying (e.g. a wrong category, which a new seed cannot fix: re-planning
  with the judge's feedback is not implemented yet).

``best_of=N`` edits N seeds in the first round and keeps the judge's favourite. The kept
result is the best passing one (highest score, then the earliest), else the best of all;
every round's verdict, action, seed and mask growth is kept with it, so provenance shows
what failed, what was retried and which result was kept.

Reuses the judge's machinery (:class:`~iiie.metrics.judge.VLMJudge`): prompt files in
``conf/prompts/verify_v1/``, schema-constrained replies, re-asks of a malformed reply, and a
vote lost to a server outage makes the sample's slot a
:class:`~iiie.errors.TransientBackendError` (retryable: the next run verifies it again).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from iiie import masks as M
from iiie.errors import TransientBackendError
from iiie.metrics.judge import VLMJudge
from iiie.protocols import Scored
from iiie.seeding import sample_seed
from iiie.types import EditResult, MaskResult

FAILURE_KINDS = ("category", "mask", "inpaint")
ACTIONS = ("reseed", "dilate", "keep")
DEFAULT_POLICY = {"category": "keep", "mask": "dilate", "inpaint": "reseed"}


@dataclass(frozen=True)
class Verdict:
    """The judge's answer on one edit."""

    success: bool
    failed_step: str  # "none" or one of FAILURE_KINDS
    score: int


@dataclass
class Verified:
    """What the verify stage keeps for one sample."""

    edit: EditResult
    verified: bool
    kept_round: int
    rounds: list[dict[str, Any]] = field(default_factory=list)


def _renamed(item: Scored, sample_id: str) -> Scored:
    request = dataclasses.replace(item.sample.request, id=sample_id)
    return dataclasses.replace(item, sample=dataclasses.replace(item.sample, request=request))


class EditVerifier(VLMJudge):
    """``verify=judge``: one judged reply per candidate edit (``samples=1``)."""

    name = "verify"
    default_prompts = "verify_v1"

    def __init__(
        self,
        vlm: Any = None,
        prompts: str | None = None,
        prompts_dir: str | None = None,
        max_rounds: int = 2,
        best_of: int = 1,
        policy: Mapping[str, str] | None = None,
        dilate_fraction: float = 0.03,
        temperature: float = 0.0,
        parse_retries: int = 1,
        health_check: bool = True,
        enabled: bool = True,
    ) -> None:
        super().__init__(vlm, prompts, prompts_dir, samples=1, temperature=temperature,
                         parse_retries=parse_retries, health_check=health_check)
        self.max_rounds = int(max_rounds)
        self.best_of = int(best_of)
        if self.max_rounds < 1 or self.best_of < 1:
            raise ValueError(f"verify.max_rounds ({max_rounds}) and verify.best_of ({best_of}) must be >= 1")
        self.policy = {**DEFAULT_POLICY, **dict(policy or {})}
        bad = {k: v for k, v in self.policy.items() if k not in FAILURE_KINDS or v not in ACTIONS}
        if bad:
            raise ValueError(f"verify.policy: {bad} (kinds: {FAILURE_KINDS}; actions: {ACTIONS})")
        self.dilate_fraction = float(dilate_fraction)
        fields = {f: t for q in self.prompts.questions for f, t in q.fields.items()}
        need = {"success": "yesno", "failed_step": "step", "score": "score10"}
        if any(fields.get(k) != t for k, t in need.items()):
            raise ValueError(f"verify prompts {self.prompts.version} need fields {need}, have {fields}")
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ judging

    def judge(self, items: Sequence[Scored]) -> list[Verdict | TransientBackendError | None]:
        """One verdict per item (None when the reply stayed malformed: counted as a fail)."""
        self.counts["judge_calls"] += len(items)
        out: list[Verdict | TransientBackendError | None] = []
        for votes in self.ask_all(items):
            if isinstance(votes, Exception):
                out.append(votes)
                continue
            answers = [a for q in self.prompts.questions for a in votes[q.name] if a is not None]
            merged = {k: v for a in answers for k, v in a.items()}
            if {"success", "failed_step", "score"} - set(merged):
                out.append(None)
                continue
            step = "none" if merged["success"] else merged["failed_step"]
            if step == "none" and not merged["success"]:
                step = "inpaint"  # a fail with no step named: the cheapest retry
            out.append(Verdict(bool(merged["success"]), step, int(merged["score"])))
        return out

    # ------------------------------------------------------------------ the loop

    def verify_batch(self, items: Sequence[Scored], editor: Any, seeds: Sequence[int]) -> list[Verified | Exception]:
        """Judge each item's edit and redo the failed ones, round by round (every round's
        re-edits go to ``editor`` as one batch)."""
        items = list(items)
        n = len(items)
        results: list[Verified | Exception | None] = [None] * n
        candidates: list[list[tuple[Scored, dict[str, Any]]]] = [
            [(it, {"round": 0, "seed": it.edit.seed, "dilate_px": 0, "action": "edit"})] for it in items
        ]
        if self.best_of > 1:
            extra = [(i, k) for i in range(n) for k in range(1, self.best_of)]
            redo = [(items[i], self._seed(seeds[i], items[i], 0, k), 0) for i, k in extra]
            for (i, _), (scored, info) in zip(extra, self._redo(editor, redo, "best_of"), strict=True):
                candidates[i].append((scored, info))
        open_ = list(range(n))
        for rnd in range(self.max_rounds):
            if rnd > 0:
                todo, redo = [], []
                for i in open_:
                    last_scored, last = candidates[i][-1]
                    action = self.policy.get(last["verdict"]["failed_step"], "keep")
                    if action == "keep":
                        continue
                    grow = last["dilate_px"] + (self._dilation(items[i]) if action == "dilate" else 0)
                    redo.append((items[i], self._seed(seeds[i], items[i], rnd, 0), grow))
                    todo.append((i, action))
                for (i, action), (scored, info) in zip(todo, self._redo(editor, redo, None), strict=True):
                    info.update(round=rnd, action=action)
                    candidates[i].append((scored, info))
                open_ = [i for i, _ in todo]
            asked = [(i, k, c) for i in open_ for k, c in enumerate(candidates[i]) if "verdict" not in c[1]]
            # each candidate asked under its own id: its own vote seeds and judge record
            judged = [_renamed(c[0], f"{c[0].sample.request.id}~{k}") for _, k, c in asked]
            for (i, _, (_scored, info)), shown, verdict in zip(asked, judged, self.judge(judged), strict=True):
                info["judge"] = self.details.pop(shown.sample.request.id, None)
                if isinstance(verdict, Exception):
                    results[i] = verdict  # an outage: the sample is verified again next run
                    continue
                v = verdict or Verdict(False, "inpaint", 0)
                info["verdict"] = {**dataclasses.asdict(v), "parsed": verdict is not None}
            open_ = [
                i for i in open_
                if results[i] is None and not any(c[1]["verdict"]["success"] for c in candidates[i])
            ]
            if not open_:
                break
        for i in range(n):
            if results[i] is None:
                results[i] = self._keep(candidates[i])
        return results  # type: ignore[return-value]

    def _keep(self, cands: list[tuple[Scored, dict[str, Any]]]) -> Verified:
        """The best passing candidate (score, then earliest), else the best of all."""
        def rank(k: int) -> tuple:
            v = cands[k][1]["verdict"]
            return (v["success"], v["score"], -k)

        best = max(range(len(cands)), key=rank)
        self.counts["samples"] += 1
        self.counts["extra_edits"] += len(cands) - 1
        verified = bool(cands[best][1]["verdict"]["success"])
        self.counts["verified" if verified else "unverified"] += 1
        for _, info in cands:
            step = info["verdict"]["failed_step"]
            if step != "none":
                self.counts[f"failed.{step}"] += 1
        return Verified(cands[best][0].edit, verified, cands[best][1]["round"], [info for _, info in cands])

    def _redo(self, editor: Any, jobs: list[tuple[Scored, int, int]], action: str | None) -> list[tuple[Scored, dict[str, Any]]]:
        """Edit again: ``(item, seed, dilate_px)`` per job, one editor batch."""
        if not jobs:
            return []
        masks = [self._grown(it.mask, px) for it, _, px in jobs]
        outs = editor.edit_batch(
            [it.sample.request for it, _, _ in jobs], [it.plan for it, _, _ in jobs], masks, [s for _, s, _ in jobs]
        )
        done = []
        for (it, seed, px), mask, out in zip(jobs, masks, outs, strict=True):
            if isinstance(out, Exception):
                raise out
            info = {"round": 0, "seed": seed, "dilate_px": px, "action": action or "reseed"}
            done.append((Scored(it.sample, it.plan, mask, out), info))
        return done

    def _grown(self, mask: MaskResult | None, px: int) -> MaskResult | None:
        if mask is None or px <= 0:
            return mask
        return dataclasses.replace(mask, mask=M.dilate(mask.mask, px))

    def _dilation(self, item: Scored) -> int:
        w, h = item.sample.request.image.size
        return max(1, round(self.dilate_fraction * min(w, h)))

    @staticmethod
    def _seed(base: int, item: Scored, rnd: int, k: int) -> int:
        return sample_seed(int(base), f"{item.sample.request.id}/verify/{rnd}/{k}")

    # ------------------------------------------------------------------ judge hooks

    def _pictures(self, item: Scored) -> dict[str, Any]:
        pics = super()._pictures(item)
        if item.mask is not None:
            pics["mask"] = M.mask_to_image(item.mask.mask).convert("RGB")
        return pics

    def stats(self) -> dict[str, int]:
        return {**super().stats(), **self.counts}
