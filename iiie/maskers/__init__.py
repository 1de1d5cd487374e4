"""Step 3 backends: ``oracle`` (dataset annotations), ``grounded_sam``, ``vlm_box``."""
