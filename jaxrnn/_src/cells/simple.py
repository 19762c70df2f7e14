"""The simple (Elman) recurrent cell."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import initializers

_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


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
  r"""Simple (Elman) RNN cell, as ``torch.nn.RNNCell``.

  .. math::

    h' = \mathrm{act}(x W_i + b_i + h W_h + b_h), \qquad y = h'

  Carry: :class:`RNNState` ``(h,)``.

  Attributes:
    activation: ``"tanh"`` (default) or ``"relu"``.
  """

  activation: str = "tanh"

  params_type = SimpleRNNParams
  form = "split"
  native_kernel = "rnn"
  carry_type = base.RNNState
  num_gates = 1

  def __post_init__(self):
    if self.activation not in _ACTIVATIONS:
      raise ValueError(f"activation: expected one of {tuple(_ACTIVATIONS)}, "
                       f"got {self.activation!r}")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> SimpleRNNParams:
    """Params; see :mod:`jaxrnn` initialisers (``"default"`` or ``"pytorch"``)."""
    return SimpleRNNParams(*initializers.fused_weights(
        key, input_size, hidden_size, 1, dtype=dtype, initializer=initializer))

  def native_variant(self):
    return None if self.native_kernel is None else f"{self.native_kernel}_{self.activation}"

  def pointwise(self, params, carry, z):
    h = _ACTIVATIONS[self.activation](z)
    return base.RNNState(h), h
