"""The blocks' short causal convolution, depthwise over channels, as Mamba
(Gu & Dao, 2023), Griffin (De et al., 2024) and xLSTM (Beck et al., 2024)
place it before the recurrence::

    y_t = b + Σ_{i=0}^{k−1} w_i ⊙ x_{t−k+1+i}

``w`` is ``(k, channels)``, ``w_{k−1}`` weighing the current input (PyTorch's
``Conv1d(groups=channels, padding=k−1)`` with its weight transposed).

The carry is the last ``k − 1`` inputs, oldest first: ``(*batch, k−1,
channels)``. A step shifts the input in; so the step form and the sequence
form agree, a sequence is convolved over its *valid* steps only:

- an invalid step (a mask's hole, right padding) holds the buffer and outputs
  zero, so the next valid step sees the valid inputs before the hole;
- a reset at step ``t`` (valid or not) puts the reset target's buffer in
  place before ``t``.

The sequence form does this in parallel: per row, the valid steps are packed
to the front (a stable sort), convolved with the buffer in front of them,
and scattered back; after a reset the taps that reach before the segment's
first valid step read the reset target's buffer instead.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base


class ConvParams(NamedTuple):
  """Params of :class:`CausalConv`: ``w`` ``(k, channels)``, ``b``
  ``(channels,)``."""

  w: jax.Array
  b: jax.Array


@dataclasses.dataclass(frozen=True)
class CausalConv:
  """Depthwise causal convolution of width ``kernel_size`` (see the module).

  Initialised as PyTorch's ``Conv1d``: uniform in ``±1/sqrt(k)``.
  """

  kernel_size: int = 4

  def __post_init__(self):
    if not isinstance(self.kernel_size, int) or self.kernel_size < 2:
      raise ValueError(f"kernel_size: expected an int >= 2, got {self.kernel_size!r}")

  def init(self, key, channels: int, dtype: Any = jnp.float32) -> ConvParams:
    k_w, k_b = jax.random.split(key)
    bound = self.kernel_size ** -0.5
    w = jax.random.uniform(k_w, (self.kernel_size, channels), jnp.float32, -bound, bound)
    b = jax.random.uniform(k_b, (channels,), jnp.float32, -bound, bound)
    return ConvParams(w.astype(dtype), b.astype(dtype))

  def buffer_shape(self, channels: int) -> tuple:
    return (self.kernel_size - 1, channels)

  def step(self, params: ConvParams, buffer: jax.Array, x: jax.Array):
    """One step: ``(buffer, x) -> (buffer, y)``."""
    window = jnp.concatenate([buffer.astype(x.dtype), x[..., None, :]], axis=-2)
    y = jnp.einsum("...kc,kc->...c", window, params.w.astype(x.dtype))
    y = y + params.b.astype(x.dtype)
    return window[..., 1:, :].astype(buffer.dtype), y.astype(x.dtype)

  def sequence(self, params: ConvParams, xs: jax.Array, buffer: jax.Array,
               valid: Optional[jax.Array] = None, resets: Optional[jax.Array] = None,
               reset_buffer: Optional[jax.Array] = None):
    """Time-major ``xs`` ``(T, *batch, channels)`` from ``buffer``; ``valid``
    and ``resets`` are ``(T, *batch)`` or ``None``; ``reset_buffer`` (zeros
    when ``None``) has the buffer's shape or no batch axes. Returns
    ``(buffer, ys)``, ``ys`` zero on invalid steps."""
    T, batch, C = xs.shape[0], xs.shape[1:-1], xs.shape[-1]
    k1 = self.kernel_size - 1
    x = xs.reshape(T, -1, C)
    B = x.shape[1]
    init = jnp.broadcast_to(buffer, (*batch, k1, C)).reshape(B, k1, C)
    init = jnp.moveaxis(init, 1, 0).astype(x.dtype)  # (k-1, B, C)
    order = None
    if valid is None:
      packed, count = x, jnp.full((B,), T)
    else:
      v = valid.reshape(T, B)
      order = jnp.argsort(~v, axis=0, stable=True)  # valid steps first
      packed = jnp.take_along_axis(x, order[..., None], axis=0)
      count = v.sum(0)
      # Where step t lands among the packed ones: the valid steps before it.
      rank = jnp.cumsum(v, axis=0) - v
    padded = jnp.concatenate([init, packed], axis=0)  # (k-1+T, B, C)
    taps = [padded[i:i + T] for i in range(k1 + 1)]
    after = lambda i: jnp.take_along_axis(padded, (count + i)[None, :, None], axis=0)[0]
    final = jnp.stack([after(i) for i in range(k1)], axis=1)  # (B, k-1, C)
    if resets is not None:
      taps, final = self._cut_at_resets(taps, final, resets.reshape(T, B), valid,
                                        order, count, init, reset_buffer, batch)
    w = params.w.astype(x.dtype)
    ys = sum(tap * w[i] for i, tap in enumerate(taps)) + params.b.astype(x.dtype)
    if valid is not None:
      ys = jnp.take_along_axis(ys, rank[..., None], axis=0)
      ys = jnp.where(v[..., None], ys, jnp.zeros((), ys.dtype))
    final = final.reshape(*batch, k1, C).astype(buffer.dtype)
    return final, ys.reshape(xs.shape)

  def _cut_at_resets(self, taps, final, resets, valid, order, count, init,
                     reset_buffer, batch):
    """The taps (and the final buffer) that reach before the first valid
    step of their segment read the segment's starting buffer: the reset
    target after a reset, ``init`` before the first one."""
    T, B = resets.shape
    k1 = self.kernel_size - 1
    C = init.shape[-1]
    target = (jnp.zeros_like(init) if reset_buffer is None else jnp.moveaxis(
        jnp.broadcast_to(reset_buffer, (*batch, k1, C)).reshape(B, k1, C), 1, 0
    ).astype(init.dtype))
    t = jnp.arange(T)[:, None]
    v = jnp.ones((T, B), bool) if valid is None else valid.reshape(T, B)
    before = jnp.cumsum(v, axis=0) - v  # valid steps before each step
    last = jax.lax.cummax(jnp.where(resets, t, -1), axis=0)  # last reset <= t
    # The packed position of each segment's first valid step, per step.
    start = jnp.where(last >= 0, jnp.take_along_axis(before, jnp.maximum(last, 0),
                                                     axis=0), 0)
    final_last = last[-1]  # the last reset of each row, trailing ones included
    final_start = jnp.where(final_last >= 0, jnp.take_along_axis(
        before, jnp.maximum(final_last, 0)[None], axis=0)[0], 0)
    if order is not None:  # to packed order, as the taps are
      start = jnp.take_along_axis(start, order, axis=0)
      last = jnp.take_along_axis(last, order, axis=0)

    def read(pos, seg_start, from_reset, tap, i):
      # Tap i at packed position ``pos`` reads the input k-1-i steps back,
      # or entry ``back`` of the segment's starting buffer if that is before
      # the segment's first valid step.
      back = pos - seg_start + i
      idx = jnp.clip(back, 0, k1 - 1)[..., None]
      start_buffer = jnp.where(from_reset[..., None],
                               jnp.take_along_axis(target, idx, axis=0),
                               jnp.take_along_axis(init, idx, axis=0))
      return jnp.where((back >= k1)[..., None], tap, start_buffer)

    taps = [read(t, start, last >= 0, tap, i) if i < k1 else tap
            for i, tap in enumerate(taps)]
    final = jnp.stack([read(count[None], final_start[None], final_last[None] >= 0,
                            final[None, :, i], i)[0] for i in range(k1)], axis=1)
    return taps, final
