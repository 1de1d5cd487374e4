"""Local blend: keep the target branch only where the edit words attend (InfEdit).

After each step ``i >= 1`` the blend rewrites the next target latent from three sources:
the target branch ``x_t``, the mutual branch ``x_m`` and the source branch ``x_s``, using
masks built from the cross-attention maps summed over the steps so far
(:attr:`UnifiedAttentionControl.store`, rows ``[refine(A_source), refine(A_mutual)]``):

* ``mask_e`` (local words, mutual-branch maps, threshold ``max(T / sqrt(a_t), thresh_e)``):
  ``x_t <- where(mask_e, x_t, x_m)`` when any local word is set;
* ``mask_m`` (mutual-only words, source-branch maps, ``thresh_m``):
  ``x_t <- where(mask_m, x_s, x_t)``;
* ``mask_me`` (words both local and mutual, mutual-branch maps, ``thresh_e``): only at the
  second-to-last step, ``x_t <- where(mask_me, x_m, x_t)``.

Each mask: weight the maps by the word indicator, keep tokens ``1 .. target_len - 2``, mean
over layers and heads, max over tokens, nearest-upsample to the latent, divide by the
spatial max, compare with the threshold. An empty word set gives a NaN map (0/0) and an
empty mask, as in the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def level_size(size: int, level: int) -> int:
    """Spatial size after ``level`` stride-2 convolutions (kernel 3, padding 1)."""
    for _ in range(level):
        size = (size + 1) // 2
    return size


MaskHook = Callable[[int, str, torch.Tensor, torch.Tensor, torch.Tensor | float], torch.Tensor]


@dataclass
class LocalBlend:
    """Blend configuration and the word indicators of one edit (77-long float vectors)."""

    alpha_e: torch.Tensor
    alpha_m: torch.Tensor
    target_len: int
    thresh_e: float = 0.3
    thresh_m: float = 0.3
    temperature: float = 0.15
    level: int = 2
    mask_hook: MaskHook | None = None  # (step, name, mask, map, thresh) -> mask; parity only
    trace: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def alpha_me(self) -> torch.Tensor:
        return (self.alpha_e.bool() & self.alpha_m.bool()).to(self.alpha_e.dtype)

    def stacked_maps(self, store: dict[str, torch.Tensor], order: list[str], latent_hw) -> torch.Tensor:
        """(2, layers*heads, 1, h, w, 77) from the stored blend layers, in call order."""
        h = level_size(latent_hw[0], self.level)
        w = level_size(latent_hw[1], self.level)
        if not order:
            raise ValueError(
                f"no cross-attention layers at level {self.level} (1/{2 ** self.level} of the "
                "latent) were stored; the UNet is too shallow for the local blend"
            )
        maps = []
        for name in order:
            item = store[name]
            if item.shape[-2] != h * w:
                raise ValueError(f"blend layer {name} has {item.shape[-2]} tokens, expected {h}x{w}")
            maps.append(item.reshape(2, -1, 1, h, w, item.shape[-1]))
        return torch.cat(maps, dim=1)

    def word_map(self, maps: torch.Tensor, words: torch.Tensor, latent_hw) -> torch.Tensor:
        """Normalised (1, 1, H, W) map of the given words (NaN when no word is set)."""
        words = words.to(maps.device, maps.dtype).reshape(1, 1, 1, 1, -1)
        m = maps * words
        m = m[:, :, :, :, 1: self.target_len - 1].mean(0, keepdim=True)
        m = m.max(-1)[0]
        m = F.interpolate(m, size=tuple(latent_hw))
        return m / m.max(2, keepdim=True)[0].max(3, keepdim=True)[0]

    def __call__(self, step: int, x_s, x_t, x_m, store, order, alpha_prod_t, use_xm: bool):
        """Return the blended next target latent (``x_m`` is left as is)."""
        hw = x_t.shape[2:]
        maps = self.stacked_maps(store, order, hw)
        maps_s, maps_m = maps[0], maps[1]
        thresh_e = self.temperature / alpha_prod_t ** 0.5
        if thresh_e < self.thresh_e:
            thresh_e = self.thresh_e
        specs = (
            ("mask_e", maps_m, self.alpha_e, thresh_e),
            ("mask_m", maps_s, self.alpha_m - self.alpha_me, self.thresh_m),
            ("mask_me", maps_m, self.alpha_me, self.thresh_e),
        )
        masks = {}
        for name, mp, words, thresh in specs:
            wmap = self.word_map(mp, words, hw)
            mask = wmap > thresh
            if self.mask_hook is not None:
                mask = self.mask_hook(step, name, mask, wmap, thresh)
            masks[name] = mask
            if self.trace is not None:
                self.trace[f"step{step}.blend.{name}"] = mask.to(torch.uint8)
                self.trace[f"step{step}.blend.{name}_map"] = wmap
                self.trace[f"step{step}.blend.{name}_thresh"] = torch.as_tensor(thresh).reshape(1)
        if self.trace is not None:
            self.trace[f"step{step}.blend.alpha_prod_t"] = torch.as_tensor(alpha_prod_t).reshape(1)
            self.trace[f"step{step}.blend.maps_s_mean"] = maps_s.mean(0)
            self.trace[f"step{step}.blend.maps_m_mean"] = maps_m.mean(0)
        out = x_t if self.alpha_e.sum() == 0 else torch.where(masks["mask_e"], x_t, x_m)
        out = torch.where(masks["mask_m"], x_s, out)
        if use_xm:
            out = torch.where(masks["mask_me"], x_m, out)
        return out
