"""Mamba's selective state-space model, S6 (Gu & Dao, 2023, "Mamba:
Linear-Time Sequence Modeling with Selective State Spaces", Algorithm 2).

Per channel ``d`` of ``x`` (``D = input_size`` channels), a state of
``N = state_size`` entries::

    Δ_t = softplus(x_t W_x^Δ W_Δ + b_Δ)                   (D,)
    B_t = x_t W_x^B,   C_t = x_t W_x^C                     (N,)
    h_t = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t ⊙ x_t) B_tᵀ          (D, N)
    y_t = h_t C_t + D_skip ⊙ x_t

with ``A = −exp(a_log)`` diagonal, ``(D, N)``. The discretisation is the
paper's (zero-order hold on ``A``, Euler on ``B``), as in its reference
``selective_scan_ref``. The state is diagonal and the gates see only the
input, so this is a linear recurrence
(:class:`jaxrnn._src.cells.linear_recurrence.LinearRecurrentCell`) on the
linear engine, with ``a = exp(Δ A)`` and ``b = (Δ ⊙ x) Bᵀ``; the carry is
``RNNState(h)`` with ``h`` of shape ``(*batch, D, N)``.

Initialisation (the paper's code): ``a_log = log(1..N)`` per channel (S4D
real), ``D_skip = 1``, ``W_Δ`` uniform in ``±dt_rank^{−1/2}``, ``b_Δ`` the
inverse softplus of ``Δ`` log-uniform in ``[1e-3, 1e-1]``. Mamba's
convolution, gate and projections belong to its block.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import initializers
from jaxrnn._src.cells import linear_recurrence
from jaxrnn._src.cells import matrix_state as ms


class SelectiveSSMParams(NamedTuple):
  """Params of :class:`SelectiveSSMCell`.

  Attributes:
    w_x: ``(D, dt_rank + 2 N)``: ``Δ``'s low-rank input, ``B`` and ``C``.
    w_dt: ``(dt_rank, D)``; ``b_dt``: ``(D,)``.
    a_log: ``(D, N)``.
    d: ``(D,)``, the skip connection.
  """

  w_x: jax.Array
  w_dt: jax.Array
  b_dt: jax.Array
  a_log: jax.Array
  d: jax.Array


@dataclasses.dataclass(frozen=True)
class SelectiveSSMCell(linear_recurrence.LinearRecurrentCell):
  """S6, Mamba's selective SSM (see the module).

  ``hidden_size`` equals ``input_size`` (the SSM is channel-wise).

  Attributes:
    state_size: ``N``, the state entries per channel (16 in the paper).
    dt_rank: the rank of ``Δ``'s projection, or ``None`` for
      ``ceil(D / 16)``.
    method: see :class:`jaxrnn._src.cells.linear_recurrence.LinearRecurrentCell`.
  """

  state_size: int = 16
  dt_rank: Optional[int] = None

  params_type = SelectiveSSMParams
  carry_type = base.RNNState
  coefficients_in_loop = True
  num_gates = 1

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> SelectiveSSMParams:
    ms.check_initializer(initializer)
    base.check_sizes(input_size, hidden_size)
    if hidden_size != input_size:
      raise ValueError(f"hidden_size: S6 is channel-wise, so expected "
                       f"input_size={input_size}, got {hidden_size}")
    D, N = input_size, self.state_size
    R = self.dt_rank or math.ceil(D / 16)
    k_x, k_dt, k_b = jax.random.split(key, 3)
    bound = R ** -0.5
    return SelectiveSSMParams(
        ms.dense(k_x, D, R + 2 * N, dtype),
        jax.random.uniform(k_dt, (R, D), minval=-bound, maxval=bound).astype(dtype),
        initializers.dt_bias(k_b, (D,), dtype),
        jnp.log(jnp.broadcast_to(jnp.arange(1, N + 1, dtype=jnp.float32),
                                 (D, N))).astype(dtype),
        jnp.ones((D,), dtype))

  def _size_fields(self) -> dict:
    return {"w_x": 2, "w_dt": 2, "a_log": 2}

  def input_size(self, params) -> int:
    return params.w_dt.shape[1]

  def hidden_size(self, params) -> int:
    return params.w_dt.shape[1]

  def _param_shapes(self, params) -> dict:
    R, D = params.w_dt.shape
    N = params.a_log.shape[1]
    return {"w_x": (D, R + 2 * N), "w_dt": (R, D), "b_dt": (D,), "a_log": (D, N),
            "d": (D,)}

  def carry_shapes(self, params) -> tuple:
    return (params.a_log.shape,)

  def _projections(self, params, x):
    acc = linear_recurrence.accumulator(x.dtype, params.w_x.dtype)
    p = jax.tree.map(lambda a: a.astype(acc), params)
    x = x.astype(acc)
    R, N = p.w_dt.shape[0], p.a_log.shape[1]
    proj = x @ p.w_x
    dt = jax.nn.softplus(proj[..., :R] @ p.w_dt + p.b_dt)
    return p, x, dt, proj[..., R:R + N], proj[..., R + N:]

  def coefficients(self, params, x) -> tuple:
    p, x, dt, B, _ = self._projections(params, x)
    a = jnp.exp(dt[..., None] * -jnp.exp(p.a_log))
    return a, (dt * x)[..., :, None] * B[..., None, :]

  def readout(self, params, h, x):
    p, x, _, _, C = self._projections(params, x)
    return jnp.einsum("...dn,...n->...d", h.astype(x.dtype), C) + p.d * x
