"""The cell interface, the carry types, and the argument checks cells share.

A cell is a frozen dataclass that holds only *static* options, the ones that
change the equations (an activation, a GRU reset variant). Being frozen, it
is hashable by value, so a cell can be a static argument to ``jax.jit`` and two
equal cells share one compilation. Params and carries are NamedTuples: plain
pytrees that ``jit``, ``grad``, ``vmap``, optax and checkpointers accept as
they are.

Every cell splits its step in two so that a sequence layer can hoist the input
matmul out of the time loop (one large matmul for all steps)::

    cell(params, carry, x) == cell.recurrence(params, carry,
                                              cell.input_projection(params, x))

Cells *declare* what their step is, and the engines read the declaration
(:mod:`jaxrnn._src.engines.protocol`), never the presence of a method:

- ``form = "split"``: the recurrence is the recurrent matmul and an
  elementwise rest, so that the XLA engine's backward
  (:mod:`jaxrnn._src.engines.fused`) can take every weight gradient as one
  matmul after the time loop::

      cell.recurrence(params, carry, xp) == cell.pointwise(
          params, carry, cell.preactivation(params, xp, carry.h @ params.w_h))

- ``form = "linear"``: a recurrence linear in the state
  (:mod:`jaxrnn._src.cells.linear_recurrence`);
- ``form = "opaque"`` (the default): only the step itself is known.

``native_kernel`` names the C++ kernel that computes the whole layer, or is
``None``. A fast path skips some of a cell's methods (the native kernel skips
them all; the fused engine skips ``recurrence``). A subclass that overrides
one of the methods a declared path skips, without declaring again, loses that
path when the class is created (:meth:`Cell.__init_subclass__`): a user's
cell is never run by code that ignores its override.
"""

from __future__ import annotations

import abc
import functools
from typing import Any, ClassVar, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PRNGKey = jax.Array
PyTree = Any

INITIALIZERS = ("default", "pytorch")


class RNNState(NamedTuple):
  """Carry of the single-state cells (simple RNN, GRU).

  Attributes:
    h: hidden state, shape ``(*batch, hidden_size)``.
  """

  h: Array


class LSTMState(NamedTuple):
  """Carry of the LSTM family, in the order ``(h, c)``.

  This is PyTorch's, Haiku's and Keras' order; Flax's ``LSTMCell`` uses
  ``(c, h)``.

  Attributes:
    h: hidden state (the cell's output), shape ``(*batch, hidden_size)``.
    c: cell state, shape ``(*batch, hidden_size)``.
  """

  h: Array
  c: Array


def shape_str(shape: Sequence[int]) -> str:
  return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def describe(value: Any) -> str:
  """A value's shape for an error message, or its type if it has none."""
  shape = getattr(value, "shape", None)
  return shape_str(shape) if shape is not None else type(value).__name__


def check_key(key: Any, name: str = "key") -> None:
  """``key`` is a PRNG key: a typed one (``jax.random.key``) or a raw
  ``uint32[2]`` one (``jax.random.PRNGKey``), else a ``TypeError``."""
  dtype = getattr(key, "dtype", None)
  typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
  raw = getattr(key, "shape", None) == (2,) and dtype == jnp.uint32
  if not ((typed and key.shape == ()) or raw):
    raise TypeError(f"{name}: expected a PRNG key (jax.random.key(seed)), got "
                    f"{type(key).__name__}"
                    + (f" of shape {shape_str(key.shape)} and dtype {dtype}"
                       if dtype is not None else f" {key!r}"))


def as_array(value: Any, name: str) -> Any:
  """Python lists, tuples and scalars as NumPy arrays (what JAX takes);
  anything else as it is."""
  if isinstance(value, (list, tuple, int, float, bool)):
    try:
      array = np.asarray(value)
    except ValueError:
      array = None  # NumPy refuses ragged nesting
    if array is None or array.dtype == object:
      raise TypeError(f"{name}: expected an array or a nested list of numbers "
                      f"of one shape, got a ragged {type(value).__name__}")
    return array
  return value


