"""The gated recurrent unit, in both reset variants, and its one-gate
sibling, the minimal gated unit (Zhou et al., 2016)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import initializers

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


class _GatedUnit(base.Cell):
  """What the GRU and the MGU share: the reset-after layout, in which the
  last block of ``b_h`` (PyTorch's ``b_hn``) sits inside the reset, and the
  step split into a matmul and an elementwise rest for that variant."""

  def __post_init__(self):
    if not isinstance(self.reset_after, bool):
      raise TypeError(f"reset_after: expected a bool, got {self.reset_after!r}")

  def step_form(self) -> str:
    # reset-before: the gate multiplies h before the matmul
    return self.form if self.reset_after else "opaque"

  def input_weights(self, params):
    if not self.reset_after or params.b_h is None:
      return super().input_weights(params)
    # b_hn sits inside the reset, so only the other blocks of b_h fold here.
    gates = (self.num_gates - 1) * params.w_h.shape[0]
    b_h = jnp.asarray(params.b_h).at[gates:].set(0)
    return params.w_i, base.add_biases(None, params.b_i, b_h)

  def preactivation(self, params, xp, hw):
    """``[x_gates + h_gates, x_n, h_n + b_hn]``, reset-after."""
    gates = (self.num_gates - 1) * params.w_h.shape[0]
    h_n = hw[..., gates:]
    if params.b_h is not None:
      h_n = h_n + params.b_h[gates:]
    return jnp.concatenate([xp[..., :gates] + hw[..., :gates], xp[..., gates:], h_n],
                           axis=-1)


@dataclasses.dataclass(frozen=True)
class GRUCell(_GatedUnit):
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
  form = "split"  # with reset_after; see step_form
  native_kernel = "gru"
  carry_type = base.RNNState
  num_gates = 3

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> GRUParams:
    """Params; see :mod:`jaxrnn` initialisers (``"default"`` or ``"pytorch"``)."""
    return GRUParams(*initializers.fused_weights(
        key, input_size, hidden_size, 3, dtype=dtype, initializer=initializer))

  def native_variant(self):
    if self.native_kernel is None:
      return None
    return f"{self.native_kernel}_{'after' if self.reset_after else 'before'}"

  def pointwise(self, params, carry, z):
    hidden = params.w_h.shape[0]
    r, u = jnp.split(sigmoid(z[..., :2 * hidden]), 2, axis=-1)
    n = jnp.tanh(z[..., 2 * hidden:3 * hidden] + r * z[..., 3 * hidden:])
    h = (1 - u) * n + u * carry.h
    return base.RNNState(h), h

  def recurrence(self, params, carry, xp, h_mask=None):
    if self.reset_after:
      return super().recurrence(params, carry, xp, h_mask)
    h, h_in = carry.h, base.drop(carry.h, h_mask)
    hidden = params.w_h.shape[0]
    x_rz, x_n = xp[..., :2 * hidden], xp[..., 2 * hidden:]
    r, z = jnp.split(sigmoid(x_rz + h_in @ params.w_h[:, :2 * hidden]), 2, axis=-1)
    n = jnp.tanh(x_n + (r * h_in) @ params.w_h[:, 2 * hidden:])
    h = (1 - z) * n + z * h
    return base.RNNState(h), h


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
class MGUCell(_GatedUnit):
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
  form = "split"  # with reset_after; see step_form
  carry_type = base.RNNState
  num_gates = 2

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default",
           forget_bias: Optional[float] = None) -> MGUParams:
    """Params; see :mod:`jaxrnn` initialisers (``"default"`` or ``"pytorch"``)."""
    w = initializers.fused_weights(key, input_size, hidden_size, 2, dtype=dtype,
                                   initializer=initializer)
    if forget_bias is None:
      forget_bias = 1.0 if initializer == "default" else 0.0
    return MGUParams(w.w_i, w.w_h, w.b_i.at[:hidden_size].add(forget_bias), w.b_h)

  def pointwise(self, params, carry, z):
    hidden = params.w_h.shape[0]
    f = base.sigmoid(z[..., :hidden])
    n = jnp.tanh(z[..., hidden:2 * hidden] + f * z[..., 2 * hidden:])
    h = (1 - f) * n + f * carry.h
    return base.RNNState(h), h

  def recurrence(self, params, carry, xp, h_mask=None):
    if self.reset_after:
      return super().recurrence(params, carry, xp, h_mask)
    h, h_in = carry.h, base.drop(carry.h, h_mask)
    hidden = params.w_h.shape[0]
    f = base.sigmoid(xp[..., :hidden] + h_in @ params.w_h[:, :hidden])
    n = jnp.tanh(xp[..., hidden:] + (f * h_in) @ params.w_h[:, hidden:])
    h = (1 - f) * n + f * h
    return base.RNNState(h), h
