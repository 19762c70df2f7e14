"""The peers' conventions for the outputs a layer returns.

jaxrnn returns every output at its input's position, and zeros at invalid
steps. Three options give a peer's convention instead, by its own name:

- ``keep_order=False`` (Flax ``nn.RNN``): with ``reverse``, the outputs in
  the order the pass made them, flipped within each row's length: ``ys[t]``
  belongs to input ``L - 1 - t`` for ``t < L``, where ``L`` is one past the
  row's last valid step (its length, for right-padded rows).
- ``go_backwards=True`` (Keras): a reverse pass whose outputs are flipped
  along the whole time axis, padding included: ``ys[t]`` belongs to input
  ``T - 1 - t``.
- ``zero_output_for_mask=False`` (Keras' default): an invalid step outputs
  the previous output in the order of the pass, the output of the nearest
  valid step before it (after it, for a reverse pass), or the initial
  carry's ``h`` where there is none. Keras reads that ``h`` as "the previous
  output", so this holds for cells whose output is their carry's ``h``;
  with ``resets`` (which Keras lacks) it is refused.

The carry is the same under every option: only the returned ``ys`` change.
"""

from __future__ import annotations

from typing import Any, Optional

import jax.numpy as jnp
from jax import lax

from jaxrnn._src.cells import base


def check(layer, *, reverse: bool, keep_order: bool, go_backwards: bool,
          zero_output_for_mask: bool, resets=None) -> None:
  """Trace-time checks of the three options against ``layer`` and each other."""
  for name, value in (("keep_order", keep_order), ("go_backwards", go_backwards),
                      ("zero_output_for_mask", zero_output_for_mask)):
    if not isinstance(value, bool):
      raise TypeError(f"{name}: expected a bool, got {value!r}")
  if not keep_order and not reverse:
    raise ValueError("keep_order=False: orders the outputs of a reverse pass; "
                     "pass reverse=True with it (Flax's nn.RNN ignores it otherwise)")
  if go_backwards and not keep_order:
    raise ValueError("go_backwards=True, keep_order=False: two orders for the same "
                     "outputs; go_backwards flips the whole time axis (Keras), "
                     "keep_order=False flips within each length (Flax)")
  if (go_backwards or not zero_output_for_mask) and not isinstance(layer, base.Cell):
    option = "go_backwards" if go_backwards else "zero_output_for_mask"
    raise ValueError(f"{option}: applies to a cell, not to {type(layer).__name__}")
  if not zero_output_for_mask and resets is not None:
    raise ValueError("zero_output_for_mask=False: repeats the previous output at a "
                     "masked step (Keras, which has no resets); with resets that "
                     "output may belong to the segment before, so the two are refused "
                     "together")
  if not zero_output_for_mask and "h" not in getattr(layer.carry_type, "_fields", ()):
    raise ValueError(f"zero_output_for_mask=False: repeats the carry's h at a masked "
                     f"step (Keras); {type(layer).__name__}'s carry "
                     f"{layer.carry_type.__name__} has no h")


def hold_last_output(ys, valid, carry: Optional[Any], *, reverse: bool):
  """``ys`` (time-major) with each invalid step holding the previous output
  of the pass, or ``carry.h`` (zeros without a carry) before the first."""
  if valid is None:
    return ys
  T = ys.shape[0]
  steps = lax.broadcasted_iota(jnp.int32, valid.shape, 0)
  if reverse:
    source = lax.cummin(jnp.where(valid, steps, T), axis=0, reverse=True)
  else:
    source = lax.cummax(jnp.where(valid, steps, -1), axis=0)
  found = _per_output(ys, (source >= 0) & (source < T))
  held = jnp.take_along_axis(ys, _per_output(ys, jnp.clip(source, 0, T - 1)), axis=0)
  before = jnp.zeros_like(ys[0]) if carry is None else carry.h.astype(ys.dtype)
  return jnp.where(found, held, before)


def flip_within_lengths(ys, valid):
  """``ys[t] <- ys[L - 1 - t]`` for ``t < L`` per row, ``L`` one past the
  row's last valid step; the steps after ``L`` stay."""
  if valid is None:
    return jnp.flip(ys, axis=0)
  T = ys.shape[0]
  steps = lax.broadcasted_iota(jnp.int32, valid.shape, 0)
  length = jnp.max(jnp.where(valid, steps + 1, 0), axis=0)
  source = jnp.where(steps < length, length - 1 - steps, steps)
  return jnp.take_along_axis(ys, _per_output(ys, source), axis=0)


def _per_output(ys, flags):
  """``flags`` ``(T, *batch)`` with trailing unit axes for the outputs' own
  (features, and a convolutional cell's spatial axes)."""
  return flags.reshape(flags.shape + (1,) * (ys.ndim - flags.ndim))


def arrange(ys, valid, carry, *, reverse: bool, keep_order: bool,
            go_backwards: bool, zero_output_for_mask: bool):
  """The time-major outputs ``ys`` in the convention the options name."""
  if not zero_output_for_mask:
    ys = hold_last_output(ys, valid, carry, reverse=reverse)
  if go_backwards:
    return jnp.flip(ys, axis=0)
  if not keep_order:
    return flip_within_lengths(ys, valid)
  return ys
