"""Steps 1+2 backends: ``rules`` (no model), ``vlm`` (vLLM server), ``vlm_offline``."""
