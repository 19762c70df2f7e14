"""The delta rule: DeltaNet (Schlag et al., 2021, "Linear Transformers Are
Secretly Fast Weight Programmers"; Yang et al., 2024, "Parallelizing Linear
Transformers with the Delta Rule over Sequence Length") and Gated DeltaNet
(Yang et al., 2025, "Gated Delta Networks: Improving Mamba2 with Delta
Rule").

Per head, with key-major state ``S`` ``(d_k, d_v)``::

    S_t = α_t (I − β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ,      o_t = S_tᵀ q_t

``q = l2norm(x W_q) / sqrt(d_k)``, ``k = l2norm(x W_k)``, ``v = x W_v``,
``β_t = σ(x w_β + b_β)`` per head; DeltaNet has ``α = 1``, Gated DeltaNet
``α_t = exp(−exp(a) · softplus(x w_α + b_α))`` per head (Mamba-2's decay).
With ``negative_eigenvalues=True``, ``β_t = 2 σ(·) ∈ (0, 2)``: the
transition ``I − β k kᵀ`` then has the eigenvalue ``1 − β ∈ (−1, 1)``, which
lets a linear recurrence track parity (Grazzi et al., 2024, "Unlocking
State-Tracking in Linear RNNs Through Negative Eigenvalues").

The chunkwise form (Yang et al. 2024, the WY/UT representation): within a
chunk, with ``γ_t`` the decay since the segment began and
``Γ_tj = γ_t / γ_j``, the state is ``S_t = γ_t S_0 + Σ_{j≤t} Γ_tj k_j u_jᵀ``
where the pseudo-values ``u`` solve the unit lower-triangular system::

    (I + A) U = diag(β) (V − diag(γ) K S_0),     A_tj = β_t Γ_tj k_t·k_j (j < t)

and the outputs are ``o_t = γ_t S_0ᵀ q_t + Σ_{j≤t} Γ_tj (q_t·k_j) u_j``: one
``C × C`` triangular solve and a few matmuls per chunk, ``O(T C d)`` in all,
against the ``O(T d³)`` of an associative scan over the ``d × d``
transitions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import initializers
from jaxrnn._src.cells import matrix_state as ms


class DeltaNetParams(NamedTuple):
  """Params of :class:`DeltaNetCell` and :class:`GatedDeltaNetCell`.

  Attributes:
    w_q, w_k: ``(input_size, heads * d_k)``.
    w_v: ``(input_size, hidden_size)``, ``hidden_size = heads * d_v``.
    w_beta: ``(input_size, heads)``; ``b_beta``: ``(heads,)``.
    w_a: ``(input_size, heads)``, ``b_a`` and ``a_log``: ``(heads,)``, the
      decay of Gated DeltaNet; ``None`` for DeltaNet.
  """

  w_q: jax.Array
  w_k: jax.Array
  w_v: jax.Array
  w_beta: jax.Array
  b_beta: jax.Array
  w_a: Optional[jax.Array] = None
  b_a: Optional[jax.Array] = None
  a_log: Optional[jax.Array] = None


class DeltaTerms(NamedTuple):
  """Per step and head: ``q``, ``k`` ``(…, d_k)``, ``v`` ``(…, d_v)``,
  ``beta`` ``(…,)`` and the log decay ``g`` ``(…,)`` (``None``: none)."""

  q: jax.Array
  k: jax.Array
  v: jax.Array
  beta: jax.Array
  g: Optional[jax.Array]


@dataclasses.dataclass(frozen=True)
class DeltaNetCell(ms.MatrixStateCell):
  """DeltaNet (see the module).

  Attributes:
    negative_eigenvalues: ``β ∈ (0, 2)`` instead of ``(0, 1)``.
    num_heads, key_size, method, chunk_size: see
      :class:`jaxrnn.MatrixStateCell`.
  """

  negative_eigenvalues: bool = False

  form = "chunkwise"  # declared here, with the step and chunk below
  params_type = DeltaNetParams
  carry_type = ms.MatrixState
  gated = False

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> DeltaNetParams:
    """LeCun-normal projections, zero ``b_β``; Gated DeltaNet's ``exp(a)``
    uniform in ``[1, 16]`` and ``b_α`` Mamba's ``Δ`` bias."""
    ms.check_initializer(initializer)
    d_k, d_v = self._init_sizes(input_size, hidden_size)
    H = self.num_heads
    keys = jax.random.split(key, 7)
    params = DeltaNetParams(ms.dense(keys[0], input_size, H * d_k, dtype),
                            ms.dense(keys[1], input_size, H * d_k, dtype),
                            ms.dense(keys[2], input_size, H * d_v, dtype),
                            ms.dense(keys[3], input_size, H, dtype),
                            jnp.zeros((H,), dtype))
    if self.gated:
      params = params._replace(
          w_a=ms.dense(keys[4], input_size, H, dtype),
          b_a=initializers.dt_bias(keys[5], (H,), dtype),
          a_log=jnp.log(jax.random.uniform(keys[6], (H,), minval=1.0,
                                           maxval=16.0)).astype(dtype))
    return params

  def _param_shapes(self, params) -> dict:
    d_k, d_v = self.head_sizes(params)
    H, n = self.num_heads, self.input_size(params)
    shapes = {"w_q": (n, H * d_k), "w_k": (n, H * d_k), "w_v": (n, H * d_v),
              "w_beta": (n, H), "b_beta": (H,)}
    gate = {"w_a": (n, H), "b_a": (H,), "a_log": (H,)}
    shapes.update(gate if self.gated else {f: None for f in gate})
    return shapes

  def carry_shapes(self, params) -> tuple:
    return (self.matrix_shape(params),)

  # ---------------------------------------------------------- the family
  def terms(self, params, x) -> DeltaTerms:
    p, x = self.in_accumulator(params, x)
    H = self.num_heads
    d_k, _ = self.head_sizes(params)
    q = ms.l2_normalize(ms.split_heads(x @ p.w_q, H)) * ms.key_scale(d_k)
    k = ms.l2_normalize(ms.split_heads(x @ p.w_k, H))
    beta = jax.nn.sigmoid(x @ p.w_beta + p.b_beta)
    if self.negative_eigenvalues:
      beta = 2 * beta
    g = None
    if self.gated:
      g = -jnp.exp(p.a_log) * jax.nn.softplus(x @ p.w_a + p.b_a)
    return DeltaTerms(q, k, ms.split_heads(x @ p.w_v, H), beta, g)

  def hold(self, terms: DeltaTerms, valid) -> DeltaTerms:
    v = valid[..., None]
    return terms._replace(beta=jnp.where(v, terms.beta, 0),
                          g=None if terms.g is None else jnp.where(v, terms.g, 0))

  def step(self, terms: DeltaTerms, carry: ms.MatrixState) -> tuple:
    q, k, v, beta, g = terms
    bk = beta[..., None] * k
    kS = jnp.einsum("...k,...kv->...v", k, carry.S)
    decay = 1.0 if g is None else jnp.exp(g)[..., None, None]
    S = (decay * (carry.S - bk[..., :, None] * kS[..., None, :])
         + bk[..., :, None] * v[..., None, :])
    return ms.MatrixState(S), jnp.einsum("...k,...kv->...v", q, S)

  def chunk(self, terms: DeltaTerms, carry: ms.MatrixState, reset_to, starts) -> tuple:
    fields = dict(q=1, k=1, v=1, beta=0, g=0)
    (q, k, v, beta, g), seg = ms.chunk_axes(terms, starts, fields)
    R = None if reset_to is None else reset_to.S
    C = q.shape[-2]
    if g is None:
      Gam = seg.same.astype(q.dtype)
      gamma = jnp.ones(q.shape[:-1], q.dtype)
    else:
      G = jnp.cumsum(g, axis=-1)
      G_start = G if starts is None else ms.segment_decay(G, g, seg, -1)
      Gam = jnp.exp(jnp.where(seg.same, G[..., :, None] - G[..., None, :], -jnp.inf))
      gamma = jnp.exp(G_start)
    kT = jnp.swapaxes(k, -1, -2)
    strictly = jnp.tril(jnp.ones((C, C), bool), -1)
    A = jnp.where(strictly, beta[..., :, None] * (k @ kT) * Gam, 0)
    rhs = beta[..., None] * (v - gamma[..., None] * ms.through_start(k, carry.S, R, seg))
    U = ms.unit_lower_inverse(A) @ rhs
    out = (gamma[..., None] * ms.through_start(q, carry.S, R, seg)
           + ((q @ kT) * Gam) @ U)
    S = (gamma[..., -1, None, None] * ms.last_start(carry.S, R, seg, 2)
         + jnp.swapaxes(k * Gam[..., -1, :, None], -1, -2) @ U)
    return ms.MatrixState(S), ms.time_first(out, 1)


@dataclasses.dataclass(frozen=True)
class GatedDeltaNetCell(DeltaNetCell):
  """Gated DeltaNet: DeltaNet with a decay ``α_t`` per head (see the module).

  Attributes:
    negative_eigenvalues: ``β ∈ (0, 2)`` instead of ``(0, 1)``.
    num_heads, key_size, method, chunk_size: see
      :class:`jaxrnn.MatrixStateCell`.
  """

  gated = True
