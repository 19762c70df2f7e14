"""The autodiff engine: ``lax.scan`` over the cell's own step, which JAX
differentiates itself.

It runs every cell, whatever its declared form, and every option (resets,
recurrent dropout, zoneout); it is the only engine with forward-mode
derivatives (``jax.jvp``, ``jacfwd``, Hessians) for non-linear cells. Every
other engine is tested against it.
"""

from __future__ import annotations

from typing import Optional

from jaxrnn._src.cells import base
from jaxrnn._src.engines import protocol
from jaxrnn._src.engines import steps as steps_lib


class Autodiff(protocol.Engine):
  name = "autodiff"
  impls = ("auto", "xla", "autodiff")

  def supports(self, cell, spec) -> Optional[str]:
    del cell, spec
    return None

  def describe(self, cell, spec) -> str:
    if spec.impl == "autodiff":
      return "impl='autodiff' was asked for"
    return (f"JAX differentiates the scan of {type(cell).__name__}'s own step "
            f"(form {cell.step_form()!r})")

  def run(self, cell, params, carry, steps, reset_to, options):
    xs = steps.xs
    if options.hoist:
      xs = cell.input_projection(params, xs)
      project = lambda x: x
    elif type(cell).input_projection is base.Cell.input_projection:
      w_i, b = cell.input_weights(params)  # loop-invariant: computed once
      project = lambda x: base.add_biases(x @ w_i, b)
    else:  # a projection that is not a matmul (ConvLSTM, the LN cells)
      project = lambda x: cell.input_projection(params, x)

    def step(c, x_t):
      new, y = cell.recurrence(params, c, project(x_t), options.h_mask)
      return new, y, None

    carry, (ys, _) = steps_lib.scan_steps(step, carry, steps._replace(xs=xs),
                                          reset_to, options)
    return carry, ys