def as_carry(carry: Any, name: str) -> Any:
  """Lists inside a carry (its NamedTuple fields, or the carries of a
  Bidirectional or Stacked layer) as arrays."""
  if hasattr(carry, "_fields"):  # a field may be a carry itself (a block's)
    return type(carry)(*(as_carry(v, f"{name}.{f}") if hasattr(v, "_fields")
                         else as_array(v, f"{name}.{f}")
                         for f, v in zip(carry._fields, carry)))
  if isinstance(carry, (tuple, list)):
    return type(carry)(as_carry(c, f"{name}[{i}]") for i, c in enumerate(carry))
  return carry


def check_floating(x: Any, name: str) -> None:
  """``x`` is an array of a floating-point dtype, else a ``TypeError``."""
  dtype = getattr(x, "dtype", None)
  if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{name}: expected a floating-point array, got "
                    f"{dtype if dtype is not None else type(x).__name__}")


def check_initializer(initializer: str) -> None:
  if initializer not in INITIALIZERS:
    raise ValueError(
        f"initializer: expected one of {INITIALIZERS}, got {initializer!r}")


def check_sizes(input_size: int, hidden_size: int) -> None:
  for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ValueError(f"{name}: expected a positive int, got {value!r}")


# What each declared fast path does not call, or calls in a way only the
# declaring class can vouch for: a subclass that overrides one of these loses
# the path (Cell.__init_subclass__). The fused engine calls input_weights,
# preactivation and pointwise; the linear engine coefficients,
# log_coefficients, readout, state and to_carry; the native kernel only
# input_weights, for the weights it is given.
BYPASSED = {
    # preactivation: the fused backward transposes it as an affine map, so
    # only a class that declares form "split" itself vouches for one.
    "split": ("__call__", "input_projection", "recurrence", "preactivation"),
    "linear": ("__call__", "input_projection", "recurrence"),
    # The chunkwise engine reads terms, chunk and readout; a new step must
    # come with its own chunk.
    "chunkwise": ("__call__", "input_projection", "recurrence", "step"),
    "native_kernel": ("__call__", "input_projection", "input_weights", "recurrence",
                      "preactivation", "pointwise", "carry_sizes", "initial_carry"),
}


