"""The simple (Elman) recurrent cell."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import activations
from jaxrnn._src.cells import base
from jaxrnn._src.cells import initializers

# The activations the native kernels compute (rnn_tanh, rnn_relu).
_NATIVE = ("tanh", "relu")


class SimpleRNNParams(NamedTuple):
  """Params of :class:`SimpleRNNCell`.

  Attributes:
    w_i: input weights, ``(input_size, hidden_size)`` (PyTorch ``weight_ih_l0.T``).
    w_h: recurrent weights, ``(hidden_size, hidden_size)`` (``weight_hh_l0.T``).
    b_i: input bias, ``(hidden_size,)`` or ``None``.
    b_h: recurrent bias, ``(hidden_size,)`` or ``None``.
  """

  w_i: jax.Array
  w_h: jax.Array
  b_i: Optional[jax.Array]
  b_h: Optional[jax.Array]


@dataclasses.dataclass(frozen=True)
class SimpleRNNCell(base.Cell):
  r"""Simple (Elman) RNN cell, as ``torch.nn.RNNCell``, Keras'
  ``SimpleRNNCell`` and Flax's ``SimpleCell``.

  .. math::

    h' = \phi(x W_i + b_i + h W_h + b_h), \qquad y = h'

  with :math:`\phi` = ``activation``. Carry: :class:`RNNState` ``(h,)``.

  Attributes:
    activation: :math:`\phi` (Keras' ``activation``, Flax's
      ``activation_fn``, PyTorch's ``nonlinearity``): a Keras 3 name
      (``"tanh"``, ``"sigmoid"``, ``"hard_sigmoid"``, ``"relu"``, ``"gelu"``,
      ...: :ref:`activations`) or a callable;
      default ``"tanh"``. The native kernels compute ``"tanh"`` and
      ``"relu"``; others run on XLA.
  """

  activation: activations.Activation = "tanh"

  params_type = SimpleRNNParams
  form = "split"
  native_kernel = "rnn"
  carry_type = base.RNNState
  num_gates = 1

  def __post_init__(self):
    activations.check(self.activation, "activation")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> SimpleRNNParams:
    """Params; see :mod:`jaxrnn` initialisers (``"default"`` or ``"pytorch"``)."""
    return SimpleRNNParams(*initializers.fused_weights(
        key, input_size, hidden_size, 1, dtype=dtype, initializer=initializer))

  def native_unsupported(self):
    if activations.name_of(self.activation) in _NATIVE:
      return None
    return (f"the kernels compute activation='tanh' or 'relu' only, and this "
            f"SimpleRNNCell has activation={activations.label(self.activation)}")

  def native_variant(self):
    kernel = super().native_variant()
    if kernel is None:
      return None
    return f"{kernel}_{activations.name_of(self.activation)}"

  def pointwise(self, params, carry, z):
    h = activations.get(self.activation)(z)
    return base.RNNState(h), h
