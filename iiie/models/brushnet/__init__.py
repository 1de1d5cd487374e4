"""BrushNet (SD1.5; PowerPaint v2's BrushNet-CA uses the same classes) on current diffusers.

* :class:`~iiie.models.brushnet.model.BrushNetModel` — the branch; loads the official
  checkpoints strictly.
* :class:`~iiie.models.brushnet.unet.BrushNetUNet2DConditionModel` — the frozen UNet with
  add-samples.
* :class:`~iiie.models.brushnet.pipeline.BrushNetInpaintPipeline` — the inpainting pipeline.
"""

from iiie.models.brushnet.model import BrushNetModel, BrushNetOutput
from iiie.models.brushnet.unet import BrushNetUNet2DConditionModel

__all__ = ["BrushNetModel", "BrushNetOutput", "BrushNetUNet2DConditionModel"]
