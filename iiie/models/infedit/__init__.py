"""InfEdit (Xu et al., CVPR 2024) on current diffusers: DDCM sampling on an LCM SD1.5 UNet
with unified attention control and local blend. See :mod:`.pipeline` for the entry point."""

from iiie.models.infedit.aligner import AlignmentError, TokenAlignment, align_captions
from iiie.models.infedit.blend import LocalBlend
from iiie.models.infedit.control import UnifiedAttentionControl, controlled_attention
from iiie.models.infedit.ddcm import ddcm_step
from iiie.models.infedit.pipeline import (
    MODEL_FILES,
    InfEditNoise,
    InfEditPipeline,
    InfEditPipelineOutput,
    InfEditSettings,
)

__all__ = [
    "MODEL_FILES", "AlignmentError", "InfEditNoise", "InfEditPipeline",
    "InfEditPipelineOutput", "InfEditSettings", "LocalBlend", "TokenAlignment", "UnifiedAttentionControl",
    "align_captions", "controlled_attention", "ddcm_step",
]
