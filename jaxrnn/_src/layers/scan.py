"""The sequence layer's front-end: :func:`scan`, :func:`which_engine`, and the
argument checks every layer shares.

:func:`scan` checks its arguments in Python at trace time, then runs one
jitted function whose core is :func:`jaxrnn._src.engines.registry.run_cell`:
the engine protocol chooses the engine (:mod:`jaxrnn._src.engines`), and
:func:`which_engine` asks the same question with the same arguments.

Masking. A step is *valid* where ``t < seq_lengths`` and ``mask`` is true. On
an invalid step the carry is held and the output is zero, so the final carry
is each sequence's carry at its last valid step. Reversal runs the scan from
the last step to the first; since invalid steps hold the carry, a
right-padded sequence is reversed within its own length, and the outputs come
back in the original time order.

Resets. ``resets[t]`` sets the carry to ``reset_carry`` (the cell's initial
carry, zeros, when none is given) before step ``t``, valid or not: a new
segment (an episode, a document of a packed sequence) begins at ``t``. The
reset target is not ``initial_carry``, the state the call starts from: a
rollout step or a replay starts from a stored, non-zero state, and an episode
that begins inside the call starts from a fresh one. Run in reverse, a
segment ``[s, e)`` starts from the reset target at its last step ``e - 1``,
so every segment equals a separate run of it in both directions.
"""

from __future__ import annotations

import abc
import functools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._src.cells import base
from jaxrnn._src.engines import registry
from jaxrnn._src.layers import dropout as dropout_lib
from jaxrnn._src.layers import order

Array = jax.Array

# The engine choice, re-exported for the layers and the Flax modules.
default_engine = registry.default_engine
resolve_impl = registry.resolve_impl
check_impl = registry.check_impl
explain_forward_mode = registry.explain_forward_mode


def to_time_major_flags(flags: Optional[Array], time_major: bool) -> Optional[Array]:
  """``mask`` or ``resets`` as ``(T, *batch)``."""
  if flags is None:
    return None
  flags = jnp.asarray(flags)
  return flags if time_major else jnp.moveaxis(flags, -1, 0)


def valid_steps(seq_lengths: Optional[Array], mask: Optional[Array], T: int,
                time_major: bool) -> Optional[Array]:
  """Time-major ``(T, *batch)`` booleans from ``seq_lengths`` and ``mask``."""
  valid = None
  if seq_lengths is not None:
    t = jnp.arange(T).reshape((T,) + (1,) * jnp.ndim(seq_lengths))
    valid = t < jnp.asarray(seq_lengths)[None]
  if mask is not None:
    mask = to_time_major_flags(mask, time_major)
    valid = mask if valid is None else valid & mask
  return valid


def to_time_major(xs: Array, time_major: bool, features: int = 1) -> Array:
  """``(*batch, T, *features)`` to ``(T, *batch, *features)``."""
  return xs if time_major else jnp.moveaxis(xs, -1 - features, 0)


def from_time_major(ys: Array, time_major: bool, features: int = 1) -> Array:
  return ys if time_major else jnp.moveaxis(ys, 0, -1 - features)


# ------------------------------------------------------------------- checks
def carry_batch_shape(shape: Sequence[int], time_major: bool,
                      features: int = 1) -> tuple:
  """The leading shape of a layer's carry for a sequence of ``shape``: the
  batch axes, and the spatial axes of a convolutional cell."""
  t = 0 if time_major else len(shape) - 1 - features
  return tuple(shape[:t]) + tuple(shape[t + 1:-1])


def check_sequence(xs: Any, time_major: bool, features: int = 1) -> tuple:
  """Returns ``(batch_shape, T)`` of ``xs``, or raises; ``features`` is the
  number of feature axes (:meth:`Cell.feature_axes`)."""
  shape = getattr(xs, "shape", None)
  if shape is None or len(shape) < 1 + features:
    step = "*spatial, channels" if features > 1 else "input_size"
    layout = f"(T, *batch, {step})" if time_major else f"(*batch, T, {step})"
    raise ValueError(f"xs: expected an array of shape {layout}, got "
                     f"{base.describe(xs)}")
  if time_major:
    return tuple(shape[1:len(shape) - features]), shape[0]
  return tuple(shape[:-1 - features]), shape[-1 - features]


