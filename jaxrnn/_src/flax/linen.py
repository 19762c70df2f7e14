"""Flax linen modules over the functional cells and layers.

The module's params *are* the functional params: ``variables["params"]
["layer"]`` holds the same NamedTuples that ``cell.init`` returns, so
:func:`to_functional` and :func:`from_functional` convert exactly and the
numerics are those of the functional API by construction.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.layers import dropout as dropout_lib
from jaxrnn._src.layers import composite as layers
from jaxrnn._src.layers import scan as scan_lib

PARAM_NAME = "layer"


def init_kwargs(layer, initializer, forget_bias, proj_size, dtype, chrono=None) -> dict:
  """The keyword arguments of ``layer.init`` that were set."""
  kwargs = {"initializer": initializer, "dtype": dtype}
  if forget_bias is not None:
    kwargs["forget_bias"] = forget_bias
  if chrono is not None:
    kwargs["chrono"] = chrono
  if proj_size is not None:
    kwargs["proj_size"] = proj_size
  return kwargs


def carry_shapes(layer, input_size, hidden_size, kwargs, batch_shape, dtype):
  """The layer's zero carry for a batch, computed from shapes only."""
  params = jax.eval_shape(lambda: layer.init(jax.random.key(0), input_size,
                                             hidden_size, **kwargs))
  return layer.initial_carry(params, batch_shape, dtype)


