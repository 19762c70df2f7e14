"""The masks of :class:`jaxrnn.RecurrentDropout`, drawn once per call of a
layer, and where each one acts (see :mod:`jaxrnn._src.layers.dropout` for
the regularisers themselves).

- ``x`` and ``y`` multiply the inputs and outputs around any engine;
- ``w_h`` multiplies the recurrent weights before any engine (DropConnect);
- ``h`` multiplies ``h`` where it enters the recurrent product, inside the
  step (``Options.h_mask``; engines that cannot decline in ``supports``);
- ``zone`` holds zoneout's keep masks, applied by the step rules
  (:mod:`.steps`) or, on the linear engine, to the coefficients.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp


class Masks(NamedTuple):
  """What one run of a layer draws; ``None`` where a regulariser is off.

  Attributes:
    x: ``(*batch, input_size)``, scaled.
    y: ``(*batch, output_size)``, scaled.
    h: ``(*batch, hidden_size)``, scaled, for the recurrent product.
    w_h: the shape of ``params.w_h``, scaled.
    zone: a carry of booleans ``(T, *batch, size)`` (true: keep the old
      value) in training; ``None`` at evaluation.
    zone_rate: the zoneout rate, for the evaluation's expectation.
  """

  x: Optional[jax.Array] = None
  y: Optional[jax.Array] = None
  h: Optional[jax.Array] = None
  w_h: Optional[jax.Array] = None
  zone: Any = None
  zone_rate: float = 0.0


def _keep(key, rate, shape, dtype):
  """A dropout mask: 0, or ``1 / (1 − rate)`` with probability ``1 − rate``."""
  keep = jax.random.bernoulli(key, 1.0 - rate, shape)
  return jnp.where(keep, 1.0 / (1.0 - rate), 0.0).astype(dtype)


def draw(dropout, key, deterministic: bool, cell,
         params, xs, carry) -> Masks:
  """The masks of one run over time-major ``xs``, or none at evaluation."""
  if dropout is None or not dropout.active():
    return Masks()
  if deterministic:
    return Masks(zone_rate=dropout.zoneout)
  k_x, k_y, k_h, k_w, k_z = jax.random.split(key, 5)
  batch = xs.shape[1:]  # (*batch, [*spatial,] input_size)
  out = jax.eval_shape(lambda p, c, x: cell.recurrence(p, c, cell.input_projection(p, x)),
                       params, carry, xs[0])[1]
  dtype = xs.dtype
  masks = Masks(
      x=_keep(k_x, dropout.input, batch, dtype) if dropout.input else None,
      y=_keep(k_y, dropout.output, out.shape, out.dtype) if dropout.output else None,
      h=(_keep(k_h, dropout.recurrent, carry.h.shape, carry.h.dtype)
         if dropout.recurrent else None),
      w_h=(_keep(k_w, dropout.weight, params.w_h.shape, params.w_h.dtype)
           if dropout.weight else None),
      zone_rate=dropout.zoneout)
  if dropout.zoneout:
    # One mask per group of fields the cell says move together.
    groups = cell.zoneout_groups()
    keys = jax.random.split(k_z, len(groups))
    zone = {}
    for k, group in zip(keys, groups):
      shape = (xs.shape[0],) + getattr(carry, group[0]).shape
      mask = jax.random.bernoulli(k, dropout.zoneout, shape)
      zone.update({field: mask for field in group})
    masks = masks._replace(zone=type(carry)(**zone))
  return masks

