"""Linear recurrences, solved for all steps at once: the parallel-in-time path.

The cells of this family (minGRU, minLSTM, LRU, RG-LRU) compute their gates
from the input alone, so their state follows a recurrence that is linear in
it, with coefficients known before the loop::

    h_t = a_t ⊙ h_{t-1} + b_t,        (a_t, b_t) = coefficients(params, x_t)
    y_t = readout(params, h_t, x_t)

A sequence layer computes ``a`` and ``b`` of every step in one vectorised
pass, then solves the recurrence by one of two methods (the cell's
``method``):

- ``"sequential"``: ``lax.scan`` over ``h = a_t * h + b_t``, elementwise, no
  matmul in the loop; ``T`` steps of ``O(1)`` work.
  A cell whose coefficients are larger than its input (S6: ``(D, N)`` per
  step from ``D`` inputs) declares ``coefficients_in_loop``, and the loop
  computes them step by step instead (:func:`_run_in_loop`).
- ``"associative"``: ``lax.associative_scan`` with the composition
  ``(a_l, b_l) ∘ (a_r, b_r) = (a_l a_r, a_r b_l + b_r)``: ``O(log T)`` depth
  for about twice the work (Blelloch, 1990; Martin & Cundy, 2018).

``"auto"`` takes ``"sequential"`` on CPU and ``"associative"`` elsewhere,
see :func:`default_method`.

Masks and ``seq_lengths``: an invalid step is ``a = 1, b = 0``, so the state
is held and the output set to zero, as on every engine. Reversal solves the
recurrence from the last step to the first. The recurrence is solved in at
least float32 whatever the input dtype (as recurrentgemma does); the outputs
come back in the inputs' and params' dtype, the final carry in the carry's.
For step-by-step use in bfloat16, keep the carry in float32
(``initial_carry(params, batch, jnp.float32)``) to keep that precision.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec

from jaxrnn._src.cells import base
from jaxrnn._src.cells.linear_recurrence import LinearRecurrentCell
from jaxrnn._src.cells.linear_recurrence import output_dtype
from jaxrnn._src.engines import protocol

class Linear(protocol.Engine):
  """Cells declared ``form = "linear"``, solved for all steps at once."""

  name = "linear"
  impls = ("auto", "xla", "autodiff")

  def supports(self, cell, spec) -> Optional[str]:
    if cell.step_form() != "linear":
      return f"{type(cell).__name__} is not a linear recurrence"
    if spec.recurrent_dropout:
      return f"{type(cell).__name__} has no recurrent product for recurrent dropout"
    return None

  def describe(self, cell, spec) -> str:
    in_loop = (cell.coefficients_in_loop and cell.resolved_method() == "sequential"
               and cell.sequence_mesh is None)
    return (f"{type(cell).__name__} is a linear recurrence, solved by the "
            f"{cell.resolved_method()} scan"
            + (", its coefficients computed step by step in the loop" if in_loop else ""))

  def run(self, cell, params, carry, steps, reset_to, options):
    return run(cell, params, carry, steps, reset_to, options)


def run(cell: LinearRecurrentCell, params, carry, steps: protocol.Steps, reset_to,
        options: protocol.Options):
  """``(final_carry, ys)`` over time-major ``steps``, as ``registry.run_cell``.

  A reset step (``resets``, in the scan's order) starts from ``reset_to``:
  ``(a, b) -> (0, a h_0 + b)``, held as such on an invalid step. Zoneout
  keeps the recurrence linear: a unit that keeps its old value is ``(1,
  0)``, and the evaluation's expectation is ``(p + (1 − p) a, (1 − p) b)``;
  ``zone`` holds the per-step masks (a carry of booleans) in training.
  """
  xs, valid, resets, zone = steps
  reverse, unroll, zone_rate = options.reverse, options.unroll, options.zone_rate
  method = cell.resolved_method()
  keep = None
  if zone is not None:
    keep = jax.tree.leaves(zone)[0]  # the LRU: one mask per complex unit
  if cell.in_log_space():
    log_a, log_b = cell.log_coefficients(params, xs)
    if keep is not None:
      log_a = jnp.where(keep, jnp.zeros_like(log_a), log_a)
      log_b = jnp.where(keep, jnp.full_like(log_b, _log_floor(log_b.dtype)), log_b)
    elif zone_rate:
      log_a = jnp.logaddexp(jnp.log(zone_rate), jnp.log1p(-zone_rate) + log_a)
      log_b = jnp.log1p(-zone_rate) + log_b
    floor = _log_floor(log_b.dtype)
    if valid is not None:
      v = base.per_step(valid, log_a)
      log_a = jnp.where(v, log_a, jnp.zeros_like(log_a))
      log_b = jnp.where(v, log_b, jnp.full_like(log_b, floor))
    to_log = lambda c: jnp.log(jnp.maximum(cell.state(c).astype(log_b.dtype),
                                           jnp.exp(floor)))
    log_h0 = to_log(carry)
    if resets is not None:
      r = base.per_step(resets, log_b)
      log_b = jnp.where(r, jnp.logaddexp(log_a + to_log(reset_to), log_b), log_b)
      log_a = jnp.where(r, jnp.full_like(log_a, floor), log_a)
    if cell.sequence_mesh is not None:
      hs = jnp.exp(solve_sequence_parallel(
          log_a, log_b, log_h0, reverse=reverse, mesh=cell.sequence_mesh,
          axis=cell.sequence_axis, log_space=True))
    else:
      hs = jnp.exp(solve_log(log_a, log_b, log_h0, reverse=reverse, method=method,
                             unroll=unroll))
  elif cell.coefficients_in_loop and method == "sequential" and cell.sequence_mesh is None:
    return _run_in_loop(cell, params, carry, steps, reset_to, options)
  else:
    a, b = _coefficients(cell, params, xs, valid, resets, keep, zone_rate,
                         None if resets is None else cell.state(reset_to))
    h0 = cell.state(carry).astype(jnp.result_type(a, b))
    if cell.sequence_mesh is not None:
      hs = solve_sequence_parallel(a, b, h0, reverse=reverse, mesh=cell.sequence_mesh,
                                   axis=cell.sequence_axis)
    else:
      hs = solve(a, b, h0, reverse=reverse, method=method, unroll=unroll)
  ys = cell.readout(params, hs, xs).astype(output_dtype(params, xs))
  if valid is not None:
    ys = jnp.where(base.per_step(valid, ys), ys, jnp.zeros_like(ys))
  if hs.shape[0] == 0:  # no steps: the carry as it came
    return carry, ys
  final = cell.to_carry(hs[0] if reverse else hs[-1])
  final = jax.tree.map(lambda n, o: n.astype(o.dtype), final, carry)
  return final, ys


def _coefficients(cell, params, xs, valid, resets, keep, zone_rate, reset_state):
  """``(a, b)`` of the steps ``xs`` (all of them, or one), with zoneout,
  invalid steps (``(1, 0)``) and resets (``(0, a h_reset + b)``) applied."""
  a, b = cell.coefficients(params, xs)
  if keep is not None:
    a = jnp.where(keep, jnp.ones_like(a), a)
    b = jnp.where(keep, jnp.zeros_like(b), b)
  elif zone_rate:
    a = zone_rate + (1 - zone_rate) * a
    b = (1 - zone_rate) * b
  if valid is not None:
    v = base.per_step(valid, a)
    a = jnp.where(v, a, jnp.ones_like(a))
    b = jnp.where(v, b, jnp.zeros_like(b))
  if resets is not None:
    r = base.per_step(resets, b)
    b = jnp.where(r, a * reset_state.astype(jnp.result_type(a, b)) + b, b)
    a = jnp.where(r, jnp.zeros_like(a), a)
  return a, b


def _run_in_loop(cell, params, carry, steps: protocol.Steps, reset_to,
                 options: protocol.Options):
  """The sequential solve of a cell whose ``a`` and ``b`` are larger than its
  input (``coefficients_in_loop``, S6's ``(D, N)`` per step): each step's
  coefficients, state and output are computed inside the loop, so no
  ``(T, *batch, *state)`` array is made. The loop runs in chunks of about
  ``√T`` steps, each rematerialised in the backward pass: the stored states
  are the chunks' first, ``O(√T)`` of them (Mamba's selective scan keeps its
  states out of memory the same way, Gu & Dao 2023, §3.3.2)."""
  xs, valid, resets, zone = steps
  keep = None if zone is None else jax.tree.leaves(zone)[0]
  T = xs.shape[0]
  chunk = max(1, math.isqrt(max(T, 1)))
  pad = -T % chunk
  if pad:  # identity steps after the last: a = 1, b = 0
    valid = jnp.ones(xs.shape[:-1], bool) if valid is None else valid
    widths = lambda v: [(0, pad)] + [(0, 0)] * (v.ndim - 1)
    xs, valid = jnp.pad(xs, widths(xs)), jnp.pad(valid, widths(valid))
    resets = None if resets is None else jnp.pad(resets, widths(resets))
    keep = None if keep is None else jnp.pad(keep, widths(keep))
  reset_state = None if resets is None else cell.state(reset_to)
  flags = {"valid": valid, "resets": resets, "keep": keep}

  def step(h, inputs):
    x, f = inputs
    a, b = _coefficients(cell, params, x, f["valid"], f["resets"], f["keep"],
                         options.zone_rate, reset_state)
    h = a * h + b
    return h, cell.readout(params, h, x)

  def run_chunk(h, inputs):
    return jax.lax.scan(step, h, inputs, reverse=options.reverse, unroll=options.unroll)

  n = xs.shape[0] // chunk
  split = lambda v: None if v is None else v.reshape(n, chunk, *v.shape[1:])
  inputs = (split(xs), jax.tree.map(split, flags))
  a0, b0 = jax.eval_shape(cell.coefficients, params,
                          jax.ShapeDtypeStruct(xs.shape[1:], xs.dtype))
  h0 = cell.state(carry).astype(jnp.result_type(a0.dtype, b0.dtype))
  h, ys = jax.lax.scan(jax.checkpoint(run_chunk), h0, inputs, reverse=options.reverse)
  ys = ys.reshape(n * chunk, *ys.shape[2:])[:T].astype(output_dtype(params, xs))
  if valid is not None:
    ys = jnp.where(base.per_step(valid[:T], ys), ys, jnp.zeros_like(ys))
  final = jax.tree.map(lambda n, o: n.astype(o.dtype), cell.to_carry(h), carry)
  return final, ys


def solve(a, b, h0, *, reverse: bool, method: str, unroll: int = 1):
  """Every ``h_t`` of ``h_t = a_t h_{t-1} + b_t`` from ``h0`` (time axis 0;
  from the last step back when ``reverse``)."""
  if method == "sequential" or a.shape[0] == 0:
    def step(h, ab):
      h = ab[0] * h + ab[1]
      return h, h
    return jax.lax.scan(step, h0, (a, b), reverse=reverse, unroll=unroll)[1]
  first = -1 if reverse else 0
  b = b.at[first].add(a[first] * h0)
  return jax.lax.associative_scan(_compose, (a, b), reverse=reverse, axis=0)[1]


def solve_log(log_a, log_b, log_h0, *, reverse: bool, method: str, unroll: int = 1):
  """:func:`solve` on logarithms: ``log h_t = logaddexp(log a_t + log h_{t-1},
  log b_t)``, for positive ``a``, ``b`` and ``h0`` (Heinsen, 2023, "Efficient
  Parallelization of a Ubiquitous Sequential Computation", as an associative
  scan)."""
  if method == "sequential" or log_a.shape[0] == 0:
    def step(h, ab):
      h = jnp.logaddexp(ab[0] + h, ab[1])
      return h, h
    return jax.lax.scan(step, log_h0, (log_a, log_b), reverse=reverse,
                        unroll=unroll)[1]
  first = -1 if reverse else 0
  log_b = log_b.at[first].set(jnp.logaddexp(log_a[first] + log_h0, log_b[first]))
  return jax.lax.associative_scan(_compose_log, (log_a, log_b), reverse=reverse,
                                  axis=0)[1]


def solve_sequence_parallel(a, b, h0, *, reverse: bool, mesh: Mesh, axis: str,
                            log_space: bool = False):
  """:func:`solve` (or :func:`solve_log`) with the time axis split over the
  devices of ``mesh``'s ``axis`` (recurrentgemma's scheme):

  1. each device solves its chunk of ``n = T / devices`` steps from a zero
     state, by an associative scan that also gives ``A_t``, the product of
     the chunk's ``a`` up to ``t``: ``h_t = H_t + A_t h_in``;
  2. the chunks' last ``(A, H)`` are gathered (one all-gather of two
     ``batch × hidden`` arrays per device) and folded in chunk order from
     ``h0``, giving every chunk its incoming state ``h_in``;
  3. each device corrects its chunk: ``H_t + A_t h_in``.

  Work per device is ``O(T / devices)`` plus ``O(devices)`` for the fold;
  communication is one all-gather, independent of ``T``. ``T`` is padded to
  a multiple of the devices with identity steps (``a = 1, b = 0``).
  """
  n = mesh.shape[axis]
  T = a.shape[0]
  pad = -T % n
  one, zero = (0.0, _log_floor(b.dtype)) if log_space else (1.0, 0.0)
  if pad:
    widths = [(0, pad)] + [(0, 0)] * (a.ndim - 1)
    a = jnp.pad(a, widths, constant_values=one)
    b = jnp.pad(b, widths, constant_values=zero)
  compose = _compose_log if log_space else _compose
  apply = ((lambda A, H, h: jnp.logaddexp(H, A + h)) if log_space
           else (lambda A, H, h: H + A * h))

  def chunk(a, b, h0):
    A, H = jax.lax.associative_scan(compose, (a, b), reverse=reverse, axis=0)
    edge = 0 if reverse else -1  # the chunk's state after its last step
    A_all = jax.lax.all_gather(A[edge], axis)
    H_all = jax.lax.all_gather(H[edge], axis)
    incoming, h = [None] * n, h0
    for i in (range(n - 1, -1, -1) if reverse else range(n)):
      incoming[i] = h
      h = apply(A_all[i], H_all[i], h)
    h_in = jnp.stack(incoming)[jax.lax.axis_index(axis)]
    return apply(A, H, h_in)

  time = PartitionSpec(axis)
  hs = jax.shard_map(chunk, mesh=mesh, in_specs=(time, time, PartitionSpec()),
                     out_specs=time)(a, b, h0)
  return hs[:T]


def _log_floor(dtype):
  """The log of the smallest normal number: log-space zero, kept finite so
  that no gradient meets ``-inf - -inf``. A state of exactly 0 (an initial
  carry of zeros) enters as this, a contribution below float rounding."""
  return float(np.log(jnp.finfo(dtype).tiny))


def _compose_log(earlier, later):
  a_e, b_e = earlier
  a_l, b_l = later
  return a_e + a_l, jnp.logaddexp(a_l + b_e, b_l)


def _compose(earlier, later):
  """Two steps as one: ``later(earlier(h))``."""
  a_e, b_e = earlier
  a_l, b_l = later
  return a_e * a_l, a_l * b_e + b_l