class Cell(abc.ABC):
  """Base class of every recurrent cell.

  Subclasses are ``@dataclasses.dataclass(frozen=True)`` and define the class
  attributes below plus ``init`` and either ``pointwise`` (and
  ``preactivation`` where ``xp + hw`` does not fit) or ``recurrence`` (and
  ``input_weights`` where the default does not fit).

  Attributes:
    params_type: the NamedTuple type of this cell's params.
    carry_type: the NamedTuple type of this cell's carry.
    num_gates: how many ``hidden_size`` blocks the fused weights hold.
  """

  params_type: ClassVar[type]
  carry_type: ClassVar[type]
  num_gates: ClassVar[int]
  form: ClassVar[str] = "opaque"
  native_kernel: ClassVar[Optional[str]] = None

  def __init_subclass__(cls, **kwargs):
    """Declarations checked against overrides; ``init`` checks its key.

    A declaration (``form``, ``native_kernel``) holds for the class that
    makes it. A subclass that overrides a method the declared fast path does
    not call (:data:`BYPASSED`) and does not declare again gets the safe
    value: ``form = "opaque"``, ``native_kernel = None``.
    """
    super().__init_subclass__(**kwargs)
    for attribute, safe in (("form", "opaque"), ("native_kernel", None)):
      if attribute in cls.__dict__:
        continue
      declarer = next(c for c in cls.__mro__ if attribute in c.__dict__)
      value = declarer.__dict__[attribute]
      if value == safe:
        continue
      skipped = BYPASSED[attribute if attribute == "native_kernel" else value]
      if any(getattr(cls, m) is not getattr(declarer, m) for m in skipped):
        setattr(cls, attribute, safe)
    init = cls.__dict__.get("init")
    if init is None or getattr(init, "__isabstractmethod__", False):
      return

    @functools.wraps(init)
    def init_with_checked_key(self, key, *args, **kwargs):
      check_key(key)
      return init(self, key, *args, **kwargs)
    cls.init = init_with_checked_key

  # ------------------------------------------------------------ interface
  @abc.abstractmethod
  def init(self, key: PRNGKey, input_size: int, hidden_size: int, *,
           dtype: Any = jnp.float32, initializer: str = "default") -> PyTree:
    """Returns fresh params for this cell."""

  def input_weights(self, params: PyTree) -> tuple:
    """``(w, b)`` with ``input_projection(params, x) == x @ w + b``.

    The default folds both biases into ``b = b_i + b_h`` (``None`` if there
    are none); cells whose recurrent bias must stay inside the step (the
    reset-after GRU) override this. The sequence layers call it once, outside
    the time loop.
    """
    return params.w_i, add_biases(None, params.b_i, params.b_h)

  def input_projection(self, params: PyTree, x: Array) -> Array:
    """The part of a step that depends on ``x`` only: ``x W_i + b_i + b_h``."""
    w, b = self.input_weights(params)
    return add_biases(x @ w, b)

  def recurrence(self, params: PyTree, carry: PyTree, xp: Array,
                 h_mask: Optional[Array] = None):
    """The part of a step that needs the carry: ``(carry, xp) -> (carry, y)``.

    By default the recurrent matmul followed by :meth:`pointwise`; cells whose
    step does not split that way override this (and declare ``form``).
    ``h_mask`` (recurrent dropout) multiplies ``h`` where it enters the
    recurrent product, and nowhere else.
    """
    hw = drop(carry.h, h_mask) @ params.w_h
    return self.pointwise(params, carry, self.preactivation(params, xp, hw))

  def preactivation(self, params: PyTree, xp: Array, hw: Array) -> Array:
    """What :meth:`pointwise` reads, from ``xp`` and ``hw = h W_h``: ``xp + hw``
    by default. It must be affine in ``xp`` and ``hw`` (the fused backward
    transposes it at zero)."""
    del params
    return xp + hw

  def pointwise(self, params: PyTree, carry: PyTree, z: Array):
    """The elementwise rest of a step: ``(carry, z) -> (carry, y)``, with
    ``z = preactivation(params, xp, carry.h @ params.w_h)``.

    It must not read ``params.w_i`` or ``params.w_h``: the fused backward
    (:mod:`jaxrnn._src.engines.fused`) computes their gradients as single matmuls.
    """
    raise NotImplementedError(f"{type(self).__name__} defines no pointwise step")

  def feature_axes(self) -> int:
    """How many trailing axes of a step's input are features, not batch: 1
    (the input size); a convolutional cell adds its spatial axes. Sequences
    put the time axis just before them."""
    return 1

  def step_form(self) -> str:
    """This cell's declared ``form``; a cell whose form depends on an option
    (the GRU's ``reset_after``) says so here."""
    return self.form

  def native_variant(self) -> Optional[str]:
    """The native kernel for this cell with its options (the declared
    ``native_kernel``, refined by an option such as the GRU's reset
    variant), or ``None``: also when :meth:`native_unsupported` gives a
    reason."""
    if self.native_kernel is None or self.native_unsupported() is not None:
      return None
    return self.native_kernel

  def native_unsupported(self) -> Optional[str]:
    """Why this cell's options (an activation the kernel does not compute)
    keep it off the kernel its class declares, in words; ``None`` if they
    do not. The native engine reports it (:func:`jaxrnn.which_engine`)."""
    return None

  def zoneout_groups(self) -> tuple:
    """Carry fields that zoneout holds or updates together, one mask per
    group: each field alone by default. A cell whose fields are only
    meaningful together (the sLSTM's stabilised ``c, n, m``) groups them."""
    return tuple((field,) for field in self.carry_type._fields)

  # ------------------------------------------------------------- provided
  def __call__(self, params: PyTree, carry: PyTree, x: Array):
    """One step: ``(params, carry, x) -> (new_carry, y)``.

    ``x`` has shape ``(*batch, input_size)`` with any number of leading batch
    dimensions; every leaf of ``carry`` has shape ``(*batch, hidden_size)``.
    """
    self.check_params(params)
    x, carry = as_array(x, "x"), as_carry(carry, "carry")
    self.check_input(params, x, "x")
    self.check_carry(params, carry, x.shape[:-1], "carry")
    return self.recurrence(params, carry, self.input_projection(params, x))

  def initial_carry(self, params: PyTree, batch_shape: Sequence[int] = (),
                    dtype: Any = None) -> PyTree:
    """Zeros of shape ``(*batch_shape, size)`` for every carry leaf.

    ``dtype`` defaults to the dtype of the recurrent weights.
    """
    self.check_params(params)
    batch_shape = _as_shape(batch_shape, "batch_shape")
    dtype = params.w_h.dtype if dtype is None else dtype
    return self.carry_type(*(jnp.zeros((*batch_shape, *shape), dtype)
                             for shape in self.carry_shapes(params)))

  def input_size(self, params: PyTree) -> int:
    return params.w_i.shape[0]

  def hidden_size(self, params: PyTree) -> int:
    return params.w_h.shape[0]

  def output_size(self, params: PyTree) -> int:
    """Size of the last axis of ``y``."""
    return self.hidden_size(params)

  def carry_sizes(self, params: PyTree) -> tuple:
    """Size of the last axis of each carry field, in field order."""
    return (self.hidden_size(params),) * len(self.carry_type._fields)

  def carry_shapes(self, params: PyTree) -> tuple:
    """The trailing (non-batch) shape of each carry field, in field order:
    ``(size,)`` from :meth:`carry_sizes`; a matrix state has more axes."""
    return tuple((size,) for size in self.carry_sizes(params))

  def carry_batch_shape(self, params: PyTree, carry: PyTree) -> tuple:
    """The leading (batch) shape of ``carry``, read from its first field."""
    if not isinstance(carry, self.carry_type):
      return ()  # check_carry names the type that was expected
    shape = getattr(getattr(carry, self.carry_type._fields[0]), "shape", ())
    return tuple(shape[:len(shape) - len(self.carry_shapes(params)[0])])

  # --------------------------------------------------------------- checks
  def check_params(self, params: PyTree, name: str = "params") -> None:
    """Raises if ``params`` are not this cell's, or their shapes disagree."""
    cls = type(self).__name__
    if not isinstance(params, self.params_type):
      raise TypeError(
          f"{name}: {cls} expects {self.params_type.__name__}, got "
          f"{type(params).__name__}")
    for field, ndim in self._size_fields().items():
      value = getattr(params, field)
      if len(getattr(value, "shape", ())) != ndim:
        raise ValueError(f"{name}.{field}: expected a {ndim}-D array, got "
                         f"{describe(value)}")
    for field, want in self._param_shapes(params).items():
      value = getattr(params, field)
      if value is None and field in ("b_i", "b_h"):
        continue  # bias-free cells (PyTorch's bias=False) are allowed
      if want is None:  # a field this cell's options leave out
        if value is not None:
          raise ValueError(f"{name}.{field}: expected None for {cls} with these "
                           f"options, got {describe(value)}")
        continue
      if getattr(value, "shape", None) != want:
        raise ValueError(
            f"{name}.{field}: expected shape {shape_str(want)} for {cls} with "
            f"hidden_size={self._checked_hidden_size(params)}, got {describe(value)}")

  def _size_fields(self) -> dict:
    """The fields the sizes are read from, and their number of dimensions."""
    return {"w_i": 2, "w_h": 2}

  def _checked_hidden_size(self, params: PyTree) -> int:
    """The hidden size the checks hold every field to: ``hidden_size``,
    unless the array it is read from (``w_h``) disagrees with itself while
    ``w_i`` gives a whole number of gate blocks; then ``w_i``'s, so that the
    error names the array that is wrong (a transposed ``w_h``)."""
    hidden = self.hidden_size(params)
    if not {"w_i", "w_h"} <= set(params._fields):
      return hidden
    w_i, w_h = params.w_i.shape, params.w_h.shape
    if w_h[-1] != self.num_gates * hidden and w_i[-1] % self.num_gates == 0:
      return w_i[-1] // self.num_gates
    return hidden

  def _param_shapes(self, params: PyTree) -> dict:
    """Expected shape of each field, from ``input_size`` and ``hidden_size``."""
    hidden = self._checked_hidden_size(params)
    k = self.num_gates * hidden
    return {"w_i": (self.input_size(params), k), "w_h": (hidden, k),
            "b_i": (k,), "b_h": (k,)}

  def check_input(self, params: PyTree, x: Array, name: str) -> None:
    check_floating(x, name)
    want = self.input_size(params)
    if x.ndim < 1 or x.shape[-1] != want:
      raise ValueError(
          f"{name}: expected last dimension input_size={want} (from "
          f"params.w_i), got shape {shape_str(x.shape)}")

  def check_carry(self, params: PyTree, carry: PyTree,
                  batch_shape: Sequence[int], name: str) -> None:
    cls = type(self).__name__
    if not isinstance(carry, self.carry_type):
      raise TypeError(
          f"{name}: {cls} expects {self.carry_type.__name__}"
          f"{self.carry_type._fields}, got {type(carry).__name__}")
    for field, shape in zip(self.carry_type._fields, self.carry_shapes(params)):
      want = (*batch_shape, *shape)
      value = getattr(carry, field)
      if getattr(value, "shape", None) != want:
        size = shape[0] if len(shape) == 1 else shape_str(shape)
        raise ValueError(
            f"{name}.{field}: expected shape {shape_str(want)} (batch "
            f"{shape_str(batch_shape)}, size {size}), got {describe(value)}")


