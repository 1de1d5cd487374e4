"""``python -m iiie.edit image=IN.png output=OUT.png --instruction "..."``: one image, all
four steps. Prints the plan, writes the result and the mask (``OUT_mask.png``) next to it.

The instruction is taken verbatim, before Hydra parses the command line (whose override
grammar rejects apostrophes, commas, brackets and quotes): ``--instruction TEXT``,
``--instruction-file FILE`` (UTF-8 text), a single bare sentence, or ``instruction=TEXT``
anywhere on the line are all accepted. An edit that changed nothing is said so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue
from PIL import Image

from iiie.errors import IIIEError
from iiie.imageio import load_image
from iiie.masks import image_to_mask, mask_to_image
from iiie.pipeline.runner import build, check_routes
from iiie.protocols import first_plan
from iiie.run import run_prepare
from iiie.seeding import sample_seed
from iiie.types import Category, EditRequest, EditResult, MaskResult, Plan, mark_noop
from iiie.weights import MissingWeightsError

USAGE = ('usage: python -m iiie.edit image=IN.png output=OUT.png --instruction "..." '
         '[--instruction-file FILE] [mask=MASK.png] [overrides]')

#: The instruction taken off the command line before Hydra saw it (see :func:`take_instruction`).
_VERBATIM: dict[str, str] = {}


class UsageError(ValueError):
    """A command line that cannot be read; printed with the usage line, exit code 2."""


def take_instruction(argv: list[str]) -> tuple[list[str], str | None]:
    """Split the instruction off ``argv`` verbatim; return (the rest for Hydra, the text).

    Accepted: ``--instruction TEXT`` / ``--instruction=TEXT``, ``--instruction-file FILE``
    / ``--instruction-file=FILE``, ``instruction=TEXT`` (taken whole, so "let's see it in
    winter, please" needs no Hydra quoting) and one bare argument that is no override
    (no ``=``, not an option). Giving it twice is a :class:`UsageError`.
    """
    rest: list[str] = []
    found: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, eq, value = arg.partition("=")
        if flag in ("--instruction", "--instruction-file"):
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"{flag} needs a value")
                i += 1
                value = argv[i]
            if flag == "--instruction-file":
                path = Path(value).expanduser()
                if not path.is_file():
                    raise UsageError(f"instruction file not found: {path}")
                value = path.read_text(encoding="utf-8").strip()
            found.append(value)
        elif flag == "instruction" and eq:
            found.append(value)
        elif not eq and not arg.startswith(("-", "+", "~")) and rest[-1:] not in (["-m"],):
            found.append(arg)  # a bare sentence: Hydra would reject it as an override
        else:
            rest.append(arg)
        i += 1
    if len(found) > 1:
        raise UsageError("the instruction was given more than once: " + " | ".join(map(repr, found)))
    return rest, (found[0] if found else None)


def edit_one(cfg: DictConfig, image: Image.Image, instruction: str, mask_path: str | None = None,
             sample_id: str = "image") -> tuple[Plan, MaskResult, EditResult]:
    """Run plan -> mask -> edit for one image with the composed config's components."""
    check_routes(cfg)
    run_prepare(cfg)
    request = EditRequest(sample_id, image, instruction)
    plan = first_plan(build("planner", cfg.planner).plan_batch([request]))
    if mask_path:
        given = load_image(mask_path)
        reason = None
        if given.size != image.size:
            (mw, mh), (iw, ih) = given.size, image.size
            if abs(mw / mh - iw / ih) > 0.02 * (iw / ih):
                raise IIIEError(f"mask {mask_path} is {mw}x{mh} but the image is {iw}x{ih}: "
                                "their shapes differ, so the mask cannot be scaled onto the image")
            given = given.resize(image.size, Image.NEAREST)
            reason = f"the mask ({mw}x{mh}) was resized to the image's {iw}x{ih}"
        mask = MaskResult(image_to_mask(given), source=f"file:{mask_path}", reason=reason)
    else:
        mask = build("masker", cfg.masker).mask_batch([request], [plan])[0]
    route = f"editor.{plan.category.value}"
    editor = build(route, cfg.editor[plan.category.value])
    seed = sample_seed(int(cfg.seed), sample_id)
    result = mark_noop(image, editor.edit_batch([request], [plan], [mask], [seed])[0])
    return plan, mask, result


def warnings_for(plan: Plan, mask: MaskResult, result: EditResult | None = None) -> list[str]:
    """What a user should know about a result that may not be what they expect.

    A no-op edit (``result.noop``: the output equals the input) is said first and
    replaces the "whole image was edited" note, which would be false then.
    """
    notes = []
    noop = result is not None and result.noop
    if noop:
        notes.append(f"nothing was edited: {result.noop_reason or 'the output equals the input'}")
    if mask.reason:
        notes.append(f"mask: {mask.reason}; used {mask.source}")
    if mask.source.startswith("fallback:full") and plan.category is not Category.GLOBAL and not noop:
        notes.append("the whole image was edited: give `mask=MASK.png` or use a detector "
                     "(`masker=grounded_sam`, needs weights) to edit only the object")
    if not mask.mask.any() and not noop:
        notes.append("the mask is empty: the output equals the input")
    return notes


def _instruction(cfg: DictConfig) -> str:
    """The verbatim instruction, else ``instruction_file=``, else ``cfg.instruction``."""
    if "text" in _VERBATIM:
        return _VERBATIM["text"]
    if cfg.get("instruction_file"):
        path = Path(str(cfg.instruction_file)).expanduser()
        if not path.is_file():
            raise UsageError(f"instruction file not found: {path}")
        return path.read_text(encoding="utf-8").strip()
    return str(cfg.instruction)


@hydra.main(version_base="1.3", config_path="../conf", config_name="edit")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        out = Path(cfg.output)
        image_path, instruction = cfg.image, _instruction(cfg)
    except MissingMandatoryValue as exc:
        hint = ": give --instruction TEXT" if exc.full_key == "instruction" else ""
        print(f"error: {exc.full_key} is required{hint}\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    except UsageError as exc:
        print(f"error: {exc}\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"):
        print(f"error: output={out} needs an image extension such as .png", file=sys.stderr)
        sys.exit(2)
    try:
        image = load_image(image_path)
        plan, mask, result = edit_one(cfg, image, instruction, cfg.get("mask"))
    except (IIIEError, MissingWeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(out)
    mask_out = out.with_name(f"{out.stem}_mask.png")
    mask_to_image(mask.mask).save(mask_out)
    shown = {k: v for k, v in plan.to_dict().items() if k != "raw"}
    print(json.dumps({"plan": shown, "mask": {"source": mask.source, "area": round(mask.area, 4), "reason": mask.reason},
                      "editor": result.editor, "params": result.params, "seed": result.seed, "noop": result.noop}, indent=1, default=str))
    for note in warnings_for(plan, mask, result):
        print(f"warning: {note}", file=sys.stderr)
    print(f"wrote {out} and {mask_out}")


def main(argv: list[str] | None = None) -> None:
    """Take the instruction off the command line verbatim, then let Hydra parse the rest."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        rest, text = take_instruction(argv)
    except UsageError as exc:
        print(f"error: {exc}\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    if text is not None:
        _VERBATIM["text"] = text
    sys.argv = [sys.argv[0], *rest]
    _hydra_main()


if __name__ == "__main__":
    main()
