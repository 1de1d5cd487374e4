"""Step 4 backends, one per category route: ``classical`` (OpenCV), ``brushnet``,
``powerpaint``, ``infedit``, ``instructpix2pix``; the end-to-end comparison rows
``ledits_pp``, ``flux_kontext``, ``qwen_image_edit``."""
