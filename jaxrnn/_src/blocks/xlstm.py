"""xLSTM's two blocks (Beck et al., 2024, "xLSTM: Extended Long Short-Term
Memory", Figure 9 and Appendix B), pre-norm and residual.

The sLSTM block, *post* up-projection::

    u = LN(x)
    c = SiLU(Conv1D(u))                         (width 4)
    s = sLSTM(i, f ← c;  z, o ← u)              (heads 4)
    x = x + GN(s)                               (norm within each head)
    x = x + MLP(LN(x))                          (gated GeLU, expansion 4/3)

The mLSTM block, *pre* up-projection::

    u = LN(x)
    [a, z] = u W_up                             (d → 2 d_inner, d_inner = 2 d)
    c = SiLU(Conv1D(a))                         (width 4)
    m = mLSTM(q, k ← c;  v ← a)                 (heads 4)
    y = (GN(m) + s ⊙ c) ⊙ SiLU(z)               (s: a learnable skip)
    x = x + y W_down

The paper feeds the cell's gates from two inputs (the convolved ``c`` and
the plain ``u`` or ``a``); a jaxrnn cell takes one, so here it takes both,
``[c, u]`` (``[c, a]``), and the weights from the input a gate does not read
in the paper start at zero: at initialisation each gate reads what it reads
in the paper, and training may open the other path. LN and GN have no bias,
as in the paper's code. Differences from the paper's code, kept for
simplicity: the mLSTM keeps its own output gate (the block's ``SiLU(z)`` is
the paper's only one); the cells' input projections are dense (the paper's
are block-diagonal per head, without bias); the MLP has biases and the tanh
GeLU, and its width is ``round(4/3 d)`` (the paper's code rounds ``1.3 d``
up to a multiple of 64).
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
from jaxrnn._src.cells import mlstm
from jaxrnn._src.cells import slstm
from jaxrnn._src.layers import readout

Linear = readout.Linear()
LN = norms.Norm("layer", bias=False)


def group_norm(heads: int) -> norms.Norm:
  return norms.Norm("layer", heads=heads, bias=False)


class SLSTMBlockParams(NamedTuple):
  """Params of :class:`SLSTMBlock`."""

  norm: norms.NormParams
  conv: conv_lib.ConvParams
  cell: slstm.SLSTMParams
  group_norm: norms.NormParams
  mlp_norm: norms.NormParams
  mlp: mlp_lib.MLPParams


class MLSTMBlockParams(NamedTuple):
  """Params of :class:`MLSTMBlock`."""

  norm: norms.NormParams
  up: readout.LinearParams
  conv: conv_lib.ConvParams
  cell: mlstm.MLSTMParams
  group_norm: norms.NormParams
  skip: jax.Array
  down: readout.LinearParams


def _check_conv(conv_size) -> None:
  conv_lib.CausalConv(conv_size)


@dataclasses.dataclass(frozen=True)
class SLSTMBlock(block_base.Block):
  """xLSTM's sLSTM block (see the module).

  Attributes:
    cell: the sLSTM (``num_heads=4``); its hidden size is ``d_model``.
    conv_size: the convolution's width (4).
    mlp_expansion: the gated MLP's width ÷ ``d_model`` (4/3).
  """

  cell: slstm.SLSTMCell = slstm.SLSTMCell(num_heads=4)
  conv_size: int = 4
  mlp_expansion: float = 4 / 3

  params_type = SLSTMBlockParams

  def __post_init__(self):
    _check_conv(self.conv_size)
    if not isinstance(self.cell, slstm.SLSTMCell):
      raise TypeError(f"cell: expected a jaxrnn.SLSTMCell, got {type(self.cell).__name__}")

  @property
  def conv(self) -> conv_lib.CausalConv:
    return conv_lib.CausalConv(self.conv_size)

  def init(self, key, d_model: int, *, dtype=jnp.float32) -> SLSTMBlockParams:
    base.check_key(key)
    base.check_sizes(d_model, d_model)
    keys = jax.random.split(key, 3)
    cell = self.cell.init(keys[1], 2 * d_model, d_model, dtype=dtype)
    # Gate blocks i, f, z, o: i and f read the convolved half, z and o the other.
    d = d_model
    w = cell.w_i.at[d:, :2 * d].set(0).at[:d, 2 * d:].set(0)
    return SLSTMBlockParams(
        LN.init(d, dtype), self.conv.init(keys[0], d, dtype), cell._replace(w_i=w),
        group_norm(self.cell.num_heads).init(d, dtype), LN.init(d, dtype),
        mlp_lib.MLP("geglu", self.mlp_expansion).init(keys[2], d, dtype))

  def body(self, params: SLSTMBlockParams, x, ops):
    u = LN(params.norm, x)
    c = jax.nn.silu(ops.conv(self.conv, params.conv, u))
    s = ops.cell(self.cell, params.cell, jnp.concatenate([c, u], axis=-1))
    x = x + group_norm(self.cell.num_heads)(params.group_norm, s.astype(x.dtype))
    return x + mlp_lib.MLP("geglu", self.mlp_expansion)(params.mlp,
                                                        LN(params.mlp_norm, x))


@dataclasses.dataclass(frozen=True)
class MLSTMBlock(block_base.Block):
  """xLSTM's mLSTM block (see the module).

  Attributes:
    cell: the mLSTM (``num_heads=4``); its hidden size is ``d_inner``.
    expansion: ``d_inner ÷ d_model`` (2).
    conv_size: the convolution's width (4).
  """

  cell: mlstm.MLSTMCell = mlstm.MLSTMCell(num_heads=4)
  expansion: float = 2.0
  conv_size: int = 4

  params_type = MLSTMBlockParams

  def __post_init__(self):
    _check_conv(self.conv_size)
    if not isinstance(self.cell, mlstm.MLSTMCell):
      raise TypeError(f"cell: expected a jaxrnn.MLSTMCell, got {type(self.cell).__name__}")

  @property
  def conv(self) -> conv_lib.CausalConv:
    return conv_lib.CausalConv(self.conv_size)

  def init(self, key, d_model: int, *, dtype=jnp.float32) -> MLSTMBlockParams:
    base.check_key(key)
    d_inner = max(1, round(self.expansion * d_model))
    base.check_sizes(d_model, d_inner)
    keys = jax.random.split(key, 4)
    cell = self.cell.init(keys[2], 2 * d_inner, d_inner, dtype=dtype)
    n = d_inner  # rows [:n] read the convolved c, rows [n:] the plain a
    cell = cell._replace(w_q=cell.w_q.at[n:].set(0), w_k=cell.w_k.at[n:].set(0),
                         w_v=cell.w_v.at[:n].set(0))
    return MLSTMBlockParams(
        LN.init(d_model, dtype),
        Linear.init(keys[0], d_model, 2 * d_inner, use_bias=False, dtype=dtype),
        self.conv.init(keys[1], d_inner, dtype), cell,
        group_norm(self.cell.num_heads).init(d_inner, dtype),
        jnp.ones((d_inner,), dtype),
        Linear.init(keys[3], d_inner, d_model, use_bias=False, dtype=dtype))

  def body(self, params: MLSTMBlockParams, x, ops):
    a, z = jnp.split(Linear(params.up, LN(params.norm, x)), 2, axis=-1)
    c = jax.nn.silu(ops.conv(self.conv, params.conv, a))
    m = ops.cell(self.cell, params.cell, jnp.concatenate([c, a], axis=-1))
    m = group_norm(self.cell.num_heads)(params.group_norm, m.astype(a.dtype))
    y = (m + params.skip * c) * jax.nn.silu(z)
    return x + Linear(params.down, y)
