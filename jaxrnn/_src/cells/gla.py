"""Gated linear attention (Yang et al., 2024, "Gated Linear Attention
Transformers with Hardware-Efficient Training"), with plain linear attention
(Katharopoulos et al., 2020, "Transformers are RNNs") and RetNet's fixed
decay (Sun et al., 2023, "Retentive Network") as options.

Per head, with key-major state ``S`` ``(d_k, d_v)``::

    S_t = diag(α_t) S_{t-1} + k_tᵀ v_t,        o_t = q_t S_t

- ``decay="gated"`` (GLA): ``α_t = σ(x_t W_α1 W_α2 + b_α)^{1/τ}``, one per
  key dimension, from a low-rank (16) projection, ``τ = 16``;
- ``decay="fixed"`` (RetNet): ``α = γ_h = 1 − 2^{−5−h}`` for head ``h``;
- ``decay="none"`` (linear attention): ``α = 1``.

``q = φ(x W_q) / sqrt(d_k)``, ``k = φ(x W_k)``, ``v = x W_v``, with the
feature map ``φ`` the identity or ``elu(x) + 1`` (``feature_map="elu"``,
Katharopoulos et al.). The output gate, the norm and the output projection of
the GLA layer belong to a block, not to the cell.

The chunkwise form: with ``G_t`` the cumulative log decay in a chunk, step
``t`` sees step ``j ≤ t`` of its segment through
``Σ_d q_td k_jd exp(G_td − G_jd)``, and the incoming state through
``(q_t ⊙ exp(G_t)) S``. A per-key decay makes that a ``(C, C, d_k)`` tensor
per chunk; a scalar decay (fixed or none) a ``(C, C)`` matrix.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._src.cells import matrix_state as ms

DECAYS = ("gated", "fixed", "none")
FEATURE_MAPS = ("identity", "elu")
GATE_RANK = 16
TEMPERATURE = 16.0


class GLAParams(NamedTuple):
  """Params of :class:`GLACell`.

  Attributes:
    w_q, w_k: ``(input_size, heads * d_k)``.
    w_v: ``(input_size, hidden_size)``, ``hidden_size = heads * d_v``.
    w_a1: ``(input_size, 16)`` and ``w_a2`` ``(16, heads * d_k)``, ``b_a``
      ``(heads * d_k,)``: the low-rank decay gate; ``None`` unless
      ``decay="gated"``.
  """

  w_q: jax.Array
  w_k: jax.Array
  w_v: jax.Array
  w_a1: Optional[jax.Array] = None
  w_a2: Optional[jax.Array] = None
  b_a: Optional[jax.Array] = None


class GLATerms(NamedTuple):
  """Per step and head: ``q``, ``k`` ``(…, d_k)``, ``v`` ``(…, d_v)``, and the
  log decay ``g``: ``(…, d_k)`` gated, ``(…,)`` fixed or none."""

  q: jax.Array
  k: jax.Array
  v: jax.Array
  g: jax.Array


@dataclasses.dataclass(frozen=True)
class GLACell(ms.MatrixStateCell):
  """Gated linear attention, linear attention and RetNet (see the module).

  Attributes:
    decay: ``"gated"`` (GLA), ``"fixed"`` (RetNet) or ``"none"`` (linear
      attention).
    feature_map: ``"identity"`` or ``"elu"`` (``elu(x) + 1``).
    num_heads, key_size, method, chunk_size: see
      :class:`jaxrnn.MatrixStateCell`.
  """

  decay: str = "gated"
  feature_map: str = "identity"

  form = "chunkwise"  # declared here, with the step and chunk below
  params_type = GLAParams
  carry_type = ms.MatrixState

  def __post_init__(self):
    super().__post_init__()
    if self.decay not in DECAYS:
      raise ValueError(f"decay: expected one of {DECAYS}, got {self.decay!r}")
    if self.feature_map not in FEATURE_MAPS:
      raise ValueError(f"feature_map: expected one of {FEATURE_MAPS}, got "
                       f"{self.feature_map!r}")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> GLAParams:
    """LeCun-normal projections; the gate's bias zero (``α = 2^{−1/16}``)."""
    ms.check_initializer(initializer)
    d_k, d_v = self._init_sizes(input_size, hidden_size)
    keys = jax.random.split(key, 5)
    H = self.num_heads
    params = GLAParams(ms.dense(keys[0], input_size, H * d_k, dtype),
                       ms.dense(keys[1], input_size, H * d_k, dtype),
                       ms.dense(keys[2], input_size, H * d_v, dtype))
    if self.decay == "gated":
      params = params._replace(
          w_a1=ms.dense(keys[3], input_size, GATE_RANK, dtype),
          w_a2=ms.dense(keys[4], GATE_RANK, H * d_k, dtype),
          b_a=jnp.zeros((H * d_k,), dtype))
    return params

  def _param_shapes(self, params) -> dict:
    d_k, d_v = self.head_sizes(params)
    H, n = self.num_heads, self.input_size(params)
    shapes = {"w_q": (n, H * d_k), "w_k": (n, H * d_k), "w_v": (n, H * d_v)}
    gate = {"w_a1": (n, GATE_RANK), "w_a2": (GATE_RANK, H * d_k), "b_a": (H * d_k,)}
    if self.decay == "gated":
      shapes.update(gate)
    else:
      shapes.update({f: None for f in gate})
    return shapes

  def carry_shapes(self, params) -> tuple:
    return (self.matrix_shape(params),)

  # ---------------------------------------------------------- the family
  def terms(self, params, x) -> GLATerms:
    p, x = self.in_accumulator(params, x)
    acc = x.dtype
    H = self.num_heads
    d_k, _ = self.head_sizes(params)
    phi = ((lambda a: jax.nn.elu(a) + 1) if self.feature_map == "elu"
           else (lambda a: a))
    q = ms.split_heads(phi(x @ p.w_q), H) * ms.key_scale(d_k)
    k = ms.split_heads(phi(x @ p.w_k), H)
    v = ms.split_heads(x @ p.w_v, H)
    if self.decay == "gated":
      z = (x @ p.w_a1) @ p.w_a2 + p.b_a
      g = ms.split_heads(jax.nn.log_sigmoid(z) / TEMPERATURE, H)
    elif self.decay == "fixed":
      gamma = 1.0 - 2.0 ** (-5.0 - np.arange(H))
      g = jnp.broadcast_to(jnp.asarray(np.log(gamma), acc), x.shape[:-1] + (H,))
    else:
      g = jnp.zeros(x.shape[:-1] + (H,), acc)
    return GLATerms(q, k, v, g)

  def hold(self, terms: GLATerms, valid) -> GLATerms:
    v = valid[..., None]
    g_valid = v if terms.g.ndim == terms.q.ndim - 1 else v[..., None]
    return terms._replace(k=jnp.where(v[..., None], terms.k, 0),
                          g=jnp.where(g_valid, terms.g, 0))

  def step(self, terms: GLATerms, carry: ms.MatrixState) -> tuple:
    q, k, v, g = terms
    decay = jnp.exp(g)[..., None] if g.ndim == q.ndim else jnp.exp(g)[..., None, None]
    S = decay * carry.S + k[..., :, None] * v[..., None, :]
    return ms.MatrixState(S), jnp.einsum("...k,...kv->...v", q, S)

  def chunk(self, terms: GLATerms, carry: ms.MatrixState, reset_to, starts) -> tuple:
    vector = terms.g.ndim == terms.q.ndim
    (q, k, v, g), seg = ms.chunk_axes(terms, starts,
                                      dict(q=1, k=1, v=1, g=1 if vector else 0))
    R = None if reset_to is None else reset_to.S
    time = -2 if vector else -1
    G = jnp.cumsum(g, axis=time)
    G_start = G if starts is None else ms.segment_decay(G, g, seg, time)
    if vector:  # (…, C, C, d_k)
      D = G[..., :, None, :] - G[..., None, :, :]
      W = jnp.exp(jnp.where(seg.same[..., None], D, -jnp.inf))
      A = jnp.einsum("...td,...sd,...tsd->...ts", q, k, W)
      q_start, w_last = q * jnp.exp(G_start), W[..., -1, :, :]
      decay_last = jnp.exp(G_start[..., -1, :])[..., :, None]
    else:  # (…, C, C)
      D = G[..., :, None] - G[..., None, :]
      W = jnp.exp(jnp.where(seg.same, D, -jnp.inf))
      A = (q @ jnp.swapaxes(k, -1, -2)) * W
      q_start, w_last = q * jnp.exp(G_start)[..., None], W[..., -1, :, None]
      decay_last = jnp.exp(G_start[..., -1])[..., None, None]
    out = A @ v + ms.through_start(q_start, carry.S, R, seg)
    S = (decay_last * ms.last_start(carry.S, R, seg, 2)
         + jnp.swapaxes(k * w_last, -1, -2) @ v)
    return ms.MatrixState(S), ms.time_first(out, 1)