def _as_shape(shape, name: str) -> tuple:
  if isinstance(shape, int):
    shape = (shape,)
  try:
    shape = tuple(int(d) for d in shape)
  except TypeError:
    raise TypeError(f"{name}: expected a tuple of ints, got {shape!r}") from None
  if any(d < 0 for d in shape):
    raise ValueError(f"{name}: expected non-negative sizes, got {shape}")
  return shape


def sigmoid(x: Array) -> Array:
  """The logistic function as ``(1 + tanh(x/2)) / 2``.

  Equal to ``1 / (1 + exp(-x))`` to float rounding, and one ``tanh``, which
  XLA:CPU evaluates faster than an ``exp`` and a divide.
  """
  return 0.5 * jnp.tanh(0.5 * x) + 0.5


def gates(z: Array, kinds: str) -> list:
  """Activations of fused gate blocks in one pass: ``kinds[k]`` is ``"s"``
  (sigmoid) or ``"t"`` (tanh) for block ``k`` of the last axis of ``z``.

  One ``tanh`` over all blocks, with sigmoid blocks as ``tanh(z/2)/2 + 1/2``.
  """
  n = z.shape[-1] // len(kinds)
  half = np.repeat([0.5 if k == "s" else 1.0 for k in kinds], n)
  shift = np.repeat([0.5 if k == "s" else 0.0 for k in kinds], n)
  half, shift = jnp.asarray(half, z.dtype), jnp.asarray(shift, z.dtype)
  return jnp.split(jnp.tanh(z * half) * half + shift, len(kinds), axis=-1)


