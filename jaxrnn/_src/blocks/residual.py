"""The pre-norm residual block around any cell of the library (the
Transformer's layout, Xiong et al. 2020, as the minGRU/minLSTM paper, Feng
et al. 2024, and most recurrent language models use it)::

    u = norm₁(x)
    u = Conv(u)                                 (if conv_size > 0)
    x = x + cell(u) W_o                         (W_o when the cell's output size is not d)
    x = x + MLP(norm₂(x))                       (if mlp is not None)
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.blocks import base as block_base
from jaxrnn._src.blocks import conv as conv_lib
from jaxrnn._src.blocks import mlp as mlp_lib
from jaxrnn._src.blocks import norms
from jaxrnn._src.cells import base
from jaxrnn._src.layers import readout
from jaxrnn._src.layers import scan as scan_lib

Linear = readout.Linear()


class PreNormParams(NamedTuple):
  """Params of :class:`PreNormBlock`; ``None`` where an option leaves a
  part out."""

  norm: norms.NormParams
  conv: Optional[conv_lib.ConvParams]
  cell: Any
  out: Optional[readout.LinearParams]
  mlp_norm: Optional[norms.NormParams]
  mlp: Optional[mlp_lib.MLPParams]


@dataclasses.dataclass(frozen=True)
class PreNormBlock(block_base.Block):
  """A pre-norm residual block around ``cell`` (see the module).

  Attributes:
    cell: any jaxrnn cell whose steps take vectors (not ConvLSTM).
    hidden_size: the cell's hidden size; ``None`` for ``d_model``.
    norm: ``"rms"`` or ``"layer"``.
    mlp: ``"geglu"``, ``"swiglu"``, ``"gelu"``, or ``None`` for no MLP.
    expansion: the MLP's inner width ÷ ``d_model``.
    conv_size: the width of a causal convolution before the cell; 0 for none.
    cell_init: keyword arguments of the cell's ``init`` (a dict, kept as
      sorted pairs so that the block stays hashable), for example
      ``{"chrono": 1000}`` for an LSTM's chrono initialisation.
  """

  cell: base.Cell
  hidden_size: Optional[int] = None
  norm: str = "rms"
  mlp: Optional[str] = "geglu"
  expansion: float = 4.0
  conv_size: int = 0
  cell_init: Any = ()

  params_type = PreNormParams

  def __post_init__(self):
    scan_lib.check_cell(self.cell)
    if isinstance(self.cell, scan_lib.SequenceLayer) or self.cell.feature_axes() != 1:
      raise ValueError(f"cell: expected a cell whose steps take vectors, got "
                       f"{type(self.cell).__name__}")
    norms.check_kind(self.norm)
    if self.mlp is not None:
      mlp_lib.check_kind(self.mlp)
    if not isinstance(self.conv_size, int) or self.conv_size < 0 or self.conv_size == 1:
      raise ValueError(f"conv_size: expected 0 (none) or an int >= 2, got "
                       f"{self.conv_size!r}")
    object.__setattr__(self, "cell_init", check_cell_init(self.cell, self.cell_init))

  @property
  def conv(self) -> Optional[conv_lib.CausalConv]:
    return conv_lib.CausalConv(self.conv_size) if self.conv_size else None

  def init(self, key, d_model: int, *, dtype: Any = jnp.float32) -> PreNormParams:
    base.check_key(key)
    base.check_sizes(d_model, self.hidden_size or d_model)
    k_conv, k_cell, k_out, k_mlp = jax.random.split(key, 4)
    norm = norms.Norm(self.norm)
    cell = self.cell.init(k_cell, d_model, self.hidden_size or d_model, dtype=dtype,
                          **dict(self.cell_init))
    size = self.cell.output_size(cell)
    mlp = mlp_lib.MLP(self.mlp, self.expansion) if self.mlp else None
    return PreNormParams(
        norm.init(d_model, dtype),
        self.conv.init(k_conv, d_model, dtype) if self.conv else None,
        cell,
        Linear.init(k_out, size, d_model, dtype=dtype) if size != d_model else None,
        norm.init(d_model, dtype) if mlp else None,
        mlp.init(k_mlp, d_model, dtype) if mlp else None)

  def check_params(self, params, name: str = "params") -> None:
    super().check_params(params, name)
    size, d = self.cell.output_size(params.cell), self.d_model(params)
    for field, wanted, why in (
        ("out", size != d, f"the cell's output size {size} is not d_model={d}"),
        ("mlp_norm", self.mlp is not None, f"mlp={self.mlp!r}"),
        ("mlp", self.mlp is not None, f"mlp={self.mlp!r}")):
      if (getattr(params, field) is not None) != wanted:
        raise ValueError(f"{name}.{field}: expected "
                         + ("params" if wanted else "None") + f" ({why}), got "
                         f"{type(getattr(params, field)).__name__}")

  def body(self, params: PreNormParams, x, ops):
    norm = norms.Norm(self.norm)
    u = norm(params.norm, x)
    if self.conv is not None:
      u = ops.conv(self.conv, params.conv, u)
    y = ops.cell(self.cell, params.cell, u)
    if params.out is not None:
      y = Linear(params.out, y)
    x = x + y.astype(x.dtype)
    if self.mlp is not None:
      x = x + mlp_lib.MLP(self.mlp, self.expansion)(params.mlp, norm(params.mlp_norm, x))
    return x


def check_cell_init(cell: base.Cell, cell_init) -> tuple:
  """``cell_init`` as sorted ``(name, value)`` pairs, each name a keyword of
  ``cell.init`` (other than ``dtype``, which the block passes)."""
  try:
    pairs = dict(cell_init)
  except (TypeError, ValueError):
    raise TypeError(f"cell_init: expected a dict of {type(cell).__name__}.init's "
                    f"keyword arguments, got {cell_init!r}") from None
  parameters = inspect.signature(cell.init).parameters
  takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
  keywords = [n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY and n != "dtype"]
  for name in pairs:
    if name == "dtype" or not (takes_any or name in keywords):
      raise ValueError(f"cell_init: expected keywords of {type(cell).__name__}.init "
                       f"({', '.join(keywords) or 'none'}), got {name!r}")
  return tuple(sorted(pairs.items()))
