"""Unified attention control (InfEdit) as diffusers attention processors.

The UNet runs one batch per step with rows ``[source, target, mutual]`` per sample
(``[s_1, t_1, m_1, s_2, ...]``; twice when classifier-free guidance is on, the unconditional
block first). :class:`UnifiedAttentionControl`
holds the per-edit state; :class:`ControlledAttnProcessor` instances are installed on each
``Attention`` module of the UNet with :func:`controlled_attention`, a context manager that
restores the previous processors afterwards (nothing global is patched).

Self-attention, every layer, each half (step fraction ``frac = (step + start + 1) / N``):

* ``self_replace_steps <= frac`` -- mutual self-attention: q = [q_s, q_t, q_t],
  k = [k_s, k_t, k_s], v = [v_s, v_t, v_s] (the mutual row reads the source's keys/values);
* otherwise -- source injection: q = k = source for every row, v = [v_s, v_t, v_s].

Cross-attention, conditional half only, every layer: with ``refine(A) = A[..., mapper] *
alphas + A_target * (1 - alphas)``, the target row is replaced while
``cross_replace_steps >= frac`` by ``refine(A_source)`` (variant ``source``, the reference
app) or ``refine(A_mutual)`` (variant ``mutual``, the reference PIE-Bench script). The pair
``[refine(A_source), refine(A_mutual)]`` of the blend layers is summed over steps into
:attr:`UnifiedAttentionControl.store` for the local blend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

REPLACE_VARIANTS = ("source", "mutual")


@dataclass
class LayerInfo:
    """Where an attention module sits: block place, name, self/cross and resolution level."""

    name: str
    place: str  # "down" | "mid" | "up"
    is_cross: bool
    level: int  # number of 2x downsamplings between the latent and this layer


@dataclass
class UnifiedAttentionControl:
    """State of one (batched) edit: schedules, token mapping, accumulated cross-attention.

    ``mapper``/``alphas`` come from :mod:`.aligner`, one row per sample ((B, 77) or (77,)).
    ``store`` maps each blend layer to the per-sample sum over steps of
    ``[refine(A_source), refine(A_mutual)]``, shape (B, 2 * heads, tokens, 77). ``blend_level`` selects which
    cross-attention layers are stored for the local blend (level 2 = 1/4 of the latent, the
    layers the reference uses in SD1.5). ``enabled=False`` makes every processor behave like
    the stock one (used to check that control off equals plain DDCM sampling).
    """

    mapper: torch.Tensor
    alphas: torch.Tensor
    num_steps: int
    start_steps: int = 0
    cross_replace_steps: float = 0.7
    self_replace_steps: float = 0.3
    replace_with: str = "source"
    blend_level: int | None = 2
    enabled: bool = True
    step: int = 0
    cfg: bool = True
    store: dict[str, torch.Tensor] = field(default_factory=dict)
    store_order: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.replace_with not in REPLACE_VARIANTS:
            raise ValueError(
                f"replace_with must be one of {REPLACE_VARIANTS}, got {self.replace_with!r}"
            )
        if self.num_steps < 1:
            raise ValueError("num_steps must be >= 1")
        # one row per sample of the batch
        self.mapper = self.mapper.reshape(-1, self.mapper.shape[-1])
        self.alphas = self.alphas.reshape(-1, self.alphas.shape[-1])
        if self.mapper.shape != self.alphas.shape:
            raise ValueError(f"mapper {tuple(self.mapper.shape)} and alphas {tuple(self.alphas.shape)} differ")

    @property
    def batch(self) -> int:
        return self.mapper.shape[0]

    @property
    def frac(self) -> float:
        return (self.step + self.start_steps + 1) * 1.0 / self.num_steps

    @property
    def mutual_self_attention(self) -> bool:
        return self.self_replace_steps <= self.frac

    @property
    def cross_replace_active(self) -> bool:
        return self.cross_replace_steps >= self.frac

    def begin_step(self, step: int) -> None:
        """Called by the sampler before the UNet call of step ``step`` (0-based)."""
        self.step = step

    # -- self-attention -----------------------------------------------------------------
    def rearrange_self(self, q, k, v, heads: int):
        """Reorder q/k/v rows of each [source, target, mutual] group (see module doc)."""
        groups = q.shape[0] // (3 * heads)
        if groups * 3 * heads != q.shape[0]:
            raise ValueError(f"self-attention batch {q.shape[0]} is not 3 x {heads} heads x n")
        mutual = self.mutual_self_attention
        qs, ks, vs = [], [], []
        for g in range(groups):
            o = g * 3 * heads
            s, t, m = (slice(o + r * heads, o + (r + 1) * heads) for r in range(3))
            if mutual:
                qs += [q[s], q[t], q[t]]
                ks += [k[s], k[t], k[s]]
            else:
                qs += [q[s], q[s], q[s]]
                ks += [k[s], k[s], k[s]]
            vs += [v[s], v[t], v[s]]
        return torch.cat(qs), torch.cat(ks), torch.cat(vs)

    # -- cross-attention ----------------------------------------------------------------
    def refine(self, attn: torch.Tensor, attn_target: torch.Tensor, b: int) -> torch.Tensor:
        """``A[..., mapper] * alphas + A_target * (1 - alphas)`` for sample ``b``."""
        alphas = self.alphas[b].to(attn.dtype)
        mapped = attn[:, :, self.mapper[b].to(attn.device)]
        return mapped * alphas + attn_target * (1 - alphas)

    def edit_cross(self, probs: torch.Tensor, heads: int, layer: LayerInfo) -> torch.Tensor:
        """Apply refinement/replacement to the conditional rows and store blend maps."""
        n = self.batch
        rows = probs.shape[0] // heads
        expected = 3 * n * (2 if self.cfg else 1)
        if rows != expected:
            raise ValueError(f"expected {expected} rows per cross-attention call, got {rows}")
        offset = 3 * n * heads if self.cfg else 0  # the conditional block
        replace = self.cross_replace_active
        store = self.blend_level is not None and layer.level == self.blend_level and layer.place != "mid"
        if replace:
            probs = probs.clone()
        pairs = []
        for b in range(n):
            o = offset + 3 * b * heads
            src, tgt, mut = probs[o: o + heads], probs[o + heads: o + 2 * heads], probs[o + 2 * heads: o + 3 * heads]
            base_store = self.refine(src, tgt, b)
            replace_new = self.refine(mut, tgt, b)
            if store:
                pairs.append(torch.cat([base_store, replace_new]))
            if replace:
                probs[o + heads: o + 2 * heads] = base_store if self.replace_with == "source" else replace_new
        if store:
            pair = torch.stack(pairs)
            if layer.name in self.store:
                self.store[layer.name] = self.store[layer.name] + pair
            else:
                self.store[layer.name] = pair
                self.store_order.append(layer.name)
        return probs

    def sample_store(self, b: int) -> dict[str, torch.Tensor]:
        """Sample ``b``'s summed maps per blend layer, each (2 * heads, tokens, 77)."""
        return {name: t[b] for name, t in self.store.items()}

    def reset_store(self) -> None:
        self.store.clear()
        self.store_order.clear()