def check_lengths_and_mask(seq_lengths, mask, batch_shape: tuple, T: int,
                           time_major: bool, resets=None) -> None:
  """Shapes and dtypes of ``seq_lengths``, ``mask`` and ``resets``; values
  when concrete."""
  if seq_lengths is not None:
    shape = jnp.shape(seq_lengths)
    dtype = jnp.result_type(seq_lengths)
    if not jnp.issubdtype(dtype, jnp.integer):
      raise TypeError(f"seq_lengths: expected an integer array, got dtype {dtype}")
    if shape != batch_shape:
      raise ValueError(
          f"seq_lengths: expected shape {base.shape_str(batch_shape)} (the "
          f"batch shape of xs), got {base.shape_str(shape)}")
    if not isinstance(seq_lengths, jax.core.Tracer):
      # Values can be checked only outside jit; under jit lengths above T act
      # as T and negative lengths as 0.
      lengths = np.asarray(seq_lengths)
      if lengths.size and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(
            f"seq_lengths: expected values in [0, T={T}], got min "
            f"{lengths.min()} and max {lengths.max()}")
  for name, flags in (("mask", mask), ("resets", resets)):
    if flags is None:
      continue
    shape = jnp.shape(flags)
    dtype = jnp.result_type(flags)
    if dtype != jnp.bool_:
      raise TypeError(f"{name}: expected a boolean array, got dtype {dtype}")
    want = (T, *batch_shape) if time_major else (*batch_shape, T)
    if shape != want:
      layout = "(T, *batch)" if time_major else "(*batch, T)"
      raise ValueError(f"{name}: expected shape {base.shape_str(want)} "
                       f"{layout}, got {base.shape_str(shape)}")


def as_arrays(xs, initial_carry, seq_lengths, mask, resets) -> tuple:
  """A layer's array arguments, Python lists taken as arrays."""
  return (base.as_array(xs, "xs"), base.as_carry(initial_carry, "initial_carry"),
          base.as_array(seq_lengths, "seq_lengths"), base.as_array(mask, "mask"),
          base.as_array(resets, "resets"))


def check_unroll(unroll) -> None:
  if isinstance(unroll, bool):
    return
  if not isinstance(unroll, int) or unroll < 1:
    raise ValueError(f"unroll: expected a positive int or a bool, got {unroll!r}")


class SequenceLayer(abc.ABC):
  """What :func:`scan` runs besides a cell: a layer with a step form
  ``layer(params, carry, x) -> (carry, y)`` and a sequence form ``run``
  (a block, :mod:`jaxrnn._src.blocks`).

  Besides ``init`` and ``initial_carry``, it answers ``feature_axes()``,
  ``check_inputs(params, xs, initial_carry, batch_shape, *, reset_carry,
  ...)``, ``check_regularisers(dropout, key, deterministic)`` and
  ``run(params, xs, carry, valid, **options)`` (time-major, no checks), as
  :class:`jaxrnn.Stacked` does; ``output_feature_axes()`` is the number of
  feature axes of its outputs where it differs (token inputs have none).
  """

  def feature_axes(self) -> int:
    return 1

  def output_feature_axes(self) -> int:
    return self.feature_axes()

  @abc.abstractmethod
  def check_params(self, params, name: str = "params") -> None:
    """Raises if ``params`` are not this layer's."""

  @abc.abstractmethod
  def check_input(self, params, x, name: str) -> None:
    """Raises if ``x`` (a step's input or a sequence) does not fit."""

  @abc.abstractmethod
  def check_carry(self, params, carry, batch_shape, name: str,
                  broadcast: bool = False) -> None:
    """Raises if ``carry`` is not this layer's for ``batch_shape`` (with
    ``broadcast``, or for no batch axes: one carry for every row)."""

  def check_inputs(self, params, xs, initial_carry, batch_shape, *,
                   reset_carry=None, params_name="params",
                   carry_name="initial_carry", xs_name="xs"):
    """:func:`scan`'s checks; returns the reset target with lists as arrays."""
    self.check_params(params, params_name)
    self.check_input(params, xs, xs_name)
    if initial_carry is not None:
      self.check_carry(params, initial_carry, batch_shape, carry_name)
    reset_name = carry_name.replace("initial_carry", "reset_carry")
    reset_carry = base.as_carry(reset_carry, reset_name)
    if reset_carry is not None:
      self.check_carry(params, reset_carry, batch_shape, reset_name, broadcast=True)
    return reset_carry

  def check_regularisers(self, dropout, key, deterministic):
    """``(None, None)``: no recurrent dropout (a block's cell is regularised
    in a :class:`jaxrnn.Stacked`; a residual stream takes plain dropout)."""
    del key, deterministic
    if dropout is not None:
      raise ValueError(f"dropout: {type(self).__name__} takes no recurrent dropout")
    return None, None


