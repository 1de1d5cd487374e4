"""Prompts for the rule planner's plans: target prompts and global captions.

Built from the slots that :mod:`iiie.planners.rules_grammar` filled, per category: what an
edited region should show (local, background, addition), a removal prompt with no object
words, and source/target captions for global edits.
"""

from __future__ import annotations

import re

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_grammar import Parse
from iiie.planners.rules_text import (
    find_phrase,
    is_adjectival,
    np_head,
    np_kind,
    scene_in,
    strip_complement,
)
from iiie.types import Category

DEFAULT_SUBJECT = "main subject"
REMOVE_PROMPT = "empty background, nothing there, seamless surroundings"
SOURCE_CAPTION = "a photo"

# --------------------------------------------------------------------------------------------
# prompts and captions
# --------------------------------------------------------------------------------------------

_TIME_PHRASES = {
    "winter": "in winter, snowy",
    "snowy": "in winter, snowy",
    "snow": "covered in snow",
    "summer": "in summer, sunny",
    "spring": "in spring, blooming flowers",
    "autumn": "in autumn, fall foliage",
    "fall": "in autumn, fall foliage",
    "night": "at night",
    "nighttime": "at night",
    "evening": "in the evening",
    "sunset": "at sunset",
    "sunrise": "at sunrise",
    "dusk": "at dusk",
    "dawn": "at dawn",
    "rain": "on a rainy day, raining",
    "rainy": "on a rainy day, raining",
    "raining": "on a rainy day, raining",
    "fog": "in thick fog",
    "foggy": "in thick fog",
    "storm": "during a storm",
    "stormy": "during a storm",
    "daytime": "in daytime",
    "morning": "in the morning",
}
_ADJUST_CAPTION = {
    "blur": "a blurry photo",
    "sharpen": "a sharp, crisp photo",
    "desaturate": "a desaturated photo",
    "saturate": "a saturated, vivid photo",
    "invert": "a photo with inverted colors",
    "grayscale": "a grayscale photo",
    "brighten": "a bright photo",
    "darken": "a dark photo",
    "lighten": "a bright photo",
    "cartoonize": "a cartoon",
    "cartoonify": "a cartoon",
    "colorize": "a color photo",
    "denoise": "a clean, noise-free photo",
    "enhance": "a high quality photo",
    "pixelate": "a pixelated image",
    "posterize": "a posterized image",
    "stylize": "a stylized artwork",
    "vignette": "a photo with a vignette",
    "color-correct": "a photo with natural, balanced colors",
}
_ARTIFACT_TARGETS = (
    (
        ("noise", "grain", "graininess", "artifacts", "artefacts", "compression"),
        "a clean, noise-free photo",
    ),
    (("blur", "blurriness"), "a sharp, in-focus photo"),
    (("haze", "fog", "glare", "flare"), "a clear photo"),
    (("color", "colors", "saturation"), "a black and white photo"),
)
_MORE = ("increase", "raise", "boost", "more", "up", "amp", "crank", "bump")
_LESS = ("decrease", "reduce", "lower", "less", "down", "dial", "tone")


