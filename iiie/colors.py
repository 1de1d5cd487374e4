"""Colour names -> RGB (CSS values), for editors and parsers that read colour words."""

from __future__ import annotations

import re

NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "violet": (238, 130, 238),
    "pink": (255, 192, 203),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "brown": (165, 42, 42),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "gold": (255, 215, 0),
    "silver": (192, 192, 192),
    "beige": (245, 245, 220),
    "navy": (0, 0, 128),
    "teal": (0, 128, 128),
    "turquoise": (64, 224, 208),
    "lime": (0, 255, 0),
}
_WORD = re.compile(r"[a-z]+")


def find_color(text: str) -> str | None:
    """The last colour word in ``text`` ("make the red circle blue" -> "blue")."""
    found = [w for w in _WORD.findall((text or "").lower()) if w in NAMED_COLORS]
    return found[-1] if found else None