def check_cell(cell: Any, name: str = "cell") -> None:
  if not isinstance(cell, (base.Cell, SequenceLayer)):
    raise TypeError(f"{name}: expected a jaxrnn cell (e.g. jaxrnn.LSTMCell()) or "
                    f"block, got {type(cell).__name__}")


def check_cell_inputs(cell: base.Cell, params, xs, carry, batch_shape: tuple, *,
                      params_name: str = "params", carry_name: str = "initial_carry",
                      xs_name: str = "xs") -> None:
  cell.check_params(params, params_name)
  cell.check_input(params, xs, xs_name)
  if carry is not None:  # a convolutional cell's carry has spatial axes too
    spatial = tuple(xs.shape[len(xs.shape) - cell.feature_axes():-1])
    cell.check_carry(params, carry, batch_shape + spatial, carry_name)


def check_resets_given(resets, reset_carry) -> None:
  """``reset_carry`` is given only with ``resets``."""
  if reset_carry is not None and resets is None:
    raise ValueError("reset_carry: given without resets; it is the carry a "
                     "segment begins from at a reset (pass resets=...)")


def check_reset_carry(cell: base.Cell, params, reset_carry, batch_shape: tuple,
                      xs, name: str = "reset_carry") -> None:
  """``reset_carry`` is a carry of ``cell`` whose fields broadcast to the
  layer's carry (batched, or one carry for every row)."""
  if reset_carry is None:
    return
  spatial = tuple(xs.shape[len(xs.shape) - cell.feature_axes():-1])
  want = batch_shape + spatial
  leading = cell.carry_batch_shape(params, reset_carry)
  cell.check_carry(params, reset_carry, want if leading == want else leading, name)
  if leading != want and leading != spatial:
    raise ValueError(f"{name}: expected leading shape {base.shape_str(want)} (the "
                     f"carry's) or {base.shape_str(spatial)} (one carry for every "
                     f"row), got {base.shape_str(leading)}")


# ------------------------------------------------------- the one front-end
def check_layer_inputs(layer, params, xs, carry, reset_carry, batch_shape: tuple,
                       *, params_name: str = "params",
                       carry_name: str = "initial_carry", xs_name: str = "xs"):
  """Checks a layer's params, inputs, initial carry and reset target (a
  composite layer checks each of its own layers through this); returns the
  reset target with lists as arrays."""
  if not isinstance(layer, base.Cell):
    return layer.check_inputs(params, xs, carry, batch_shape, reset_carry=reset_carry,
                              params_name=params_name,
                              carry_name=carry_name, xs_name=xs_name)
  check_cell_inputs(layer, params, xs, carry, batch_shape, params_name=params_name,
                    carry_name=carry_name, xs_name=xs_name)
  reset_carry = base.as_carry(reset_carry, carry_name.replace("initial_carry", "reset_carry"))
  check_reset_carry(layer, params, reset_carry, batch_shape, xs,
                    carry_name.replace("initial_carry", "reset_carry"))
  return reset_carry


