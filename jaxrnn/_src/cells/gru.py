r"""The gated recurrent unit, in both reset variants, and its one-gate
sibling, the minimal gated unit (Zhou et al., 2016).

Both take ``activation`` (:math:`\phi`, the candidate's, default ``"tanh"``)
and ``recurrent_activation`` (:math:`\sigma`, the gates', default
``"sigmoid"``), Keras 3's names and meanings; Flax calls them
``activation_fn`` and ``gate_fn``. A value is a name from
``jaxrnn/_src/cells/activations.py`` (Keras 3's) or a callable. The native
kernels compute the defaults only; a GRU with others runs on XLA.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import activations
from jaxrnn._src.cells import base
from jaxrnn._src.cells import initializers


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


class _GatedUnit(activations.WithActivations, base.Cell):
  """What the GRU and the MGU share: the reset-after layout, in which the
  last block of ``b_h`` (PyTorch's ``b_hn``) sits inside the reset, and the
  step split into a matmul and an elementwise rest for that variant."""

  def __post_init__(self):
    if not isinstance(self.reset_after, bool):
      raise TypeError(f"reset_after: expected a bool, got {self.reset_after!r}")
    super().__post_init__()

  def _resets_after_matmul(self) -> bool:
    """Whether the reset gate multiplies ``h W_{h,n} + b_{h,n}`` (the
    reset-after layout, with ``b_hn`` inside the step)."""
    return self.reset_after

  def _splits(self) -> bool:
    """Whether the step is the recurrent matmul and an elementwise rest
    (not so when the reset multiplies ``h`` before the matmul)."""
    return self.reset_after

  def step_form(self) -> str:
    # reset-before: the gate multiplies h before the matmul
    return self.form if self._splits() else "opaque"

  def input_weights(self, params):
    if not self._resets_after_matmul() or params.b_h is None:
      return super().input_weights(params)
    # b_hn sits inside the reset, so only the other blocks of b_h fold here.
    gates = (self.num_gates - 1) * params.w_h.shape[0]
    b_h = jnp.asarray(params.b_h).at[gates:].set(0)
    return params.w_i, base.add_biases(None, params.b_i, b_h)

  def preactivation(self, params, xp, hw):
    """``[x_gates + h_gates, x_n, h_n + b_hn]``, reset-after."""
    if not self._resets_after_matmul():
      return super().preactivation(params, xp, hw)
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
    n &= \phi(x_n + r \odot h_n)
        &&\text{reset\_after=True (default)} \\
    n &= \phi(x_n + (r \odot h) W_{h,n} + b_{h,n})
        &&\text{reset\_after=False} \\
    h' &= (1 - z) \odot n + z \odot h, \qquad y = h'

  with :math:`\sigma` = ``recurrent_activation`` (default the logistic
  sigmoid) and :math:`\phi` = ``activation`` (default ``tanh``).
  ``reset_after=True`` applies the reset gate after the recurrent matmul:
  cuDNN's, ``torch.nn.GRUCell``'s, Flax's and Keras' ``reset_after=True``
  form. ``reset_after=False`` applies it before, as in Cho et al. (2014) and
  the textbook form. Gate order ``r, z, n`` (Keras' is ``z, r, h``); carry
  :class:`RNNState` ``(h,)``.

  Attributes:
    reset_after: which variant (static).
    activation: :math:`\phi`, of the candidate ``n`` (Keras' ``activation``,
      Flax's ``activation_fn``): a Keras 3 name
      (``"tanh"``, ``"sigmoid"``, ``"hard_sigmoid"``, ``"relu"``, ``"gelu"``,
      ...: :ref:`activations`) or a callable;
      default ``"tanh"``.
    recurrent_activation: :math:`\sigma`, of the gates ``r`` and ``z``
      (Keras' ``recurrent_activation``, Flax's ``gate_fn``); default
      ``"sigmoid"``.
  """

  reset_after: bool = True
  activation: activations.Activation = dataclasses.field(default="tanh", kw_only=True)
  recurrent_activation: activations.Activation = dataclasses.field(
      default="sigmoid", kw_only=True)

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
    kernel = super().native_variant()
    if kernel is None:
      return None
    return f"{kernel}_{'after' if self.reset_after else 'before'}"

  def pointwise(self, params, carry, z):
    hidden = params.w_h.shape[0]
    gate, act = activations.get(self.recurrent_activation), activations.get(self.activation)
    r, u = jnp.split(gate(z[..., :2 * hidden]), 2, axis=-1)
    n = act(z[..., 2 * hidden:3 * hidden] + r * z[..., 3 * hidden:])
    h = (1 - u) * n + u * carry.h
    return base.RNNState(h), h

  def recurrence(self, params, carry, xp, h_mask=None):
    if self._splits():
      return super().recurrence(params, carry, xp, h_mask)
    h, h_in = carry.h, base.drop(carry.h, h_mask)
    hidden = params.w_h.shape[0]
    gate, act = activations.get(self.recurrent_activation), activations.get(self.activation)
    x_rz, x_n = xp[..., :2 * hidden], xp[..., 2 * hidden:]
    r, z = jnp.split(gate(x_rz + h_in @ params.w_h[:, :2 * hidden]), 2, axis=-1)
    n = act(x_n + (r * h_in) @ params.w_h[:, 2 * hidden:])
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
    n &= \phi(x_n + f \odot h_n) &&\text{reset\_after=True (default)} \\
    n &= \phi(x_n + (f \odot h) W_{h,n} + b_{h,n})
        &&\text{reset\_after=False} \\
    n &= \phi(x_n + h_n) &&\text{reset\_gate=False} \\
    h' &= (1 - f) \odot n + f \odot h, \qquad y = h'

  with :math:`\sigma` = ``recurrent_activation`` (default the logistic
  sigmoid) and :math:`\phi` = ``activation`` (default ``tanh``). The one
  gate ``f`` both resets the state seen by the candidate and keeps the old
  state. ``reset_after=True`` is Flax's ``MGUCell`` (``reset_gate=True``),
  whose weights :func:`jaxrnn.interop.from_flax` converts;
  ``reset_after=False`` resets before the recurrent matmul, as Zhou et al.
  write it. ``reset_gate=False`` is Flax's ``MGUCell(reset_gate=False)``:
  ``f`` only keeps the old state, and the candidate sees all of it; there is
  no reset, so ``reset_after`` changes nothing, and ``b_{h,n}`` simply adds
  to ``b_{i,n}`` (Flax's cell has no ``b_{h,n}`` in this form: its weights
  map with ``b_h``'s ``n`` block zero). Zhou et al. weight the candidate by
  ``f`` and the old state by ``1 − f``; here (as in Flax) ``f`` keeps the old
  state. Gate order ``f, n``; carry :class:`RNNState` ``(h,)``;
  ``forget_bias`` (default 1.0 under ``initializer="default"``, Flax's) is
  added to ``b_i``'s ``f`` block.

  Attributes:
    reset_after: which reset variant (static).
    reset_gate: whether ``f`` resets the state the candidate sees (static;
      Flax's ``reset_gate``); default ``True``.
    activation: :math:`\phi`, of the candidate ``n`` (Keras'
      ``activation``, Flax's ``activation_fn``): a Keras 3 name
      (``"tanh"``, ``"sigmoid"``, ``"hard_sigmoid"``, ``"relu"``, ``"gelu"``,
      ...: :ref:`activations`) or a callable;
      default ``"tanh"``.
    recurrent_activation: :math:`\sigma`, of the gate ``f`` (Keras'
      ``recurrent_activation``, Flax's ``gate_fn``); default ``"sigmoid"``.
  """

  reset_after: bool = True
  reset_gate: bool = dataclasses.field(default=True, kw_only=True)
  activation: activations.Activation = dataclasses.field(default="tanh", kw_only=True)
  recurrent_activation: activations.Activation = dataclasses.field(
      default="sigmoid", kw_only=True)

  params_type = MGUParams
  form = "split"  # with reset_after or without reset_gate; see step_form
  carry_type = base.RNNState
  num_gates = 2

  def __post_init__(self):
    if not isinstance(self.reset_gate, bool):
      raise TypeError(f"reset_gate: expected a bool, got {self.reset_gate!r}")
    super().__post_init__()

  def _resets_after_matmul(self) -> bool:
    return self.reset_gate and self.reset_after

  def _splits(self) -> bool:
    return self.reset_after or not self.reset_gate

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
    gate, act = activations.get(self.recurrent_activation), activations.get(self.activation)
    f = gate(z[..., :hidden])
    if self.reset_gate:  # z = [f, x_n, h_n + b_hn]
      n = act(z[..., hidden:2 * hidden] + f * z[..., 2 * hidden:])
    else:  # z = [f, x_n + h_n], both biases folded in
      n = act(z[..., hidden:])
    h = (1 - f) * n + f * carry.h
    return base.RNNState(h), h

  def recurrence(self, params, carry, xp, h_mask=None):
    if self._splits():
      return super().recurrence(params, carry, xp, h_mask)
    h, h_in = carry.h, base.drop(carry.h, h_mask)
    hidden = params.w_h.shape[0]
    gate, act = activations.get(self.recurrent_activation), activations.get(self.activation)
    f = gate(xp[..., :hidden] + h_in @ params.w_h[:, :hidden])
    n = act(xp[..., hidden:] + (f * h_in) @ params.w_h[:, hidden:])
    h = (1 - f) * n + f * h
    return base.RNNState(h), h
