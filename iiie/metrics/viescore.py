"""VIEScore-style judge (``metrics=viescore``) on the same VLM client as the MAGIC judge.

Two questions per sample (``conf/prompts/viescore_v1/``), integer scores 0..10:

* semantic consistency, shown source then edited with the instruction:
  ``editing_success`` and ``over_editing`` (10 = nothing beyond the request changed);
* perceptual quality, shown the edited image only: ``naturalness`` and ``artifacts``
  (10 = no artifacts).

Columns: ``vie_sc = min(editing_success, over_editing)``,
``vie_pq = min(naturalness, artifacts)``, ``vie_overall = sqrt(vie_sc * vie_pq)``, on the
0..10 scale (as GEdit-Bench reports them). With ``samples > 1`` each sub-score is the mean
of the valid votes before the min. A sample missing either question's answer gets only
the column it can have.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from iiie.metrics.judge import VLMJudge
from iiie.protocols import Scored

SC_FIELDS = ("editing_success", "over_editing")
PQ_FIELDS = ("naturalness", "artifacts")


def _mean(answers: Sequence[dict[str, Any] | None], field: str) -> float | None:
    values = [a[field] for a in answers if a is not None and field in a]
    return sum(values) / len(values) if values else None


def combine(sub: dict[str, float | None]) -> dict[str, float]:
    """Sub-scores -> ``vie_sc``, ``vie_pq``, ``vie_overall`` (those that can be formed)."""
    row: dict[str, float] = {}
    sc = [sub.get(f) for f in SC_FIELDS]
    pq = [sub.get(f) for f in PQ_FIELDS]
    if all(v is not None for v in sc):
        row["vie_sc"] = float(min(sc))
    if all(v is not None for v in pq):
        row["vie_pq"] = float(min(pq))
    if "vie_sc" in row and "vie_pq" in row:
        row["vie_overall"] = math.sqrt(row["vie_sc"] * row["vie_pq"])
    return row


class VIEScore(VLMJudge):
    name = "viescore"
    default_prompts = "viescore_v1"

    def __init__(self, *args: Any, samples: int = 1, temperature: float = 0.0, **kwargs: Any):
        super().__init__(*args, samples=samples, temperature=temperature, **kwargs)
        fields = {f for q in self.prompts.questions for f in q.fields}
        missing = (set(SC_FIELDS) | set(PQ_FIELDS)) - fields
        if missing:
            raise ValueError(
                f"viescore prompts {self.prompts.version} lack fields {sorted(missing)}"
            )

    def score_batch(self, items: Sequence[Scored]) -> list[dict[str, float]]:
        rows: list[dict[str, float]] = []
        for item, votes in zip(items, self.ask_all(items), strict=True):
            if isinstance(votes, Exception):
                rows.append(votes)
                continue
            sub: dict[str, float | None] = {}
            for q in self.prompts.questions:
                for field in q.fields:
                    sub[field] = _mean(votes[q.name], field)
            row = combine(sub)
            record = self.details[item.sample.request.id]
            record["subscores"] = sub
            record["result"] = dict(row)
            rows.append(row)
        return rows
