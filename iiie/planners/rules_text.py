"""Text handling for the rule planner: normalisation, clauses and noun phrases.

Everything here is about *reading* an instruction (spelling, politeness, where a noun phrase
ends, what kind of thing a phrase names); the grammar in :mod:`iiie.planners.rules_grammar`
decides what the instruction asks for.
"""

from __future__ import annotations

import re

from iiie.planners import rules_lexicon as lex

# --------------------------------------------------------------------------------------------
# normalisation and clause splitting
# --------------------------------------------------------------------------------------------

_PHRASE_FIXES = (
    (r"\bcolou?r[- ]correct\b", "color-correct"),
    (r"\bblack ?& ?white\b", "black and white"),
    (r"\bb ?& ?w\b", "black and white"),
    (r"\bhow about\b", "how about"),
    (r"\bget ride of\b", "get rid of"),
    (r"\bgetrid of\b", "get rid of"),
    (r"\bback ground\b", "background"),
    (r"\bin to\b", "into"),
    (r"\bonto\b", "on"),
    (r"\bnight time\b", "nighttime"),
    (r"\bday time\b", "daytime"),
    (r"\boutta\b", "out of"),
    (r"\boughta\b", "ought to"),
    (r"\bgotta\b", "got to"),
    (r"\bwanna\b", "want to"),
    (r"\bget rid off\b", "get rid of"),
    (r"\bbg\b", "background"),
    # "its too dark": the possessive spelling of "it is" before a degree word
    (r"\bits (?=(?:too|so|very|really|way|kinda|kind of|a bit|a little|not|quite)\b)", "it is "),
)

NEW_COMMAND_VERBS = (
    "add remove delete erase change make turn replace put place insert swap switch give "
    "keep get take have let transform convert blur paint recolor color move set apply "
    "increase decrease reduce lower raise include draw also".split()
)


#: Verbs that open an editing command (also what a gerund request is turned back into).
COMMAND_VERBS = frozenset(NEW_COMMAND_VERBS) | frozenset(
    "eliminate hide lose leave clear wipe pull cut drop insert attach hang stick swap "
    "replace switch recolor enlarge shrink brighten darken sharpen soften remove".split()
)


def normalise(text: str) -> str:
    """Lower-case, expand contractions, fix frequent typos, tidy punctuation."""
    t = text.lower()
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    t = t.replace("\u201d", '"').replace("`", "'")
    t = re.sub(r"[\"]", " ", t)
    t = re.sub(r"(?<=\w)'(?=\s|$)", "", t)  # dogs' -> dogs
    t = re.sub(r"(?<=\s)'|^'", "", t)  # opening single quotes
    words = []
    # letters of any script are kept ("enlève", "日本"); only symbols are dropped
    for w in re.findall(r"[^\W_][\w'&\-]*|[.,;:!?()/]|->|=>", t):
        w = lex.CONTRACTIONS.get(w, w)
        w = lex.TYPOS.get(w, w)
        words.append(w)
    t = " ".join(words)
    for pattern, repl in _PHRASE_FIXES:
        t = re.sub(pattern, repl, t)
    t = re.sub(r"\s*(->|=>)\s*", " to ", t)
    return re.sub(r"\s+", " ", t).strip()


def split_clauses(text: str) -> list[str]:
    """Split on sentence marks, and on "and/but/then/," when a new command starts."""
    parts = re.split(r"\s*[.;!?]+\s*|\s*\(\s*|\s*\)\s*", text)
    clauses: list[str] = []
    verbs = "|".join(NEW_COMMAND_VERBS)
    joiner = re.compile(
        rf"\s*(?:,\s*)?(?:\b(?:and then|and also|and|but|then|while|after that|plus)\b\s+|,\s+)"
        rf"(?=(?:please\s+|also\s+|then\s+|(?:can|could|would|will)\s+(?:you|u)\s+"
        rf"(?:please\s+)?)?(?:{verbs})\b)"
    )
    for part in parts:
        part = part.strip(" ,")
        if not part:
            continue
        for piece in joiner.split(part):
            piece = piece.strip(" ,")
            if piece:
                clauses.append(re.sub(r"\s*,\s*", " ", piece))
    return clauses


