"""The normalisations of the blocks: RMSNorm, LayerNorm and the per-head
group norm of xLSTM.

    RMSNorm (Zhang & Sennrich, 2019):  y = x / sqrt(mean(x²) + ε) ⊙ γ
    LayerNorm (Ba et al., 2016):       y = (x − mean(x)) / sqrt(var(x) + ε) ⊙ γ + β
    group norm over heads:             LayerNorm without β within each of
                                       ``heads`` equal slices of the last axis
                                       (xLSTM's multi-head norm).

Statistics are taken in at least float32 and the result is cast back to the
input's dtype.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

NORMS = ("rms", "layer")


class NormParams(NamedTuple):
  """Params of :class:`Norm`: ``scale`` ``(size,)`` and ``bias`` ``(size,)``
  (LayerNorm only; ``None`` otherwise)."""

  scale: jax.Array
  bias: Optional[jax.Array]


def check_kind(kind: str, name: str = "norm") -> None:
  if kind not in NORMS:
    raise ValueError(f"{name}: expected one of {NORMS}, got {kind!r}")


@dataclasses.dataclass(frozen=True)
class Norm:
  """RMSNorm (``kind="rms"``) or LayerNorm (``"layer"``) over the last axis,
  or within each of ``heads`` slices of it.

  Attributes:
    kind: ``"rms"`` or ``"layer"``.
    eps: added to the variance.
    heads: normalise each of this many equal slices of the last axis apart.
    bias: LayerNorm's ``β`` (xLSTM's norms have none).
  """

  kind: str = "rms"
  eps: float = 1e-6
  heads: int = 1
  bias: bool = True

  def __post_init__(self):
    check_kind(self.kind, "kind")
    if not isinstance(self.heads, int) or self.heads < 1:
      raise ValueError(f"heads: expected a positive int, got {self.heads!r}")

  def init(self, size: int, dtype: Any = jnp.float32) -> NormParams:
    if size % self.heads:
      raise ValueError(f"size: expected a multiple of heads={self.heads}, got {size}")
    with_bias = self.kind == "layer" and self.bias
    return NormParams(jnp.ones((size,), dtype),
                      jnp.zeros((size,), dtype) if with_bias else None)

  def __call__(self, params: NormParams, x: jax.Array) -> jax.Array:
    acc = jnp.promote_types(x.dtype, jnp.float32)
    z = x.astype(acc).reshape(*x.shape[:-1], self.heads, x.shape[-1] // self.heads)
    if self.kind == "layer":
      z = z - z.mean(-1, keepdims=True)
    z = z * jax.lax.rsqrt((z * z).mean(-1, keepdims=True) + self.eps)
    y = z.reshape(x.shape) * params.scale.astype(acc)
    if params.bias is not None:
      y = y + params.bias.astype(acc)
    return y.astype(x.dtype)
