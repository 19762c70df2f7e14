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

Resets. ``resets[t]`` sets the carry back to the initial carry (zeros when
none is given) before step ``t``, valid or not: a new segment (an episode, a
document of a packed sequence) begins at ``t``. Run in reverse, a segment
``[s, e)`` starts from the initial carry at its last step ``e - 1``, so the
engines receive the flags shifted by one (:func:`reset_flags`), and every
segment equals a separate run of it in both directions.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _native
from jaxrnn._src import base
from jaxrnn._src import dropout as dropout_lib
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
                  impl: str = "auto", needs: tuple = ()) -> tuple:
  """``(engine, reason)``: which engine runs this layer (``"native"``,
  ``"xla"``, ``"autodiff"`` or ``"linear"``), and why.

  ``xs`` is time-major (only its shape and dtype are read); ``needs`` names
  what the layer asks of its step beyond masks (``"resets"``, ``"recurrent
  dropout"``, ``"zoneout"``). Raises a ``ValueError`` when ``impl="native"``
  and the native engine cannot run it.
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
    why_not = (f"the native kernels have no {' or '.join(needs)}" if needs else
               _native.unsupported(cell, params, xs, carry))
    if why_not is None:
      return "native", f"the native kernel serves {name} here"
    if impl == "native":
      raise ValueError(f"impl: 'native' cannot run {name} here: {why_not}; "
                       "use impl='auto' or 'xla'")
    why = f"the native engine does not apply: {why_not}"
  if cell.splits_step() and "zoneout" not in needs:
    return "xla", why
  if cell.splits_step():
    return "autodiff", f"{why}; the fused backward has no zoneout"
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
             impl: str = "auto", resets: Optional[Array] = None,
             dropout=None, key=None, deterministic: bool = True):
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
    resets: boolean ``(T, *batch)`` in the caller's time order, or ``None``:
      a segment begins at each true step (see the module).
    dropout, key, deterministic: a :class:`jaxrnn.RecurrentDropout`, its
      PRNG key, and whether to evaluate (no masks) instead of train.

  Returns:
    ``(final_carry, ys)`` with ``ys`` time-major ``(T, *batch, output_size)``.
  """
  if carry is None:
    dtype = jax.eval_shape(cell.input_projection, params, xs[:1]).dtype
    carry = cell.initial_carry(params, xs.shape[1:-1], dtype)
  masks = dropout_lib.draw(dropout, key, deterministic, cell, params, xs, carry)
  if masks.x is not None:
    xs = xs * masks.x
  if masks.w_h is not None:
    params = params._replace(w_h=params.w_h * masks.w_h)
  needs = tuple(name for name, on in (("resets", resets is not None),
                                      ("recurrent dropout", masks.h is not None),
                                      ("zoneout", masks.zone_rate > 0)) if on)
  engine, _ = choose_engine(cell, params, xs, carry, impl, needs)
  resets = reset_flags(resets, reverse)
  hoist = hoist_by_default() if hoist is None else hoist

  # run(c, (xs, valid, resets, zone), c0) -> (c, ys): one engine over some
  # steps, where resets set the carry back to c0 and zone holds zoneout's
  # per-step masks.
  if engine == "native":
    def run(c, steps, c0):
      del c0  # the native engine runs no resets (choose_engine)
      return _native.run_layer(cell, params, steps[0], c, steps[1],
                               reverse=reverse)
  elif engine == "linear":
    def run(c, steps, c0):
      return linear_scan.run(cell, params, steps[0], c, steps[1],
                             reverse=reverse, unroll=unroll, resets=steps[2],
                             reset_to=c0, zone=steps[3], zone_rate=masks.zone_rate)
  elif engine == "xla":
    def run(c, steps, c0):
      return fused.run(cell, params, steps[0], c, steps[1], reverse=reverse,
                       unroll=unroll, hoist=hoist, resets=steps[2], reset_to=c0,
                       h_mask=masks.h)
  else:
    def run(c, steps, c0):
      return _autodiff(cell, params, c, steps, c0, reverse=reverse,
                       unroll=unroll, hoist=hoist, h_mask=masks.h,
                       zone_rate=masks.zone_rate)
  steps = (xs, valid, resets, masks.zone)
  if remat and xs.shape[0] > 1:
    carry, ys = _chunked_remat(run, carry, steps, reverse=reverse)
  else:
    carry, ys = run(carry, steps, carry)
  return carry, ys if masks.y is None else ys * masks.y


