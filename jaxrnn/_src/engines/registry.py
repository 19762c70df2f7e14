"""The registered engines, the one place an engine is chosen, and the one
call every sequence layer ends in (:func:`run_cell`).

Engines are asked in this order; the first whose ``impls`` admit the
caller's ``impl`` and whose ``supports`` says yes runs the layer:

1. ``native``: the C++ kernels (CPU; cells that declare a kernel);
2. ``linear``: cells declared ``form = "linear"``, all steps at once;
3. ``chunkwise``: matrix-state cells (``form = "chunkwise"``), a chunk of
   steps at a time;
4. ``xla``: the fused XLA engine, cells declared ``form = "split"``;
5. ``autodiff``: the cell's own step under ``lax.scan``: every cell.

``impl="auto"`` admits all five, ``"xla"`` the last four, ``"autodiff"``
the linear and chunkwise engines (themselves differentiated by JAX, forward
mode included) and autodiff, ``"native"`` only the native one, and is an error where it
declines. :func:`select` is that rule; :func:`jaxrnn.which_engine` calls it
with the same :class:`~.protocol.Spec` as :func:`run_cell`.

The default ``impl`` (:func:`default_engine`) is a ``jax.make_user_context``:
part of every ``jit``'s cache key, so a function compiled under one default
is traced again under another.
"""

from __future__ import annotations

import contextlib
import math
from typing import Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.engines import autodiff
from jaxrnn._src.engines import chunkwise
from jaxrnn._src.engines import fused
from jaxrnn._src.engines import linear
from jaxrnn._src.engines import native
from jaxrnn._src.engines import protocol
from jaxrnn._src.engines import regularisers

ENGINES = (native.Native(), linear.Linear(), chunkwise.Chunkwise(), fused.Fused(),
           autodiff.Autodiff())
IMPLS = ("auto", "xla", "native", "autodiff")
_DEFAULT_IMPL = jax.make_user_context(default_value="auto")

# Tests set this to a list to see, at trace time, which engine ran each layer.
_RECORD: Optional[list] = None


@contextlib.contextmanager
def default_engine(impl: str):
  """Within the block, layers called with ``impl=None`` (the default) use
  ``impl`` (``"auto"``, ``"xla"``, ``"autodiff"`` or ``"native"``).

  For example ``with jaxrnn.default_engine("autodiff"):`` around a model
  whose layers are deep inside Flax modules, to take forward-mode derivatives
  (``jax.jvp``, Hessians), which only that engine defines. The default is
  part of ``jax.jit``'s cache key: a function compiled outside the block is
  traced again inside it, so the block reaches functions jitted before it.
  """
  check_impl(impl)
  with _DEFAULT_IMPL(impl):
    yield


def check_impl(impl) -> None:
  if impl not in IMPLS:
    raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")


def resolve_impl(impl: Optional[str]) -> str:
  """``impl``, or the default engine of :func:`default_engine` if ``None``."""
  if impl is None:
    return _DEFAULT_IMPL.value
  check_impl(impl)
  return impl


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


def select(cell, spec: protocol.Spec) -> tuple:
  """``(engine, reason)``: the first registered engine that runs this, and
  why in words (with the reasons of those that declined). Raises a
  ``ValueError`` when none does (only ``impl="native"`` can)."""
  declined = []
  for engine in ENGINES:
    if spec.impl not in engine.impls:
      continue
    why_not = engine.supports(cell, spec)
    if why_not is None:
      reason = engine.describe(cell, spec)
      if declined:
        reason += "; " + "; ".join(declined)
      return engine, reason
    declined.append(f"the {engine.name} engine does not apply: {why_not}")
  raise ValueError(f"impl: {spec.impl!r} cannot run {type(cell).__name__} here: "
                   + "; ".join(declined) + "; use impl='auto' or 'xla'")


def hoist_by_default(backend: str) -> bool:
  """Whether the input projection of all steps is one matmul before the loop.

  Measured on a 2-core x86 CPU with XLA:CPU (LSTM, B=32 T=256 I=128 H=256):
  hoisting was 40-50% slower there, forward and forward+backward, at every
  unroll tried. The loop that reads a slice of the precomputed projection each
  step cost about as much as the one that computes it, so the separate large
  matmul was pure extra time. Accelerators favour one large matmul (cuDNN's
  layout); that was not measured here (no GPU in the sessions so far), so it
  stays hoisted on every backend but CPU.
  """
  return backend != "cpu"


