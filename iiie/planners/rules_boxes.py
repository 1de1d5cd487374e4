"""Where an added object goes: location phrases -> a box in absolute pixels.

Used by the rule planner for ``addition`` plans. Two sources of evidence, best first:

1. a spatial relation to a *named* object whose mask the request carries in
   ``meta["objects"]`` ("on the right of the dog", "a hat on the man", "above the table"):
   the box is placed next to / on / inside that object's bounding box;
2. the phrase alone: absolute regions ("top left", "bottom", "center"), areas
   ("in the sky", "on the ground", "on the table") and, for a relation whose anchor has no
   mask, the relation's side of the image ("left of the house" -> left-centre).

Without any location phrase the box is a default region in the middle of the image.
Every box is shifted inside the image (so a box "left of" an object at the left edge stays
usable), clamped with :func:`iiie.masks.clamp_box` and made at least a few pixels wide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from iiie.masks import clamp_box, mask_to_box
from iiie.planners import rules_lexicon as lex
from iiie.types import Box

#: Relations recognised in a location phrase, longest phrasing first.
_RELATIONS: tuple[tuple[str, str], ...] = (
    (r"(?:on |to |at )?the left(?:-hand)?(?: side)? of", "left_of"),
    (r"(?:on |to |at )?the right(?:-hand)?(?: side)? of", "right_of"),
    (r"left of", "left_of"),
    (r"right of", "right_of"),
    (r"in front of", "front_of"),
    (r"on top of", "on"),
    (r"on the top of", "on"),
    (r"at the top of", "top_of"),
    (r"at the bottom of", "bottom_of"),
    (r"in the hands? of", "held_by"),
    (r"next to|beside|besides|by|near|nearby|alongside|close to|around", "next_to"),
    (r"above|over", "above"),
    (r"below|under|underneath|beneath", "below"),
    (r"behind", "behind"),
    (r"inside|in|into|within", "in"),
    (r"on|onto|upon|atop", "on"),
    (r"to|for", "to"),
)
_RELATION_RE = re.compile(
    r"\b(?P<rel>" + "|".join(f"(?:{p})" for p, _ in _RELATIONS) + r")\s+(?P<anchor>.+)$"
)

# Absolute regions as (cx, cy) fractions of the image.
_VERTICAL = {
    "top": 0.2,
    "upper": 0.2,
    "bottom": 0.8,
    "lower": 0.8,
    "middle": 0.5,
    "center": 0.5,
    "centre": 0.5,
}
_HORIZONTAL = {"left": 0.2, "right": 0.8, "middle": 0.5, "center": 0.5, "centre": 0.5}


@dataclass
class BoxTrace:
    """How a box was chosen (kept in the plan's ``raw`` for provenance)."""

    rule: str
    relation: str = ""
    anchor: str = ""
    anchor_found: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "relation": self.relation,
            "anchor": self.anchor,
            "anchor_found": self.anchor_found,
        }


def _relation_name(phrase: str) -> str:
    for pattern, name in _RELATIONS:
        if re.fullmatch(pattern, phrase):
            return name
    return "next_to"


def _strip_det(text: str) -> str:
    words = [w for w in text.split() if w not in lex.DETERMINERS]
    return " ".join(words).strip()


def find_anchor(phrase: str, objects: dict[str, np.ndarray] | None) -> tuple[str, Box] | None:
    """Look ``phrase`` up in the request's object masks: exact, then head noun, then overlap.

    Returns ``(key, bbox)`` of the best non-empty mask, or ``None``.
    """
    if not objects or not phrase:
        return None
    want = _strip_det(phrase.lower())
    want = lex.PRONOUN_OBJECTS.get(want, want)
    if not want:
        return None
    want_words = set(want.split())
    head = want.split()[-1]
    scored: list[tuple[float, str]] = []
    for key in objects:
        k = _strip_det(str(key).lower())
        kw = set(k.split())
        if k == want:
            score = 3.0
        elif k.split() and k.split()[-1] == head:
            score = 2.0 + len(kw & want_words) / (len(kw | want_words) or 1)
        elif kw & want_words:
            score = len(kw & want_words) / len(kw | want_words)
        else:
            continue
        scored.append((score, key))
    for _, key in sorted(scored, key=lambda sk: -sk[0]):  # best match with a non-empty mask
        box = mask_to_box(np.asarray(objects[key], dtype=bool))
        if box is not None:
            return key, box
    return None