def strip_lead_ins(clause: str) -> str:
    """Remove politeness and hedges from both ends ("could you please ... thanks")."""
    c = clause.strip()
    changed = True
    while changed and c:
        changed = False
        for lead in lex.LEAD_INS:
            if c == lead:
                break
            if c.startswith(lead + " "):
                c = c[len(lead) + 1 :].strip()
                changed = True
                break
        for tail in lex.TAIL_OUTS:
            if c.endswith(" " + tail):
                c = c[: -len(tail) - 1].strip()
                changed = True
                break
    c = re.sub(r"^(?:i want|i would like) (?:you )?to ", "", c)
    c = _gerund_request(c)
    if c in lex.LEAD_INS or c in lex.TAIL_OUTS or c in ("thanks", "thank you", "thx", "ty"):
        return ""  # a clause that is only politeness ("could you please, ...")
    return c


_GERUND_LEADS = re.compile(
    r"^(?:(?:would|do|could) you mind|mind|how about|what about|try|consider|start by|"
    r"begin by|i suggest|i recommend|can you try|could you try)\s+(?P<v>[a-z]+ing)\b"
)


def base_verb(word: str) -> str:
    """ "taking" -> "take", "putting" -> "put", "adding" -> "add"; "" if not a command verb.

    Only verbs that start a command are recognised, so "how about a painting" keeps its noun.
    """
    if not word.endswith("ing") or len(word) < 5:
        return ""
    stem = word[:-3]
    for cand in (stem + "e", stem, stem[:-1] if stem[-1:] == stem[-2:-1] else ""):
        if cand and cand in COMMAND_VERBS:
            return cand
    return ""


def _gerund_request(c: str) -> str:
    """ "would you mind taking out the bins", "how about adding a hat": the gerund is the
    command ("take out the bins", "add a hat")."""
    m = _GERUND_LEADS.match(c)
    if not m:
        return c
    verb = base_verb(m.group("v"))
    return f"{verb}{c[m.end() :]}" if verb else c


# --------------------------------------------------------------------------------------------
# noun phrases
# --------------------------------------------------------------------------------------------

PREPOSITIONS = frozenset(
    "in on at from to into with behind beside besides near next under below above over "
    "inside outside underneath beneath across along around through between among against "
    "off out onto toward towards by for like as so that which who whose where while "
    "because instead than but except without within atop upon until".split()
)
ING_NOUNS = frozenset(
    "painting building ceiling clothing king ring wing string thing something nothing "
    "anything everything swing evening morning frosting icing pudding sibling earring "
    "earrings bedding stuffing railing lightning sling awning living dining wedding "
    "ceiling stocking stockings wedding sibling duckling dumpling ping bling spring "
    "sapling viking pudding painting paintings buildings drawing drawings sing".split()
)
_ED_NOUNS = frozenset(
    "bed shed sled seed weed reed feed need bred sped speed breed steed "
    "bled fled used red sunbed flowerbed seabed".split()
)
_QUANT_PREFIXES = (
    "all of the ",
    "one of the ",
    "some of the ",
    "both of the ",
    "each of the ",
    "any of the ",
    "all the ",
    "both the ",
    "a couple of ",
    "a pair of ",
    "a bunch of ",
    "a lot of ",
    "lots of ",
    "a few ",
    "a group of ",
    "a set of ",
)
NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten".split())


def split_np(text: str) -> tuple[str, str]:
    """Split ``text`` into a leading noun phrase and the rest (location, relative clause).

    ``of`` stays inside the noun phrase ("a vase of flowers", "the color of the car").
    """
    tokens = text.split()
    for i, tok in enumerate(tokens):
        if i == 0:
            continue
        prev = tokens[i - 1]
        if tok in PREPOSITIONS and not (tok == "for" and prev in ("ready",)):
            return " ".join(tokens[:i]), " ".join(tokens[i:])
        if tok == "and" and i + 1 < len(tokens) and tokens[i + 1] in NEW_COMMAND_VERBS:
            return " ".join(tokens[:i]), " ".join(tokens[i:])
        if (
            tok.endswith("ing")
            and len(tok) > 4
            and tok not in ING_NOUNS
            and prev not in lex.DETERMINERS
            and not prev.endswith("'s")
        ):
            return " ".join(tokens[:i]), " ".join(tokens[i:])
        if tok in ("is", "are", "was", "were", "should", "must", "has", "have", "had"):
            return " ".join(tokens[:i]), " ".join(tokens[i:])
        if tok in ("she", "he", "they", "i", "we", "you") and prev not in ("and", "or"):
            return " ".join(tokens[:i]), " ".join(tokens[i:])  # "the umbrella she holds"
        if (
            tok.endswith("ed")
            and len(tok) >= 4
            and tok not in _ED_NOUNS
            and i + 1 < len(tokens)
            and tokens[i + 1] in PREPOSITIONS
            and prev not in lex.DETERMINERS
        ):
            return " ".join(tokens[:i]), " ".join(tokens[i:])  # "the bird perched on ..."
    return text, ""


