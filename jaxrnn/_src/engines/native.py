"""The native engine: the C++ kernels of :mod:`jaxrnn._native` (CPU, float32
and float64), for cells that declare a kernel (``Cell.native_kernel``).

The kernels compute the whole layer (projection, recurrence, gates) and call
none of the cell's methods, so a subclass that overrides a step method has no
kernel (:meth:`jaxrnn.Cell.__init_subclass__`), and so does a cell whose
options the kernels do not compute (an activation other than the defaults;
:meth:`jaxrnn.Cell.native_unsupported` says which). They implement the step
rules of :mod:`.steps` for invalid steps; resets, recurrent dropout and
zoneout they do not have, and decline. Under ``impl="auto"`` they also
decline sequences shorter than :data:`MIN_STEPS`, where XLA measured faster.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp

from jaxrnn import _native
from jaxrnn._src.engines import protocol


# The cost rule of impl="auto": below MIN_STEPS steps the per-call cost of
# the kernels (the FFI call, waking the pool, packing the weights) is more
# than XLA's loop costs, and "auto" leaves the layer to the fused XLA engine.
# One-step calls in a jitted rollout (RL) are the common case. Measured with
# benchmarks/engine_choice.py (LSTM and GRU, B=1..64, H=64..256, forward and
# forward+backward, interleaved medians; benchmarks/results/engine_choice.md):
# at T=1 native took 1.07-1.96x XLA's time in every row; from T=16 on it was
# faster in every row but those that swung with the machine's load.
MIN_STEPS = 16


class Native(protocol.Engine):
  name = "native"
  impls = ("auto", "native")

  def supports(self, cell, spec) -> Optional[str]:
    if not _native.available():
      return _native.status()
    if spec.backend != "cpu":
      return f"it runs on CPU only, and the backend is {spec.backend}"
    variant = cell.native_variant()
    if variant not in _native.KINDS:
      why = cell.native_unsupported() if cell.native_kernel is not None else None
      return why or f"it has no kernel for {type(cell).__name__}"
    for option in ("resets", "recurrent_dropout", "zoneout"):
      if getattr(spec, option):
        return f"the native kernels have no {option.replace('_', ' ')}"
    leaves = jax.tree.leaves((spec.xs, spec.params, spec.carry))
    dtypes = {jnp.dtype(leaf.dtype) for leaf in leaves}
    if len(dtypes) != 1 or dtypes.pop() not in _native.DTYPES:
      return ("it needs xs, params and carry all float32 or all float64, got "
              + ", ".join(sorted({str(jnp.dtype(leaf.dtype)) for leaf in leaves})))
    if math.prod(spec.xs.shape) == 0:
      return "the sequence or the batch is empty"
    too_large = _native.too_large(spec.xs.shape[-1], spec.params.w_h.shape[-1])
    if too_large or spec.impl == "native":
      return too_large
    steps = spec.xs.shape[0]
    if steps < MIN_STEPS:
      return (f"a sequence of {steps} step{'s' if steps > 1 else ''} is shorter than "
              f"the {MIN_STEPS} from which the kernels measured faster than XLA "
              "(jaxrnn/_src/engines/native.py, MIN_STEPS); impl='native' forces them")
    return None

  def describe(self, cell, spec) -> str:
    return f"the native kernel {cell.native_variant()!r} serves {type(cell).__name__} here"

  def run(self, cell, params, carry, steps, reset_to, options):
    del reset_to  # no resets (supports)
    w_i, b = cell.input_weights(params)
    h, c, ys = _native.run_layer(cell.native_variant(), params, steps.xs, carry,
                                 steps.valid, reverse=options.reverse, w_i=w_i, b=b)
    return (carry._replace(h=h) if c is None else carry._replace(h=h, c=c)), ys