def attention_probs(attn, q: torch.Tensor, k: torch.Tensor, mask=None) -> torch.Tensor:
    """Attention probabilities as diffusers' ``Attention.get_attention_scores`` gives them."""
    return attn.get_attention_scores(q, k, mask)


class ControlledAttnProcessor:
    """Drop-in replacement for diffusers' ``AttnProcessor`` that consults the controller.

    The attention itself is computed like the stock ``AttnProcessor`` (explicit
    probabilities), which the cross-attention needs anyway and which keeps the numbers
    close to the reference. ``fast_self=True`` uses ``scaled_dot_product_attention`` for
    self-attention instead (less memory at 512 px, results equal up to rounding).
    """

    def __init__(self, control: UnifiedAttentionControl, layer: LayerInfo, fast_self: bool = False):
        self.control = control
        self.layer = layer
        self.fast_self = fast_self

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        is_cross = encoder_hidden_states is not None
        batch_size, seq_len, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        q = attn.head_to_batch_dim(query)
        k = attn.head_to_batch_dim(key)
        v = attn.head_to_batch_dim(value)
        control = self.control
        if control.enabled and not is_cross:
            q, k, v = control.rearrange_self(q, k, v, attn.heads)
        if not is_cross and self.fast_self and attention_mask is None:
            out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale)
        else:
            probs = attention_probs(attn, q, k, attention_mask)
            if control.enabled and is_cross:
                probs = control.edit_cross(probs, attn.heads, self.layer)
            out = torch.bmm(probs, v)
        out = attn.batch_to_head_dim(out)
        out = attn.to_out[0](out)
        out = attn.to_out[1](out)
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def layer_infos(unet) -> dict[str, LayerInfo]:
    """Describe every attention processor slot of an SD-style ``UNet2DConditionModel``.

    The resolution level of ``down_blocks[i]`` is ``i``, of the mid block the number of
    down blocks minus one, and of ``up_blocks[j]`` ``len(up_blocks) - 1 - j`` (the UNet
    mirrors its down path), so blend layers can be chosen by resolution at any image size.
    """
    n_down = len(unet.down_blocks)
    n_up = len(unet.up_blocks)
    infos = {}
    for name in unet.attn_processors:
        parts = name.split(".")
        is_cross = ".attn2." in f".{name}" or name.split(".")[-2] == "attn2"
        if parts[0] == "down_blocks":
            place, level = "down", int(parts[1])
        elif parts[0] == "up_blocks":
            place, level = "up", n_up - 1 - int(parts[1])
        elif parts[0] == "mid_block":
            place, level = "mid", n_down - 1
        else:
            place, level = "other", -1
        infos[name] = LayerInfo(name=name, place=place, is_cross=is_cross, level=level)
    return infos


@contextlib.contextmanager
def controlled_attention(unet, control: UnifiedAttentionControl, fast_self: bool = False) -> Iterator[None]:
    """Install controlled processors on ``unet`` for the duration of the block."""
    previous = dict(unet.attn_processors)
    infos = layer_infos(unet)
    unet.set_attn_processor(
        {name: ControlledAttnProcessor(control, info, fast_self) for name, info in infos.items()}
    )
    try:
        yield
    finally:
        unet.set_attn_processor(previous)
