"""What the removal frame's slots make of a removal, as a decision table (the removal
frame's surface rows are :data:`iiie.planners.rules_table.REMOVE_PATTERNS`).

"remove the lamp" removes an object; "remove the yellow cast" is an image artefact (global);
"remove the colour from the car" edits the car (local); "remove the background behind the
woman" keeps the woman (background).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from iiie.planners import rules_lexicon as lex
from iiie.planners.rules_table import Decision
from iiie.planners.rules_tables_change import bg_subject
from iiie.planners.rules_text import clean_np, np_head, np_kind, split_np
from iiie.types import Category


@dataclass
class RemoveSlots:
    """A removal's slots: the verb and what goes (raw: "the color from the car")."""

    verb: str
    obj_raw: str
    obj: str = field(init=False)
    tail: str = field(init=False)
    kind: str = field(init=False)
    artifact: bool = field(init=False)

    def __post_init__(self) -> None:
        np_text, self.tail = split_np(self.obj_raw)
        self.obj = clean_np(np_text)
        self.kind = np_kind(self.obj)
        self.artifact = (self.kind == "global" or self.obj in lex.ARTIFACTS
                         or np_head(self.obj) in ("cast", "tint", "noise", "grain"))

    def bearer(self) -> str:
        """The thing in "from/on/of/off the car" after the removed attribute, if any."""
        m = re.match(r"^(?:from|on|of|off)\s+(?P<t>.+)$", self.tail)
        thing = clean_np(split_np(m.group("t"))[0]) if m else ""
        return thing if thing and np_kind(thing) == "thing" else ""


_ON = r"^(?:on|in|from|off|inside|under|near)\s"

#: a removal's category from its slots, in order; the last row always holds
REMOVE_DECISIONS: tuple[Decision, ...] = (
    # "remove the color from the car": an edit of the car, not of the picture
    Decision("attribute-of-thing", Category.LOCAL, "remove_attribute",
             lambda s: s.artifact and s.bearer(),
             lambda s: dict(obj=s.bearer(), comp=f"without {s.obj}", verb=s.verb,
                            cues=[f"attribute:{s.obj}"]),
             (("remove the color from the car", "car"),)),
    Decision("artifact", Category.GLOBAL, "remove_artifact", lambda s: s.artifact,
             lambda s: dict(comp=s.obj, verb=s.verb, cues=[f"artifact:{s.obj}"]),
             (("remove the yellow cast", ""), ("remove the noise", ""))),
    Decision("background", Category.BACKGROUND, "remove_background",
             lambda s: s.kind == "background",
             lambda s: dict(obj=bg_subject(s.obj, s.tail), comp="", verb=s.verb,
                            cues=["background-noun"]),
             (("remove the background behind the woman", "woman"),)),
    # "remove everything on the table": the objects on it
    Decision("contents", Category.REMOVE, "remove_contents",
             lambda s: s.kind == "image" and re.match(_ON, s.tail),
             lambda s: dict(obj="objects on " + clean_np(split_np(re.sub(r"^\w+\s+", "", s.tail))[0]),
                            location=s.tail, verb=s.verb),
             (("remove everything on the table", "objects on table"),)),
    Decision("the-picture", Category.GLOBAL, "remove_image", lambda s: s.kind == "image",
             lambda s: dict(comp=s.obj, confidence="low"), (("remove the image", ""),)),
    Decision("object", Category.REMOVE, "remove", lambda s: True,
             lambda s: dict(obj=s.obj, location=s.tail, verb=s.verb),
             (("remove the lamp", "lamp"), ("delete the person on the left", "person"))),
)
