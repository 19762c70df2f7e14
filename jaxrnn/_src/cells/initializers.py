"""Weight initialisation shared by the cells.

Two schemes, chosen by ``initializer=``:

``"default"``
  input weights ``w_i``: LeCun normal (truncated normal, variance
  ``1/input_size``); recurrent weights ``w_h``: orthogonal, drawn separately
  for each gate's ``(hidden_size, hidden_size)`` block; biases: zero. This is
  Flax's choice, and Keras' except that Keras uses Glorot for ``w_i``.
``"pytorch"``
  every weight and bias uniform in ``[-1/sqrt(hidden_size), 1/sqrt(hidden_size)]``,
  as ``torch.nn.RNN/LSTM/GRU`` and their cells initialise.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base


class FusedWeights(NamedTuple):
  w_i: jax.Array  # (input_size, num_gates * hidden_size)
  w_h: jax.Array  # (hidden_size, num_gates * hidden_size)
  b_i: jax.Array  # (num_gates * hidden_size,)
  b_h: jax.Array  # (num_gates * hidden_size,)


def uniform(key: jax.Array, shape, hidden_size: int, dtype: Any) -> jax.Array:
  """PyTorch's recurrent-layer init: U(-1/sqrt(hidden), 1/sqrt(hidden))."""
  bound = 1.0 / (hidden_size ** 0.5)
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def fused_weights(key: jax.Array, input_size: int, hidden_size: int,
                  num_gates: int, *, dtype: Any, initializer: str,
                  recurrent_size: Optional[int] = None) -> FusedWeights:
  """Fused gate weights laid out ``(in, num_gates * hidden_size)``.

  ``recurrent_size`` is the size of the state fed back into ``w_h``:
  ``hidden_size`` unless the cell projects it (LSTMP's ``proj_size``).
  """
  base.check_sizes(input_size, hidden_size)
  base.check_initializer(initializer)
  recurrent_size = hidden_size if recurrent_size is None else recurrent_size
  k_i, k_h, k_bi, k_bh = jax.random.split(key, 4)
  k = num_gates * hidden_size
  if initializer == "pytorch":
    return FusedWeights(
        uniform(k_i, (input_size, k), hidden_size, dtype),
        uniform(k_h, (recurrent_size, k), hidden_size, dtype),
        uniform(k_bi, (k,), hidden_size, dtype),
        uniform(k_bh, (k,), hidden_size, dtype))
  # Drawn in at least float32 (no QR for bfloat16), then cast.
  draw_dtype = jnp.promote_types(dtype, jnp.float32)
  w_i = jax.nn.initializers.lecun_normal()(k_i, (input_size, k), draw_dtype)
  orthogonal = jax.nn.initializers.orthogonal()
  blocks = [orthogonal(kg, (recurrent_size, hidden_size), draw_dtype)
            for kg in jax.random.split(k_h, num_gates)]
  w_h = jnp.concatenate(blocks, axis=1)
  w_i, w_h = w_i.astype(dtype), w_h.astype(dtype)
  zeros = jnp.zeros((k,), dtype)
  return FusedWeights(w_i, w_h, zeros, zeros)


def inverse_softplus(y):
  """``x`` with ``softplus(x) = y``, for ``y > 0``."""
  return y + jnp.log(-jnp.expm1(-y))


def dt_bias(key, shape, dtype, dt_min: float = 1e-3, dt_max: float = 1e-1):
  """Mamba's ``Δ`` bias: ``softplus⁻¹(Δ)`` with ``Δ`` log-uniform in
  ``[dt_min, dt_max]`` (at least 1e-4), so that ``softplus(b) = Δ``."""
  u = jax.random.uniform(key, shape)
  dt = jnp.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
  return inverse_softplus(jnp.maximum(dt, 1e-4)).astype(dtype)