def plan(cell, params, xs, carry, *, impl: str, reverse: bool = False,
         masked: bool = False, resets: bool = False, dropout=None,
         deterministic: bool = True, remat: bool = False) -> tuple:
  """The :class:`~.protocol.Spec` of a layer and the engine :func:`select`
  gives it: ``(engine, reason, spec)``. Only shapes and dtypes are read."""
  abstract = lambda tree: jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)
  active = dropout is not None and dropout.active()
  spec = protocol.Spec(
      impl=impl, backend=jax.default_backend(), xs=abstract(xs),
      params=abstract(params), carry=abstract(carry), reverse=bool(reverse),
      masked=bool(masked), resets=bool(resets),
      recurrent_dropout=bool(active and not deterministic and dropout.recurrent > 0),
      zoneout=bool(active and dropout.zoneout > 0), remat=bool(remat))
  engine, reason = select(cell, spec)
  return engine, reason, spec


def run_cell(cell, params, xs, carry, valid, *, reverse: bool, unroll: int,
             hoist: Optional[bool] = None, remat: bool = False,
             impl: str = "auto", resets=None, reset_carry=None,
             dropout=None, key=None, deterministic: bool = True):
  """Runs ``cell`` over time-major ``xs`` ``(T, *batch, *features)``.

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
      and recompute the steps in between (:func:`_chunked_remat`).
    impl: ``"auto"``, ``"xla"``, ``"autodiff"`` or ``"native"``, see
      :func:`select`.
    resets: boolean ``(T, *batch)`` in the caller's time order, or ``None``:
      a segment begins at each true step.
    reset_carry: the carry a segment begins from, or ``None`` for the
      cell's initial carry (zeros); it is not ``carry``, the state the call
      starts from.
    dropout, key, deterministic: a :class:`jaxrnn.RecurrentDropout`, its
      PRNG key, and whether to evaluate (no masks) instead of train.

  Returns:
    ``(final_carry, ys)`` with ``ys`` time-major ``(T, *batch, output_size)``.
  """
  zeros = None
  if carry is None or (resets is not None and reset_carry is None):
    dtype = (jax.tree.leaves(carry)[0].dtype if carry is not None else
             jax.eval_shape(cell.input_projection, params, xs[:1]).dtype)
    zeros = cell.initial_carry(params, xs.shape[1:-1], dtype)
  carry = zeros if carry is None else carry
  masks = regularisers.draw(dropout, key, deterministic, cell, params, xs, carry)
  if masks.x is not None:
    xs = xs * masks.x
  if masks.w_h is not None:
    params = params._replace(w_h=params.w_h * masks.w_h)
  engine, _, spec = plan(cell, params, xs, carry, impl=impl, reverse=reverse,
                         masked=valid is not None, resets=resets is not None,
                         dropout=dropout, deterministic=deterministic, remat=remat)
  if _RECORD is not None:
    _RECORD.append(engine.name)
  reset_to = None
  if resets is not None:
    reset_to = zeros if reset_carry is None else jax.tree.map(
        lambda r, c: jnp.broadcast_to(r, c.shape).astype(c.dtype), reset_carry, carry)
  options = protocol.Options(
      reverse=reverse, unroll=unroll,
      hoist=hoist_by_default(spec.backend) if hoist is None else hoist,
      h_mask=masks.h, zone_rate=masks.zone_rate)
  steps = protocol.Steps(xs, valid, reset_flags(resets, reverse), masks.zone)
  run = lambda c, s: engine.run(cell, params, c, s, reset_to, options)
  if remat and xs.shape[0] > 1:
    carry, ys = _chunked_remat(run, carry, steps, reverse=reverse)
  else:
    carry, ys = run(carry, steps)
  return carry, ys if masks.y is None else ys * masks.y


def reset_flags(resets, reverse: bool):
  """Where to reset, in the order the scan runs: ``resets`` itself forward;
  run in reverse, a segment starts at the step before a reset, so
  ``flags[t] = resets[t + 1]`` (and ``flags[T - 1]`` is false)."""
  if resets is None or not reverse:
    return resets
  return jnp.concatenate([resets[1:], jnp.zeros_like(resets[:1])], axis=0)


def _chunked_remat(run, carry, steps: protocol.Steps, *, reverse: bool):
  """Scan over ``ceil(sqrt(T))`` checkpointed chunks of as many steps.

  ``run(carry, steps) -> (carry, ys)`` runs one chunk on the chosen engine.
  The sequence is padded to whole chunks with invalid steps, which hold the
  carry and output zeros, then cut off again.
  """
  T = steps.xs.shape[0]
  chunk = math.isqrt(T - 1) + 1
  n = -(-T // chunk)
  if steps.valid is None:
    steps = steps._replace(valid=jnp.ones(steps.xs.shape[:-1], bool))
  pad = n * chunk - T
  pad_time = lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
  as_chunks = lambda a: pad_time(a).reshape((n, chunk) + a.shape[1:])
  run_chunk = jax.checkpoint(lambda c, s: run(c, protocol.Steps(*s)))
  carry, ys = jax.lax.scan(run_chunk, carry, jax.tree.map(as_chunks, tuple(steps)),
                           reverse=reverse)
  return carry, ys.reshape((n * chunk,) + ys.shape[2:])[:T]

