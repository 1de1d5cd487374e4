"""``masker=none``: end-to-end editors find their own region, so no model is asked.

Every plan gets the whole image as its mask (an end-to-end editor ignores it; the mask
metrics then read "whole image" honestly instead of a made-up region).
``calls_model = False`` makes the stage engine count 0 masker calls in the manifest.
"""

from __future__ import annotations

from iiie import masks as M
from iiie.protocols import BaseMasker
from iiie.types import EditRequest, MaskResult, Plan


class NoneMasker(BaseMasker):
    """The whole image, no model call."""

    name = "none"
    calls_model = False

    def mask(self, request: EditRequest, plan: Plan) -> MaskResult:
        return MaskResult(M.full_mask(request.size), source="none:full-image")
