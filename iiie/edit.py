"""``python -m iiie.edit image=IN.png instruction="..." output=OUT.png``: one image, all
four steps. Prints the plan, writes the result and the mask (``OUT_mask.png``) next to it.
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
from iiie.types import Category, EditRequest, EditResult, MaskResult, Plan
from iiie.weights import MissingWeightsError

USAGE = 'usage: python -m iiie.edit image=IN.png instruction="..." output=OUT.png [mask=MASK.png] [overrides]'


def edit_one(cfg: DictConfig, image: Image.Image, instruction: str, mask_path: str | None = None,
             sample_id: str = "image") -> tuple[Plan, MaskResult, EditResult]:
    """Run plan -> mask -> edit for one image with the composed config's components."""
    check_routes(cfg)
    run_prepare(cfg)
    request = EditRequest(sample_id, image, instruction)
    plan = first_plan(build("planner", cfg.planner).plan_batch([request]))
    if mask_path:
        given = load_image(mask_path)
        if given.size != image.size:
            given = given.resize(image.size, Image.NEAREST)
        mask = MaskResult(image_to_mask(given), source=f"file:{mask_path}")
    else:
        mask = build("masker", cfg.masker).mask_batch([request], [plan])[0]
    route = f"editor.{plan.category.value}"
    editor = build(route, cfg.editor[plan.category.value])
    seed = sample_seed(int(cfg.seed), sample_id)
    result = editor.edit_batch([request], [plan], [mask], [seed])[0]
    return plan, mask, result


def warnings_for(plan: Plan, mask: MaskResult) -> list[str]:
    """What a user should know about a result that may not be what they expect."""
    notes = []
    if mask.reason:
        notes.append(f"mask: {mask.reason}; used {mask.source}")
    if mask.source.startswith("fallback:full") and plan.category is not Category.GLOBAL:
        notes.append("the whole image was edited: give `mask=MASK.png` or use a detector "
                     "(`masker=grounded_sam`, needs weights) to edit only the object")
    if not mask.mask.any():
        notes.append("the mask is empty: the output equals the input")
    return notes


@hydra.main(version_base="1.3", config_path="../conf", config_name="edit")
def main(cfg: DictConfig) -> None:
    try:
        out = Path(cfg.output)
        image_path, instruction = cfg.image, str(cfg.instruction)
    except MissingMandatoryValue as exc:
        print(f"error: {exc.full_key} is required\n{USAGE}", file=sys.stderr)
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
                      "editor": result.editor, "params": result.params, "seed": result.seed}, indent=1, default=str))
    for note in warnings_for(plan, mask):
        print(f"warning: {note}", file=sys.stderr)
    print(f"wrote {out} and {mask_out}")


if __name__ == "__main__":
    main()
