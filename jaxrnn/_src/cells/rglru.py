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
    w_i: ``(hidden_size, 2*hidden_size)``.
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
  Differences from the paper's code: ``W_a`` and ``W_x`` are dense (not
  block-diagonal over heads), and there is no segment reset (use masks or
  separate sequences). Carry :class:`RNNState` ``(h,)``.

  Attributes:
    c: the gate's temperature (static).
    min_rad, max_rad: the ring of the base decay at initialisation.
    method: ``"auto"``, ``"associative"`` or ``"sequential"``; see
      :mod:`jaxrnn._src.engines.linear`.
  """

  c: float = 8.0
  min_rad: float = 0.9
  max_rad: float = 0.999

  params_type = RGLRUParams
  carry_type = base.RNNState
  num_gates = 2

  def __post_init__(self):
    super().__post_init__()
    if not 0 < self.min_rad < self.max_rad < 1:
      raise ValueError(f"min_rad, max_rad: expected 0 < min_rad < max_rad < 1, "
                       f"got {self.min_rad!r}, {self.max_rad!r}")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> RGLRUParams:
    """LeCun-normal gate weights, zero biases, ``Λ`` on the ring."""
    base.check_sizes(input_size, hidden_size)
    if input_size != hidden_size:
      raise ValueError(f"input_size: RGLRUCell needs input_size == hidden_size "
                       f"(h' adds i * x), got {input_size} and {hidden_size}; "
                       f"project the input first (e.g. jaxrnn.Linear)")
    if initializer != "default":
      raise ValueError(f"initializer: expected 'default' (the RG-LRU has no "
                       f"PyTorch counterpart), got {initializer!r}")
    draw = jnp.promote_types(dtype, jnp.float32)
    k_w, k_a = jax.random.split(key)
    H = hidden_size
    w = jax.nn.initializers.lecun_normal()(k_w, (H, 2 * H), draw)
    unif = jax.random.uniform(k_a, (H,), draw)
    log_rad = 0.5 * jnp.log(unif * (self.max_rad ** 2 - self.min_rad ** 2)
                            + self.min_rad ** 2)
    a_param = jnp.log(jnp.expm1(-log_rad))  # softplus(a_param) = -log_rad
    return RGLRUParams(w.astype(dtype), jnp.zeros((2 * H,), dtype),
                       a_param.astype(dtype))

  def _param_shapes(self, params) -> dict:
    H = self.hidden_size(params)
    return {"w_i": (H, 2 * H), "b_i": (2 * H,), "a_param": (H,)}

  def base_decay(self, params) -> jax.Array:
    """``exp(−softplus(Λ))``, the decay at ``r = 1/c``."""
    return jnp.exp(-jax.nn.softplus(params.a_param))

  def coefficients(self, params, x):
    acc = linear_recurrence.accumulator(x.dtype, params.w_i.dtype)
    x = x.astype(acc)
    z = x @ params.w_i.astype(acc) + params.b_i.astype(acc)
    r, i = jnp.split(jax.nn.sigmoid(z), 2, axis=-1)
    log_a = -self.c * r * jax.nn.softplus(params.a_param.astype(acc))
    a = jnp.exp(log_a)
    return a, sqrt_bounded_derivative(-jnp.expm1(2 * log_a), 1000.0) * (i * x)
