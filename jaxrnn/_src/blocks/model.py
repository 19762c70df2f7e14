"""A sequence model of blocks: an input embedding (tokens) or projection
(features), the blocks one after another, a final norm and a linear
read-out at every step::

    h = E[x]  or  x W_in + b_in
    h = block_N(… block_1(h))
    y = norm(h) W_out + b_out

Like a block it runs one step, ``model(params, carry, x) -> (carry, y)``,
or a sequence, ``jaxrnn.scan(model, params, xs)``; its carry is the tuple of
its blocks' carries.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._src.blocks import base as block_base
from jaxrnn._src.blocks import norms
from jaxrnn._src.cells import base
from jaxrnn._src.layers import readout
from jaxrnn._src.layers import scan as scan_lib

Linear = readout.Linear()


class ModelParams(NamedTuple):
  """Params of :class:`SequenceModel`.

  Attributes:
    embed: ``(vocab_size, d_model)`` for tokens, or the input projection's
      :class:`jaxrnn.LinearParams`.
    blocks: one params per block.
    norm: the final norm's.
    readout: ``d_model → num_outputs``.
  """

  embed: Any
  blocks: tuple
  norm: norms.NormParams
  readout: readout.LinearParams


@dataclasses.dataclass(frozen=True)
class SequenceModel(scan_lib.SequenceLayer):
  """Blocks between an input layer and a read-out (see the module).

  Attributes:
    blocks: the blocks, first to last (``(block,) * n`` for ``n`` alike;
      types may be mixed, as xLSTM mixes sLSTM and mLSTM blocks).
    d_model: the residual stream's width.
    num_outputs: the read-out's size (classes, the vocabulary, targets).
    vocab_size: for integer token inputs; or
    input_size: for feature inputs ``(…, input_size)``.
    norm: the final norm, ``"rms"`` or ``"layer"``.
  """

  blocks: Tuple[block_base.Block, ...]
  d_model: int
  num_outputs: int
  vocab_size: Optional[int] = None
  input_size: Optional[int] = None
  norm: str = "rms"

  def __post_init__(self):
    blocks = tuple(self.blocks) if isinstance(self.blocks, (tuple, list)) else None
    if not blocks:
      raise ValueError(f"blocks: expected a non-empty tuple of blocks, got {self.blocks!r}")
    for i, block in enumerate(blocks):
      if not isinstance(block, block_base.Block):
        raise TypeError(f"blocks[{i}]: expected a jaxrnn block (jaxrnn.blocks), got "
                        f"{type(block).__name__}")
    object.__setattr__(self, "blocks", blocks)
    if (self.vocab_size is None) == (self.input_size is None):
      raise ValueError(f"vocab_size, input_size: expected exactly one (tokens or "
                       f"features), got {self.vocab_size!r} and {self.input_size!r}")
    for name in ("d_model", "num_outputs", "vocab_size", "input_size"):
      value = getattr(self, name)
      if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    norms.check_kind(self.norm)

  # ------------------------------------------------------------- params
  def init(self, key, *, dtype: Any = jnp.float32) -> ModelParams:
    base.check_key(key)
    k_in, k_out, *k_blocks = jax.random.split(key, 2 + len(self.blocks))
    if self.vocab_size is not None:
      embed = jax.random.normal(k_in, (self.vocab_size, self.d_model), jnp.float32)
      embed = embed.astype(dtype)
    else:
      embed = Linear.init(k_in, self.input_size, self.d_model, dtype=dtype)
    return ModelParams(
        embed, tuple(b.init(k, self.d_model, dtype=dtype)
                     for b, k in zip(self.blocks, k_blocks)),
        norms.Norm(self.norm).init(self.d_model, dtype),
        Linear.init(k_out, self.d_model, self.num_outputs, dtype=dtype))

  def initial_carry(self, params: ModelParams, batch_shape=(), dtype=None) -> tuple:
    self.check_params(params)
    return tuple(b.initial_carry(p, batch_shape, dtype)
                 for b, p in zip(self.blocks, params.blocks))

  def feature_axes(self) -> int:
    return 0 if self.vocab_size is not None else 1

  def output_feature_axes(self) -> int:
    return 1

  def output_size(self, params=None) -> int:
    del params
    return self.num_outputs

  # ------------------------------------------------------------ running
  def _embed(self, params, x):
    if self.vocab_size is not None:
      return jnp.take(params.embed, x, axis=0)
    return Linear(params.embed, x)

  def _read(self, params, h):
    return Linear(params.readout, norms.Norm(self.norm)(params.norm, h))

  def __call__(self, params: ModelParams, carry: tuple, x):
    """One step: ``x`` is ``(*batch,)`` tokens or ``(*batch, input_size)``
    features; returns ``(carry, y)``, ``y`` of shape ``(*batch, num_outputs)``."""
    x, carry = base.as_array(x, "x"), base.as_carry(carry, "carry")
    self.check_params(params)
    batch = self.check_input(params, x, "x")
    self.check_carry(params, carry, batch, "carry")
    h, new = self._embed(params, x), []
    for block, p, c in zip(self.blocks, params.blocks, carry):
      c, h = block(p, c, h)
      new.append(c)
    return tuple(new), self._read(params, h)

  def run(self, params, xs, carry, valid, *, reset_carry=None, **options):
    """Time-major core, no checks: ``(carries, ys)``."""
    n = len(self.blocks)
    carries = (None,) * n if carry is None else carry
    targets = (None,) * n if reset_carry is None else reset_carry
    h, finals = self._embed(params, xs), []
    for block, p, c, target in zip(self.blocks, params.blocks, carries, targets):
      c, h = block.run(p, h, c, valid, reset_carry=target, **options)
      finals.append(c)
    return tuple(finals), block_base.zero_invalid(valid, self._read(params, h))

  # ------------------------------------------------------------- checks
  def check_params(self, params, name: str = "params") -> None:
    if not isinstance(params, ModelParams):
      raise TypeError(f"{name}: SequenceModel expects ModelParams, got "
                      f"{type(params).__name__}")
    if not isinstance(params.blocks, (tuple, list)) or len(params.blocks) != len(self.blocks):
      raise TypeError(f"{name}.blocks: expected a tuple of {len(self.blocks)} params "
                      f"(one per block), got {type(params.blocks).__name__}")
    for i, (block, p) in enumerate(zip(self.blocks, params.blocks)):
      block.check_params(p, f"{name}.blocks[{i}]")
      if block.d_model(p) != self.d_model:
        raise ValueError(f"{name}.blocks[{i}]: expected d_model={self.d_model}, got "
                         f"{block.d_model(p)}")

  def check_input(self, params, x, name: str) -> tuple:
    """The batch shape of one step's (or, time-major, a sequence's) input."""
    dtype = getattr(x, "dtype", None)
    if self.vocab_size is not None:
      if dtype is None or not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{name}: expected integer tokens (vocab_size="
                        f"{self.vocab_size}), got "
                        f"{dtype if dtype is not None else type(x).__name__}")
      if not isinstance(x, jax.core.Tracer) and x.size:
        # Checked outside jit only; under jit a token out of range embeds as NaN.
        low, high = int(np.min(x)), int(np.max(x))
        if low < 0 or high >= self.vocab_size:
          raise ValueError(f"{name}: expected tokens in [0, vocab_size="
                           f"{self.vocab_size}), got min {low} and max {high}")
      return tuple(x.shape)
    base.check_floating(x, name)
    if x.ndim < 1 or x.shape[-1] != self.input_size:
      raise ValueError(f"{name}: expected last dimension input_size={self.input_size}, "
                       f"got shape {base.shape_str(x.shape)}")
    return tuple(x.shape[:-1])

  def check_carry(self, params, carries, batch_shape, name: str,
                  broadcast: bool = False) -> None:
    n = len(self.blocks)
    if not isinstance(carries, (tuple, list)) or len(carries) != n:
      raise TypeError(f"{name}: expected a tuple of {n} carries (one per block), "
                      f"got {type(carries).__name__}")
    for i, (block, p, c) in enumerate(zip(self.blocks, params.blocks, carries)):
      block.check_carry(p, c, batch_shape, f"{name}[{i}]", broadcast=broadcast)
