"""The matrix-state cells' base class, and the algebra of a chunk they share.

mLSTM, gated linear attention and the (gated) delta rule keep, per head, a
matrix state ``S`` of shape ``(d_k, d_v)`` (key-major: ``o_t = S_tᵀ q_t``).
Their gates come from the input alone, so a sequence layer can compute every
step's queries, keys, values and gates at once (:meth:`MatrixStateCell.terms`)
and then run the recurrence in one of three forms (the cell's ``method``):

- ``"sequential"``: the cell's own step (:meth:`MatrixStateCell.step`) under
  ``lax.scan``, on the autodiff engine; ``O(T d_k d_v)`` work, ``T``
  dependent steps;
- ``"chunkwise"``: the chunkwise-parallel form
  (:mod:`jaxrnn._src.engines.chunkwise`): within a chunk of ``C`` steps the
  outputs and the next state are a few matmuls (:meth:`MatrixStateCell.chunk`),
  and a ``lax.scan`` passes the state between chunks; ``T / C`` dependent
  steps;
- ``"parallel"``: the same algebra over one chunk of all ``T`` steps, the
  fully parallel ``O(T²)`` form (the attention-like form of Katharopoulos et
  al. 2020, Yang et al. 2024, Beck et al. 2024).

All three compute the same function; the tests hold them to 1e-10 in float64.

Resets and invalid steps inside a chunk. A step whose segment began inside
the chunk (a reset) starts from the reset target ``R`` instead of the chunk's
incoming state, and sees no step before the reset: :func:`segments` gives,
for every pair ``(t, j)``, whether ``j`` is in ``t``'s segment, and the
chunk algebra masks its causal products with it. An invalid step is made an
identity step by :meth:`MatrixStateCell.hold` (decay 1, nothing written).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import linear_recurrence

METHODS = ("auto", "chunkwise", "parallel", "sequential")


class MatrixState(NamedTuple):
  """Carry of the gated linear attention and delta-rule cells.

  Attributes:
    S: the state, ``(*batch, heads, d_k, d_v)``.
  """

  S: jax.Array


class Segments(NamedTuple):
  """Where each step of a chunk begins, for chunks with resets.

  Attributes:
    same: ``(..., C, C)`` booleans, true where ``j ≤ t`` and no reset lies in
      ``(j, t]``: step ``j`` is in step ``t``'s segment.
    fresh: ``(..., C)`` booleans, true where ``t``'s segment began inside the
      chunk (it starts from the reset target, not the incoming state).
    last: ``(..., C)`` int, the step at which ``t``'s segment began, or -1.
  """

  same: jax.Array
  fresh: jax.Array
  last: jax.Array


def segments(starts: Optional[jax.Array], C: int) -> Segments:
  """:class:`Segments` from ``starts`` ``(..., C)`` (a reset before step
  ``t``), or the causal mask alone when ``starts`` is ``None``."""
  t = jnp.arange(C)
  causal = t[:, None] >= t[None, :]
  if starts is None:
    return Segments(causal, jnp.zeros((C,), bool), jnp.full((C,), -1))
  last = jax.lax.cummax(jnp.where(starts, t, -1), axis=starts.ndim - 1)
  same = causal & (last[..., :, None] <= t)
  return Segments(same, last >= 0, last)


def segment_decay(G: jax.Array, g: jax.Array, seg: Segments,
                  time_axis: int) -> jax.Array:
  """The log decay from the start of each step's segment through the step:
  ``G`` (the chunk's cumulative log decay, inclusive, along ``time_axis``:
  -1 for a scalar decay per head, -2 for one per key) less what had
  accumulated before the segment's first step."""
  last, fresh = jnp.maximum(seg.last, 0), seg.fresh
  if time_axis == -2:
    last, fresh = last[..., None], fresh[..., None]
  before = jnp.take_along_axis(G - g, jnp.broadcast_to(last, G.shape), axis=time_axis)
  return G - jnp.where(fresh, before, 0)


def through_start(x: jax.Array, incoming: jax.Array, reset_to: Optional[jax.Array],
                  seg: Segments) -> jax.Array:
  """``x_t`` times the state step ``t``'s segment starts from: ``x``
  ``(..., C, d_k)``, states ``(..., d_k, d_v)``; the incoming state, or the
  reset target for a segment that began inside the chunk."""
  out = x @ incoming
  if reset_to is None:
    return out
  return jnp.where(seg.fresh[..., None], x @ reset_to, out)


def last_start(incoming, reset_to, seg: Segments, trailing: int):
  """The state the chunk's last segment starts from (``trailing`` axes
  after the heads: 2 for a matrix, 1 for a vector, 0 for a scalar)."""
  if reset_to is None:
    return incoming
  fresh = seg.fresh[..., -1].reshape(seg.fresh.shape[:-1] + (1,) * trailing)
  return jnp.where(fresh, reset_to, incoming)