def add_biases(y: Optional[Array], *biases) -> Optional[Array]:
  """``y + sum(biases)``, skipping ``None`` (``y`` too); the biases are summed
  first. ``None`` if everything is ``None``."""
  total = None
  for b in biases:
    if b is not None:
      total = b if total is None else total + b
  if y is None or total is None:
    return total if y is None else y
  return y + total


def refuse_recurrent_dropout(cell, h_mask: Optional[Array]) -> None:
  """A cell whose state takes no recurrent product refuses its mask."""
  if h_mask is not None:
    raise ValueError(f"dropout: {type(cell).__name__} has no recurrent product "
                     "for recurrent dropout to act on")


def drop(h: Array, mask: Optional[Array]) -> Array:
  """``h * mask``, or ``h`` when there is no mask."""
  return h if mask is None else h * mask.astype(h.dtype)


def per_step(flag: Array, like: Array) -> Array:
  """A per-row ``flag`` of shape ``batch`` with ones appended to broadcast
  against ``like`` of shape ``(*batch, *features)``."""
  return flag.reshape(flag.shape + (1,) * (like.ndim - flag.ndim))


def where_carry(flag: Array, a: Any, b: Any) -> Any:
  """Field by field, ``a`` where the per-row ``flag`` is true, else ``b``, in
  ``b``'s dtypes."""
  return jax.tree.map(lambda x, y: jnp.where(per_step(flag, y), x, y).astype(y.dtype),
                      a, b)
