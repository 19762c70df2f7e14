"""The chunkwise engine: matrix-state cells (``form = "chunkwise"``) in chunks.

A cell of :mod:`jaxrnn._src.cells.matrix_state` gives every step's queries,
keys, values and gates at once (``cell.terms``) and the algebra of one chunk
(``cell.chunk``). This engine:

1. computes the terms of all ``T`` steps in one vectorised pass;
2. makes invalid steps (masks, ``seq_lengths``) and the padding up to a
   whole number of chunks identity steps (``cell.hold``: nothing written,
   no decay);
3. runs ``lax.scan`` over the ``ceil(T / C)`` chunks, passing the state, with
   each chunk's body under ``jax.checkpoint``: the backward pass keeps only
   the state at chunk boundaries, ``T / C`` states of ``heads × d_k × d_v``,
   and recomputes within a chunk, instead of keeping ``T`` of them;
4. reads the outputs out (``cell.readout``) and zeroes invalid steps.

Resets cut the chunk's causal products where a segment begins and start it
from the reset target (``cell.chunk`` with ``starts``). Reversal runs the
flipped sequence. ``method="parallel"`` is one chunk of all ``T`` steps; a
cell with ``method="sequential"`` is declined here and runs its own step on
the autodiff engine, as does zoneout, which holds state entries one by one.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import linear_recurrence
from jaxrnn._src.engines import protocol


class Chunkwise(protocol.Engine):
  """Cells declared ``form = "chunkwise"``, a chunk at a time."""

  name = "chunkwise"
  impls = ("auto", "xla", "autodiff")

  def supports(self, cell, spec) -> Optional[str]:
    cls = type(cell).__name__
    if cell.step_form() != "chunkwise":
      return f"{cls} is not a matrix-state cell"
    if cell.method == "sequential":
      return f"{cls} has method='sequential': its own step runs"
    if spec.recurrent_dropout:
      return f"{cls} has no recurrent product for recurrent dropout"
    if spec.zoneout:
      return "zoneout holds state entries one by one, which only the step loop does"
    return None

  def describe(self, cell, spec) -> str:
    T = spec.xs.shape[0]
    C = cell.resolved_chunk_size(T)
    form = "parallel form" if cell.method == "parallel" else f"chunks of {C} steps"
    return f"{type(cell).__name__} is a matrix-state cell, run in its {form}"

  def run(self, cell, params, carry, steps, reset_to, options):
    return run(cell, params, carry, steps, reset_to, options)


def run(cell, params, carry, steps: protocol.Steps, reset_to, options: protocol.Options):
  """``(final_carry, ys)`` over time-major ``steps``, as ``registry.run_cell``;
  ``steps.resets`` are in the scan's order."""
  xs, valid, resets, _ = steps
  T = xs.shape[0]
  out_dtype = linear_recurrence.output_dtype(params, xs)
  if T == 0:
    return carry, jnp.zeros(xs.shape[:-1] + (cell.output_size(params),), out_dtype)
  flip = (lambda a: None if a is None else jnp.flip(a, 0)) if options.reverse else (
      lambda a: a)
  terms = cell.terms(params, flip(xs))
  C = cell.resolved_chunk_size(T)
  n = -(-T // C)
  pad = n * C - T
  held = flip(valid)
  if pad:
    held = jnp.ones((T,) + xs.shape[1:-1], bool) if held is None else held
    held = _pad(held, pad)
    terms = jax.tree.map(lambda a: _pad(a, pad), terms)
  if held is not None:
    terms = cell.hold(terms, held)
  starts = resets if resets is None else _pad(flip(resets), pad)
  acc = jax.tree.leaves(terms)[0].dtype
  state = jax.tree.map(lambda c: c.astype(acc), carry)
  target = None if resets is None else jax.tree.map(lambda c: c.astype(acc), reset_to)
  as_chunks = lambda a: a.reshape((n, C) + a.shape[1:])

  @jax.checkpoint
  def body(state, chunk):
    terms_c, starts_c = chunk
    return cell.chunk(terms_c, state, target, starts_c)

  state, outs = jax.lax.scan(
      body, state, (jax.tree.map(as_chunks, terms),
                    None if starts is None else as_chunks(starts)))
  outs = flip(outs.reshape((n * C,) + outs.shape[2:])[:T])
  ys = cell.readout(params, outs, xs).astype(out_dtype)
  if valid is not None:
    ys = jnp.where(base.per_step(valid, ys), ys, jnp.zeros_like(ys))
  return jax.tree.map(lambda s, c: s.astype(c.dtype), state, carry), ys


def _pad(a, pad: int):
  """``a`` with ``pad`` steps of zeros (false) after its last."""
  if not pad:
    return a
  return jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
