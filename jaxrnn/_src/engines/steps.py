"""The rules of a step, written once for every engine that runs a cell's step.

For step ``t`` of a layer, in this order:

1. **reset**: where ``resets[t]``, the carry becomes ``reset_to`` first, valid
   step or not (a new segment begins);
2. **step**: ``(carry', y) = step(carry, x_t)``;
3. **dtype**: ``carry'`` is cast to the carry's dtypes;
4. **zoneout**: a unit whose keep mask is set keeps its old value (at
   evaluation: ``p·old + (1 − p)·new``); where the output is ``h``, it is the
   zoned ``h``;
5. **invalid**: where the step is invalid, the carry is held and the output
   is zero.

:func:`scan_steps` runs them with ``lax.scan``; the autodiff engine and the
fused engine's forward call it. The fused backward, the linear engine and the
native kernels implement the same rules in their own terms and are tested
against this one.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.engines import protocol


def reset(flag, reset_to, carry):
  """Rule 1: ``reset_to`` where ``flag`` (per row), else ``carry``."""
  if flag is None:
    return carry
  return base.where_carry(flag, reset_to, carry)


def cast_like(new, old):
  """Rule 3: ``new`` in ``old``'s dtypes, field by field."""
  return jax.tree.map(lambda n, o: n.astype(o.dtype), new, old)


def zone_out(new, old, zone_t, rate: float):
  """Rule 4: ``old`` where ``zone_t`` (training), or the expectation
  ``rate·old + (1 − rate)·new`` (evaluation, ``zone_t=None``)."""
  if not rate:
    return new
  if zone_t is None:
    return jax.tree.map(lambda n, o: (rate * o + (1 - rate) * n).astype(o.dtype),
                        new, old)
  return jax.tree.map(lambda n, o, z: jnp.where(z, o, n).astype(o.dtype),
                      new, old, zone_t)


def hold_invalid(valid_t, new, old, y):
  """Rule 5: where the step is invalid, the old carry and a zero output."""
  if valid_t is None:
    return new, y
  return (base.where_carry(valid_t, new, old),
          jnp.where(base.per_step(valid_t, y), y, jnp.zeros_like(y)))


def scan_steps(step: Callable, carry, steps: protocol.Steps, reset_to,
               options: protocol.Options, output: Optional[Callable] = None):
  """``lax.scan`` of ``step(carry, x_t) -> (carry', y, saved)`` under the
  rules; returns ``(final_carry, (ys, saved))``, where ``saved`` is what the
  step chose to keep of each step (``None`` for nothing). ``output(carry,
  x_t, y)`` gives the output of a zoned-out carry (rule 4); by default the
  zoned ``h`` where the output is ``h``."""

  def body(c, inputs):
    x_t, valid_t, reset_t, zone_t = inputs
    c = reset(reset_t, reset_to, c)
    new, y, saved = step(c, x_t)
    new = cast_like(new, c)
    if options.zone_rate:
      new = zone_out(new, c, zone_t, options.zone_rate)
      if output is not None:
        y = output(new, x_t, y)
      elif hasattr(new, "h") and y.shape == new.h.shape:  # the output is h
        y = new.h.astype(y.dtype)
    new, y = hold_invalid(valid_t, new, c, y)
    return new, (y, saved)

  return jax.lax.scan(body, carry, tuple(steps), reverse=options.reverse,
                      unroll=options.unroll)
