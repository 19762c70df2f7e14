"""The real-gated linear recurrent unit of Griffin and Hawk (De et al., 2024,
"Griffin: Mixing Gated Linear Recurrences with Local Attention")."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import linear_recurrence


class RGLRUParams(NamedTuple):
  """Params of :class:`RGLRUCell`; blocks in the order ``a, x`` (the
  recurrence gate ``r`` and the input gate ``i``).

  Attributes:
    w_i: ``(hidden_size, 2*hidden_size)``, or with ``num_heads = n > 1`` the
      diagonal blocks ``(n, hidden_size/n, 2*hidden_size/n)``: head ``k``'s
      gates read only its own channels, ``[k d, (k+1) d)`` with
      ``d = hidden_size/n``, its ``a`` columns first.
    b_i: ``(2*hidden_size,)``.
    a_param: ``(hidden_size,)``, ``Λ``: the base decay is ``exp(−softplus(Λ))``.
  """

  w_i: jax.Array
  b_i: jax.Array
  a_param: jax.Array


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def sqrt_bounded_derivative(x, max_gradient: float):
  """``sqrt(x)`` whose derivative is capped at ``max_gradient`` (near 0),
  as recurrentgemma computes ``sqrt(1 − a²)``."""
  return jnp.sqrt(x)


@sqrt_bounded_derivative.defjvp
def _sqrt_jvp(max_gradient, primals, tangents):
  (x,), (dx,) = primals, tangents
  floor = 1 / (4 * max_gradient ** 2)
  return jnp.sqrt(x), dx / (2 * jnp.sqrt(jnp.maximum(x, floor)))


@dataclasses.dataclass(frozen=True)
class RGLRUCell(linear_recurrence.LinearRecurrentCell):
  r"""Real-gated linear recurrent unit (RG-LRU; De et al., 2024).

  .. math::

    r &= \sigma(x W_a + b_a), \qquad i = \sigma(x W_x + b_x) \\
    \log a &= -c \, r \odot \mathrm{softplus}(\Lambda) \\
    h' &= a \odot h + \sqrt{1 - a^2} \odot (i \odot x), \qquad y = h'

  ``c = 8``; the base decay ``exp(−softplus(Λ))`` starts on the ring
  ``[min_rad, max_rad] = [0.9, 0.999]``, its square uniform (the paper's);
  the recurrence runs in float32 whatever the input dtype. The input has the
  hidden size (in Griffin a linear layer and a convolution come first). As
  in recurrentgemma, the derivative of ``sqrt(1 − a²)`` is capped at 1000.
  ``W_a`` and ``W_x`` are dense by default; ``num_heads = n`` makes them
  block-diagonal over ``n`` heads, as recurrentgemma's ``BlockDiagonalLinear``
  (its 2B model: 10 heads), each block LeCun-normal. Unlike the paper's code
  there is no segment reset (use masks or separate sequences). Carry
  :class:`RNNState` ``(h,)``.

  Attributes:
    c: the gate's temperature (static).
    min_rad, max_rad: the ring of the base decay at initialisation.
    num_heads: the gates' diagonal blocks (1: dense); it divides the hidden
      size.
    method: ``"auto"``, ``"associative"`` or ``"sequential"``; see
      :mod:`jaxrnn._src.engines.linear`.
  """

  c: float = 8.0
  min_rad: float = 0.9
  max_rad: float = 0.999
  num_heads: int = 1

  params_type = RGLRUParams
  carry_type = base.RNNState
  num_gates = 2

  def __post_init__(self):
    super().__post_init__()
    if not 0 < self.min_rad < self.max_rad < 1:
      raise ValueError(f"min_rad, max_rad: expected 0 < min_rad < max_rad < 1, "
                       f"got {self.min_rad!r}, {self.max_rad!r}")
    if (not isinstance(self.num_heads, int) or isinstance(self.num_heads, bool)
        or self.num_heads < 1):
      raise ValueError(f"num_heads: expected a positive int, got {self.num_heads!r}")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> RGLRUParams:
    """LeCun-normal gate weights, zero biases, ``Λ`` on the ring."""
    base.check_sizes(input_size, hidden_size)
    if input_size != hidden_size:
      raise ValueError(f"input_size: RGLRUCell needs input_size == hidden_size "
                       f"(h' adds i * x), got {input_size} and {hidden_size}; "
                       f"project the input first (e.g. jaxrnn.Linear)")
    if hidden_size % self.num_heads:
      raise ValueError(f"hidden_size: expected a multiple of num_heads="
                       f"{self.num_heads} (the gates' diagonal blocks), got {hidden_size}")
    if initializer != "default":
      raise ValueError(f"initializer: expected 'default' (the RG-LRU has no "
                       f"PyTorch counterpart), got {initializer!r}")
    draw = jnp.promote_types(dtype, jnp.float32)
    k_w, k_a = jax.random.split(key)
    H = hidden_size
    w = jax.nn.initializers.lecun_normal(batch_axis=(0,) if self.num_heads > 1 else ())(
        k_w, self._w_i_shape(H), draw)
    unif = jax.random.uniform(k_a, (H,), draw)
    log_rad = 0.5 * jnp.log(unif * (self.max_rad ** 2 - self.min_rad ** 2)
                            + self.min_rad ** 2)
    a_param = jnp.log(jnp.expm1(-log_rad))  # softplus(a_param) = -log_rad
    return RGLRUParams(w.astype(dtype), jnp.zeros((2 * H,), dtype),
                       a_param.astype(dtype))

  def _size_fields(self) -> dict:
    return {"w_i": 2 if self.num_heads == 1 else 3}

  def input_size(self, params) -> int:
    return self.hidden_size(params)

  def hidden_size(self, params) -> int:
    w = params.w_i.shape
    return w[1] // 2 if len(w) == 2 else w[0] * w[1]

  def _w_i_shape(self, H: int) -> tuple:
    n = self.num_heads
    return (H, 2 * H) if n == 1 else (n, H // n, 2 * H // n)

  def _param_shapes(self, params) -> dict:
    H = self.hidden_size(params)
    return {"w_i": self._w_i_shape(H), "b_i": (2 * H,), "a_param": (H,)}

  def gate_preactivations(self, params, x):
    """``(x W_a, x W_x)`` (without biases), each ``(..., hidden_size)``."""
    w = params.w_i.astype(x.dtype)
    if self.num_heads == 1:
      return jnp.split(x @ w, 2, axis=-1)
    n, d = w.shape[:2]
    z = jnp.einsum("...nd,nde->...ne", x.reshape(*x.shape[:-1], n, d), w)
    return tuple(g.reshape(*x.shape) for g in jnp.split(z, 2, axis=-1))

  def base_decay(self, params) -> jax.Array:
    """``exp(−softplus(Λ))``, the decay at ``r = 1/c``."""
    return jnp.exp(-jax.nn.softplus(params.a_param))

  def coefficients(self, params, x):
    acc = linear_recurrence.accumulator(x.dtype, params.w_i.dtype)
    x = x.astype(acc)
    b_a, b_x = jnp.split(params.b_i.astype(acc), 2)
    z_a, z_x = self.gate_preactivations(params, x)
    r, i = jax.nn.sigmoid(z_a + b_a), jax.nn.sigmoid(z_x + b_x)
    log_a = -self.c * r * jax.nn.softplus(params.a_param.astype(acc))
    a = jnp.exp(log_a)
    return a, sqrt_bounded_derivative(-jnp.expm1(2 * log_a), 1000.0) * (i * x)
