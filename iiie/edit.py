"""``python -m iiie.edit image=IN.png instruction="..." output=OUT.png``: one image, all
four steps. Prints the plan, writes the result and the mask (``OUT_mask.png``) next to it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image

from iiie.errors import IIIEError
from iiie.imageio import load_image
from iiie.masks import image_to_mask, mask_to_image
from iiie.seeding import sample_seed
from iiie.types import EditRequest, EditResult, MaskResult, Plan


def edit_one(cfg: DictConfig, image: Image.Image, instruction: str, mask_path: str | None = None,
             sample_id: str = "image") -> tuple[Plan, MaskResult, EditResult]:
    """Run plan -> mask -> edit for one image with the composed config's components."""
    request = EditRequest(sample_id, image, instruction)
    planner = instantiate(cfg.planner, _convert_="all")
    plan = planner.plan_batch([request])[0]
    if mask_path:
        given = load_image(mask_path)
        if given.size != image.size:
            given = given.resize(image.size, Image.NEAREST)
        mask = MaskResult(image_to_mask(given), source=f"file:{mask_path}")
    else:
        masker = instantiate(cfg.masker, _convert_="all")
        mask = masker.mask_batch([request], [plan])[0]
    editor = instantiate(cfg.editor[plan.category.value], _convert_="all")
    seed = sample_seed(int(cfg.seed), sample_id)
    result = editor.edit_batch([request], [plan], [mask], [seed])[0]
    return plan, mask, result


@hydra.main(version_base="1.3", config_path="../conf", config_name="edit")
def main(cfg: DictConfig) -> None:
    try:
        image = load_image(cfg.image)
        plan, mask, result = edit_one(cfg, image, str(cfg.instruction), cfg.get("mask"))
    except IIIEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(out)
    mask_out = out.with_name(f"{out.stem}_mask.png")
    mask_to_image(mask.mask).save(mask_out)
    shown = {k: v for k, v in plan.to_dict().items() if k != "raw"}
    print(json.dumps({"plan": shown, "mask": {"source": mask.source, "area": round(mask.area, 4), "reason": mask.reason},
                      "editor": result.editor, "params": result.params, "seed": result.seed}, indent=1, default=str))
    print(f"wrote {out} and {mask_out}")


if __name__ == "__main__":
    main()