def _article(phrase: str) -> str:
    if not phrase or phrase.split()[0] in lex.DETERMINERS or phrase.endswith("s"):
        return phrase
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def global_captions(p: Parse, clause: str) -> tuple[str, str]:
    comp = strip_complement(p.comp)
    comp = re.sub(
        r"^(?:it|this|the (?:image|photo|picture))\s+(?:was|is|were)\s+", "a photo ", comp
    )
    comp = re.sub(r"^(?:its|their|the)\s+", "a ", comp)
    if p.frame == "remove_artifact":
        obj = comp or "color cast"
        head = np_head(obj)
        counted = head in ("cast", "tint", "filter", "vignette", "glare", "flare")
        source = f"a photo with {_article(obj) if counted else obj}"
        for words, target in _ARTIFACT_TARGETS:
            if head in words:
                return source, target
        return source, "a photo with natural, balanced colors"
    if p.frame in ("adjust",) or p.verb in _ADJUST_CAPTION:
        if p.verb in _ADJUST_CAPTION and not comp:
            return SOURCE_CAPTION, _ADJUST_CAPTION[p.verb]
        prop = comp or "colors"
        if p.verb in _MORE:
            return SOURCE_CAPTION, f"a photo with higher {prop}"
        if p.verb in _LESS:
            return SOURCE_CAPTION, f"a photo with lower {prop}"
        if p.verb in ("fix", "correct", "balance", "improve"):
            return f"a photo with bad {prop}", f"a photo with corrected {prop}"
        if p.verb in _ADJUST_CAPTION:
            return SOURCE_CAPTION, _ADJUST_CAPTION[p.verb]
        if p.verb == "apply":
            return SOURCE_CAPTION, f"a photo with {_article(prop)}"
    text = comp or clause
    words = text.split()
    for w in words:
        if w in _TIME_PHRASES and not find_phrase(text, lex.STYLE_WORDS):
            return SOURCE_CAPTION, f"a photo {_TIME_PHRASES[w]}"
    if text.startswith("the style of") or text.startswith("in the style of"):
        return SOURCE_CAPTION, f"a painting {text if text.startswith('in ') else 'in ' + text}"
    if p.frame in ("add_filter", "image_has"):
        return SOURCE_CAPTION, f"a photo with {_article(text)}"
    if words and words[0] in ("a", "an"):
        return SOURCE_CAPTION, text
    if is_adjectival(words) or (len(words) <= 3 and find_phrase(text, lex.STYLE_WORDS)):
        return SOURCE_CAPTION, f"a {text} photo"
    return SOURCE_CAPTION, f"a photo, {text}"


def local_target(p: Parse) -> str:
    comp = strip_complement(p.comp)
    obj = p.obj
    if not comp:
        return obj
    if p.frame == "action":
        return f"{obj} {comp}".strip()
    m = re.match(r"^made (?:of|from|out of)\s+(?P<m>.+)$", comp)
    if m:
        return f"{obj} made of {m.group('m')}"
    words = comp.split()
    if words[-1] in ("one", "ones") and len(words) > 1 and obj:  # "a purple one"
        return " ".join(words[:-1] + [np_head(obj)])
    if words[0].endswith(("ed", "ing")) and len(words) <= 3 and not is_adjectival(words):
        return f"{obj} {comp}"  # "the lamp should be turned on" -> "lamp turned on"
    if words[0] in ("a", "an", "the", "some") or not is_adjectival(words):
        return comp
    # adjectival: replace adjectives of the same kind on the object ("blue square" -> green)
    ow = obj.split()
    if any(w in lex.COLORS for w in words):
        ow = [w for w in ow[:-1] if w not in lex.COLORS] + ow[-1:]
    if any(w in lex.MATERIALS for w in words):
        ow = [w for w in ow[:-1] if w not in lex.MATERIALS] + ow[-1:]
    return f"{comp} {' '.join(ow)}".strip()


def background_target(p: Parse) -> str:
    comp = strip_complement(p.comp)
    bg = p.anchor if p.anchor in lex.BACKGROUND_NOUNS else "background"
    if p.frame == "remove_background" or not comp:
        return "plain white background" if bg == "background" else f"plain {bg}"
    if p.frame == "adjust_background":
        verb = p.comp
        word = {
            "blur": "blurred",
            "darken": "dark",
            "brighten": "bright",
            "desaturate": "desaturated",
            "sharpen": "sharp",
        }.get(verb, verb + "ed")
        return f"{word} {bg}"
    words = comp.split()
    if words[-1] in ("one", "ones") and len(words) > 1:  # "a stormy one"
        return " ".join(words[:-1] + [bg])
    if (
        is_adjectival(words)
        or (words[-1] in lex.TIME_WEATHER and words[0] not in lex.DETERMINERS)
        or (
            len(words) <= 2
            and words[0] not in lex.DETERMINERS
            and not scene_in(comp)
            and bg == "sky"
        )
    ):
        return f"{comp} {bg}"
    return comp


def object_or_default(obj: str, category: Category, unnamed_subject: str = DEFAULT_SUBJECT) -> str:
    """The plan's object: none for global edits, ``unnamed_subject`` for a background edit
    that names no subject to keep ("change the background to a forest")."""
    if category == Category.BACKGROUND:
        if not obj or np_kind(obj) in ("image", "background", "none"):
            return unnamed_subject
        return obj
    if category == Category.GLOBAL:
        return ""
    return obj
