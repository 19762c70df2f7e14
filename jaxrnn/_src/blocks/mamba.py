"""Mamba's block (Gu & Dao, 2023, "Mamba: Linear-Time Sequence Modeling with
Selective State Spaces", Figure 3), pre-norm and residual as in its
language models::

    u = RMSNorm(x)
    [v, z] = u W_in                             (d → 2 d_inner, no bias)
    v = SiLU(Conv1D(v))                         (width 4)
    y = S6(v) ⊙ SiLU(z)
    x = x + y W_out                             (d_inner → d, no bias)

``d_inner = expand × d`` (2); S6 is :class:`jaxrnn.SelectiveSSMCell`, with
``Δ``'s rank ``ceil(d / 16)`` unless the cell sets ``dt_rank``, as in the
paper's code.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn._src.blocks import base as block_base
from jaxrnn._src.blocks import conv as conv_lib
from jaxrnn._src.blocks import norms
from jaxrnn._src.cells import base
from jaxrnn._src.cells import selective_ssm
from jaxrnn._src.layers import readout

Linear = readout.Linear()
RMS = norms.Norm("rms")


class MambaParams(NamedTuple):
  """Params of :class:`MambaBlock`."""

  norm: norms.NormParams
  inner: readout.LinearParams
  conv: conv_lib.ConvParams
  cell: selective_ssm.SelectiveSSMParams
  out: readout.LinearParams


@dataclasses.dataclass(frozen=True)
class MambaBlock(block_base.Block):
  """Mamba's block (see the module).

  Attributes:
    expand: ``d_inner ÷ d_model`` (2).
    conv_size: the convolution's width (4).
    cell: the selective SSM (its ``state_size``, 16, and ``dt_rank``,
      ``ceil(d_model / 16)`` when ``None``).
  """

  expand: int = 2
  conv_size: int = 4
  cell: selective_ssm.SelectiveSSMCell = selective_ssm.SelectiveSSMCell()

  params_type = MambaParams

  def __post_init__(self):
    conv_lib.CausalConv(self.conv_size)
    if not isinstance(self.cell, selective_ssm.SelectiveSSMCell):
      raise TypeError(f"cell: expected a jaxrnn.SelectiveSSMCell, got "
                      f"{type(self.cell).__name__}")

  @property
  def conv(self) -> conv_lib.CausalConv:
    return conv_lib.CausalConv(self.conv_size)

  def init(self, key, d_model: int, *, dtype=jnp.float32) -> MambaParams:
    base.check_key(key)
    d_inner = self.expand * d_model
    base.check_sizes(d_model, d_inner)
    keys = jax.random.split(key, 4)
    cell = self.cell  # Δ's rank is ceil(d_model / 16) in the paper's code
    if cell.dt_rank is None:
      cell = dataclasses.replace(cell, dt_rank=math.ceil(d_model / 16))
    return MambaParams(
        RMS.init(d_model, dtype),
        Linear.init(keys[0], d_model, 2 * d_inner, use_bias=False, dtype=dtype),
        self.conv.init(keys[1], d_inner, dtype),
        cell.init(keys[2], d_inner, d_inner, dtype=dtype),
        Linear.init(keys[3], d_inner, d_model, use_bias=False, dtype=dtype))

  def body(self, params: MambaParams, x, ops):
    v, z = jnp.split(Linear(params.inner, RMS(params.norm, x)), 2, axis=-1)
    v = jax.nn.silu(ops.conv(self.conv, params.conv, v))
    y = ops.cell(self.cell, params.cell, v).astype(z.dtype) * jax.nn.silu(z)
    return x + Linear(params.out, y)