def _autodiff(cell, params, carry, steps, carry0, *, reverse, unroll, hoist,
              h_mask=None, zone_rate=0.0):
  """The plain scan of ``cell.recurrence``, which JAX differentiates."""
  xs, valid, resets, zone = steps
  if hoist:
    xs = cell.input_projection(params, xs)
    project = lambda p, x: x
  elif type(cell).input_projection is base.Cell.input_projection:
    w_i, b = cell.input_weights(params)  # loop-invariant: computed once
    project = lambda p, x: base.add_biases(x @ w_i, b)
  else:  # a projection that is not a matmul (ConvLSTM, the LN cells)
    project = cell.input_projection

  def step(c, inputs):
    x_t, valid_t, reset_t, zone_t = inputs
    if reset_t is not None:
      c = base.where_carry(reset_t, carry0, c)
    new_c, y = cell.recurrence(params, c, project(params, x_t), h_mask)
    new_c = jax.tree.map(lambda n, o: n.astype(o.dtype), new_c, c)
    if zone_rate:
      new_c = dropout_lib.zone_out(new_c, c, zone_t, zone_rate)
      if y.shape == new_c.h.shape:  # the output is h: the zoned-out h
        y = new_c.h.astype(y.dtype)
    if valid_t is None:
      return new_c, y
    return (base.where_carry(valid_t, new_c, c),
            jnp.where(base.per_step(valid_t, y), y, jnp.zeros_like(y)))

  return jax.lax.scan(step, carry, (xs, valid, resets, zone), reverse=reverse,
                      unroll=unroll)


def reset_flags(resets: Optional[Array], reverse: bool) -> Optional[Array]:
  """Where to reset, in the order the scan runs: ``resets`` itself forward;
  run in reverse, a segment starts at the step before a reset, so
  ``flags[t] = resets[t + 1]`` (and ``flags[T - 1]`` is false)."""
  if resets is None or not reverse:
    return resets
  return jnp.concatenate([resets[1:], jnp.zeros_like(resets[:1])], axis=0)


