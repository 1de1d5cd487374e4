"""One card per sample: what the pipeline decided and produced, with its pictures.

A card is plain JSON (the page's data) plus thumbnails written next to the page. It is
built from the stage records through the :class:`~iiie.pipeline.runner.Runner`, which
knows each stage's folder for the run's config, so the gallery shows exactly what the
table was computed from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from iiie.pipeline import records as R

if TYPE_CHECKING:
    from iiie.pipeline.runner import Runner

#: Longest side of a thumbnail, in pixels.
THUMB = 256
#: Row keys that are not score columns.
NOT_SCORES = frozenset({
    "id", "category", "plan_category", "planner", "masker", "editor", "method", "failed_stage",
    "error", "error_type", "n", "failed",
})
MASK_TINT = (255, 40, 40)


def _thumb(image: Image.Image, path: Path) -> None:
    im = image.convert("RGB")
    im.thumbnail((THUMB, THUMB))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=85)


def overlay(image: Image.Image, mask: np.ndarray, boxes: list, scores: list) -> Image.Image:
    """The source with the mask tinted red and the detector's boxes (with scores) drawn."""
    base = image.convert("RGB")
    arr = np.asarray(base, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    if m.shape == arr.shape[:2]:
        arr[m] = 0.45 * arr[m] + 0.55 * np.array(MASK_TINT, np.float32)
    out = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    width = max(1, round(min(out.size) / 128))
    for k, box in enumerate(boxes):
        draw.rectangle([float(v) for v in box[:4]], outline=(255, 230, 0), width=width)
        if k < len(scores):
            draw.text((float(box[0]) + 2, float(box[1]) + 1), f"{float(scores[k]):.2f}", fill=(255, 230, 0))
    return out


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def build_cards(runner: Runner, rows: list[dict[str, Any]], out_dir: Path) -> list[dict[str, Any]]:
    """Cards for ``rows`` (the per-sample rows of the run), thumbnails in ``out_dir/thumbs``."""
    out_dir = Path(out_dir)
    thumbs = out_dir / "thumbs"
    return [_card(runner, row, out_dir, thumbs) for row in rows]


def _card(runner: Runner, row: dict[str, Any], out_dir: Path, thumbs: Path) -> dict[str, Any]:
    sid = str(row["id"])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in sid)
    card: dict[str, Any] = {
        "id": sid,
        "category": row.get("category") or "unknown",
        "scores": {k: v for k, v in row.items() if k not in NOT_SCORES and isinstance(v, (int, float))},
        "provenance": {k: row[k] for k in ("method", "planner", "masker", "editor") if row.get(k)},
        "images": {},
        "links": {},
    }
    if row.get("failed_stage"):
        card["failed"] = {"stage": row["failed_stage"], "error": row.get("error", ""), "type": row.get("error_type", "")}
    try:
        sample = runner.sample(sid)
    except Exception as exc:  # noqa: BLE001 - an unreadable input is shown as such
        card["instruction"] = ""
        card.setdefault("failed", {"stage": "load", "error": str(exc), "type": type(exc).__name__})
        return card
    card["instruction"] = sample.request.instruction
    _thumb(sample.request.image, thumbs / f"{safe}_source.jpg")
    card["images"]["source"] = _rel(thumbs / f"{safe}_source.jpg", out_dir)
    if sample.truth.target is not None:
        _thumb(sample.truth.target, thumbs / f"{safe}_target.jpg")
        card["images"]["target"] = _rel(thumbs / f"{safe}_target.jpg", out_dir)
    plan_dir = runner.stage_dir("plan")
    if not plan_dir.is_done(sid):
        return card
    plan = runner.plan_of(sid)
    card["plan"] = {
        "category": plan.category.value, "object": plan.object, "target_prompt": plan.target_prompt,
        "fallback_reason": plan.fallback_reason,
    }
    mask_dir = runner.stage_dir("mask")
    if mask_dir.is_done(sid):
        mask = R.load_mask(mask_dir, sid)
        _thumb(overlay(sample.request.image, mask.mask, mask.boxes, mask.scores), thumbs / f"{safe}_mask.jpg")
        card["images"]["mask"] = _rel(thumbs / f"{safe}_mask.jpg", out_dir)
        card["links"]["mask"] = _rel(mask_dir.file(sid, ".png"), out_dir)
        if mask.reason:
            card["plan"]["mask_note"] = mask.reason
    result = runner.result_stage
    result_dir = runner.stage_dir(result, plan.category)
    if result_dir.is_done(sid):
        edit = R.load_edit(result_dir, sid)
        _thumb(edit.image, thumbs / f"{safe}_result.jpg")
        card["images"]["result"] = _rel(thumbs / f"{safe}_result.jpg", out_dir)
        card["links"]["result"] = _rel(result_dir.file(sid, ".png"), out_dir)
        if result == "verify":
            rec = R.read_json(result_dir.record(sid))
            card["verify"] = {
                "verified": bool(rec.get("verified")), "kept_round": rec.get("kept_round"),
                "rounds": [
                    {k: r.get(k) for k in ("round", "action", "seed", "dilate_px")} | {"verdict": r.get("verdict")}
                    for r in rec.get("rounds", [])
                ],
            }
    score_dir = runner.stage_dir("score", plan.category)
    if score_dir.is_done(sid):
        details = R.read_json(score_dir.record(sid)).get("details") or {}
        card["judge"] = {name: _votes(d) for name, d in details.items()}
    return card


def _votes(detail: dict[str, Any]) -> dict[str, Any]:
    """A judge's record, reduced to what a reader needs: result and each vote's answer."""
    return {
        "result": detail.get("result"),
        "votes": [v.get("answer") for v in detail.get("votes", [])],
    }
