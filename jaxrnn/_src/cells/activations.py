"""The activations a cell may be given, by name or as a callable.

The LSTM, GRU, MGU and simple cells take ``activation`` (the candidate and
cell-output one, default ``"tanh"``) and, where they have gates,
``recurrent_activation`` (the gates', default ``"sigmoid"``): Keras 3's
names. Flax calls them ``activation_fn`` and ``gate_fn``.

A value is a name below or any callable ``f(x) -> y`` applied elementwise
(``jax.nn.sigmoid``, ``flax.nnx.relu``, a function of one's own). Each name
is the function Keras 3 gives it (``keras.activations.get(name)``, default
arguments):

- ``"tanh"``: ``tanh(x)``, ``jnp.tanh``;
- ``"sigmoid"``: ``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x/2)) / 2``
  (one ``tanh``, faster on XLA:CPU): ``jax.nn.sigmoid`` within rounding, in
  absolute terms;
- ``"hard_sigmoid"``: ``relu6(x + 3) / 6``, ``jax.nn.hard_sigmoid``;
- ``"relu"``: ``max(x, 0)``, ``jax.nn.relu``;
- ``"relu6"``: ``min(max(x, 0), 6)``, ``jax.nn.relu6``;
- ``"linear"``: ``x``;
- ``"gelu"``: ``x Φ(x)``, the exact (erf) form,
  ``jax.nn.gelu(x, approximate=False)``;
- ``"silu"``, ``"swish"``: ``x sigmoid(x)``, ``jax.nn.silu``;
- ``"elu"``: ``x`` if ``x > 0`` else ``exp(x) - 1``, ``jax.nn.elu``;
- ``"selu"``: the scaled ELU, ``jax.nn.selu``;
- ``"softplus"``: ``log(1 + exp(x))``, ``jax.nn.softplus``;
- ``"softsign"``: ``x / (1 + |x|)``, ``jax.nn.soft_sign``.

Keras' ``"gelu"`` is the exact one; ``jax.nn.gelu`` (and Flax's ``gelu``)
defaults to the tanh approximation: pass it as a callable for that one.

The cells are frozen dataclasses, static arguments to ``jax.jit``: a name,
or a callable (hashed by identity: pass the same function object to share a
compilation), keeps them hashable. The native kernels compute the default
activations only (and the simple cell's ``"relu"``); a cell given any other
runs on the XLA engines, and :func:`jaxrnn.which_engine` says so.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base

Activation = Union[str, Callable[[jax.Array], jax.Array]]


def linear(x: jax.Array) -> jax.Array:
  """The identity, Keras' ``"linear"``."""
  return x


def gelu(x: jax.Array) -> jax.Array:
  """The exact GELU, ``x Φ(x)``: Keras' ``"gelu"`` (``approximate=False``)."""
  return jax.nn.gelu(x, approximate=False)


ACTIVATIONS = {
    "tanh": jnp.tanh,
    "sigmoid": base.sigmoid,
    "hard_sigmoid": jax.nn.hard_sigmoid,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "linear": linear,
    "gelu": gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
}

# Callables that are a name's function exactly, so that a cell given one
# (Flax users pass jax.nn.sigmoid and jnp.tanh) still finds its native kernel.
_SAME_AS_NAME = {jnp.tanh: "tanh", jax.nn.sigmoid: "sigmoid",
                 jax.nn.relu: "relu"}


def check(value: Any, name: str) -> None:
  """``value`` is a name from :data:`ACTIVATIONS` (else a ``ValueError``) or
  a hashable callable (else a ``TypeError``); ``name`` is the argument's."""
  if isinstance(value, str):
    if value not in ACTIVATIONS:
      raise ValueError(f"{name}: expected one of {tuple(ACTIVATIONS)} or a "
                       f"callable, got {value!r}")
    return
  if not callable(value):
    raise TypeError(f"{name}: expected an activation name "
                    f"({', '.join(ACTIVATIONS)}) or a callable, got "
                    f"{type(value).__name__} {value!r}")
  try:
    hash(value)
  except TypeError:
    raise TypeError(f"{name}: expected a hashable callable (the cell is a static "
                    f"argument of jax.jit), got an unhashable "
                    f"{type(value).__name__}") from None


# The defaults of the gated cells, which the native kernels compute.
DEFAULTS = {"activation": "tanh", "recurrent_activation": "sigmoid"}


def get(value: Activation) -> Callable[[jax.Array], jax.Array]:
  """The function of a name, or the callable itself."""
  if isinstance(value, str):
    check(value, "activation")  # a subclass may have skipped __post_init__'s check
    return ACTIVATIONS[value]
  return value


def name_of(value: Activation) -> Optional[str]:
  """The table's name of ``value``: itself if a name, the name of a callable
  that is that name's function exactly (``jnp.tanh``, ``jax.nn.sigmoid``,
  ``jax.nn.relu``), else ``None``."""
  if isinstance(value, str):
    return value
  try:
    return _SAME_AS_NAME.get(value)
  except TypeError:  # unhashable; check() refuses these at construction
    return None


def label(value: Activation) -> str:
  """``value`` for a message: a name quoted, a callable by its name."""
  if isinstance(value, str):
    return repr(value)
  name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
  module = getattr(value, "__module__", None)
  if name is None:
    return repr(value)
  return f"{module}.{name}" if module else name


def blocks(z: jax.Array, fns: Sequence[Activation]) -> list:
  """``z``'s last axis cut into ``len(fns)`` equal blocks, block ``k``
  through ``fns[k]``.

  When every one is ``"sigmoid"`` or ``"tanh"`` (the cells' defaults), one
  ``tanh`` over all blocks (:func:`base.gates`), as the cells always did.
  """
  if all(isinstance(f, str) and f in ("sigmoid", "tanh") for f in fns):
    return base.gates(z, "".join("s" if f == "sigmoid" else "t" for f in fns))
  return [get(f)(block) for f, block in zip(fns, jnp.split(z, len(fns), axis=-1))]


class WithActivations:
  """A mixin for cells with ``activation`` and ``recurrent_activation``
  fields (declared by each dataclass): checks them at construction, and keeps
  the cell off its native kernel unless they are the kernels' defaults,
  ``"tanh"`` and ``"sigmoid"``."""

  def __post_init__(self):
    check(self.activation, "activation")
    check(self.recurrent_activation, "recurrent_activation")
    parent = getattr(super(), "__post_init__", None)
    if parent is not None:
      parent()

  def native_unsupported(self) -> Optional[str]:
    return describe(self, DEFAULTS)


def describe(cell, defaults: dict) -> Optional[str]:
  """Why the native kernel, which computes ``defaults`` (field -> name), does
  not serve ``cell``; ``None`` if every field of ``cell`` is its default (by
  name or as the same function)."""
  differ = {field: getattr(cell, field) for field, want in defaults.items()
            if name_of(getattr(cell, field)) != want}
  if not differ:
    return None
  computes = ", ".join(f"{field}={want!r}" for field, want in defaults.items())
  got = ", ".join(f"{field}={label(value)}" for field, value in differ.items())
  return (f"the kernel computes {computes} only, and this {type(cell).__name__} "
          f"has {got}")