def clean_np(np_text: str) -> str:
    """A groundable object phrase: no determiners, possessors, quantities or particles."""
    t = " " + np_text.strip() + " "
    t = re.sub(r"^ (?:up|down|out|away|off) ", " ", t)
    t = t.strip()
    for q in _QUANT_PREFIXES:
        if t.startswith(q):
            t = t[len(q) :]
    words = t.split()
    if len(words) == 1 and words[0] in lex.PRONOUN_OBJECTS:
        return lex.PRONOUN_OBJECTS[words[0]]
    # drop a possessor: "the man's shirt" -> "shirt"; keep "the man's" alone as "man", and
    # keep it before a property: "the teddy bear's color" -> "teddy bear color"
    for i in range(len(words) - 1, -1, -1):
        if words[i].endswith("'s") and i < len(words) - 1:
            if not (i == len(words) - 2 and words[-1] in lex.OBJECT_PROPERTIES):
                words = words[i + 1 :]
            break
    words = [w[:-2] if w.endswith("'s") else w for w in words]
    while words and (
        words[0] in lex.DETERMINERS
        or words[0] in NUMBER_WORDS
        or words[0] in ("of", "other", "more", "extra", "new", "own")
    ):
        if words[0] in ("new",) and len(words) == 1:
            break
        words = words[1:]
    while words and words[-1] in ("too", "also", "please", "again", "here", "there"):
        words = words[:-1]
    # first conjunct of "the cup and the plate", but not "black and white cat"
    if "and" in words:
        i = words.index("and")
        if 0 < i < len(words) - 1 and words[i - 1] not in lex.COLORS:
            words = words[:i]
    return " ".join(words)


def np_head(np_clean: str) -> str:
    words = np_clean.split()
    return words[-1] if words else ""


def is_indefinite(np_raw: str) -> bool:
    first = np_raw.split()[0] if np_raw.split() else ""
    return first in lex.INDEFINITE or first in NUMBER_WORDS


def is_definite(np_raw: str) -> bool:
    words = np_raw.split()
    if not words:
        return False
    return (
        words[0]
        in (
            "the",
            "this",
            "that",
            "these",
            "those",
            "his",
            "her",
            "their",
            "its",
            "my",
            "our",
            "your",
        )
        or words[0].endswith("'s")
        or (len(words) == 1 and words[0] in lex.PRONOUN_OBJECTS)
    )


def property_of(np_clean: str) -> tuple[str, str]:
    """ "color of the car" -> ("color", "car"); "sky color" -> ("color", "sky")."""
    m = re.match(r"^(?P<prop>[a-z]+(?: [a-z]+)?) of (?P<obj>.+)$", np_clean)
    if m and m.group("prop").split()[-1] in lex.OBJECT_PROPERTIES | lex.OF_PROPERTIES:
        return m.group("prop"), clean_np(m.group("obj"))
    words = np_clean.split()
    if len(words) >= 2 and words[-1] in lex.OBJECT_PROPERTIES:
        return words[-1], " ".join(words[:-1])
    return "", np_clean


def find_phrase(text: str, vocab: frozenset[str]) -> str:
    """The vocabulary entry (word or phrase) that occurs first in ``text``, the longest one
    where several start at the same place. Chosen by position, never by set order, so the
    answer does not depend on Python's hash seed."""
    padded = f" {text} "
    found = [(padded.find(f" {entry} "), -len(entry), entry) for entry in vocab if f" {entry} " in padded]
    return min(found)[2] if found else ""


#: Weather words that are also stuff in the picture ("make the snow melt" edits the snow).
_WEATHER_STUFF = frozenset("snow rain fog mist storm".split())


