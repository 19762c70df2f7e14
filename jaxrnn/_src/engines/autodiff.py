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
    if overrides_call(cell) and spec.recurrent_dropout:
      return (f"{type(cell).__name__} overrides __call__, which takes no "
              "recurrent dropout mask")
    return None

  def describe(self, cell, spec) -> str:
    if spec.impl == "autodiff":
      return "impl='autodiff' was asked for"
    return (f"JAX differentiates the scan of {type(cell).__name__}'s own step "
            f"(form {cell.step_form()!r})")

  def run(self, cell, params, carry, steps, reset_to, options):
    if overrides_call(cell):  # the user's own step, on the raw inputs
      def own_step(c, x_t):
        new, y = cell(params, c, x_t)
        return new, y, None
      carry, (ys, _) = steps_lib.scan_steps(own_step, carry, steps, reset_to,
                                            options, output=output_rule(cell, params))
      return carry, ys
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
                                          reset_to, options,
                                          output=output_rule(cell, params))
    return carry, ys


def overrides_call(cell) -> bool:
  """Whether the cell's class defines its own step call (``__call__``)."""
  return type(cell).__call__ is not base.Cell.__call__


def output_rule(cell, params):
  """The output of a zoned-out carry, for the step rules: a linear
  recurrence reads it out of the zoned state (as the linear engine does);
  other cells output the zoned ``h`` where the output is ``h``."""
  readout = getattr(cell, "readout", None)
  if readout is None or not hasattr(cell, "state"):
    return None
  return lambda c, x, y: readout(params, cell.state(c), x).astype(y.dtype)
