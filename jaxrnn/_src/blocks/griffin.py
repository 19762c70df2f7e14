"""Griffin's residual block with its recurrent block (De et al., 2024,
"Griffin: Mixing Gated Linear Recurrences with Local Attention for Efficient
Language Models", Figure 2; Hawk is a stack of these)::

    u = RMSNorm(x)
    g = GeLU(u W_g + b_g)                       (d → d_rnn)
    r = RG-LRU(Conv1D(u W_x + b_x))             (d → d_rnn, width-4 conv)
    x = x + (g ⊙ r) W_o + b_o                   (d_rnn → d)
    x = x + MLP(RMSNorm(x))                     (gated GeLU, expansion 3)

``d_rnn = round(rnn_expansion × d)``, 4/3 in the paper. The RG-LRU's gates
are dense by default; ``cell=RGLRUCell(num_heads=n)`` makes them
block-diagonal over ``n`` heads, as in recurrentgemma. The RG-LRU's input is
scaled by ``sqrt(1 − a²)`` at every step, the first of a sequence too
(recurrentgemma skips the scale and the decay at a segment's first token).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn._src.blocks import base as block_base
from jaxrnn._src.blocks import conv as conv_lib
from jaxrnn._src.blocks import mlp as mlp_lib
from jaxrnn._src.blocks import norms
from jaxrnn._src.cells import base
from jaxrnn._src.cells import rglru
from jaxrnn._src.layers import readout

Linear = readout.Linear()
RMS = norms.Norm("rms")


class GriffinParams(NamedTuple):
  """Params of :class:`GriffinBlock`."""

  norm: norms.NormParams
  gate: readout.LinearParams
  inner: readout.LinearParams
  conv: conv_lib.ConvParams
  cell: rglru.RGLRUParams
  out: readout.LinearParams
  mlp_norm: norms.NormParams
  mlp: mlp_lib.MLPParams


@dataclasses.dataclass(frozen=True)
class GriffinBlock(block_base.Block):
  """Griffin's residual block (see the module).

  Attributes:
    rnn_expansion: ``d_rnn ÷ d_model`` (4/3).
    conv_size: the temporal convolution's width (4).
    mlp_expansion: the gated MLP's width ÷ ``d_model`` (3).
    cell: the RG-LRU (its options: ``c``, the ring of ``Λ``).
  """

  rnn_expansion: float = 4 / 3
  conv_size: int = 4
  mlp_expansion: float = 3.0
  cell: rglru.RGLRUCell = rglru.RGLRUCell()

  params_type = GriffinParams

  def __post_init__(self):
    conv_lib.CausalConv(self.conv_size)  # checks the width
    if not isinstance(self.cell, rglru.RGLRUCell):
      raise TypeError(f"cell: expected a jaxrnn.RGLRUCell, got {type(self.cell).__name__}")

  @property
  def conv(self) -> conv_lib.CausalConv:
    return conv_lib.CausalConv(self.conv_size)

  def init(self, key, d_model: int, *, dtype=jnp.float32) -> GriffinParams:
    base.check_key(key)
    d_rnn = max(1, round(self.rnn_expansion * d_model))
    base.check_sizes(d_model, d_rnn)
    keys = jax.random.split(key, 6)
    return GriffinParams(
        RMS.init(d_model, dtype), Linear.init(keys[0], d_model, d_rnn, dtype=dtype),
        Linear.init(keys[1], d_model, d_rnn, dtype=dtype),
        self.conv.init(keys[2], d_rnn, dtype),
        self.cell.init(keys[3], d_rnn, d_rnn, dtype=dtype),
        Linear.init(keys[4], d_rnn, d_model, dtype=dtype), RMS.init(d_model, dtype),
        mlp_lib.MLP("geglu", self.mlp_expansion).init(keys[5], d_model, dtype))

  def body(self, params: GriffinParams, x, ops):
    u = RMS(params.norm, x)
    gate = jax.nn.gelu(Linear(params.gate, u))
    r = ops.cell(self.cell, params.cell,
                 ops.conv(self.conv, params.conv, Linear(params.inner, u)))
    x = x + Linear(params.out, gate * r.astype(gate.dtype))
    return x + mlp_lib.MLP("geglu", self.mlp_expansion)(params.mlp,
                                                        RMS(params.mlp_norm, x))
