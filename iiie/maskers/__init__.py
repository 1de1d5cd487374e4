"""Step 3 backends: ``oracle`` (dataset annotations), ``grounded_sam`` (SAM or SAM 2), ``vlm_box``, ``sam3``."""
