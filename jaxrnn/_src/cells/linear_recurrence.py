"""The linear recurrences' cell base class: a state linear in itself.

The cells of this family (minGRU, minLSTM, LRU, RG-LRU) compute their gates
from the input alone, so their state follows a recurrence that is linear in
it, with coefficients known before the loop::

    h_t = a_t ⊙ h_{t-1} + b_t,        (a_t, b_t) = coefficients(params, x_t)
    y_t = readout(params, h_t, x_t)

A cell declares this form (``form = "linear"``); the linear engine
(:mod:`jaxrnn._src.engines.linear`) reads it and solves all steps at once.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Optional

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from jaxrnn._src.cells import base

METHODS = ("auto", "associative", "sequential")


def default_method() -> str:
  """``"sequential"`` on CPU, ``"associative"`` on other backends.

  Measured interleaved on a 2-core x86 CPU (``bench.py --modern-only``:
  minGRU, minLSTM, LRU and RG-LRU, forward+backward, B=8, I=H=256, T=256,
  1024 and 4096): the associative scan ran 1.2x to 2.0x the time of the
  sequential one in every row. It does about twice the elementwise work, and
  two cores cannot run its log T levels wide. On GPU
  and TPU the sequential scan runs T dependent steps on a device built for
  wide ones; there the associative scan is the usual choice (recurrentgemma,
  S5), not measured here.
  """
  return "sequential" if jax.default_backend() == "cpu" else "associative"


def output_dtype(params, x) -> Any:
  """The outputs' dtype: that of the inputs and params together (the
  recurrence itself runs in :func:`accumulator`)."""
  return jnp.result_type(x.dtype, *(p.dtype for p in jax.tree.leaves(params)))


def accumulator(*dtypes) -> Any:
  """The dtype the recurrence is solved in: at least float32."""
  return jnp.promote_types(jnp.result_type(*dtypes), jnp.float32)


@dataclasses.dataclass(frozen=True)
class LinearRecurrentCell(base.Cell):
  """Base class of the cells whose state is linear in itself.

  Subclasses define :meth:`coefficients` (and :meth:`readout`,
  :meth:`state` and :meth:`to_carry` where ``y = h`` and the carry ``(h,)``
  do not fit), plus ``init`` and the size methods.

  Attributes:
    method: how a sequence layer solves the recurrence: ``"auto"``
      (default), ``"associative"`` or ``"sequential"``; see the module.
    sequence_mesh: a ``jax.sharding.Mesh`` to split the time axis over
      (sequence parallelism, :func:`solve_sequence_parallel`), or ``None``.
    sequence_axis: the name of the mesh axis that time is split over.
  """

  form = "linear"
  # True where a and b are larger than the step's input (S6's (D, N) per
  # channel): the sequential solve then computes them inside its loop rather
  # than as (T, *batch, *state) arrays (engines/linear.py, _run_in_loop).
  coefficients_in_loop: ClassVar[bool] = False

  method: str = "auto"
  sequence_mesh: Optional[Mesh] = None
  sequence_axis: str = "time"

  def __post_init__(self):
    if self.method not in METHODS:
      raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
    if self.sequence_mesh is not None:
      if not isinstance(self.sequence_mesh, Mesh):
        raise TypeError(f"sequence_mesh: expected a jax.sharding.Mesh, got "
                        f"{type(self.sequence_mesh).__name__}")
      if self.sequence_axis not in self.sequence_mesh.axis_names:
        raise ValueError(f"sequence_axis: expected one of the mesh's axes "
                         f"{self.sequence_mesh.axis_names}, got {self.sequence_axis!r}")

  def __init_subclass__(cls, **kwargs):
    """A subclass that overrides :meth:`coefficients` but not
    :meth:`log_coefficients` is solved from its own coefficients, outside
    log space: the log-space form it inherits would not see the override."""
    super().__init_subclass__(**kwargs)
    if "coefficients" in cls.__dict__ and "log_coefficients" not in cls.__dict__:
      cls.in_log_space = lambda self: False

  @abc.abstractmethod
  def coefficients(self, params, x) -> tuple:
    """``(a, b)`` of ``h' = a ⊙ h + b`` for inputs ``x`` of any leading shape."""

  def log_coefficients(self, params, x):
    """``(log a, log b)`` for cells solved in log space (:meth:`in_log_space`),
    whose ``a`` and ``b`` are positive."""
    raise NotImplementedError(f"{type(self).__name__} has no log-space form")

  def in_log_space(self) -> bool:
    """Whether sequence layers solve ``log h`` (Heinsen, 2023) instead of ``h``."""
    return False

  def readout(self, params, h, x):
    """The output from the new state and the input: ``h`` by default."""
    del params, x
    return h

  def state(self, carry):
    """The carry as the one array the recurrence runs on."""
    return carry.h

  def to_carry(self, h):
    """The inverse of :meth:`state`."""
    return self.carry_type(h)

  def input_projection(self, params, x):
    """The identity: :meth:`coefficients` reads ``x`` itself."""
    del params
    return x

  def recurrence(self, params, carry, x, h_mask=None):
    base.refuse_recurrent_dropout(self, h_mask)
    a, b = self.coefficients(params, x)
    h = a * self.state(carry) + b
    new = jax.tree.map(lambda n, o: n.astype(o.dtype), self.to_carry(h), carry)
    return new, self.readout(params, h, x).astype(output_dtype(params, x))


  def initial_carry(self, params, batch_shape=(), dtype=None):
    """Zeros; ``dtype`` defaults to the params' dtype."""
    if dtype is None:
      self.check_params(params)
      dtype = jax.tree.leaves(params)[0].dtype
    return super().initial_carry(params, batch_shape, dtype)

  def _size_fields(self) -> dict:
    return {"w_i": 2}

  def input_size(self, params) -> int:
    return params.w_i.shape[0]

  def hidden_size(self, params) -> int:
    return params.w_i.shape[1] // self.num_gates

  def _param_shapes(self, params) -> dict:
    k = self.num_gates * self.hidden_size(params)
    return {"w_i": (self.input_size(params), k), "b_i": (k,)}

  def resolved_method(self) -> str:
    return default_method() if self.method == "auto" else self.method