def _absolute_region(phrase: str) -> tuple[float, float] | None:
    """(cx, cy) fractions for "top left", "upper right corner", "bottom", "center"..."""
    words = re.findall(r"[a-z]+", phrase)
    cy = next((_VERTICAL[w] for w in words if w in ("top", "upper", "bottom", "lower")), None)
    cx = next((_HORIZONTAL[w] for w in words if w in ("left", "right")), None)
    centre = any(w in ("center", "centre", "middle") for w in words)
    if cx is None and cy is None and not centre:
        if "corner" in words:
            return (0.8, 0.8)
        return None
    return (cx if cx is not None else 0.5, cy if cy is not None else 0.5)


def _area_centre(phrase: str) -> tuple[float, float] | None:
    words = re.findall(r"[a-z]+", phrase)
    for w in reversed(words):
        if w in lex.AREA_CENTRES:
            return lex.AREA_CENTRES[w]
    return None


def _item_kind(obj: str) -> str:
    """Where on its holder an item sits: head, face, neck, hand, or anywhere."""
    head = obj.split()[-1] if obj.split() else ""
    for kind, items in (
        ("head", lex.HEAD_ITEMS),
        ("face", lex.FACE_ITEMS),
        ("neck", lex.NECK_ITEMS),
        ("hand", lex.HELD_ITEMS),
    ):
        if obj in items or head in items:
            return kind
    return ""


def _relative_box(rel: str, obj: str, anchor: Box, size: tuple[int, int], frac: float) -> Box:
    """Place a box for ``obj`` in relation ``rel`` to the anchor's bounding box."""
    w, h = size
    ax0, ay0, ax1, ay1 = anchor
    aw, ah = max(ax1 - ax0, 1.0), max(ay1 - ay0, 1.0)
    acx, acy = (ax0 + ax1) / 2, (ay0 + ay1) / 2
    item = _item_kind(obj)
    if rel in ("on", "to", "held_by", "in") and item:
        if item == "head":  # straddles the top edge of the holder
            bw, bh = 0.6 * aw, 0.35 * ah
            return (acx - bw / 2, ay0 - 0.15 * ah, acx + bw / 2, ay0 - 0.15 * ah + bh)
        if item == "face":
            bw, bh = 0.5 * aw, 0.2 * ah
            return (acx - bw / 2, ay0 + 0.1 * ah, acx + bw / 2, ay0 + 0.1 * ah + bh)
        if item == "neck":
            bw, bh = 0.5 * aw, 0.2 * ah
            return (acx - bw / 2, ay0 + 0.25 * ah, acx + bw / 2, ay0 + 0.25 * ah + bh)
        bw, bh = 0.45 * aw, 0.45 * ah  # held: at the side, mid-height
        return (ax1 - bw / 2, acy - bh / 2, ax1 + bw / 2, acy + bh / 2)
    # a neighbour about as large as the anchor, not larger than the default box
    bw = min(max(0.8 * aw, 0.08 * w), 1.5 * frac * w)
    bh = min(max(0.8 * ah, 0.08 * h), 1.5 * frac * h)
    gap = 0.02 * w
    if rel == "left_of":
        return (ax0 - gap - bw, acy - bh / 2, ax0 - gap, acy + bh / 2)
    if rel == "right_of":
        return (ax1 + gap, acy - bh / 2, ax1 + gap + bw, acy + bh / 2)
    if rel == "next_to":  # the side with more room
        if (w - ax1) >= ax0:
            return (ax1 + gap, ay1 - bh, ax1 + gap + bw, ay1)
        return (ax0 - gap - bw, ay1 - bh, ax0 - gap, ay1)
    if rel == "above":
        return (acx - bw / 2, ay0 - gap - bh, acx + bw / 2, ay0 - gap)
    if rel == "below":
        return (acx - bw / 2, ay1 + gap, acx + bw / 2, ay1 + gap + bh)
    if rel in ("on", "to", "top_of"):  # resting on the anchor's top edge
        bw, bh = min(bw, 0.7 * aw), min(bh, 0.7 * ah)
        return (acx - bw / 2, ay0 - 0.8 * bh, acx + bw / 2, ay0 + 0.2 * bh)
    if rel == "bottom_of":
        bw, bh = min(bw, 0.7 * aw), min(bh, 0.5 * ah)
        return (acx - bw / 2, ay1 - bh, acx + bw / 2, ay1)
    if rel == "front_of":  # lower part, overlapping the anchor
        return (acx - bw / 2, ay1 - 0.5 * bh, acx + bw / 2, ay1 + 0.5 * bh)
    if rel == "behind":  # peeking out above the anchor
        return (acx - bw / 2, ay0 - 0.6 * bh, acx + bw / 2, ay0 + 0.4 * bh)
    if rel == "held_by":
        return (ax1 - bw / 2, acy - bh / 2, ax1 + bw / 2, acy + bh / 2)
    # "in": inside the anchor
    bw, bh = 0.6 * aw, 0.6 * ah
    return (acx - bw / 2, acy - bh / 2, acx + bw / 2, acy + bh / 2)