def check_regularisers(layer, dropout, key, deterministic: bool) -> tuple:
  """``(dropout, key)`` as the layer's core takes them: ``None`` where no mask
  is drawn. A composite layer answers for itself."""
  if not isinstance(layer, base.Cell):
    return layer.check_regularisers(dropout, key, deterministic)
  dropout_lib.check(dropout, key, deterministic, (layer,))
  active = dropout is not None and dropout.active()
  return (dropout if active else None), (key if active and not deterministic else None)


def run_layer(layer, params, xs, carry, valid, *, reverse: bool = False, **options):
  """The time-major core of any layer, no checks: a cell on the engine the
  protocol chooses (:func:`registry.run_cell`), a composite by its ``run``."""
  if isinstance(layer, base.Cell):
    return registry.run_cell(layer, params, xs, carry, valid, reverse=reverse, **options)
  if reverse:
    raise ValueError(f"reverse: applies to a cell, not to {type(layer).__name__}")
  return layer.run(params, xs, carry, valid, **options)


def apply(layer, params, xs, *, initial_carry=None, seq_lengths=None, mask=None,
          resets=None, reset_carry=None, reverse: bool = False,
          time_major: bool = False, unroll: int = 1, remat: bool = False,
          impl: Optional[str] = None, dropout=None, key=None,
          deterministic: bool = False, keep_order: bool = True,
          go_backwards: bool = False, zero_output_for_mask: bool = True):
  """The one checked, jitted apply of every sequence layer (:func:`scan`,
  :class:`jaxrnn.Bidirectional`, :class:`jaxrnn.Stacked`, the Flax modules):
  arguments as :func:`scan`. Checks run in Python at trace time, then one
  jitted function runs :func:`run_layer`."""
  check_unroll(unroll)
  impl = resolve_impl(impl)
  if reverse and not isinstance(layer, base.Cell):
    raise ValueError(f"reverse: applies to a cell, not to {type(layer).__name__}")
  reverse = bool(reverse) or go_backwards is True
  xs, initial_carry, seq_lengths, mask, resets = as_arrays(
      xs, initial_carry, seq_lengths, mask, resets)
  order.check(layer, reverse=reverse, keep_order=keep_order, go_backwards=go_backwards,
              zero_output_for_mask=zero_output_for_mask, resets=resets)
  batch_shape, T = check_sequence(xs, time_major, layer.feature_axes())
  check_resets_given(resets, reset_carry)
  reset_carry = check_layer_inputs(layer, params, xs, initial_carry, reset_carry,
                                   batch_shape)
  check_lengths_and_mask(seq_lengths, mask, batch_shape, T, time_major, resets)
  dropout, key = check_regularisers(layer, dropout, key, bool(deterministic))
  with explain_forward_mode():
    return _apply(layer, params, xs, initial_carry, seq_lengths, mask, resets,
                  reset_carry, key, reverse=reverse, time_major=time_major,
                  unroll=unroll, remat=bool(remat), impl=impl, dropout=dropout,
                  deterministic=bool(deterministic), keep_order=keep_order,
                  go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)


@functools.partial(jax.jit, static_argnames=("layer", "reverse", "time_major",
                                             "unroll", "remat", "impl",
                                             "dropout", "deterministic",
                                             "keep_order", "go_backwards",
                                             "zero_output_for_mask"))
def _apply(layer, params, xs, initial_carry, seq_lengths, mask, resets,
           reset_carry, key, *, reverse, time_major, unroll, remat, impl,
           dropout, deterministic, keep_order, go_backwards, zero_output_for_mask):
  features = layer.feature_axes()
  xs = to_time_major(xs, time_major, features)
  valid = valid_steps(seq_lengths, mask, xs.shape[0], time_major)
  options = dict(unroll=unroll, remat=remat, impl=impl,
                 resets=to_time_major_flags(resets, time_major),
                 reset_carry=reset_carry, dropout=dropout, key=key,
                 deterministic=deterministic)
  if reverse:
    options["reverse"] = True
  carry, ys = run_layer(layer, params, xs, initial_carry, valid, **options)
  ys = order.arrange(ys, valid, initial_carry, reverse=reverse, keep_order=keep_order,
                     go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)
  if isinstance(layer, SequenceLayer):
    features = layer.output_feature_axes()
  return carry, from_time_major(ys, time_major, features)


