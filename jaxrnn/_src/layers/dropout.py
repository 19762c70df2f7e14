"""Regularisers of a recurrent layer: variational dropout, zoneout and
DropConnect, one set of masks drawn per call.

- ``input``, ``output`` (Gal & Ghahramani, 2016, "A Theoretically Grounded
  Application of Dropout in Recurrent Neural Networks"): one mask per
  sequence on ``x`` and on ``y``, the same at every step.
- ``recurrent`` (the same paper; Keras' ``recurrent_dropout``): one mask per
  sequence on ``h`` where it enters the recurrent product (``h W_h``, the
  sLSTM's heads, the ConvLSTM's convolution), the same at every step; the
  rest of the step (a GRU's ``z ⊙ h``) sees ``h`` itself.
- ``zoneout`` (Krueger et al., 2017, "Zoneout: Regularizing RNNs by Randomly
  Preserving Hidden Activations"): each unit of each carry field keeps its
  previous value with probability ``p``, drawn anew at every step (one draw
  for the fields a cell groups, :meth:`Cell.zoneout_groups`); at
  evaluation the step gives the expectation ``p·old + (1 − p)·new``. Where a
  cell's output is its hidden state, the output is the zoned-out ``h``.
- ``weight`` (DropConnect on the recurrent weights; Wan et al., 2013, as in
  Merity et al., 2018, "Regularizing and Optimizing LSTM Language Models"):
  one mask on ``w_h`` per call (per batch, as AWD-LSTM's ``WeightDrop``).

Dropout masks keep an element with probability ``1 − p`` and scale it by
``1 / (1 − p)``, so nothing changes in expectation and evaluation
(``deterministic=True``) uses no mask. This module holds the layer's
option and its checks; the engines draw and apply the masks
(:mod:`jaxrnn._src.engines.regularisers`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from jaxrnn._src.cells import base

RATES = ("input", "output", "recurrent", "zoneout", "weight")


@dataclasses.dataclass(frozen=True)
class RecurrentDropout:
  """The regularisers of a recurrent layer; every rate in ``[0, 1)``.

  Pass it as ``dropout=`` to :func:`jaxrnn.scan`, :class:`jaxrnn.Bidirectional`,
  :class:`jaxrnn.Stacked` (every layer) or the Flax modules, with a PRNG
  ``key`` (linen: the ``"dropout"`` stream; nnx: ``rngs``) during training.

  Attributes:
    input: variational dropout on the inputs.
    output: variational dropout on the outputs.
    recurrent: variational dropout on ``h`` in the recurrent product.
    zoneout: probability that a unit keeps its previous value.
    weight: DropConnect on the recurrent weights ``w_h``.
  """

  input: float = 0.0
  output: float = 0.0
  recurrent: float = 0.0
  zoneout: float = 0.0
  weight: float = 0.0

  def __post_init__(self):
    for name in RATES:
      rate = getattr(self, name)
      if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"dropout.{name}: expected a rate in [0, 1), got {rate!r}")

  def active(self) -> bool:
    return any(getattr(self, name) > 0 for name in RATES)


def check(dropout: Optional[RecurrentDropout], key, deterministic: bool,
          cells=()) -> None:
  """Argument checks, at trace time: the type, the key, and what the cells
  can take."""
  if dropout is None:
    return
  if not isinstance(dropout, RecurrentDropout):
    raise TypeError(f"dropout: expected a jaxrnn.RecurrentDropout, got "
                    f"{type(dropout).__name__}")
  if dropout.active() and not deterministic:
    check_key(key, "dropout")
  for cell in cells:
    if dropout.recurrent > 0 and cell.step_form() in ("linear", "chunkwise"):
      raise ValueError(f"dropout.recurrent: {type(cell).__name__} has no "
                       "recurrent product for recurrent dropout to act on; use "
                       "zoneout, input or output dropout")
    if dropout.weight > 0 and "w_h" not in cell.params_type._fields:
      raise ValueError(f"dropout.weight: {type(cell).__name__} has no recurrent "
                       "weights w_h to drop")


def check_key(key, what: str) -> None:
  """A key for ``what``'s masks: present, and a PRNG key."""
  if key is None:
    raise ValueError(f"key: {what} needs a PRNG key (jax.random.key), or "
                     "deterministic=True for evaluation")
  base.check_key(key)
