"""The scalar LSTM of xLSTM (Beck et al., 2024, "xLSTM: Extended Long
Short-Term Memory"), with exponential gating and a normaliser state."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base

FORGET_GATES = ("sigmoid", "exp")


class SLSTMParams(NamedTuple):
  """Params of :class:`SLSTMCell`; gate blocks in the order ``i, f, z, o``.

  Attributes:
    w_i: ``(input_size, 4*hidden_size)``, gate-major.
    w_h: ``(num_heads, head_size, 4*head_size)``: each head's recurrent
      weights, its gates in the order ``i, f, z, o`` (block-diagonal over
      heads; ``hidden_size = num_heads * head_size``).
    b: ``(4*hidden_size,)``, gate-major.
  """

  w_i: jax.Array
  w_h: jax.Array
  b: jax.Array


class SLSTMState(NamedTuple):
  """Carry of :class:`SLSTMCell`.

  Attributes:
    h: hidden state (the output), ``(*batch, hidden_size)``.
    c: cell state, stabilised (scaled by ``exp(−m)``).
    n: normaliser state, stabilised alike.
    m: stabiliser state, the running log-scale.
  """

  h: jax.Array
  c: jax.Array
  n: jax.Array
  m: jax.Array


@dataclasses.dataclass(frozen=True)
class SLSTMCell(base.Cell):
  r"""sLSTM (Beck et al., 2024): exponential input gate, normaliser and
  stabiliser states, block-diagonal recurrent weights over heads.

  With ``[ĩ, f̃, z̃, õ] = x W_i + h R + b`` (``R`` block-diagonal):

  .. math::

    \log f &= \log\sigma(\tilde f) \ \text{(sigmoid)} \quad\text{or}\quad
      \tilde f \ \text{(exp)} \\
    m' &= \max(\log f + m, \ \tilde\imath) \\
    i' &= \exp(\tilde\imath - m'), \qquad f' = \exp(\log f + m - m') \\
    c' &= f' \odot c + i' \odot \tanh(\tilde z), \qquad
    n' = f' \odot n + i' \\
    h' &= \sigma(\tilde o) \odot c' / n', \qquad y = h'

  ``m`` keeps the exponentials in range; ``h`` equals the unstabilised
  ``o ⊙ c / n`` of the paper's equations (7)-(14). The carry
  :class:`SLSTMState` ``(h, c, n, m)`` starts at zeros. This cell's gates
  see ``h``, so it runs step by step (no parallel path).

  Attributes:
    num_heads: heads of the block-diagonal ``R`` (``init`` only; read from
      the params' shape afterwards).
    forget_gate: ``"sigmoid"`` (default, as the paper's code) or ``"exp"``.
  """

  num_heads: int = 1
  forget_gate: str = "sigmoid"

  params_type = SLSTMParams
  carry_type = SLSTMState
  num_gates = 4

  def __post_init__(self):
    if not isinstance(self.num_heads, int) or self.num_heads < 1:
      raise ValueError(f"num_heads: expected a positive int, got {self.num_heads!r}")
    if self.forget_gate not in FORGET_GATES:
      raise ValueError(f"forget_gate: expected one of {FORGET_GATES}, got "
                       f"{self.forget_gate!r}")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default",
           forget_bias: Optional[float] = None) -> SLSTMParams:
    """LeCun-normal ``w_i``, orthogonal per head and gate ``w_h``, zero
    biases but the forget gate's, ``forget_bias`` (default 1.0)."""
    base.check_sizes(input_size, hidden_size)
    if hidden_size % self.num_heads:
      raise ValueError(f"hidden_size: expected a multiple of num_heads="
                       f"{self.num_heads}, got {hidden_size}")
    if initializer != "default":
      raise ValueError(f"initializer: expected 'default' (the sLSTM has no "
                       f"PyTorch counterpart), got {initializer!r}")
    draw = jnp.promote_types(dtype, jnp.float32)
    K, d = self.num_heads, hidden_size // self.num_heads
    k_i, k_h = jax.random.split(key)
    w_i = jax.nn.initializers.lecun_normal()(k_i, (input_size, 4 * hidden_size), draw)
    orthogonal = jax.nn.initializers.orthogonal()
    w_h = jnp.stack([jnp.concatenate([orthogonal(k, (d, d), draw)
                                      for k in jax.random.split(k_head, 4)], axis=1)
                     for k_head in jax.random.split(k_h, K)])
    b = jnp.zeros((4 * hidden_size,), draw)
    b = b.at[hidden_size:2 * hidden_size].set(1.0 if forget_bias is None else forget_bias)
    return SLSTMParams(w_i.astype(dtype), w_h.astype(dtype), b.astype(dtype))

  def input_weights(self, params):
    return params.w_i, params.b

  def hidden_size(self, params) -> int:
    return params.w_h.shape[0] * params.w_h.shape[1]

  def zoneout_groups(self) -> tuple:
    """``c, n, m`` together: ``c`` and ``n`` are stored scaled by
    ``exp(−m)``, so a unit that holds one of them must hold all three. ``h``
    is its own group."""
    return (("h",), ("c", "n", "m"))

  def _size_fields(self) -> dict:
    return {"w_i": 2, "w_h": 3}

  def _param_shapes(self, params) -> dict:
    K, d = params.w_h.shape[:2]
    return {"w_i": (self.input_size(params), 4 * K * d), "w_h": (K, d, 4 * d),
            "b": (4 * K * d,)}

  def recurrent_projection(self, params, h):
    """``h R`` with ``R`` block-diagonal over heads, gate-major like ``w_i``."""
    K, d = params.w_h.shape[:2]
    per_head = jnp.einsum("...kd,kde->...ke", h.reshape(*h.shape[:-1], K, d),
                          params.w_h)
    per_gate = jnp.swapaxes(per_head.reshape(*h.shape[:-1], K, 4, d), -3, -2)
    return per_gate.reshape(*h.shape[:-1], 4 * K * d)

  def recurrence(self, params, carry, xp, h_mask=None):
    z = xp + self.recurrent_projection(params, base.drop(carry.h, h_mask))
    i_tilde, f_tilde, z_tilde, o_tilde = jnp.split(z, 4, axis=-1)
    log_f = jax.nn.log_sigmoid(f_tilde) if self.forget_gate == "sigmoid" else f_tilde
    m = jnp.maximum(log_f + carry.m, i_tilde)
    i = jnp.exp(i_tilde - m)
    f = jnp.exp(log_f + carry.m - m)
    c = f * carry.c + i * jnp.tanh(z_tilde)
    n = f * carry.n + i
    h = base.sigmoid(o_tilde) * c / n
    return SLSTMState(h, c, n, m), h
