"""Step 4 backends, one per category route: ``classical`` (OpenCV), ``brushnet``,
``powerpaint``, ``infedit``, ``instructpix2pix``."""
