"""The output layer ``Y = H W_hq + b_q``, for any step's or every step's output."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base


class LinearParams(NamedTuple):
  """Params of :class:`Linear`.

  Attributes:
    w: ``(input_size, output_size)``.
    b: ``(output_size,)`` or ``None``.
  """

  w: jax.Array
  b: Optional[jax.Array]


@dataclasses.dataclass(frozen=True)
class Linear:
  r"""Affine read-out :math:`Y = H W_{hq} + b_q` over the last axis.

  Applies to one step's output ``(*batch, hidden)`` or to a whole sequence
  ``(*batch, T, hidden)`` alike. Default init: LeCun normal weights, zero
  bias; ``initializer="pytorch"`` gives ``torch.nn.Linear``'s uniform
  ``[-1/sqrt(in), 1/sqrt(in)]``.
  """

  def init(self, key, input_size: int, output_size: int, *,
           use_bias: bool = True, dtype: Any = jnp.float32,
           initializer: str = "default") -> LinearParams:
    base.check_key(key)
    base.check_sizes(input_size, output_size)
    base.check_initializer(initializer)
    k_w, k_b = jax.random.split(key)
    if initializer == "pytorch":
      bound = 1.0 / input_size ** 0.5
      w = jax.random.uniform(k_w, (input_size, output_size), dtype, -bound, bound)
      b = jax.random.uniform(k_b, (output_size,), dtype, -bound, bound)
    else:
      w = jax.nn.initializers.lecun_normal()(k_w, (input_size, output_size), dtype)
      b = jnp.zeros((output_size,), dtype)
    return LinearParams(w, b if use_bias else None)

  def __call__(self, params: LinearParams, h: jax.Array) -> jax.Array:
    if not isinstance(params, LinearParams):
      raise TypeError(f"params: Linear expects LinearParams, got "
                      f"{type(params).__name__}")
    h = base.as_array(h, "h")
    if not hasattr(h, "ndim"):
      raise TypeError(f"h: expected an array, got {type(h).__name__}")
    if h.ndim < 1 or h.shape[-1] != params.w.shape[0]:
      raise ValueError(
          f"h: expected last dimension {params.w.shape[0]} (from params.w), "
          f"got shape {base.shape_str(h.shape)}")
    return base.add_biases(h @ params.w, params.b)