# ------------------------------------------------------------------- public
def scan(cell: Any, params: Any, xs: Array, *,
         initial_carry: Optional[Any] = None,
         seq_lengths: Optional[Array] = None,
         mask: Optional[Array] = None,
         resets: Optional[Array] = None,
         reset_carry: Optional[Any] = None,
         reverse: bool = False,
         time_major: bool = False,
         unroll: int = 1,
         remat: bool = False,
         impl: Optional[str] = None,
         dropout: Optional[dropout_lib.RecurrentDropout] = None,
         key: Optional[Array] = None,
         deterministic: bool = False,
         keep_order: bool = True,
         go_backwards: bool = False,
         zero_output_for_mask: bool = True):
  """Runs ``cell`` over a sequence (jit-compiled).

  Args:
    cell: a jaxrnn cell, e.g. ``LSTMCell()``, or a block
      (:mod:`jaxrnn.blocks`, ``reverse`` and ``dropout`` excepted).
    params: the cell's params.
    xs: inputs ``(*batch, T, input_size)``, or ``(T, *batch, input_size)``
      when ``time_major``; any number of batch dimensions, including none.
    initial_carry: the carry at the start (a stored state, e.g. the last
      step's during an RL rollout); zeros when ``None``.
    seq_lengths: integer lengths of shape ``batch`` for right-padded
      sequences; steps ``t >= seq_lengths`` are invalid.
    mask: boolean ``(*batch, T)`` (``(T, *batch)`` when ``time_major``);
      false marks an invalid step. Combined with ``seq_lengths`` by "and".
    resets: boolean, laid out as ``mask``; true at ``t`` sets the carry to
      ``reset_carry`` before step ``t``, valid or not: episode boundaries,
      or the documents of a packed sequence. With ``reverse``, each segment
      is run from its own last step, so every segment gives what a separate
      run of it gives.
    reset_carry: the carry a segment begins from at a reset: the cell's
      initial carry (zeros) when ``None``. Not ``initial_carry``: a call that
      starts from a stored state still begins each new episode afresh. Its
      fields have the carry's shape, or no batch axes (one carry for every
      row, e.g. a learned initial state).
    reverse: run from the last valid step to the first; outputs are returned
      in the original time order, and each right-padded sequence is reversed
      within its own length.
    time_major: layout of ``xs``, ``mask`` and the returned ``ys``.
    unroll: how many steps ``lax.scan`` unrolls per iteration (or ``True``);
      XLA engines only. The default, 1, is measured: interleaved on a 2-core
      x86 CPU (LSTM and GRU, B=32 T=256 I=128 H=256 and B=1 T=1000 I=64
      H=128, forward and forward+backward), unroll 2, 4 and 8 ran between
      0.86x and 1.36x the time of unroll 1, with no size that won
      everywhere, and 3.6x to 4.9x for the B=1 LSTM forward+backward.
    remat: trade compute for memory in the backward pass: stored residuals
      grow as ``sqrt(T)`` instead of ``T`` (for long sequences).
    impl: the engine: ``"auto"`` (the first registered engine that applies:
      native kernel, linear solve, fused XLA, autodiff), ``"xla"`` (no native
      kernel; every backend), ``"autodiff"`` (the scan JAX differentiates,
      forward mode included) or ``"native"`` (an error if it does not
      apply); ``None`` means the default, ``"auto"`` unless set by
      :func:`jaxrnn.default_engine`. See :func:`jaxrnn.which_engine`.
    dropout: a :class:`jaxrnn.RecurrentDropout` (variational input, output
      and recurrent dropout, zoneout, DropConnect), or ``None``.
    key: the PRNG key its masks are drawn from; required when ``dropout``
      has a nonzero rate, unless ``deterministic``.
    deterministic: evaluation: no masks (zoneout gives its expectation).
    keep_order: Flax's option: ``False`` with ``reverse`` returns the outputs
      in the order the pass made them, flipped within each row's length.
    go_backwards: Keras' option: a reverse pass whose outputs are flipped
      along the whole time axis (``ys[t]`` belongs to input ``T-1-t``).
    zero_output_for_mask: ``False`` is Keras' default: an invalid step
      outputs the previous output of the pass (the initial carry's ``h``
      before the first valid one) instead of zeros. Cells whose carry has
      an ``h``. See :mod:`jaxrnn._src.layers.order`.

  Returns:
    ``(carry, ys)``: the carry after the last valid step of each sequence and
    the outputs ``(*batch, T, output_size)``, zero on invalid steps (unless
    ``zero_output_for_mask=False``), at their inputs' positions (unless
    ``keep_order=False`` or ``go_backwards``).

  Raises:
    TypeError, ValueError: at trace time, naming the argument at fault.
  """
  check_cell(cell)
  return apply(cell, params, xs, initial_carry=initial_carry,
               seq_lengths=seq_lengths, mask=mask, resets=resets,
               reset_carry=reset_carry, reverse=reverse, time_major=time_major,
               unroll=unroll, remat=remat, impl=impl, dropout=dropout, key=key,
               deterministic=deterministic, keep_order=keep_order,
               go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)


