"""The mLSTM (Beck et al., 2024, "xLSTM: Extended Long Short-Term Memory"),
the matrix-memory cell of xLSTM.

Per head, with exponential input gate and sigmoid forget gate::

    C_t = f_t C_{t-1} + i_t v_t k_tᵀ,          n_t = f_t n_{t-1} + i_t k_t
    h̃_t = C_t q_t / max(|n_tᵀ q_t|, 1),        h_t = o_t ⊙ h̃_t

with ``q = x W_q``, ``k = x W_k / sqrt(d_k)``, ``v = x W_v``,
``i_t = exp(ĩ_t)``, ``f_t = σ(f̃_t)`` and ``o_t = σ(x W_o + b_o)``; ``ĩ``
and ``f̃`` are one scalar per head. The state is kept stabilised (the
paper's eq. 15–17): with ``m_t = max(log f_t + m_{t-1}, ĩ_t)``, the carry
holds ``C̃ = C e^{−m}``, ``ñ = n e^{−m}`` and ``m``, and
``h̃_t = C̃_t q_t / max(|ñ_tᵀ q_t|, e^{−m_t})``, which is the same
number. The carry here is key-major: ``C`` is ``(d_k, d_v)``.

The chunkwise form computes the same ``m_t`` in closed form,
``m_t = max(G_t + m_start, max_{j ≤ t} (G_t − G_j + ĩ_j))`` with ``G`` the
cumulative ``log f`` of the segment, so that every form stores the same
carry; each weight ``exp(G_t − G_j + ĩ_j − m_t)`` is at most 1.

The initialisation is the official one: gate weights zero, forget-gate
biases ``linspace(3, 6)`` over the heads, input-gate biases ``N(0, 0.1²)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import matrix_state as ms


class MLSTMParams(NamedTuple):
  """Params of :class:`MLSTMCell`.

  Attributes:
    w_q, w_k: ``(input_size, heads * d_k)``.
    w_v: ``(input_size, hidden_size)``, ``hidden_size = heads * d_v``.
    w_i, w_f: ``(input_size, heads)``; ``b_i``, ``b_f``: ``(heads,)``.
    w_o: ``(input_size, hidden_size)``; ``b_o``: ``(hidden_size,)``.
  """

  w_q: jax.Array
  w_k: jax.Array
  w_v: jax.Array
  w_i: jax.Array
  b_i: jax.Array
  w_f: jax.Array
  b_f: jax.Array
  w_o: jax.Array
  b_o: jax.Array


class MLSTMState(NamedTuple):
  """Carry of :class:`MLSTMCell`, stabilised (see the module).

  Attributes:
    C: ``(*batch, heads, d_k, d_v)``.
    n: ``(*batch, heads, d_k)``.
    m: ``(*batch, heads)``.
  """

  C: jax.Array
  n: jax.Array
  m: jax.Array


class MLSTMTerms(NamedTuple):
  """Per step and head: ``q``, ``k`` ``(…, d_k)``, ``v`` ``(…, d_v)``, and
  the log gates ``log_f``, ``log_i`` ``(…,)``."""

  q: jax.Array
  k: jax.Array
  v: jax.Array
  log_f: jax.Array
  log_i: jax.Array


@dataclasses.dataclass(frozen=True)
class MLSTMCell(ms.MatrixStateCell):
  """The mLSTM (see the module).

  Attributes:
    num_heads, key_size, method, chunk_size: see
      :class:`jaxrnn.MatrixStateCell`.
  """

  form = "chunkwise"  # declared here, with the step and chunk below
  params_type = MLSTMParams
  carry_type = MLSTMState

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> MLSTMParams:
    ms.check_initializer(initializer)
    d_k, d_v = self._init_sizes(input_size, hidden_size)
    H = self.num_heads
    keys = jax.random.split(key, 5)
    zeros = jnp.zeros((input_size, H), dtype)
    return MLSTMParams(
        ms.dense(keys[0], input_size, H * d_k, dtype),
        ms.dense(keys[1], input_size, H * d_k, dtype),
        ms.dense(keys[2], input_size, H * d_v, dtype),
        zeros, (0.1 * jax.random.normal(keys[3], (H,))).astype(dtype),
        zeros, jnp.linspace(3.0, 6.0, H).astype(dtype),
        ms.dense(keys[4], input_size, H * d_v, dtype),
        jnp.zeros((H * d_v,), dtype))

  def _param_shapes(self, params) -> dict:
    d_k, d_v = self.head_sizes(params)
    H, n = self.num_heads, self.input_size(params)
    return {"w_q": (n, H * d_k), "w_k": (n, H * d_k), "w_v": (n, H * d_v),
            "w_i": (n, H), "b_i": (H,), "w_f": (n, H), "b_f": (H,),
            "w_o": (n, H * d_v), "b_o": (H * d_v,)}

  def carry_shapes(self, params) -> tuple:
    H, d_k, d_v = self.matrix_shape(params)
    return ((H, d_k, d_v), (H, d_k), (H,))

  # ---------------------------------------------------------- the family
  def terms(self, params, x) -> MLSTMTerms:
    p, x = self.in_accumulator(params, x)
    H = self.num_heads
    d_k, _ = self.head_sizes(params)
    return MLSTMTerms(ms.split_heads(x @ p.w_q, H),
                      ms.split_heads(x @ p.w_k, H) * ms.key_scale(d_k),
                      ms.split_heads(x @ p.w_v, H),
                      jax.nn.log_sigmoid(x @ p.w_f + p.b_f),
                      x @ p.w_i + p.b_i)

  def hold(self, terms: MLSTMTerms, valid) -> MLSTMTerms:
    return terms._replace(log_f=jnp.where(valid[..., None], terms.log_f, 0),
                          log_i=jnp.where(valid[..., None], terms.log_i, -jnp.inf))

  def step(self, terms: MLSTMTerms, carry: MLSTMState) -> tuple:
    q, k, v, log_f, log_i = terms
    m = jnp.maximum(log_f + carry.m, log_i)
    f, i = jnp.exp(log_f + carry.m - m), jnp.exp(log_i - m)
    C = f[..., None, None] * carry.C + (i[..., None] * k)[..., :, None] * v[..., None, :]
    n = f[..., None] * carry.n + i[..., None] * k
    num = jnp.einsum("...k,...kv->...v", q, C)
    den = jnp.abs(jnp.sum(n * q, axis=-1))
    return MLSTMState(C, n, m), num / jnp.maximum(den, jnp.exp(-m))[..., None]

  def chunk(self, terms: MLSTMTerms, carry: MLSTMState, reset_to, starts) -> tuple:
    (q, k, v, log_f, log_i), seg = ms.chunk_axes(
        terms, starts, dict(q=1, k=1, v=1, log_f=0, log_i=0))
    G = jnp.cumsum(log_f, axis=-1)
    G_start = G if starts is None else ms.segment_decay(G, log_f, seg, -1)
    m_from = (carry.m if reset_to is None else
              jnp.where(seg.fresh, reset_to.m[..., None], carry.m[..., None]))
    b = G_start + (m_from if reset_to is not None else m_from[..., None])
    D = jnp.where(seg.same, G[..., :, None] - G[..., None, :] + log_i[..., None, :],
                  -jnp.inf)
    m = jnp.maximum(b, jnp.max(D, axis=-1))
    W = jnp.exp(D - m[..., None])
    A = (q @ jnp.swapaxes(k, -1, -2)) * W
    scale = jnp.exp(b - m)
    R_C = None if reset_to is None else reset_to.C
    R_n = None if reset_to is None else reset_to.n[..., :, None]
    num = A @ v + scale[..., None] * ms.through_start(q, carry.C, R_C, seg)
    den = (jnp.sum(A, axis=-1) + scale
           * ms.through_start(q, carry.n[..., :, None], R_n, seg)[..., 0])
    out = num / jnp.maximum(jnp.abs(den), jnp.exp(-m))[..., None]
    w_last = W[..., -1, :, None] * k  # (…, C, d_k)
    s_last = scale[..., -1]
    C = (s_last[..., None, None] * ms.last_start(carry.C, R_C, seg, 2)
         + jnp.swapaxes(w_last, -1, -2) @ v)
    n_start = ms.last_start(carry.n, None if reset_to is None else reset_to.n, seg, 1)
    n = s_last[..., None] * n_start + jnp.sum(w_last, axis=-2)
    return MLSTMState(C, n, m[..., -1]), ms.time_first(out, 1)

  def readout(self, params, out, x):
    acc = out.dtype
    o = jax.nn.sigmoid(x.astype(acc) @ params.w_o.astype(acc) + params.b_o.astype(acc))
    return o * out.reshape(out.shape[:-2] + (-1,))
