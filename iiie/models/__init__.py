"""Diffusion model code (BrushNet, PowerPaint v2, InfEdit) on current diffusers."""
