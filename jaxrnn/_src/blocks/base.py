"""The block interface: one body, run as one step or over a sequence.

A block is a residual unit of a sequence model: norms, projections and an MLP
that act on each step alone, around the parts that carry state from step to
step: a recurrent cell and, in most papers' blocks, a short causal
convolution. A block writes its equations once, in :meth:`Block.body`, in
terms of two *temporal* operations, ``ops.conv`` and ``ops.cell``:

- :meth:`Block.__call__` runs the body for one step,
  ``block(params, carry, x) -> (carry, y)``, with the cell's step and the
  convolution's step (for inference, RL, and any loop of the user's);
- :func:`jaxrnn.scan` runs it over a sequence (:meth:`Block.run`), with the
  cell on the engine the protocol chooses and the convolution in parallel
  over time (:mod:`jaxrnn._src.blocks.conv`); masks, lengths, resets and a
  reset target act as on a cell.

Everything else in the body acts on the last axis, so the same code serves
one step ``(*batch, d)`` and a sequence ``(T, *batch, d)``. The carry,
:class:`BlockState`, holds all that a step needs: the cell's carry and the
convolution's last ``k − 1`` inputs.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.engines import steps as steps_lib
from jaxrnn._src.layers import scan as scan_lib


class BlockState(NamedTuple):
  """The carry of a block.

  Attributes:
    cell: the recurrent cell's carry.
    conv: the causal convolution's last ``k − 1`` inputs, oldest first,
      ``(*batch, k − 1, channels)``; ``None`` for a block without one.
  """

  cell: Any
  conv: Optional[jax.Array]


class _StepOps:
  """The temporal operations of one step, from ``carry``."""

  def __init__(self, carry: BlockState):
    self.carry, self.conv_out, self.cell_out = carry, None, None

  def conv(self, conv, params, u):
    self.conv_out, y = conv.step(params, self.carry.conv, u)
    return y

  def cell(self, cell, params, u):
    new, y = cell(params, self.carry.cell, u)
    self.cell_out = steps_lib.cast_like(new, self.carry.cell)
    return y


class _SequenceOps:
  """The temporal operations over time-major sequences, with the rules of
  masks and resets (:mod:`jaxrnn._src.engines.steps`)."""

  def __init__(self, carry: BlockState, valid, resets, reset_carry, options):
    self.carry, self.valid, self.resets = carry, valid, resets
    self.reset_carry, self.options = reset_carry, options
    self.conv_out, self.cell_out = None, None

  def conv(self, conv, params, u):
    reset = None if self.reset_carry is None else self.reset_carry.conv
    self.conv_out, y = conv.sequence(params, u, self.carry.conv, self.valid,
                                     self.resets, reset)
    return y

  def cell(self, cell, params, u):
    reset = None if self.reset_carry is None else self.reset_carry.cell
    self.cell_out, y = scan_lib.run_layer(cell, params, u, self.carry.cell,
                                          self.valid, resets=self.resets,
                                          reset_carry=reset, **self.options)
    return y


def zero_invalid(valid, ys):
  """``ys`` (time-major) with zeros at invalid steps."""
  if valid is None:
    return ys
  return jnp.where(base.per_step(valid, ys), ys, jnp.zeros((), ys.dtype))


class Block(scan_lib.SequenceLayer):
  """Base class of the blocks (see the module).

  A subclass is a frozen dataclass of static options that defines
  ``params_type`` (a NamedTuple with at least the fields ``norm``, the first
  norm's params, ``cell`` and ``conv``, ``None`` without a convolution),
  :meth:`init`, :meth:`body`, :attr:`cell` and :attr:`conv`.
  """

  params_type: type
  cell: base.Cell
  conv: Any  # a CausalConv, or None

  @abc.abstractmethod
  def init(self, key, d_model: int, *, dtype: Any = jnp.float32):
    """Params for a residual stream of width ``d_model``."""

  @abc.abstractmethod
  def body(self, params, x, ops):
    """The block's equations, for one step ``(*batch, d)`` or a time-major
    sequence ``(T, *batch, d)``; ``ops.conv(conv, params, u)`` and
    ``ops.cell(cell, params, u)`` are its temporal parts."""

  # ------------------------------------------------------------- sizes
  def d_model(self, params) -> int:
    return params.norm.scale.shape[-1]

  def input_size(self, params) -> int:
    return self.d_model(params)

  def output_size(self, params) -> int:
    return self.d_model(params)

  def conv_channels(self, params) -> int:
    return params.conv.w.shape[-1]

  def initial_carry(self, params, batch_shape=(), dtype=None) -> BlockState:
    """The cell's initial carry and a zero convolution buffer."""
    self.check_params(params)
    batch_shape = tuple(base._as_shape(batch_shape, "batch_shape"))  # pylint: disable=protected-access
    dtype = params.norm.scale.dtype if dtype is None else dtype
    conv = None
    if self.conv is not None:
      conv = jnp.zeros((*batch_shape, *self.conv.buffer_shape(self.conv_channels(params))),
                       dtype)
    return BlockState(self.cell.initial_carry(params.cell, batch_shape, dtype), conv)

  # ------------------------------------------------------------- running
  def __call__(self, params, carry: BlockState, x):
    """One step: ``(params, carry, x) -> (carry, y)``, ``x`` of shape
    ``(*batch, d_model)``."""
    x, carry = base.as_array(x, "x"), base.as_carry(carry, "carry")
    self.check_params(params)
    self.check_input(params, x, "x")
    self.check_carry(params, carry, x.shape[:-1], "carry")
    ops = _StepOps(carry)
    y = self.body(params, x, ops)
    return BlockState(ops.cell_out, ops.conv_out), y

  def run(self, params, xs, carry, valid, *, resets=None, reset_carry=None,
          dropout=None, key=None, deterministic=True, **options):
    """Time-major core, no checks: ``(carry, ys)``; ``options`` go to the
    cell's engine."""
    del dropout, key, deterministic  # refused by check_regularisers
    if carry is None:  # the params' dtype, or the inputs' where wider
      carry = self.initial_carry(params, xs.shape[1:-1],
                                 jnp.promote_types(xs.dtype, params.norm.scale.dtype))
    ops = _SequenceOps(carry, valid, resets, reset_carry, options)
    ys = self.body(params, xs, ops)
    return BlockState(ops.cell_out, ops.conv_out), zero_invalid(valid, ys)

  # -------------------------------------------------------------- checks
  def check_params(self, params, name: str = "params") -> None:
    cls = type(self).__name__
    if not isinstance(params, self.params_type):
      raise TypeError(f"{name}: {cls} expects {self.params_type.__name__}, got "
                      f"{type(params).__name__}")
    self.cell.check_params(params.cell, f"{name}.cell")
    if (self.conv is None) != (params.conv is None):
      raise ValueError(f"{name}.conv: expected "
                       + ("None" if self.conv is None else "ConvParams")
                       + f" for {cls} with these options, got "
                       f"{type(params.conv).__name__}")

  def check_input(self, params, x, name: str) -> None:
    base.check_floating(x, name)
    d = self.d_model(params)
    if x.ndim < 1 or x.shape[-1] != d:
      raise ValueError(f"{name}: expected last dimension d_model={d}, got shape "
                       f"{base.shape_str(x.shape)}")

  def check_carry(self, params, carry, batch_shape, name: str,
                  broadcast: bool = False) -> None:
    """``carry`` is a :class:`BlockState` of this block for ``batch_shape``
    (or, with ``broadcast``, for no batch axes: one carry for every row)."""
    if not isinstance(carry, BlockState):
      raise TypeError(f"{name}: {type(self).__name__} expects BlockState(cell, "
                      f"conv), got {type(carry).__name__}")
    batch_shape = tuple(batch_shape)
    if broadcast and self.cell.carry_batch_shape(params.cell, carry.cell) == ():
      batch_shape = ()
    self.cell.check_carry(params.cell, carry.cell, batch_shape, f"{name}.cell")
    if self.conv is None:
      if carry.conv is not None:
        raise ValueError(f"{name}.conv: expected None (the block has no "
                         f"convolution), got {base.describe(carry.conv)}")
      return
    want = (*batch_shape, *self.conv.buffer_shape(self.conv_channels(params)))
    if getattr(carry.conv, "shape", None) != want:
      raise ValueError(f"{name}.conv: expected shape {base.shape_str(want)} (batch "
                       f"{base.shape_str(batch_shape)}, the last kernel_size - 1 "
                       f"inputs), got {base.describe(carry.conv)}")
