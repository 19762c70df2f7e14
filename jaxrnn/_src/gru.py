"""The gated recurrent unit, in both reset variants."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src import base
from jaxrnn._src import initializers

sigmoid = base.sigmoid


class GRUParams(NamedTuple):
  """Params of :class:`GRUCell`; gate blocks in the order ``r, z, n``.

  Attributes:
    w_i: ``(input_size, 3*hidden_size)`` (PyTorch ``weight_ih_l0.T``).
    w_h: ``(hidden_size, 3*hidden_size)`` (``weight_hh_l0.T``).
    b_i: ``(3*hidden_size,)`` or ``None`` (``bias_ih_l0``).
    b_h: ``(3*hidden_size,)`` or ``None`` (``bias_hh_l0``); its ``n`` block
      is PyTorch's ``b_hn``, which the reset-after variant gates by ``r``.
  """

  w_i: jax.Array
  w_h: jax.Array
  b_i: Optional[jax.Array]
  b_h: Optional[jax.Array]


@dataclasses.dataclass(frozen=True)
class GRUCell(base.Cell):
  r"""Gated recurrent unit (Cho et al., 2014).

  With ``[x_r, x_z, x_n] = x W_i + b_i`` and ``[h_r, h_z, h_n] = h W_h + b_h``:

  .. math::

    r &= \sigma(x_r + h_r), \qquad z = \sigma(x_z + h_z) \\
    n &= \tanh(x_n + r \odot h_n)
        &&\text{reset\_after=True (default)} \\
    n &= \tanh(x_n + (r \odot h) W_{h,n} + b_{h,n})
        &&\text{reset\_after=False} \\
    h' &= (1 - z) \odot n + z \odot h, \qquad y = h'

  ``reset_after=True`` applies the reset gate after the recurrent matmul:
  cuDNN's, ``torch.nn.GRUCell``'s and Keras' ``reset_after=True`` form.
  ``reset_after=False`` applies it before, as in Cho et al. (2014) and the
  textbook form. Gate order ``r, z, n``; carry :class:`RNNState` ``(h,)``.

  Attributes:
    reset_after: which variant (static).
  """

  reset_after: bool = True

  params_type = GRUParams
  carry_type = base.RNNState
  num_gates = 3

  def __post_init__(self):
    if not isinstance(self.reset_after, bool):
      raise TypeError(f"reset_after: expected a bool, got {self.reset_after!r}")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> GRUParams:
    """Params; see :mod:`jaxrnn` initialisers (``"default"`` or ``"pytorch"``)."""
    return GRUParams(*initializers.fused_weights(
        key, input_size, hidden_size, 3, dtype=dtype, initializer=initializer))

  def input_weights(self, params):
    if not self.reset_after or params.b_h is None:
      return super().input_weights(params)
    # b_hn sits inside r * (...), so only the r and z blocks of b_h fold here.
    hidden = params.w_h.shape[0]
    b_h = jnp.asarray(params.b_h).at[2 * hidden:].set(0)
    return params.w_i, base.add_biases(None, params.b_i, b_h)

  def splits_step(self) -> bool:
    return self.reset_after  # reset-before: r multiplies h before the matmul

  def preactivation(self, params, xp, hw):
    """``[x_r + h_r, x_z + h_z, x_n, h_n]`` (``4*hidden_size``), reset-after."""
    hidden = params.w_h.shape[0]
    h_n = hw[..., 2 * hidden:]
    if params.b_h is not None:
      h_n = h_n + params.b_h[2 * hidden:]
    return jnp.concatenate([xp[..., :2 * hidden] + hw[..., :2 * hidden],
                            xp[..., 2 * hidden:], h_n], axis=-1)

  def pointwise(self, params, carry, z):
    hidden = params.w_h.shape[0]
    r, u = jnp.split(sigmoid(z[..., :2 * hidden]), 2, axis=-1)
    n = jnp.tanh(z[..., 2 * hidden:3 * hidden] + r * z[..., 3 * hidden:])
    h = (1 - u) * n + u * carry.h
    return base.RNNState(h), h

  def recurrence(self, params, carry, xp):
    if self.reset_after:
      return super().recurrence(params, carry, xp)
    h = carry.h
    hidden = params.w_h.shape[0]
    x_rz, x_n = xp[..., :2 * hidden], xp[..., 2 * hidden:]
    r, z = jnp.split(sigmoid(x_rz + h @ params.w_h[:, :2 * hidden]), 2, axis=-1)
    n = jnp.tanh(x_n + (r * h) @ params.w_h[:, 2 * hidden:])
    h = (1 - z) * n + z * h
    return base.RNNState(h), h
