"""Is an instruction in the language the rule grammar reads (English)?

The rule planner's patterns and word lists are English. An instruction in another
language ("enlève le chat", "将背景改为森林") would otherwise fall through to a low-confidence
best guess that edits something at random; instead it is rejected with a reason that
names the multilingual answer (``planner=vlm``). The test is deliberately lenient: one
known English word among few unknown ones is enough, so English with rare nouns passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from iiie.errors import InstructionError
from iiie.planners import rules_lexicon as lex

#: Function words and frequent request words the lexicon does not list.
_FUNCTION_WORDS = frozenset(
    "a an the this that these those it its them they he she him her his their my your our "
    "me i you we us to into onto in on at of off for from with without by as and or but "
    "so then than more less very please can could would will should must make made let "
    "be is are was were been being have has had do does did not no all some any every each "
    "other another one two three up down out over under behind front back left right top "
    "bottom side middle center centre near next image picture photo pic scene look like "
    "new old big small little change turn add remove put place there here what where who "
    "how which now just only also too same instead while like want need see show".split()
)


def _words(values: Iterable[object]) -> set[str]:
    out: set[str] = set()
    for v in values:
        if isinstance(v, str):
            out.update(re.findall(r"[a-z]+", v.lower()))
    return out


def _vocabulary() -> frozenset[str]:
    vocab = set(_FUNCTION_WORDS)
    for value in vars(lex).values():
        if isinstance(value, dict):
            vocab |= _words(value) | _words(value.values())
        elif isinstance(value, (frozenset, set, tuple, list)):
            vocab |= _words(value)
    return frozenset(w for w in vocab if len(w) > 1 or w in ("a", "i"))


ENGLISH_WORDS = _vocabulary()

#: Articles and particles of other Latin-script languages, absent from English: their
#: presence tells "entferne die katze" (German) from English typos ("zxcv qwerty", which
#: keeps its low-confidence best guess).
FOREIGN_FUNCTION_WORDS = frozenset(
    "le la les des du au aux une et est avec sur dans pour del los las una unos con por "
    "para der die das dem den ein eine einen und mit auf im vom zur zum il lo gli della "
    "di che per nel het een van op og och ist sind bitte ajoute enlève supprime "
    "entferne füge ändere quita añade cambia rimuovi aggiungi".split()
)

#: Message shared by the error and the docs: what to do instead.
ADVICE = "the rule planner reads English only; planner=vlm (a multilingual VLM) plans it"


class UnsupportedLanguageError(InstructionError):
    """An instruction the English rule grammar cannot read; ``planner=vlm`` can."""


def check_english(instruction: str, normalised: str) -> None:
    """Raise :class:`UnsupportedLanguageError` when ``normalised`` reads as non-English.

    Non-English means: fewer than half of the words are known English words and the text
    has letters outside ASCII ("enlève le chat", "将背景改为森林") or at least as many
    articles/particles of another language as English words ("entferne die katze").
    """
    tokens = re.findall(r"[^\W\d_]+", normalised)
    if not tokens:
        return
    known = sum(t in ENGLISH_WORDS for t in tokens)
    non_ascii = any(ord(ch) > 127 and ch.isalpha() for ch in normalised)
    foreign = sum(t in FOREIGN_FUNCTION_WORDS for t in tokens)
    if (non_ascii and known < 0.5 * len(tokens)) or (
        foreign and foreign >= known and known < 0.5 * len(tokens)
    ) or (known == 0 and non_ascii):
        raise UnsupportedLanguageError(
            f"instruction does not look like English ({known} of {len(tokens)} words "
            f"known): {instruction[:80]!r}; {ADVICE}"
        )