def _chunked_remat(run, carry, steps, *, reverse):
  """Scan over ``ceil(sqrt(T))`` checkpointed chunks of as many steps.

  ``run(carry, steps, carry0) -> (carry, ys)`` runs one chunk (any engine);
  ``steps`` is ``(xs, valid, resets, zone)``, ``None`` where absent, and
  resets in every chunk go back to the layer's own initial carry. The
  sequence is padded to whole chunks with invalid steps, which hold the
  carry and output zeros, then cut off again.
  """
  xs, valid, resets, zone = steps
  T = xs.shape[0]
  chunk = math.isqrt(T - 1) + 1
  n = -(-T // chunk)
  if valid is None:
    valid = jnp.ones(xs.shape[:-1], bool)
  pad = n * chunk - T
  pad_time = lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
  as_chunks = lambda a: pad_time(a).reshape((n, chunk) + a.shape[1:])

  carry0 = carry
  run_chunk = jax.checkpoint(lambda c, chunk_steps, c0: run(c, chunk_steps, c0))
  carry, ys = jax.lax.scan(
      lambda c, chunk_steps: run_chunk(c, chunk_steps, carry0), carry,
      jax.tree.map(as_chunks, (xs, valid, resets, zone)), reverse=reverse)
  return carry, ys.reshape((n * chunk,) + ys.shape[2:])[:T]


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
  if carry is not None:  # a convolutional cell's carry has spatial axes too
    spatial = tuple(xs.shape[len(xs.shape) - cell.feature_axes():-1])
    cell.check_carry(params, carry, batch_shape + spatial, carry_name)


# ------------------------------------------------------------------- public
def scan(cell: base.Cell, params: Any, xs: Array, *,
         initial_carry: Optional[Any] = None,
         seq_lengths: Optional[Array] = None,
         mask: Optional[Array] = None,
         resets: Optional[Array] = None,
         reverse: bool = False,
         time_major: bool = False,
         unroll: int = 1,
         remat: bool = False,
         impl: Optional[str] = None,
         dropout: Optional[dropout_lib.RecurrentDropout] = None,
         key: Optional[Array] = None,
         deterministic: bool = False):
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
    resets: boolean, laid out as ``mask``; true at ``t`` sets the carry back
      to ``initial_carry`` (zeros when ``None``) before step ``t``, valid or
      not: episode boundaries, or the documents of a packed sequence. With
      ``reverse``, each segment is run from its own last step, so every
      segment gives what a separate run of it gives.
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
    dropout: a :class:`jaxrnn.RecurrentDropout` (variational input, output
      and recurrent dropout, zoneout, DropConnect), or ``None``.
    key: the PRNG key its masks are drawn from; required when ``dropout``
      has a nonzero rate, unless ``deterministic``.
    deterministic: evaluation: no masks (zoneout gives its expectation).

  Returns:
    ``(carry, ys)``: the carry after the last valid step of each sequence and
    the outputs ``(*batch, T, output_size)``, zero on invalid steps.

  Raises:
    TypeError, ValueError: at trace time, naming the argument at fault.
  """
  check_cell(cell)
  check_unroll(unroll)
  impl = resolve_impl(impl)
  xs, initial_carry, seq_lengths, mask, resets = as_arrays(
      xs, initial_carry, seq_lengths, mask, resets)
  batch_shape, T = check_sequence(xs, time_major, cell.feature_axes())
  check_cell_inputs(cell, params, xs, initial_carry, batch_shape)
  check_lengths_and_mask(seq_lengths, mask, batch_shape, T, time_major, resets)
  dropout_lib.check(dropout, key, deterministic, (cell,))
  regularise = dropout is not None and dropout.active()
  with explain_forward_mode():
    return _scan(cell, params, xs, initial_carry, seq_lengths, mask, resets,
                 key if regularise and not deterministic else None,
                 reverse=reverse, time_major=time_major, unroll=unroll,
                 remat=bool(remat), impl=impl,
                 dropout=dropout if regularise else None,
                 deterministic=bool(deterministic))


@functools.partial(jax.jit, static_argnames=("cell", "reverse", "time_major",
                                             "unroll", "remat", "impl",
                                             "dropout", "deterministic"))
def _scan(cell, params, xs, initial_carry, seq_lengths, mask, resets, key, *,
          reverse, time_major, unroll, remat, impl, dropout, deterministic):
  xs = to_time_major(xs, time_major, cell.feature_axes())
  valid = valid_steps(seq_lengths, mask, xs.shape[0], time_major)
  carry, ys = run_cell(cell, params, xs, initial_carry, valid, reverse=reverse,
                       unroll=unroll, remat=remat, impl=impl,
                       resets=to_time_major_flags(resets, time_major),
                       dropout=dropout, key=key, deterministic=deterministic)
  return carry, from_time_major(ys, time_major, cell.feature_axes())


def which_engine(cell: base.Cell, params: Any, xs: Array, *,
                 initial_carry: Optional[Any] = None, time_major: bool = False,
                 impl: Optional[str] = None, resets: Optional[Array] = None) -> tuple:
  """``(engine, reason)``: the engine :func:`scan` would run, and why.

  ``engine`` is ``"native"``, ``"xla"``, ``"autodiff"`` or ``"linear"``;
  ``reason`` says why in words (for example why the native engine does not apply). Arguments
  as :func:`scan`; only shapes and dtypes are read. Raises as :func:`scan`
  would.
  """
  check_cell(cell)
  impl = resolve_impl(impl)
  xs, initial_carry, *_ = as_arrays(xs, initial_carry, None, None, None)
  batch_shape, _ = check_sequence(xs, time_major, cell.feature_axes())
  check_cell_inputs(cell, params, xs, initial_carry, batch_shape)
  xs = jax.eval_shape(lambda x: to_time_major(x, time_major, cell.feature_axes()),
                      jax.ShapeDtypeStruct(xs.shape, xs.dtype))
  carry = initial_carry
  if carry is None:
    dtype = jax.eval_shape(lambda x: cell.input_projection(params, x[:1]), xs).dtype
    carry = jax.eval_shape(lambda: cell.initial_carry(params, xs.shape[1:-1], dtype))
  return choose_engine(cell, params, xs, carry, impl,
                       ("resets",) if resets is not None else ())