_FALLBACK_SIDES: dict[str, tuple[float, float]] = {
    "left_of": (0.22, 0.6),
    "right_of": (0.78, 0.6),
    "above": (0.5, 0.25),
    "below": (0.5, 0.8),
    "front_of": (0.5, 0.75),
    "behind": (0.5, 0.4),
    "next_to": (0.72, 0.6),
    "on": (0.5, 0.55),
    "in": (0.5, 0.5),
    "to": (0.5, 0.45),
    "held_by": (0.6, 0.55),
    "top_of": (0.5, 0.25),
    "bottom_of": (0.5, 0.8),
}


def _fit_inside(box: Box, size: tuple[int, int], min_side: float) -> Box:
    """Shrink to the image, shift inside it, clamp, and keep a minimum side."""
    w, h = size
    x0, y0, x1, y1 = box
    bw = min(max(x1 - x0, min_side), w)
    bh = min(max(y1 - y0, min_side), h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    cx = min(max(cx, bw / 2), w - bw / 2)
    cy = min(max(cy, bh / 2), h - bh / 2)
    return clamp_box((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), size)


def locate(
    location: str,
    obj: str,
    size: tuple[int, int],
    objects: dict[str, np.ndarray] | None = None,
    anchor_hint: str = "",
    default_frac: float = 0.3,
) -> tuple[Box, BoxTrace]:
    """Box for adding ``obj`` at ``location`` in an image of ``size`` = (width, height).

    ``anchor_hint`` names a holder when the grammar found one without a preposition
    ("give the man a hat" -> "man"); it is read as "on the man".
    """
    w, h = size
    if w < 1 or h < 1:
        raise ValueError(f"image size must be positive, got {size}")
    min_side = max(2.0, 0.04 * min(w, h))
    loc = " ".join(location.lower().split())
    # "to the top left of the image": a region of the whole picture
    loc = re.sub(
        r"\s+(?:of|in|on)\s+(?:the|this)\s+(?:image|picture|photo|frame|scene|canvas)$", "", loc
    )
    if not loc and anchor_hint:
        loc = f"on {anchor_hint}"
    default = (default_frac * w, default_frac * h)

    def centred(cx: float, cy: float, scale: float = 1.0) -> Box:
        bw, bh = default[0] * scale, default[1] * scale
        return (cx * w - bw / 2, cy * h - bh / 2, cx * w + bw / 2, cy * h + bh / 2)

    m = _RELATION_RE.search(loc) if loc else None
    if m:
        rel = _relation_name(m.group("rel"))
        anchor_phrase = m.group("anchor").strip()
        absolute = _absolute_region(anchor_phrase) if rel in ("in", "on", "to", "next_to") else None
        if (
            absolute is not None
            and re.search(
                r"\b(corner|side|top|bottom|left|right|center|centre|middle|upper|lower)\b",
                anchor_phrase.split(" of ")[0],
            )
            and " of " not in anchor_phrase
        ):
            return _fit_inside(centred(*absolute), size, min_side), BoxTrace("absolute")
        found = find_anchor(anchor_phrase, objects)
        if found is not None:
            key, abox = found
            box = _relative_box(rel, obj, abox, size, default_frac)
            return _fit_inside(box, size, min_side), BoxTrace("relative", rel, key, True)
        if rel in ("top_of", "bottom_of"):
            absolute = _absolute_region(m.group("rel"))
            if absolute is not None:
                return _fit_inside(centred(*absolute), size, min_side), BoxTrace("absolute")
        area = _area_centre(anchor_phrase)
        if area is not None and rel in ("in", "on", "to", "above", "below"):
            cx, cy = area
            cy = cy - 0.2 if rel == "above" else cy + 0.15 if rel == "below" else cy
            return (
                _fit_inside(centred(cx, min(max(cy, 0.1), 0.9)), size, min_side),
                BoxTrace("area", rel, anchor_phrase),
            )
        cx, cy = _FALLBACK_SIDES.get(rel, (0.5, 0.5))
        return (
            _fit_inside(centred(cx, cy), size, min_side),
            BoxTrace("relation_without_anchor", rel, anchor_phrase),
        )
    if loc:
        absolute = _absolute_region(loc)
        if absolute is not None:
            return _fit_inside(centred(*absolute), size, min_side), BoxTrace("absolute")
        area = _area_centre(loc)
        if area is not None:
            return _fit_inside(centred(*area), size, min_side), BoxTrace("area")
    return _fit_inside(centred(0.5, 0.55), size, min_side), BoxTrace("default")
