"""The blocks' position-wise MLP: plain GeLU, or gated (GLU variants,
Shazeer 2020, "GLU Variants Improve Transformer")::

    gelu:    y = GeLU(x W₁ + b₁) W₂ + b₂
    geglu:   y = (GeLU(x W_g + b_g) ⊙ (x W_u + b_u)) W₂ + b₂   (Griffin's MLP)
    swiglu:  the same with SiLU for GeLU

The inner width is ``round(expansion × d)``. GeLU is the tanh approximation
(as recurrentgemma's).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn._src.layers import readout

MLPS = ("gelu", "geglu", "swiglu")
Linear = readout.Linear()


class MLPParams(NamedTuple):
  """Params of :class:`MLP`: ``up`` ``(d, m)`` (``(d, 2m)`` gated, gate
  first) and ``down`` ``(m, d)``, each a :class:`jaxrnn.LinearParams`."""

  up: readout.LinearParams
  down: readout.LinearParams


def check_kind(kind: str, name: str = "mlp") -> None:
  if kind not in MLPS:
    raise ValueError(f"{name}: expected one of {MLPS}, got {kind!r}")


@dataclasses.dataclass(frozen=True)
class MLP:
  """A position-wise MLP (see the module).

  Attributes:
    kind: ``"gelu"``, ``"geglu"`` or ``"swiglu"``.
    expansion: inner width ÷ model width.
  """

  kind: str = "geglu"
  expansion: float = 4.0

  def __post_init__(self):
    check_kind(self.kind, "kind")
    if not self.expansion > 0:
      raise ValueError(f"expansion: expected a positive number, got {self.expansion!r}")

  def width(self, d: int) -> int:
    return max(1, round(self.expansion * d))

  def init(self, key, d: int, dtype: Any = jnp.float32) -> MLPParams:
    m = self.width(d)
    k_up, k_down = jax.random.split(key)
    gated = 2 if self.kind != "gelu" else 1
    return MLPParams(Linear.init(k_up, d, gated * m, dtype=dtype),
                     Linear.init(k_down, m, d, dtype=dtype))

  def __call__(self, params: MLPParams, x: jax.Array) -> jax.Array:
    h = Linear(params.up, x)
    if self.kind == "gelu":
      h = jax.nn.gelu(h)
    else:
      gate, up = jnp.split(h, 2, axis=-1)
      h = (jax.nn.gelu(gate) if self.kind == "geglu" else jax.nn.silu(gate)) * up
    return Linear(params.down, h)