class Cell(nn.Module):
  """One step of a jaxrnn cell: ``(carry, x) -> (carry, y)``.

  Attributes:
    cell: a functional cell, e.g. ``jaxrnn.LSTMCell()``.
    hidden_size: its hidden size.
    initializer, forget_bias, chrono, proj_size, param_dtype: passed to
      ``cell.init``.
  """

  cell: base.Cell
  hidden_size: int
  initializer: str = "default"
  forget_bias: Optional[float] = None
  proj_size: Optional[int] = None
  param_dtype: Any = jnp.float32
  chrono: Optional[float] = None

  def _kwargs(self):
    return init_kwargs(self.cell, self.initializer, self.forget_bias,
                       self.proj_size, self.param_dtype, self.chrono)

  @nn.compact
  def __call__(self, carry, x):
    params = self.param(PARAM_NAME, lambda key: self.cell.init(
        key, x.shape[-1], self.hidden_size, **self._kwargs()))
    return self.cell(params, carry, x)

  @nn.nowrap
  def initialize_carry(self, rng, input_shape):
    """Zeros for inputs of shape ``(*batch, features)`` (Flax's convention;
    ``rng`` is accepted for it and unused)."""
    del rng
    return carry_shapes(self.cell, input_shape[-1], self.hidden_size, self._kwargs(),
                        tuple(input_shape[:-1]), self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return self.cell.feature_axes()


class RNN(nn.Module):
  """A jaxrnn sequence layer as a linen module.

  ``layer`` is a cell (run with :func:`jaxrnn.scan`), a
  :class:`jaxrnn.Bidirectional` or a :class:`jaxrnn.Stacked`. Calling it
  returns ``(carry, ys)`` exactly as the functional layer does. Dropout
  (``dropout`` here, or a ``Stacked`` layer's own) draws from the
  ``"dropout"`` RNG stream when ``deterministic=False``.

  Attributes:
    layer: the functional layer.
    hidden_size: its hidden size (one per layer for ``Stacked`` if wanted).
    reverse: cells only: run backwards (padding-aware).
    unroll, remat, time_major, impl: as in :func:`jaxrnn.scan`.
    keep_order, go_backwards, zero_output_for_mask: the peers' output
      conventions (Flax, Keras), as in :func:`jaxrnn.scan`.
    initializer, forget_bias, chrono, proj_size, param_dtype: passed to
      ``init``.
    dropout: a :class:`jaxrnn.RecurrentDropout` for a cell or a
      ``Bidirectional`` (a ``Stacked`` layer holds its own).
  """

  layer: Union[base.Cell, layers.Bidirectional, layers.Stacked]
  hidden_size: Union[int, Sequence[int]]
  reverse: bool = False
  unroll: int = 1
  remat: bool = False
  time_major: bool = False
  impl: Optional[str] = None
  initializer: str = "default"
  forget_bias: Optional[float] = None
  proj_size: Optional[int] = None
  param_dtype: Any = jnp.float32
  dropout: Optional[dropout_lib.RecurrentDropout] = None
  keep_order: bool = True
  go_backwards: bool = False
  zero_output_for_mask: bool = True
  chrono: Optional[float] = None

  def _kwargs(self):
    return init_kwargs(self.layer, self.initializer, self.forget_bias,
                       self.proj_size, self.param_dtype, self.chrono)

  @nn.compact
  def __call__(self, xs, *, initial_carry=None, seq_lengths=None, mask=None,
               resets=None, reset_carry=None, deterministic: bool = True):
    xs = base.as_array(xs, "xs")
    params = self.param(PARAM_NAME, lambda key: self.layer.init(
        key, xs.shape[-1], self.hidden_size, **self._kwargs()))
    common = dict(initial_carry=initial_carry, seq_lengths=seq_lengths, mask=mask,
                  resets=resets, reset_carry=reset_carry,
                  time_major=self.time_major, unroll=self.unroll, remat=self.remat,
                  impl=self.impl)
    check_dropout(self.layer, self.dropout)
    if self.reverse and not isinstance(self.layer, base.Cell):
      raise ValueError(f"reverse: applies to a cell, not to {type(self.layer).__name__}")
    train = not deterministic and draws_masks(self.layer, self.dropout)
    common.update(key=self.make_rng("dropout") if train else None,
                  deterministic=not train)
    return scan_lib.apply(self.layer, params, xs, reverse=self.reverse,
                          dropout=self.dropout, keep_order=self.keep_order,
                          go_backwards=self.go_backwards,
                          zero_output_for_mask=self.zero_output_for_mask, **common)

  @nn.nowrap
  def initialize_carry(self, rng, input_shape):
    """Zeros for inputs of shape ``(*batch, T, features)`` (or time-major)."""
    del rng
    batch = scan_lib.carry_batch_shape(input_shape, self.time_major,
                                       self.layer.feature_axes())
    return carry_shapes(self.layer, input_shape[-1], self.hidden_size, self._kwargs(),
                        tuple(batch), self.param_dtype)


def check_dropout(layer, dropout) -> None:
  if dropout is not None and isinstance(layer, layers.Stacked):
    raise ValueError("dropout: a Stacked layer holds its own; pass "
                     "Stacked(..., recurrent_dropout=...)")


def draws_masks(layer, dropout) -> bool:
  """Whether a training call of the layer draws random masks."""
  if isinstance(layer, layers.Stacked):
    rd = layer.recurrent_dropout
    return (layer.dropout_rate > 0 and len(layer.layers) > 1) or (
        rd is not None and rd.active())
  return dropout is not None and dropout.active()


def to_functional(variables):
  """The functional params inside a linen module's variables (exact)."""
  params = variables.get("params", variables)
  if PARAM_NAME not in params:
    raise ValueError(f"variables: expected params with a {PARAM_NAME!r} entry (from "
                     f"jaxrnn.linen.RNN or Cell), got keys {sorted(params)}")
  return params[PARAM_NAME]


def from_functional(params):
  """Linen variables holding functional ``params`` (exact)."""
  return {"params": {PARAM_NAME: params}}


def init_block(layer, key, d_model, dtype):
  """A block's params for width ``d_model``, or a sequence model's (its
  width is its own)."""
  if hasattr(layer, "blocks"):  # a SequenceModel
    return layer.init(key, dtype=dtype)
  return layer.init(key, d_model, dtype=dtype)


class Block(nn.Module):
  """A jaxrnn block (:mod:`jaxrnn.blocks`) or sequence model as a linen
  module: ``module(xs, ...) -> (carry, ys)`` over a sequence, as
  :func:`jaxrnn.scan` runs it, and ``module.step(carry, x) -> (carry, y)``
  for one step (``module.apply(variables, carry, x, method="step")``).

  Attributes:
    block: the functional block, or a :class:`jaxrnn.blocks.SequenceModel`.
    d_model: the block's width (ignored for a sequence model, which has its own).
    unroll, remat, time_major, impl: as in :func:`jaxrnn.scan`.
    param_dtype: passed to ``init``.
  """

  block: Any
  d_model: Optional[int] = None
  unroll: int = 1
  remat: bool = False
  time_major: bool = False
  impl: Optional[str] = None
  param_dtype: Any = jnp.float32

  def setup(self):
    self.layer = self.param(PARAM_NAME, lambda key: init_block(
        self.block, key, self.d_model, self.param_dtype))

  def __call__(self, xs, *, initial_carry=None, seq_lengths=None, mask=None,
               resets=None, reset_carry=None):
    return scan_lib.apply(self.block, self.layer, xs, initial_carry=initial_carry,
                          seq_lengths=seq_lengths, mask=mask, resets=resets,
                          reset_carry=reset_carry, time_major=self.time_major,
                          unroll=self.unroll, remat=self.remat, impl=self.impl)

  def step(self, carry, x):
    return self.block(self.layer, carry, x)

  def initialize_carry(self, batch_shape=()):
    """The zero carry for a batch (``module.apply(variables, batch_shape,
    method="initialize_carry")``)."""
    return self.block.initial_carry(self.layer, tuple(batch_shape))
