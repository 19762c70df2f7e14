"""The minimal gated unit (Zhou et al., 2016, "Minimal Gated Unit for
Recurrent Neural Networks"): a GRU with one gate."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src import base
from jaxrnn._src import initializers


class MGUParams(NamedTuple):
  """Params of :class:`MGUCell`; gate blocks in the order ``f, n``.

  Attributes:
    w_i: ``(input_size, 2*hidden_size)``.
    w_h: ``(hidden_size, 2*hidden_size)``.
    b_i: ``(2*hidden_size,)`` or ``None``.
    b_h: ``(2*hidden_size,)`` or ``None``; its ``n`` block sits inside the
      reset in the reset-after variant (as the GRU's ``b_hn``).
  """

  w_i: jax.Array
  w_h: jax.Array
  b_i: Optional[jax.Array]
  b_h: Optional[jax.Array]


@dataclasses.dataclass(frozen=True)
class MGUCell(base.Cell):
  r"""Minimal gated unit (Zhou et al., 2016), in Flax's form.

  With ``[x_f, x_n] = x W_i + b_i`` and ``[h_f, h_n] = h W_h + b_h``:

  .. math::

    f &= \sigma(x_f + h_f) \\
    n &= \tanh(x_n + f \odot h_n) &&\text{reset\_after=True (default)} \\
    n &= \tanh(x_n + (f \odot h) W_{h,n} + b_{h,n})
        &&\text{reset\_after=False} \\
    h' &= (1 - f) \odot n + f \odot h, \qquad y = h'

  The one gate ``f`` both resets the state seen by the candidate and keeps
  the old state. ``reset_after=True`` is Flax's ``MGUCell`` (``reset_gate=
  True``), whose weights :func:`jaxrnn.interop.from_flax` converts;
  ``reset_after=False`` resets before the recurrent matmul, as Zhou et al.
  write it. Zhou et al. weight the candidate by ``f`` and the old state by
  ``1 − f``; here (as in Flax) ``f`` keeps the old state. Gate order ``f,
  n``; carry :class:`RNNState` ``(h,)``; ``forget_bias`` (default 1.0 under
  ``initializer="default"``, Flax's) is added to ``b_i``'s ``f`` block.

  Attributes:
    reset_after: which variant (static).
  """

  reset_after: bool = True

  params_type = MGUParams
  carry_type = base.RNNState
  num_gates = 2

  def __post_init__(self):
    if not isinstance(self.reset_after, bool):
      raise TypeError(f"reset_after: expected a bool, got {self.reset_after!r}")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default",
           forget_bias: Optional[float] = None) -> MGUParams:
    """Params; see :mod:`jaxrnn` initialisers (``"default"`` or ``"pytorch"``)."""
    w = initializers.fused_weights(key, input_size, hidden_size, 2, dtype=dtype,
                                   initializer=initializer)
    if forget_bias is None:
      forget_bias = 1.0 if initializer == "default" else 0.0
    return MGUParams(w.w_i, w.w_h, w.b_i.at[:hidden_size].add(forget_bias), w.b_h)

  def splits_step(self) -> bool:
    return self.reset_after

  def input_weights(self, params):
    if not self.reset_after or params.b_h is None:
      return super().input_weights(params)
    hidden = params.w_h.shape[0]  # b_hn sits inside f * (...)
    b_h = jnp.asarray(params.b_h).at[hidden:].set(0)
    return params.w_i, base.add_biases(None, params.b_i, b_h)

  def preactivation(self, params, xp, hw):
    """``[x_f + h_f, x_n, h_n]`` (``3*hidden_size``), reset-after."""
    hidden = params.w_h.shape[0]
    h_n = hw[..., hidden:]
    if params.b_h is not None:
      h_n = h_n + params.b_h[hidden:]
    return jnp.concatenate([xp[..., :hidden] + hw[..., :hidden], xp[..., hidden:],
                            h_n], axis=-1)

  def pointwise(self, params, carry, z):
    hidden = params.w_h.shape[0]
    f = base.sigmoid(z[..., :hidden])
    n = jnp.tanh(z[..., hidden:2 * hidden] + f * z[..., 2 * hidden:])
    h = (1 - f) * n + f * carry.h
    return base.RNNState(h), h

  def recurrence(self, params, carry, xp):
    if self.reset_after:
      return super().recurrence(params, carry, xp)
    h = carry.h
    hidden = params.w_h.shape[0]
    f = base.sigmoid(xp[..., :hidden] + h @ params.w_h[:, :hidden])
    n = jnp.tanh(xp[..., hidden:] + (f * h) @ params.w_h[:, hidden:])
    h = (1 - f) * n + f * h
    return base.RNNState(h), h
