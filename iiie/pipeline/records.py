"""Reading and writing each stage's per-sample files.

| stage | files |
|---|---|
| plan  | ``<id>.json`` (the :class:`Plan` + provenance) |
| mask  | ``<id>.png`` (white = change) then ``<id>.json`` (boxes, scores, source, reason) |
| edit  | ``<id>.png`` (the edited image) then ``<id>.json`` (editor, params, seed) |
| score | ``<id>.json`` (category + metric columns) |
| any   | ``<id>.error.json`` when the sample failed at that stage |

Every record after the plan's stores ``upstream``, the digest of the upstream record it was
computed from; a record whose upstream changed since is stale and recomputed. Mask and edit
records carry ``pixels``, a hash of their PNG, so the digest follows the image's content: a
recomputed turn that came out identical leaves its downstream alone, a different one redoes it.
"""

from __future__ import annotations

import hashlib
import traceback
from typing import Any

from PIL import Image

from iiie.errors import TransientBackendError
from iiie.masks import image_to_mask, mask_to_image
from iiie.pipeline.cache import StageDir, atomic_save_png, atomic_write_json, read_json
from iiie.types import EditResult, MaskResult, Plan


def save_plan(d: StageDir, sample_id: str, plan: Plan, info: dict[str, Any]) -> None:
    atomic_write_json(d.record(sample_id), {"id": sample_id, "plan": plan.to_dict(), **info})
    d.clear_error(sample_id)


def load_plan(d: StageDir, sample_id: str) -> Plan:
    return Plan.from_dict(read_json(d.record(sample_id))["plan"])


def _pixels(image: Image.Image) -> str:
    """Content hash of an image (mode, size and raw pixels), stored in its record."""
    h = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()[:16]


def save_mask(d: StageDir, sample_id: str, result: MaskResult, info: dict[str, Any]) -> None:
    picture = mask_to_image(result.mask)
    atomic_save_png(d.file(sample_id, ".png"), picture)
    record = {
        "id": sample_id,
        "pixels": _pixels(picture),
        "boxes": [list(map(float, b)) for b in result.boxes],
        "scores": [float(s) for s in result.scores],
        "source": result.source,
        "reason": result.reason,
        "area": result.area,
        **info,
    }
    atomic_write_json(d.record(sample_id), record)
    d.clear_error(sample_id)


def load_mask(d: StageDir, sample_id: str) -> MaskResult:
    rec = read_json(d.record(sample_id))
    with Image.open(d.file(sample_id, ".png")) as im:
        mask = image_to_mask(im)
    boxes = [tuple(b) for b in rec.get("boxes", [])]
    return MaskResult(mask, boxes, rec.get("scores", []), rec.get("source", ""), rec.get("reason"))


def save_edit(d: StageDir, sample_id: str, result: EditResult, info: dict[str, Any]) -> None:
    atomic_save_png(d.file(sample_id, ".png"), result.image)
    record = {"id": sample_id, "pixels": _pixels(result.image), "editor": result.editor, "params": result.params, "seed": result.seed,
              "noop": bool(result.noop), "noop_reason": result.noop_reason, **info}
    atomic_write_json(d.record(sample_id), record)
    d.clear_error(sample_id)


def load_edit(d: StageDir, sample_id: str) -> EditResult:
    rec = read_json(d.record(sample_id))
    with Image.open(d.file(sample_id, ".png")) as im:
        image = im.convert("RGB")
    return EditResult(image, rec.get("editor", ""), rec.get("params", {}), int(rec.get("seed", 0)),
                      bool(rec.get("noop", False)), str(rec.get("noop_reason", "")))


def save_error(d: StageDir, sample_id: str, exc: BaseException, extra: dict[str, Any] | None = None) -> None:
    atomic_write_json(
        d.error(sample_id),
        {
            "id": sample_id,
            "stage": d.stage,
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exception_only(type(exc), exc)[-1].strip(),
            # an outage is not the sample's result: the next run computes it again
            "retryable": isinstance(exc, TransientBackendError) or bool(getattr(exc, "retryable", False)),
            **(extra or {}),
        },
    )


def load_error(d: StageDir, sample_id: str) -> dict[str, Any] | None:
    p = d.error(sample_id)
    return read_json(p) if p.exists() else None
