"""The minimal RNNs of Feng et al. (2024), "Were RNNs All We Needed?":
minGRU and minLSTM, whose gates see only the input.

Both are linear recurrences (:mod:`jaxrnn._src.engines.linear`): a sequence
layer computes every step's gates at once and solves ``h_t = a_t ⊙ h_{t-1} +
b_t`` sequentially or with a parallel scan.

``log_space=True`` is the paper's log-space form: the candidate passes
through ``g(x) = x + 1/2`` for ``x ≥ 0`` and ``σ(x)`` below (positive, so the
state stays positive), and sequence layers solve ``log h`` with Heinsen's
log-space scan. It is a different model (positive states), not only a
different solver. The default is the plain form: the paper needs log space
for its parallel formula, which divides by cumulative products of ``a`` that
underflow on long sequences; the associative scan here composes steps
without that division, and matches a step loop in float32 at T=4096
(tests/test_modern.py), so linear space needs no such help. With
``log_space=True`` the initial carry must be non-negative.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import linear_recurrence


class MinGRUParams(NamedTuple):
  """Params of :class:`MinGRUCell`; blocks in the order ``z, h̃``.

  Attributes:
    w_i: ``(input_size, 2*hidden_size)``.
    b_i: ``(2*hidden_size,)``.
  """

  w_i: jax.Array
  b_i: jax.Array


class MinLSTMParams(NamedTuple):
  """Params of :class:`MinLSTMCell`; blocks in the order ``f, i, h̃``.

  Attributes:
    w_i: ``(input_size, 3*hidden_size)``.
    b_i: ``(3*hidden_size,)``.
  """

  w_i: jax.Array
  b_i: jax.Array


def _init(key, input_size, hidden_size, num_blocks, dtype, initializer):
  """LeCun-normal input weights (drawn in at least float32), zero biases."""
  base.check_sizes(input_size, hidden_size)
  if initializer != "default":
    raise ValueError(f"initializer: expected 'default' (the paper's cells have "
                     f"no PyTorch counterpart), got {initializer!r}")
  k = num_blocks * hidden_size
  w = jax.nn.initializers.lecun_normal()(
      key, (input_size, k), jnp.promote_types(dtype, jnp.float32))
  return w.astype(dtype), jnp.zeros((k,), dtype)


def _log_g(x):
  """``log g(x)``, ``g(x) = x + 1/2`` for ``x ≥ 0`` and ``σ(x)`` below."""
  return jnp.where(x >= 0, jnp.log(jnp.maximum(x, 0) + 0.5), jax.nn.log_sigmoid(x))


class _LogSpace:
  """``coefficients`` as the exponentials of ``log_coefficients`` when the
  cell's ``log_space`` is set; mixed into the two cells below."""

  def in_log_space(self) -> bool:
    return self.log_space

  def coefficients(self, params, x):
    if self.log_space:
      return tuple(jnp.exp(c) for c in self.log_coefficients(params, x))
    return self.linear_coefficients(params, x)


def _projection(params, x):
  acc = linear_recurrence.accumulator(x.dtype, params.w_i.dtype)
  return x.astype(acc) @ params.w_i.astype(acc) + params.b_i.astype(acc)


@dataclasses.dataclass(frozen=True)
class MinGRUCell(_LogSpace, linear_recurrence.LinearRecurrentCell):
  r"""minGRU (Feng et al., 2024): a GRU whose gate and candidate see only
  ``x``.

  .. math::

    z &= \sigma(x W_z + b_z), \qquad \tilde h = x W_h + b_h \\
    h' &= (1 - z) \odot h + z \odot \tilde h, \qquad y = h'

  Blocks ``z, h̃`` in ``w_i``; carry :class:`RNNState` ``(h,)``. A linear
  recurrence with ``a = 1 - z``, ``b = z ⊙ h̃`` (``z ⊙ g(h̃)`` in log space).

  Attributes:
    log_space: the paper's log-space form (see the module).
    method: ``"auto"``, ``"associative"`` or ``"sequential"``; see
      :mod:`jaxrnn._src.engines.linear`.
  """

  log_space: bool = False

  params_type = MinGRUParams
  carry_type = base.RNNState
  num_gates = 2

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> MinGRUParams:
    """LeCun-normal ``w_i``, zero ``b_i``."""
    return MinGRUParams(*_init(key, input_size, hidden_size, 2, dtype, initializer))


  def linear_coefficients(self, params, x):
    z, candidate = jnp.split(_projection(params, x), 2, axis=-1)
    z = base.sigmoid(z)
    return 1 - z, z * candidate

  def log_coefficients(self, params, x):
    k, candidate = jnp.split(_projection(params, x), 2, axis=-1)
    return jax.nn.log_sigmoid(-k), jax.nn.log_sigmoid(k) + _log_g(candidate)


@dataclasses.dataclass(frozen=True)
class MinLSTMCell(_LogSpace, linear_recurrence.LinearRecurrentCell):
  r"""minLSTM (Feng et al., 2024): an LSTM without output gate or cell
  nonlinearity, whose forget and input gates see only ``x`` and are
  normalised to sum to one.

  .. math::

    f &= \sigma(x W_f + b_f), \quad i = \sigma(x W_i + b_i), \quad
    \tilde h = x W_h + b_h \\
    f' &= \frac{f}{f + i}, \quad i' = \frac{i}{f + i} \\
    h' &= f' \odot h + i' \odot \tilde h, \qquad y = h'

  Blocks ``f, i, h̃`` in ``w_i``; carry :class:`RNNState` ``(h,)``. A linear
  recurrence with ``a = f'``, ``b = i' ⊙ h̃``. The normalisation is computed
  as ``f' = σ(log σ(z_f) − log σ(z_i))``, equal to ``f / (f + i)`` and free
  of a division by a sum that can round to zero. In log space ``h̃`` becomes
  ``g(h̃)``.

  Attributes:
    log_space: the paper's log-space form (see the module).
    method: ``"auto"``, ``"associative"`` or ``"sequential"``; see
      :mod:`jaxrnn._src.engines.linear`.
  """

  log_space: bool = False

  params_type = MinLSTMParams
  carry_type = base.RNNState
  num_gates = 3

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> MinLSTMParams:
    """LeCun-normal ``w_i``, zero ``b_i``."""
    return MinLSTMParams(*_init(key, input_size, hidden_size, 3, dtype, initializer))


  def linear_coefficients(self, params, x):
    z_f, z_i, candidate = jnp.split(_projection(params, x), 3, axis=-1)
    f = jax.nn.sigmoid(jax.nn.log_sigmoid(z_f) - jax.nn.log_sigmoid(z_i))
    return f, (1 - f) * candidate

  def log_coefficients(self, params, x):
    z_f, z_i, candidate = jnp.split(_projection(params, x), 3, axis=-1)
    diff = jax.nn.log_sigmoid(z_f) - jax.nn.log_sigmoid(z_i)
    return jax.nn.log_sigmoid(diff), jax.nn.log_sigmoid(-diff) + _log_g(candidate)