def np_kind(np_clean: str) -> str:
    """Meaning class of an object phrase: image, background, global, time, or thing."""
    if not np_clean:
        return "none"
    if " of " in np_clean:
        left, right = np_clean.split(" of ", 1)
        left_kind, right_kind = np_kind(left), np_kind(clean_np(right))
        if right_kind == "image":  # "the brightness of the photo", "colors of the image"
            return left_kind if left_kind in ("global", "time", "background") else "image"
        if left_kind == "background":  # "background of a snowy village"
            return "background"
        if left_kind == "image" and left in ("whole", "entire", "rest", "all"):
            return "image"
    words = np_clean.split()
    head = words[-1]
    if (
        np_clean in lex.WHOLE_IMAGE
        or words[0] in ("whole", "entire", "overall", "full")
        and (head in lex.WHOLE_IMAGE)
    ):
        return "image"
    if head in lex.WHOLE_IMAGE and len(words) <= 2 and head not in ("painting", "frame"):
        return "image"
    if (
        np_clean in lex.BACKGROUND_NOUNS
        or head in lex.BACKGROUND_NOUNS
        or re.search(r"\b(?:behind|around)\b", np_clean)
        and (
            words[0] in ("everything", "area", "wall", "room", "space", "scenery", "stuff")
            or re.split(r"\s+(?:behind|around)\s+", np_clean)[0] in lex.BACKGROUND_NOUNS
        )
    ):
        return "background"
    if np_clean in lex.GLOBAL_PROPERTIES or head in lex.GLOBAL_PROPERTIES:
        return "global"
    if (np_clean in lex.TIME_WEATHER and np_clean not in _WEATHER_STUFF) or (
        head in ("day", "night", "season", "weather") or np_clean in ("time", "hour")
    ):
        return "time"
    return "thing"


def scene_in(text: str) -> str:
    """A place a subject could be moved to, if ``text`` names one."""
    return find_phrase(text, lex.SCENE_NOUNS)


#: Scene nouns that are as often an object in the picture as its setting.
_THING_LIKE_PLACES = frozenset(
    "cloud clouds bridge roof rooftop skyscraper tower planet moon mars sand snow grass lawn "
    "stage podium tunnel iceberg fountain road mountain mountains volcano hill hills "
    "cliff peak summit glacier".split()
)


def is_place(np: str) -> bool:
    """Does the noun phrase name a setting (its head is a place: "the old warehouse",
    "a beach with palm trees"), not an object that merely mentions one?"""
    if "'" in np or '"' in np:  # quoted text ("the text 'cafe'") names no setting
        return False
    np = clean_np(np)
    if re.search(r"\b(?:text|word|words|sign|label|writing|letters|caption|title|logo)\b", np):
        return False  # "the text cafe": the words on a sign, not a place
    place = scene_in(np)
    if not place or place in _THING_LIKE_PLACES:
        return False
    return bool(re.search(rf"\b{re.escape(place)}s?$", np))


def backdrop_behind(tail: str) -> bool:
    """ "in front of a brick wall": the subject is placed before a backdrop or scene."""
    m = re.match(r"^(?:\w+ing\s+)?(?P<p>in front of|against)\s+(?P<b>.+)$", tail)
    if m and m.group("p") == "against" and is_definite(m.group("b")):
        return False  # "set the table against the wall": moved within the picture
    return bool(m) and bool(scene_in(m.group("b")) or find_phrase(m.group("b"), lex.BACKDROP_NOUNS))


def is_adjectival(words: list[str]) -> bool:
    vocab = lex.COLORS | lex.MATERIALS | lex.ADJECTIVES | lex.GLOBAL_ADJECTIVES
    return bool(words) and all(
        w in vocab
        or w in ("and", "or", "with", "more", "less", "very", "really", "too")
        or w.endswith(("ish", "ful", "ous", "ic", "ed", "ier", "est"))
        and len(w) > 4
        for w in words
    )


def gerund(verb: str) -> str:
    if verb.endswith("ing"):
        return verb
    if verb in ("sit", "run", "swim", "get", "put", "cut", "hit", "spin", "shop"):
        return verb + verb[-1] + "ing"
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and verb not in ("be", "see", "flee"):
        return verb[:-1] + "ing"
    return verb + "ing"


