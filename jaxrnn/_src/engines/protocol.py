"""The engine protocol: what a layer asks of an engine, and what an engine is.

Every sequence layer ends in one call, :func:`jaxrnn._src.engines.registry.run_cell`,
which describes the run as a :class:`Spec` and asks the engines of the
registry, in order, whether they support it. The first that does runs it; the
others' reasons are kept, so :func:`jaxrnn.which_engine` answers with the same
function that runs the layer, and says why.

An engine is a small object (:class:`Engine`):

- ``name``: what :func:`jaxrnn.which_engine` reports;
- ``impls``: the ``impl`` values that admit it (``"auto"`` admits all);
- ``supports(cell, spec)``: ``None`` if it can run this, else the reason;
- ``run(cell, params, carry, steps, reset_to, options)``: ``(carry, ys)``.

An engine chooses by the cell's *declared* structure (``cell.step_form()``,
``cell.native_variant()``), never by which methods exist; what a declaration
vouches for is kept honest by :meth:`jaxrnn.Cell.__init_subclass__`. A new engine is one
module and one line in :mod:`.registry`.

The rules of a step (reset before the step, cast to the carry's dtype,
zoneout, hold the carry and output zero on an invalid step) are written once,
in :mod:`.steps`; the engines that run the cell's own step use them, and the
others (fused backward, linear, native) are tested against them.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, NamedTuple, Optional

import jax


class Spec(NamedTuple):
  """Everything the choice of engine may depend on, known at trace time.

  Attributes:
    impl: what the caller asked for (``"auto"``, ``"xla"``, ``"autodiff"``,
      ``"native"``).
    backend: ``jax.default_backend()``.
    xs: the inputs' shape and dtype, time-major ``(T, *batch, *features)``.
    params: the params (only shapes and dtypes are read).
    carry: the initial carry (only shapes and dtypes are read).
    reverse: run from the last step to the first.
    masked: some steps may be invalid (``seq_lengths``, ``mask``).
    resets: the layer has per-step resets.
    recurrent_dropout: a mask multiplies ``h`` in the recurrent product.
    zoneout: zoneout is on (training masks or the evaluation expectation).
    remat: the steps are recomputed in checkpointed chunks.
  """

  impl: str
  backend: str
  xs: Any
  params: Any
  carry: Any
  reverse: bool = False
  masked: bool = False
  resets: bool = False
  recurrent_dropout: bool = False
  zoneout: bool = False
  remat: bool = False


class Steps(NamedTuple):
  """The per-step inputs of a run, time-major; ``None`` where absent.

  Attributes:
    xs: ``(T, *batch, *features)``.
    valid: boolean ``(T, *batch)``.
    resets: boolean ``(T, *batch)``, in the order the scan runs.
    zone: zoneout's keep masks, a carry of booleans ``(T, *batch, size)``.
  """

  xs: jax.Array
  valid: Optional[jax.Array] = None
  resets: Optional[jax.Array] = None
  zone: Any = None


class Options(NamedTuple):
  """How to run, beyond the steps.

  Attributes:
    reverse: from the last step to the first.
    unroll: ``lax.scan``'s unroll.
    hoist: project the inputs of all steps before the loop.
    h_mask: recurrent dropout's mask on ``h`` in ``h W_h``, or ``None``.
    zone_rate: zoneout's rate (its expectation is taken when
      ``Steps.zone`` is ``None``).
  """

  reverse: bool
  unroll: int = 1
  hoist: bool = False
  h_mask: Optional[jax.Array] = None
  zone_rate: float = 0.0


class Engine(abc.ABC):
  """One way to run a cell over time; see the module."""

  name: ClassVar[str]
  impls: ClassVar[tuple]

  @abc.abstractmethod
  def supports(self, cell, spec: Spec) -> Optional[str]:
    """``None`` if this engine runs ``cell`` under ``spec``, else why not."""

  @abc.abstractmethod
  def run(self, cell, params, carry, steps: Steps, reset_to, options: Options):
    """``(final_carry, ys)`` of ``cell`` over ``steps``; a reset step starts
    from ``reset_to``."""

  def describe(self, cell, spec: Spec) -> str:
    """Why this engine, in words, once chosen."""
    del spec
    return f"the {self.name} engine runs {type(cell).__name__}"
