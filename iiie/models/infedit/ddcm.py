"""One step of denoising diffusion consistent model (DDCM) sampling, as InfEdit defines it.

Two latents share the step: the source branch ``x_s`` (whose clean image ``x0`` is known)
and an edited branch ``x_e`` (target or mutual). Because ``x0`` is known, the noise that
``x_s`` carries is known too ("consistent noise") and no inversion is needed:

* ``e_c = (x_s - sqrt(a_t) x0) / sqrt(1 - a_t)``;
* calibrated edited x0: ``pred = x0 + ((x_e - x_s) - sqrt(1 - a_t) (e_e - e_s)) / sqrt(a_t)``
  -- the source image plus the difference between the branches, so identical noise
  predictions give back ``x0`` exactly;
* ``eps = (e_e - e_s) + e_c``, ``sigma^2 = eta (1 - a_p)``;
* ``x_e' = sqrt(a_p) pred + sqrt(1 - a_p - sigma^2) eps + sigma noise`` and
  ``x_s' = sqrt(a_p) x0 + sqrt(1 - a_p - sigma^2) eps + sigma noise`` (the same ``eps``, as
  in the reference code; with ``eta = 1`` its coefficient is exactly 0).

``a_p`` is ``alphas_cumprod`` at the next timestep, or at the same one on the last step.
With a one-step schedule the noise is unused and the step returns ``(x0, pred)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DDCMStep:
    x_s_next: torch.Tensor
    x_e_next: torch.Tensor
    pred_x0: torch.Tensor


def ddcm_step(
    alpha_prod_t: torch.Tensor,
    alpha_prod_prev: torch.Tensor,
    x_s: torch.Tensor,
    x_e: torch.Tensor,
    e_s: torch.Tensor,
    e_e: torch.Tensor,
    x0: torch.Tensor,
    noise: torch.Tensor,
    eta: float,
    single_step: bool = False,
) -> DDCMStep:
    """Advance ``(x_s, x_e)`` one step; see the module docstring for the formulas."""
    beta_prod_t = 1 - alpha_prod_t
    beta_prod_prev = 1 - alpha_prod_prev
    variance = eta * beta_prod_prev
    noise = variance ** 0.5 * noise
    e_c = (x_s - alpha_prod_t ** 0.5 * x0) / (1 - alpha_prod_t) ** 0.5
    pred_x0 = x0 + ((x_e - x_s) - beta_prod_t ** 0.5 * (e_e - e_s)) / alpha_prod_t ** 0.5
    eps = (e_e - e_s) + e_c
    dir_xt = (beta_prod_prev - variance) ** 0.5 * eps
    if single_step:
        return DDCMStep(x0, pred_x0, pred_x0)
    x_e_next = alpha_prod_prev ** 0.5 * pred_x0 + dir_xt + noise
    x_s_next = alpha_prod_prev ** 0.5 * x0 + dir_xt + noise
    return DDCMStep(x_s_next, x_e_next, pred_x0)