def chunk_axes(terms, starts, trailing: dict):
  """The chunk's terms with time moved after the heads (``trailing``: the
  number of axes after time, per field), and the :class:`Segments` with an
  axis for the heads."""
  terms = type(terms)(*(None if a is None else time_last(a, trailing[f])
                        for f, a in zip(terms._fields, terms)))
  C = next(a for a in terms if a is not None).shape[-1 - trailing[terms._fields[0]]]
  if starts is not None:
    starts = jnp.moveaxis(starts, 0, -1)[..., None, :]  # (*batch, 1, C)
  return terms, segments(starts, C)


def unit_lower_inverse(A: jax.Array) -> jax.Array:
  """``(I + A)⁻¹`` for strictly lower-triangular ``A`` ``(..., C, C)``, by
  block doubling: from the inverses ``T₁₁``, ``T₂₂`` of two diagonal blocks,
  that of both is ``[[T₁₁, 0], [−T₂₂ A₂₁ T₁₁, T₂₂]]``; ``log₂ C`` rounds of
  batched matmuls (``C`` is padded to a power of two with identity rows).

  Matmuls only, no LAPACK call: ``lax.linalg.triangular_solve`` on CPU calls
  the BLAS that jaxlib links, which hung when two compiled programs that
  contain it ran in turn at chunks of 64 and 128 (two-core x86, jax 0.10.2).
  """
  C = A.shape[-1]
  P = 1 << max(C - 1, 0).bit_length()
  if P != C:
    A = jnp.pad(A, [(0, 0)] * (A.ndim - 2) + [(0, P - C), (0, P - C)])
  batch = A.shape[:-2]
  T = jnp.ones(batch + (P, 1, 1), A.dtype)  # the inverses of 1 × 1 blocks
  s = 1
  while s < P:
    n = P // s
    blocks = A.reshape(batch + (n, s, n, s))[..., 1::2, :, 0::2, :]
    A21 = jnp.moveaxis(jnp.diagonal(blocks, axis1=-4, axis2=-2), -1, -3)
    T11, T22 = T[..., 0::2, :, :], T[..., 1::2, :, :]
    T21 = -(T22 @ A21 @ T11)
    top = jnp.concatenate([T11, jnp.zeros_like(T11)], axis=-1)
    T = jnp.concatenate([top, jnp.concatenate([T21, T22], axis=-1)], axis=-2)
    s *= 2
  return T[..., 0, :C, :C]


def time_last(a: jax.Array, trailing: int) -> jax.Array:
  """``(C, *batch, heads, *rest)`` as ``(*batch, heads, C, *rest)``, where
  ``rest`` has ``trailing`` axes."""
  return jnp.moveaxis(a, 0, a.ndim - 1 - trailing)


def time_first(a: jax.Array, trailing: int) -> jax.Array:
  """The inverse of :func:`time_last`."""
  return jnp.moveaxis(a, a.ndim - 1 - trailing, 0)


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  """``x / sqrt(|x|² + eps)`` over the last axis (as flash-linear-attention's
  ``l2norm``: finite at ``x = 0``)."""
  return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)


