"""The one scan engine: a cell run over time with ``jax.lax.scan``.

Every sequence layer (:func:`scan`, :class:`Bidirectional`, :class:`Stacked`)
ends in :func:`run_cell`. It works time-major, and runs a layer on one of two
engines, chosen here and nowhere else (:func:`choose_engine`):

- ``"xla"``: ``jax.lax.scan`` over the cell's step, any backend, with the
  fused backward of :mod:`jaxrnn._src.fused` (cuDNN's scheme: one matmul per
  step in the backward loop, the weight gradients after it) for every cell
  that splits its step (``cell.splits_step()``). On accelerators it computes
  the input projection of all steps as one matmul before the loop; on CPU,
  where measurement favours it, the projection stays in the step
  (:func:`hoist_by_default`).
- ``"autodiff"``: the same scan, differentiated by JAX itself: every cell,
  and the only engine with forward-mode derivatives. ``"xla"`` runs a cell
  that does not split its step here.
- ``"native"``: the fused C++ kernels of :mod:`jaxrnn._native` (CPU; float32
  and float64; the simple RNN, LSTM, GRU, CIFG and peephole LSTM).

``impl="auto"`` (the default everywhere) takes the native engine where it
applies and XLA otherwise; all give the same numbers to float rounding.

The linear recurrences (minGRU, minLSTM, LRU, RG-LRU) run on their own path
whatever ``impl`` asks but ``"native"`` (engine ``"linear"``,
:mod:`jaxrnn._src.linear_scan`): every step's gates at once, then a
sequential or associative scan; JAX differentiates it, both modes.

Masking. A step is *valid* where ``t < seq_lengths`` and ``mask`` is true. On
an invalid step the carry is held and the output is zero, so the final carry
is each sequence's carry at its last valid step. Reversal runs the scan from
the last step to the first; since invalid steps hold the carry, a
right-padded sequence is reversed within its own length, and the outputs come
back in the original time order.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _native
from jaxrnn._src import base
from jaxrnn._src import fused
from jaxrnn._src import linear_scan

Array = jax.Array

IMPLS = ("auto", "xla", "native", "autodiff")
_DEFAULT_IMPL = contextvars.ContextVar("jaxrnn_default_impl", default="auto")


@contextlib.contextmanager
def default_engine(impl: str):
  """Within the block, layers called with ``impl=None`` (the default) use
  ``impl`` (``"auto"``, ``"xla"`` or ``"native"``).

  For example ``with jaxrnn.default_engine("autodiff"):`` around a model
  whose layers are deep inside Flax modules, to take forward-mode derivatives
  (``jax.jvp``, Hessians), which only that engine defines. It is read when
  a layer is called, before ``jit``, so compiled functions are not mixed up.
  """
  check_impl(impl)
  token = _DEFAULT_IMPL.set(impl)
  try:
    yield
  finally:
    _DEFAULT_IMPL.reset(token)


@contextlib.contextmanager
def explain_forward_mode():
  """Turns JAX's error for ``jvp`` of a ``custom_vjp`` (the native and xla
  engines) into one that names the way out."""
  try:
    yield
  except TypeError as e:
    if "forward-mode" not in str(e) or "custom_vjp" not in str(e):
      raise
    raise TypeError(
        "impl: the native and xla engines define reverse-mode derivatives "
        "only; for forward mode (jax.jvp, jacfwd, Hessians) pass "
        "impl='autodiff' or call the layer inside "
        "`with jaxrnn.default_engine('autodiff'):`") from e


def resolve_impl(impl: Optional[str]) -> str:
  """``impl``, or the default engine of :func:`default_engine` if ``None``."""
  if impl is None:
    return _DEFAULT_IMPL.get()
  check_impl(impl)
  return impl


def choose_engine(cell: base.Cell, params: Any, xs: Array, carry: Optional[Any],
                  impl: str = "auto") -> tuple:
  """``(engine, reason)``: which engine runs this layer (``"native"``,
  ``"xla"`` or ``"autodiff"``), and why.

  ``xs`` is time-major (only its shape and dtype are read). Raises a
  ``ValueError`` when ``impl="native"`` and the native engine cannot run it.
  """
  name = type(cell).__name__
  if isinstance(cell, linear_scan.LinearRecurrentCell) and impl != "native":
    return "linear", (f"{name} is a linear recurrence, solved by the "
                      f"{cell.resolved_method()} scan")
  if impl == "autodiff":
    return "autodiff", "impl='autodiff' was asked for"
  if impl == "xla":
    why = "impl='xla' was asked for"
  else:
    why_not = _native.unsupported(cell, params, xs, carry)
    if why_not is None:
      return "native", f"the native kernel serves {name} here"
    if impl == "native":
      raise ValueError(f"impl: 'native' cannot run {name} here: {why_not}; "
                       "use impl='auto' or 'xla'")
    why = f"the native engine does not apply: {why_not}"
  if cell.splits_step():
    return "xla", why
  return "autodiff", (f"{why}; {cell} does not split its step into a matmul "
                      "and an elementwise part, so JAX differentiates the scan")


# ------------------------------------------------------------------- engine
def hoist_by_default() -> bool:
  """Whether the input projection of all steps is one matmul before the loop.

  Measured on a 2-core x86 CPU with XLA:CPU (LSTM, B=32 T=256 I=128 H=256):
  hoisting was 40-50% slower there, forward and forward+backward, at every
  unroll tried. The loop that reads a slice of the precomputed projection each
  step cost about as much as the one that computes it, so the separate large
  matmul was pure extra time. Accelerators favour one large matmul (cuDNN's
  layout); that was not measured here (no GPU in the sessions so far), so it
  stays hoisted on every backend but CPU.
  """
  return jax.default_backend() != "cpu"


def run_cell(cell: base.Cell, params: Any, xs: Array, carry: Optional[Any],
             valid: Optional[Array], *, reverse: bool, unroll: int,
             hoist: Optional[bool] = None, remat: bool = False,
             impl: str = "auto"):
  """Runs ``cell`` over time-major ``xs`` ``(T, *batch, input_size)``.

  Args:
    cell: the cell.
    params: its params.
    xs: inputs, time-major.
    carry: initial carry, or ``None`` for zeros.
    valid: boolean ``(T, *batch)``, or ``None`` when every step is valid.
    reverse: run from the last step to the first.
    unroll: passed to ``lax.scan``.
    hoist: project the inputs of all steps in one matmul before the loop
      (``True``) or inside each step (``False``); ``None`` chooses by backend,
      see :func:`hoist_by_default`. Both give the same numbers.
    remat: keep only every ``ceil(sqrt(T))``-th carry for the backward pass
      and recompute the steps in between, so that the memory of the stored
      residuals grows as ``sqrt(T)`` instead of ``T``, for about one extra
      forward pass of compute. The outputs are unchanged.
    impl: ``"auto"``, ``"xla"`` or ``"native"``, see :func:`choose_engine`.

  Returns:
    ``(final_carry, ys)`` with ``ys`` time-major ``(T, *batch, output_size)``.
  """
  if carry is None:
    dtype = jax.eval_shape(cell.input_projection, params, xs[:1]).dtype
    carry = cell.initial_carry(params, xs.shape[1:-1], dtype)
  engine, _ = choose_engine(cell, params, xs, carry, impl)
  if engine == "native":
    def run_native(c, inputs):
      return _native.run_layer(cell, params, inputs[0], c, inputs[1],
                               reverse=reverse)
    if remat and xs.shape[0] > 1:
      return _chunked_remat(run_native, carry, xs, valid, reverse=reverse)
    return run_native(carry, (xs, valid))

  if engine == "linear":
    def run_linear(c, inputs):
      return linear_scan.run(cell, params, inputs[0], c, inputs[1],
                             reverse=reverse, unroll=unroll)
    if remat and xs.shape[0] > 1:
      return _chunked_remat(run_linear, carry, xs, valid, reverse=reverse)
    return run_linear(carry, (xs, valid))

  hoist = hoist_by_default() if hoist is None else hoist
  if engine == "xla":
    def run_fused(c, inputs):
      return fused.run(cell, params, inputs[0], c, inputs[1], reverse=reverse,
                       unroll=unroll, hoist=hoist)
    if remat and xs.shape[0] > 1:
      return _chunked_remat(run_fused, carry, xs, valid, reverse=reverse)
    return run_fused(carry, (xs, valid))

  w_i, b = cell.input_weights(params)  # loop-invariant: computed once
  if hoist:
    xs = base.add_biases(xs @ w_i, b)
    recurrence = cell.recurrence
  else:
    recurrence = lambda p, c, x: cell.recurrence(p, c, base.add_biases(x @ w_i, b))

  def keep_dtype(new, old):
    return jax.tree.map(lambda n, o: n.astype(o.dtype), new, old)

  def step(c, x_t):
    new_c, y = recurrence(params, c, x_t)
    return keep_dtype(new_c, c), y

  def masked_step(c, inputs):
    x_t, valid_t = inputs
    new_c, y = recurrence(params, c, x_t)
    v = valid_t[..., None]
    new_c = jax.tree.map(lambda n, o: jnp.where(v, n, o).astype(o.dtype),
                         new_c, c)
    return new_c, jnp.where(v, y, jnp.zeros_like(y))

  if remat and xs.shape[0] > 1:
    def run_steps(c, inputs):
      return jax.lax.scan(masked_step, c, inputs, reverse=reverse, unroll=unroll)
    return _chunked_remat(run_steps, carry, xs, valid, reverse=reverse)
  if valid is None:
    return jax.lax.scan(step, carry, xs, reverse=reverse, unroll=unroll)
  return jax.lax.scan(masked_step, carry, (xs, valid), reverse=reverse,
                      unroll=unroll)


def _chunked_remat(run_chunk, carry, xs, valid, *, reverse):
  """Scan over ``ceil(sqrt(T))`` checkpointed chunks of as many steps.

  ``run_chunk(carry, (xs, valid)) -> (carry, ys)`` runs one chunk (either
  engine). The sequence is padded to whole chunks with invalid steps, which
  hold the carry and output zeros, then cut off again.
  """
  T = xs.shape[0]
  chunk = math.isqrt(T - 1) + 1
  n = -(-T // chunk)
  if valid is None:
    valid = jnp.ones(xs.shape[:-1], bool)
  pad = n * chunk - T
  pad_time = lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
  as_chunks = lambda a: pad_time(a).reshape((n, chunk) + a.shape[1:])

  carry, ys = jax.lax.scan(jax.checkpoint(run_chunk), carry,
                           (as_chunks(xs), as_chunks(valid)),
                           reverse=reverse)
  return carry, ys.reshape((n * chunk,) + ys.shape[2:])[:T]


def valid_steps(seq_lengths: Optional[Array], mask: Optional[Array], T: int,
                time_major: bool) -> Optional[Array]:
  """Time-major ``(T, *batch)`` booleans from ``seq_lengths`` and ``mask``."""
  valid = None
  if seq_lengths is not None:
    t = jnp.arange(T).reshape((T,) + (1,) * jnp.ndim(seq_lengths))
    valid = t < jnp.asarray(seq_lengths)[None]
  if mask is not None:
    mask = jnp.asarray(mask)
    mask = mask if time_major else jnp.moveaxis(mask, -1, 0)
    valid = mask if valid is None else valid & mask
  return valid


def to_time_major(xs: Array, time_major: bool) -> Array:
  return xs if time_major else jnp.moveaxis(xs, -2, 0)


def from_time_major(ys: Array, time_major: bool) -> Array:
  return ys if time_major else jnp.moveaxis(ys, 0, -2)


# ------------------------------------------------------------------- checks
def check_sequence(xs: Any, time_major: bool) -> tuple:
  """Returns ``(batch_shape, T)`` of ``xs``, or raises."""
  shape = getattr(xs, "shape", None)
  if shape is None or len(shape) < 2:
    layout = "(T, *batch, input_size)" if time_major else "(*batch, T, input_size)"
    raise ValueError(f"xs: expected an array of shape {layout}, got "
                     f"{base.describe(xs)}")
  if time_major:
    return tuple(shape[1:-1]), shape[0]
  return tuple(shape[:-2]), shape[-2]


def check_lengths_and_mask(seq_lengths, mask, batch_shape: tuple, T: int,
                           time_major: bool) -> None:
  """Shapes and dtypes of ``seq_lengths`` and ``mask``; values when concrete."""
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
  if mask is not None:
    shape = jnp.shape(mask)
    dtype = jnp.result_type(mask)
    if dtype != jnp.bool_:
      raise TypeError(f"mask: expected a boolean array, got dtype {dtype}")
    want = (T, *batch_shape) if time_major else (*batch_shape, T)
    if shape != want:
      layout = "(T, *batch)" if time_major else "(*batch, T)"
      raise ValueError(f"mask: expected shape {base.shape_str(want)} "
                       f"{layout}, got {base.shape_str(shape)}")


def check_unroll(unroll) -> None:
  if isinstance(unroll, bool):
    return
  if not isinstance(unroll, int) or unroll < 1:
    raise ValueError(f"unroll: expected a positive int or a bool, got {unroll!r}")


def check_impl(impl) -> None:
  if impl not in IMPLS:
    raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")


def check_cell(cell: Any, name: str = "cell") -> None:
  if not isinstance(cell, base.Cell):
    raise TypeError(f"{name}: expected a jaxrnn cell (e.g. jaxrnn.LSTMCell()), "
                    f"got {type(cell).__name__}")


def check_cell_inputs(cell: base.Cell, params, xs, carry, batch_shape: tuple, *,
                      params_name: str = "params", carry_name: str = "initial_carry",
                      xs_name: str = "xs") -> None:
  cell.check_params(params, params_name)
  cell.check_input(params, xs, xs_name)
  if carry is not None:
    cell.check_carry(params, carry, batch_shape, carry_name)


# ------------------------------------------------------------------- public
def scan(cell: base.Cell, params: Any, xs: Array, *,
         initial_carry: Optional[Any] = None,
         seq_lengths: Optional[Array] = None,
         mask: Optional[Array] = None,
         reverse: bool = False,
         time_major: bool = False,
         unroll: int = 1,
         remat: bool = False,
         impl: Optional[str] = None):
  """Runs ``cell`` over a sequence (jit-compiled).

  Args:
    cell: a jaxrnn cell, e.g. ``LSTMCell()``.
    params: the cell's params.
    xs: inputs ``(*batch, T, input_size)``, or ``(T, *batch, input_size)``
      when ``time_major``; any number of batch dimensions, including none.
    initial_carry: the carry at the start; zeros when ``None``.
    seq_lengths: integer lengths of shape ``batch`` for right-padded
      sequences; steps ``t >= seq_lengths`` are invalid.
    mask: boolean ``(*batch, T)`` (``(T, *batch)`` when ``time_major``);
      false marks an invalid step. Combined with ``seq_lengths`` by "and".
    reverse: run from the last valid step to the first; outputs are returned
      in the original time order, and each right-padded sequence is reversed
      within its own length.
    time_major: layout of ``xs``, ``mask`` and the returned ``ys``.
    unroll: how many steps ``lax.scan`` unrolls per iteration (or ``True``);
      XLA engine only. The default, 1, is measured: interleaved on a 2-core
      x86 CPU (LSTM and GRU, B=32 T=256 I=128 H=256 and B=1 T=1000 I=64
      H=128, forward and forward+backward), unroll 2, 4 and 8 ran between
      0.86x and 1.36x the time of unroll 1, with no size that won
      everywhere, and 3.6x to 4.9x for the B=1 LSTM forward+backward.
    remat: trade compute for memory in the backward pass: stored residuals
      grow as ``sqrt(T)`` instead of ``T`` (for long sequences).
    impl: the engine: ``"auto"`` (native kernel on CPU where it applies,
      else XLA), ``"xla"`` (``jax.lax.scan`` with a fused backward, every
      backend), ``"autodiff"`` (the same scan differentiated by JAX, which
      alone has forward-mode derivatives) or ``"native"`` (an error if it
      does not apply); ``None`` means the
      default, ``"auto"`` unless set by :func:`jaxrnn.default_engine`. See
      :func:`jaxrnn.which_engine`. ``unroll`` applies to XLA only.

  Returns:
    ``(carry, ys)``: the carry after the last valid step of each sequence and
    the outputs ``(*batch, T, output_size)``, zero on invalid steps.

  Raises:
    TypeError, ValueError: at trace time, naming the argument at fault.
  """
  check_cell(cell)
  check_unroll(unroll)
  impl = resolve_impl(impl)
  batch_shape, T = check_sequence(xs, time_major)
  check_cell_inputs(cell, params, xs, initial_carry, batch_shape)
  check_lengths_and_mask(seq_lengths, mask, batch_shape, T, time_major)
  with explain_forward_mode():
    return _scan(cell, params, xs, initial_carry, seq_lengths, mask,
                 reverse=reverse, time_major=time_major, unroll=unroll,
                 remat=bool(remat), impl=impl)


@functools.partial(jax.jit, static_argnames=("cell", "reverse", "time_major",
                                             "unroll", "remat", "impl"))
def _scan(cell, params, xs, initial_carry, seq_lengths, mask, *, reverse,
          time_major, unroll, remat, impl):
  xs = to_time_major(xs, time_major)
  valid = valid_steps(seq_lengths, mask, xs.shape[0], time_major)
  carry, ys = run_cell(cell, params, xs, initial_carry, valid, reverse=reverse,
                       unroll=unroll, remat=remat, impl=impl)
  return carry, from_time_major(ys, time_major)


def which_engine(cell: base.Cell, params: Any, xs: Array, *,
                 initial_carry: Optional[Any] = None, time_major: bool = False,
                 impl: Optional[str] = None) -> tuple:
  """``(engine, reason)``: the engine :func:`scan` would run, and why.

  ``engine`` is ``"native"``, ``"xla"`` or ``"autodiff"``; ``reason`` says
  why in words (for example why the native engine does not apply). Arguments
  as :func:`scan`; only shapes and dtypes are read. Raises as :func:`scan`
  would.
  """
  check_cell(cell)
  impl = resolve_impl(impl)
  batch_shape, _ = check_sequence(xs, time_major)
  check_cell_inputs(cell, params, xs, initial_carry, batch_shape)
  xs = jax.eval_shape(lambda x: to_time_major(x, time_major),
                      jax.ShapeDtypeStruct(xs.shape, xs.dtype))
  carry = initial_carry
  if carry is None:
    dtype = jax.eval_shape(lambda x: cell.input_projection(params, x[:1]), xs).dtype
    carry = jax.eval_shape(lambda: cell.initial_carry(params, batch_shape, dtype))
  return choose_engine(cell, params, xs, carry, impl)
