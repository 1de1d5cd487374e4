"""iiie: an on-premise reproduction of IIIE (instruction-guided image editing with
inpainting models, a VLM planner and Grounded-SAM masks).

The public contract lives in :mod:`iiie.types` (records and the category enum) and
:mod:`iiie.protocols` (one small protocol per step). See ``docs/DESIGN.md`` for the map.
"""

from iiie.types import Category, EditRequest, EditResult, MaskResult, Plan

__all__ = ["Category", "EditRequest", "EditResult", "MaskResult", "Plan"]
__version__ = "0.1.0"