def split_heads(x: jax.Array, heads: int) -> jax.Array:
  """``(..., heads * d)`` as ``(..., heads, d)``."""
  return x.reshape(x.shape[:-1] + (heads, x.shape[-1] // heads))


def dense(key, input_size: int, output_size: int, dtype) -> jax.Array:
  """LeCun-normal ``(input_size, output_size)`` weights, drawn in at least
  float32."""
  w = jax.nn.initializers.lecun_normal()(
      key, (input_size, output_size), jnp.promote_types(dtype, jnp.float32))
  return w.astype(dtype)


@dataclasses.dataclass(frozen=True)
class MatrixStateCell(base.Cell):
  """Base class of the matrix-state cells (see the module).

  A subclass defines ``init``, :meth:`terms` (the per-step queries, keys,
  values and gates, for inputs of any leading shape), :meth:`hold`,
  :meth:`step`, :meth:`chunk`, :meth:`readout` and :meth:`carry_shapes`.
  ``hidden_size`` is the output size, ``num_heads × d_v``.

  Attributes:
    num_heads: the number of heads; ``hidden_size`` must divide by it.
    key_size: ``d_k`` per head, or ``None`` for ``d_v``
      (``hidden_size // num_heads``).
    method: ``"auto"`` (chunkwise), ``"chunkwise"``, ``"parallel"`` or
      ``"sequential"``; see the module.
    chunk_size: the chunk length ``C`` of the chunkwise form, or ``None``
      for the measured default, 16. ``T`` need not be a multiple of it.
  """

  form = "chunkwise"
  num_gates = 1
  # Measured (benchmarks/matrix_state.py --chunk-sweep 1024, forward+backward,
  # B=4 d_model=256, 4 heads, interleaved): chunks of 16 were the fastest or
  # tied for it for every cell, GLA's per-key decay most of all (C=64 took
  # 3.1x the time); see benchmarks/results/matrix_state_chunks.md.
  default_chunk_size = 16

  num_heads: int = 4
  key_size: Optional[int] = None
  method: str = "auto"
  chunk_size: Optional[int] = None

  def __post_init__(self):
    if self.method not in METHODS:
      raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
    for name in ("num_heads", "key_size", "chunk_size"):
      value = getattr(self, name)
      if value is None and name != "num_heads":
        continue
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")

  # ---------------------------------------------------------- the family
  @abc.abstractmethod
  def terms(self, params, x) -> NamedTuple:
    """Every step's queries, keys, values and gates from ``x`` ``(*lead,
    input_size)``: arrays ``(*lead, heads, ...)`` in at least float32."""

  @abc.abstractmethod
  def hold(self, terms, valid) -> NamedTuple:
    """``terms`` with every step where ``valid`` ``(*lead,)`` is false made
    an identity step: the state is unchanged by it."""

  @abc.abstractmethod
  def step(self, terms, carry) -> tuple:
    """One step of the paper's recurrence: ``(carry', out)``, ``out`` of
    shape ``(*batch, heads, d_v)``."""

  @abc.abstractmethod
  def chunk(self, terms, carry, reset_to, starts) -> tuple:
    """The chunkwise form over a chunk: ``terms`` with a leading axis of
    ``C`` steps, ``starts`` ``(C, *batch)`` (a reset before the step) or
    ``None``; ``(carry after the chunk, outs (C, *batch, heads, d_v))``."""

  def readout(self, params, out, x) -> jax.Array:
    """The output ``(*lead, hidden_size)`` from the heads' ``out`` and the
    input: the heads side by side by default."""
    del params, x
    return out.reshape(out.shape[:-2] + (-1,))

  # ----------------------------------------------------------- the cell
  def input_projection(self, params, x):
    """The identity: :meth:`terms` reads ``x`` itself."""
    del params
    return x

  def recurrence(self, params, carry, x, h_mask=None):
    base.refuse_recurrent_dropout(self, h_mask)
    new, out = self.step(self.terms(params, x), carry)
    new = jax.tree.map(lambda n, o: n.astype(o.dtype), new, carry)
    return new, self.readout(params, out, x).astype(
        linear_recurrence.output_dtype(params, x))

  def in_accumulator(self, params, x) -> tuple:
    """``(params, x)`` in the dtype the terms are computed in: at least
    float32."""
    acc = linear_recurrence.accumulator(x.dtype, params.w_q.dtype)
    return jax.tree.map(lambda a: a.astype(acc), params), x.astype(acc)

  def resolved_chunk_size(self, T: int) -> int:
    """The chunk length for ``T`` steps: all of them for ``"parallel"``."""
    if self.method == "parallel":
      return max(T, 1)
    return min(self.chunk_size or self.default_chunk_size, max(T, 1))

  # -------------------------------------------------------------- sizes
  def initial_carry(self, params, batch_shape=(), dtype=None):
    """Zeros in at least float32 (``dtype`` or the params' dtype, promoted):
    the state accumulates in float32 even for bfloat16 inputs."""
    if dtype is None:
      self.check_params(params)
      dtype = params.w_q.dtype
    return super().initial_carry(params, batch_shape,
                                 linear_recurrence.accumulator(dtype))

  def _size_fields(self) -> dict:
    return {"w_q": 2, "w_k": 2, "w_v": 2}

  def input_size(self, params) -> int:
    return params.w_q.shape[0]

  def hidden_size(self, params) -> int:
    return params.w_v.shape[1]

  def head_sizes(self, params) -> tuple:
    """``(d_k, d_v)`` per head."""
    return (params.w_k.shape[1] // self.num_heads,
            params.w_v.shape[1] // self.num_heads)

  def _checked_hidden_size(self, params) -> int:
    return self.hidden_size(params)

  def check_params(self, params, name: str = "params") -> None:
    super().check_params(params, name)
    for field in ("w_k", "w_v"):
      size = getattr(params, field).shape[1]
      if size % self.num_heads:
        raise ValueError(f"{name}.{field}: expected a last dimension divisible "
                         f"by num_heads={self.num_heads}, got "
                         f"{base.shape_str(getattr(params, field).shape)}")

  def _init_sizes(self, input_size, hidden_size) -> tuple:
    """``(d_k, d_v)`` for ``init``, after checking the sizes."""
    base.check_sizes(input_size, hidden_size)
    if hidden_size % self.num_heads:
      raise ValueError(f"hidden_size: expected a multiple of num_heads="
                       f"{self.num_heads}, got {hidden_size}")
    d_v = hidden_size // self.num_heads
    return (self.key_size or d_v), d_v

  def matrix_shape(self, params) -> tuple:
    d_k, d_v = self.head_sizes(params)
    return (self.num_heads, d_k, d_v)


def check_initializer(initializer: str) -> None:
  if initializer != "default":
    raise ValueError(f"initializer: expected 'default' (the paper's cells have "
                     f"no PyTorch counterpart), got {initializer!r}")


def key_scale(d_k: int) -> float:
  """``1 / sqrt(d_k)``, the attention scale on keys or queries."""
  return 1.0 / math.sqrt(d_k)