def which_engine(cell: base.Cell, params: Any, xs: Array, *,
                 initial_carry: Optional[Any] = None,
                 seq_lengths: Optional[Array] = None,
                 mask: Optional[Array] = None,
                 resets: Optional[Array] = None,
                 reset_carry: Optional[Any] = None,
                 reverse: bool = False,
                 time_major: bool = False,
                 unroll: int = 1,
                 remat: bool = False,
                 impl: Optional[str] = None,
                 dropout: Optional[dropout_lib.RecurrentDropout] = None,
                 key: Optional[Array] = None,
                 deterministic: bool = False) -> tuple:
  """``(engine, reason)``: the engine :func:`scan` runs with these arguments,
  and why.

  ``engine`` is ``"native"``, ``"linear"``, ``"xla"`` or ``"autodiff"``;
  ``reason`` says why in words, with the reasons of the engines that
  declined. The arguments are :func:`scan`'s, every one of them; only shapes
  and dtypes are read. It is the same function that :func:`scan` runs
  (:func:`jaxrnn._src.engines.registry.plan`). Raises as :func:`scan` would.
  """
  del unroll, key
  if isinstance(cell, SequenceLayer):
    raise TypeError(f"cell: which_engine answers for a cell; a "
                    f"{type(cell).__name__} runs its cell ({type(cell.cell).__name__}) "
                    f"on the engine which_engine(block.cell, params.cell, ...) names")
  check_cell(cell)
  impl = resolve_impl(impl)
  xs, initial_carry, seq_lengths, mask, resets = as_arrays(
      xs, initial_carry, seq_lengths, mask, resets)
  batch_shape, T = check_sequence(xs, time_major, cell.feature_axes())
  check_cell_inputs(cell, params, xs, initial_carry, batch_shape)
  check_lengths_and_mask(seq_lengths, mask, batch_shape, T, time_major, resets)
  check_resets_given(resets, reset_carry)
  check_reset_carry(cell, params, base.as_carry(reset_carry, "reset_carry"),
                    batch_shape, xs)
  dropout_lib.check(dropout, jax.random.key(0), True, (cell,))
  xs = jax.eval_shape(lambda x: to_time_major(x, time_major, cell.feature_axes()),
                      jax.ShapeDtypeStruct(xs.shape, xs.dtype))
  carry = initial_carry
  if carry is None:
    dtype = jax.eval_shape(lambda x: cell.input_projection(params, x[:1]), xs).dtype
    carry = jax.eval_shape(lambda: cell.initial_carry(params, xs.shape[1:-1], dtype))
  active = dropout if dropout is not None and dropout.active() else None
  engine, reason, _ = registry.plan(
      cell, params, xs, carry, impl=impl, reverse=reverse,
      masked=seq_lengths is not None or mask is not None,
      resets=resets is not None, dropout=active,
      deterministic=bool(deterministic), remat=remat)
  return engine.name, reason
