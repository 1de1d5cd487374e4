"""Prompt sets as files: ``conf/prompts/<version>/`` holds one text file per question and
one YAML manifest per strategy.

A manifest lists the turns: ``first`` (asked of every sample) and ``followups`` per
category (asked once the category is known). Each turn names its prompt file and the
reply fields its schema requires::

    system: system.txt
    repair: repair.txt
    first:
      - {name: category, prompt: category.txt, fields: [category]}
    followups:
      remove:
        - {name: object, prompt: remove_object.txt, fields: [object]}

A turn marked ``grounding: true`` is asked only with ``planner.ground_objects=true``, one
marked ``grounding: false`` only without it (unmarked: always). That is how a prompt set
asks for the edited object's box (``object_box``, for ``masker=vlm_box``) only when a run
needs it: an extra follow-up in ``multi_turn``, a second variant of the one turn in
``single_call``. A turn asking for ``object_box`` must be marked ``grounding: true``.

Prompt files are ``string.Template`` text: ``$instruction``, ``$width``/``$height`` (the
image as the model sees it), ``$box_hint`` (the coordinate convention in words) and any
field answered in an earlier turn (``$category``, ``$object``, ...). ``repair.txt`` also
gets ``$error`` and ``$schema``. Unknown placeholders fail at load time, not mid-run.

Edit a prompt -> copy the folder to a new version, so cached plans keyed on
``planner.prompt_version`` never mix two wordings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml

from iiie.types import Category
from iiie.vlm.schema import FIELDS, NEEDED, OPTIONAL_FIELDS, check_fields

STRATEGIES = ("multi_turn", "single_call")
CONTEXT_KEYS = frozenset({"instruction", "width", "height", "box_hint", *FIELDS})
REPAIR_KEYS = CONTEXT_KEYS | {"error", "schema"}


def default_prompts_dir() -> Path:
    """``conf/prompts`` next to the ``iiie`` package (the repository layout)."""
    return Path(__file__).resolve().parents[2] / "conf" / "prompts"


@dataclass(frozen=True)
class Turn:
    """One question: its name (used as the schema name), template, and required fields."""

    name: str
    template: Template
    fields: tuple[str, ...]
    #: ``True``: asked only with ``ground_objects``; ``False``: only without; ``None``: always
    grounding: bool | None = None

    @property
    def optional(self) -> bool:
        """Asks only for fields a plan can do without: its failure does not fail the plan."""
        return set(self.fields) <= OPTIONAL_FIELDS

    def render(self, context: dict[str, Any]) -> str:
        return self.template.substitute(_text_context(context))


@dataclass(frozen=True)
class PromptSet:
    version: str
    strategy: str
    system: str
    repair: Template
    first: tuple[Turn, ...]
    followups: dict[Category, tuple[Turn, ...]] = field(default_factory=dict)
    sha: str = ""
    #: whether the grounding turns were kept (``planner.ground_objects``)
    ground_objects: bool = False

    @property
    def asks_object_box(self) -> bool:
        """Whether some turn asks for ``object_box`` (for any category)."""
        turns = [*self.first, *(t for ts in self.followups.values() for t in ts)]
        return any("object_box" in t.fields for t in turns)

    def turns_after(self, category: Category) -> tuple[Turn, ...]:
        return self.followups.get(category, ())

    def render_repair(self, context: dict[str, Any], error: str, schema: str) -> str:
        return self.repair.substitute(_text_context(context), error=error, schema=schema)


def _text_context(context: dict[str, Any]) -> dict[str, str]:
    out = {k: "" for k in CONTEXT_KEYS}
    for key, value in context.items():
        if isinstance(value, Category):
            value = value.value
        out[key] = "" if value is None else str(value)
    return out


def _template(path: Path, allowed: frozenset[str]) -> Template:
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    template = Template(path.read_text(encoding="utf-8").strip())
    if not template.is_valid():
        raise ValueError(f"prompt file {path} has a malformed $placeholder (write $$ for $)")
    unknown = set(template.get_identifiers()) - allowed
    if unknown:
        raise ValueError(
            f"prompt file {path} uses unknown placeholders {sorted(unknown)}; "
            f"available: {sorted(allowed)}"
        )
    return template


def _turns(folder: Path, items: Any, where: str, ground_objects: bool) -> tuple[Turn, ...]:
    """The turns of one manifest list, keeping those ``ground_objects`` selects."""
    if not isinstance(items, list) or not items:
        raise ValueError(f"{where}: expected a non-empty list of turns")
    turns = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"prompt", "fields"} <= set(item):
            raise ValueError(f"{where}[{i}]: a turn needs `prompt` and `fields`")
        fields = check_fields(item["fields"])
        name = str(item.get("name") or Path(item["prompt"]).stem)
        grounding = item.get("grounding")
        if grounding not in (None, True, False):
            raise ValueError(f"{where}[{i}]: `grounding` must be true or false, got {grounding!r}")
        if "object_box" in fields and grounding is not True:
            raise ValueError(
                f"{where}[{i}]: a turn asking for object_box must be marked `grounding: true` "
                "(it is asked only with planner.ground_objects=true)"
            )
        template = _template(folder / item["prompt"], CONTEXT_KEYS)  # checked either way
        if grounding is None or grounding == ground_objects:
            turns.append(Turn(name, template, fields, grounding))
    if not turns:
        raise ValueError(f"{where}: no turn is left with planner.ground_objects={ground_objects}")
    return tuple(turns)


def load_prompts(
    strategy: str = "multi_turn",
    version: str = "v2",
    root: str | Path | None = None,
    ground_objects: bool = True,
) -> PromptSet:
    """Load and check the prompt set ``root/version/strategy.yaml``; ``ground_objects``
    keeps the turns marked ``grounding: true`` (else those marked ``false``)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown planner.strategy {strategy!r}; expected one of {STRATEGIES}")
    folder = Path(root) if root else default_prompts_dir()
    folder = folder / str(version)
    manifest_path = folder / f"{strategy}.yaml"
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"prompt manifest not found: {manifest_path} (planner.prompt_version={version!r}, "
            f"planner.strategy={strategy!r})"
        )
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8")) or {}
    where = str(manifest_path)
    first = _turns(folder, manifest.get("first"), f"{where}: first", ground_objects)
    followups: dict[Category, tuple[Turn, ...]] = {}
    for name, items in (manifest.get("followups") or {}).items():
        followups[Category.parse(name)] = _turns(
            folder, items, f"{where}: followups.{name}", ground_objects
        )
    if "category" not in first[0].fields:
        raise ValueError(f"{where}: the first turn must ask for `category`")
    asked_first = {f for t in first for f in t.fields}
    for category in Category:
        asked = asked_first | {f for t in followups.get(category, ()) for f in t.fields}
        missing = sorted(NEEDED[category] - asked)
        if missing:
            raise ValueError(
                f"{where}: no turn asks for {missing}, which a {category.value!r} plan needs"
            )
    system = ""
    if manifest.get("system"):
        system = (folder / manifest["system"]).read_text(encoding="utf-8").strip()
    repair = _template(folder / manifest.get("repair", "repair.txt"), REPAIR_KEYS)
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return PromptSet(
        version=str(version),
        strategy=strategy,
        system=system,
        repair=repair,
        first=first,
        followups=followups,
        sha=digest.hexdigest()[:12],
        ground_objects=bool(ground_objects),
    )