def strip_complement(comp: str) -> str:
    """Drop the linking words in front of a complement ("to be", "into", "look like")."""
    c = comp.strip()
    c = re.sub(
        r"^(?:to be|to|into|be|being|become|becomes|look like|looks like|look|"
        r"like|as|with|for|by|so that it is|so it is|so it looks like|"
        r"so that it looks like)\s+",
        "",
        c,
    )
    c = re.sub(r"\s+(?:instead|now|too|please|again)$", "", c)
    c = re.sub(r"^(?:instead of \w+ )", "", c)
    c = re.sub(r"^(?:all|totally|completely|entirely)\s+", "", c)
    return c.strip()


def split_object_complement(rest: str) -> tuple[str, str]:
    """ "the blue square green" -> ("the blue square", "green"); "the dog a wolf"."""
    words = rest.split()
    if not words:
        return "", ""
    if (
        words[0] in ("it", "this", "that", "him", "her", "them", "everything", "everyone")
        and len(words) > 1
        and not (words[0] == "her" and len(words) > 2 and words[1] not in lex.INDEFINITE)
    ):
        return words[0], " ".join(words[1:])
    m = re.match(r"^(?P<o>.+?)\s+(?P<c>(?:made|built|carved) (?:of|from|out of)\s+.+)$", rest)
    if m:  # "the table made of wood"
        return m.group("o"), m.group("c")
    # "the image high contrast", "the background plain white": a whole-image or background
    # noun phrase in front fixes the split
    for k in range(min(4, len(words) - 1), 0, -1):
        if words[k] in PREPOSITIONS or words[k] == "of":
            continue
        if (
            any(w in ("a", "an") for w in words[1:k])
            or words[k - 1] in lex.DETERMINERS
            or words[k - 1] in PREPOSITIONS
        ):
            continue
        if np_kind(clean_np(" ".join(words[:k]))) in ("image", "background", "global", "time"):
            return " ".join(words[:k]), " ".join(words[k:])
    for i in range(1, len(words)):
        if words[i] in ("a", "an"):  # "the dog a wolf": the article opens the complement
            return " ".join(words[:i]), " ".join(words[i:])
    # longest contiguous adjectival suffix that leaves a noun phrase in front
    start = len(words)
    for i in range(len(words) - 1, 0, -1):
        if not is_adjectival(words[i:]) or not clean_np(" ".join(words[:i])):
            break
        last = words[i - 1]
        noun_material = (
            words[i] in lex.MATERIALS
            and words[i] not in lex.ADJECTIVES
            and i < len(words) - 1
            and words[i + 1] not in ("and", "or")
        )
        if noun_material:  # "the sheep's wool pink": wool is the object, not a complement
            break
        if (
            last not in ("and", "or", "more", "less", "very")
            and last not in lex.COLORS
            and last not in lex.ADJECTIVES
        ):
            start = i
    if start < len(words):
        return " ".join(words[:start]), " ".join(words[start:])
    if len(words) >= 4 and words[-2] in ("and", "or") and is_adjectival([words[-3]]):
        # "the bananas green and unripe": an unknown word coordinated with an adjective
        o, c2 = split_object_complement(" ".join(words[:-2]))
        if o and c2:
            return o, f"{c2} {words[-2]} {words[-1]}"
    if len(words) >= 2:
        return " ".join(words[:-1]), words[-1]
    return rest, ""


def anchor_from(tail: str) -> str:
    """Subject named in "behind the woman", "around the dog", "of the cat"."""
    m = re.search(
        r"\b(?:behind|around|of|from|surrounding|near|except(?: for)?|apart from|other than|"
        r"but)\s+(?P<s>.+)$",
        tail,
    )
    if not m:
        return ""
    s = clean_np(split_np(m.group("s"))[0])
    return "" if np_kind(s) in ("image", "background", "none") else s


def place_of(tail: str) -> str:
    """The scene in "on a beach", "in front of the eiffel tower" -> "a beach"."""
    t = re.sub(
        r"^(?:\w+ing )?(?:in front of|on top of|next to|inside|in|on|at|into|to|against|"
        r"under|near|by|among|onto|through|across|along|over|around)\s+",
        "",
        tail.strip(),
    )
    t = re.sub(r"\s+(?:instead|now)$", "", t)
    return t


def locative_tail(text: str) -> str:
    """The first locative phrase inside ``text`` ("fly in the sky" -> "in the sky")."""
    m = re.search(
        r"\b(?:in|on|at|next to|beside|near|above|under|below|behind|over|inside)"
        r"\b.*$",
        text,
    )
    return m.group(0) if m else ""
