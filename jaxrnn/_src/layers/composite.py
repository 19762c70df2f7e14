"""Sequence layers built on the scan engine: bidirectional and stacked.

A *layer* here is a cell (run forward over time) or a :class:`Bidirectional`.
Both have ``init(key, input_size, hidden_size)``, ``initial_carry(params,
batch_shape)`` and ``output_size(params)``, so :class:`Stacked` can hold any
mix of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.layers import dropout as dropout_lib
from jaxrnn._src.layers import scan as scan_lib

_MERGES = {
    "concat": lambda y_fwd, y_bwd: jnp.concatenate([y_fwd, y_bwd], axis=-1),
    "sum": lambda y_fwd, y_bwd: y_fwd + y_bwd,
}


class BidirectionalParams(NamedTuple):
  """Params of :class:`Bidirectional`: one set per direction."""

  forward: Any
  backward: Any


@dataclasses.dataclass(frozen=True)
class Bidirectional:
  """A forward and a backward pass over the same sequence, outputs merged.

  The backward pass is padding-aware (each sequence reversed within its own
  length) and its outputs are returned in the original time order, so step
  ``t`` of the result merges both directions' outputs for input ``t``.

  Attributes:
    forward: the forward cell.
    backward: the backward cell; the same type as ``forward`` when ``None``
      (with its own params).
    merge: ``"concat"`` (default, last axis, forward first), ``"sum"``, or a
      function ``(y_fwd, y_bwd) -> y``.
  """

  forward: base.Cell
  backward: Optional[base.Cell] = None
  merge: Union[str, Callable[[jax.Array, jax.Array], jax.Array]] = "concat"

  def __post_init__(self):
    for name in ("forward", "backward"):
      cell = getattr(self, name) if name == "forward" or self.backward is not None else None
      if cell is not None and not isinstance(cell, base.Cell):
        raise TypeError(f"{name}: expected a jaxrnn cell (e.g. jaxrnn.LSTMCell()), got "
                        f"{type(cell).__name__}")
    if self.backward is None:
      object.__setattr__(self, "backward", self.forward)
    if self.forward.feature_axes() != self.backward.feature_axes():
      raise ValueError(f"backward: expected a cell with the forward cell's "
                       f"{self.forward.feature_axes()} feature axes, got "
                       f"{self.backward.feature_axes()}")
    if not callable(self.merge) and self.merge not in _MERGES:
      raise ValueError(f"merge: expected one of {tuple(_MERGES)} or a function "
                       f"(y_fwd, y_bwd) -> y, got {self.merge!r}")

  def init(self, key, input_size: int, hidden_size: int,
           **kwargs) -> BidirectionalParams:
    """Params for both directions; ``kwargs`` go to both cells' ``init``."""
    base.check_key(key)
    k_fwd, k_bwd = jax.random.split(key)
    return BidirectionalParams(
        self.forward.init(k_fwd, input_size, hidden_size, **kwargs),
        self.backward.init(k_bwd, input_size, hidden_size, **kwargs))

  def initial_carry(self, params: BidirectionalParams, batch_shape=(),
                    dtype=None) -> tuple:
    """``(forward_carry, backward_carry)`` of zeros."""
    self._check_params(params, "params")
    return (self.forward.initial_carry(params.forward, batch_shape, dtype),
            self.backward.initial_carry(params.backward, batch_shape, dtype))

  def feature_axes(self) -> int:
    return self.forward.feature_axes()

  def input_size(self, params: BidirectionalParams) -> int:
    return self.forward.input_size(params.forward)

  def output_size(self, params: BidirectionalParams) -> int:
    sizes = (self.forward.output_size(params.forward),
             self.backward.output_size(params.backward))
    merge = _MERGES.get(self.merge, self.merge)
    out = jax.eval_shape(merge, *(jax.ShapeDtypeStruct((s,), jnp.float32)
                                  for s in sizes))
    return out.shape[-1]

  def __call__(self, params: BidirectionalParams, xs: jax.Array, *,
               initial_carry: Optional[tuple] = None,
               seq_lengths: Optional[jax.Array] = None,
               mask: Optional[jax.Array] = None,
               resets: Optional[jax.Array] = None,
               reset_carry: Optional[tuple] = None,
               time_major: bool = False, unroll: int = 1, remat: bool = False,
               impl: Optional[str] = None, dropout=None,
               key: Optional[jax.Array] = None, deterministic: bool = False):
    """Runs both directions (jit-compiled); arguments as :func:`jaxrnn.scan`
    (with ``resets``, each segment is run forward and backward on its own,
    from ``reset_carry``, a pair ``(forward, backward)`` or ``None`` for
    zeros; with ``dropout``, each direction draws its own masks).

    Returns:
      ``((forward_carry, backward_carry), ys)``: the forward carry after each
      sequence's last valid step, the backward carry after its first, and
      the merged outputs.
    """
    return scan_lib.apply(self, params, xs, initial_carry=initial_carry,
                          seq_lengths=seq_lengths, mask=mask, resets=resets,
                          reset_carry=reset_carry, time_major=time_major,
                          unroll=unroll, remat=remat, impl=impl, dropout=dropout,
                          key=key, deterministic=deterministic)

  def check_inputs(self, params, xs, initial_carry, batch_shape, *,
                   reset_carry=None, params_name="params",
                   carry_name="initial_carry", xs_name="xs"):
    """Both directions' params, carries and reset targets (pairs); returns
    the reset target pair, or ``None``."""
    self._check_params(params, params_name)
    reset_name = carry_name.replace("initial_carry", "reset_carry")
    pairs = []
    for name, pair in ((carry_name, initial_carry), (reset_name, reset_carry)):
      if pair is not None and (type(pair) not in (tuple, list) or len(pair) != 2):
        raise TypeError(f"{name}: expected a pair (forward_carry, "
                        f"backward_carry), got {type(pair).__name__}")
      pairs.append((None, None) if pair is None else pair)
    checked = tuple(
        scan_lib.check_layer_inputs(
            cell, getattr(params, direction), xs, pairs[0][i], pairs[1][i],
            batch_shape, params_name=f"{params_name}.{direction}",
            carry_name=f"{carry_name}[{i}]", xs_name=xs_name)
        for i, (direction, cell) in enumerate((("forward", self.forward),
                                               ("backward", self.backward))))
    return None if reset_carry is None else checked

  def check_regularisers(self, dropout, key, deterministic):
    """``(dropout, key)`` for :meth:`run`: each direction draws its own masks."""
    dropout_lib.check(dropout, key, deterministic, (self.forward, self.backward))
    active = dropout is not None and dropout.active()
    return (dropout if active else None), (key if active and not deterministic else None)

  def _check_params(self, params, name):
    if not isinstance(params, BidirectionalParams):
      raise TypeError(f"{name}: Bidirectional expects BidirectionalParams, got "
                      f"{type(params).__name__}")

  def run(self, params, xs, carry, valid, *, reset_carry=None, key=None,
          **options):
    """Time-major core, no checks: ``((carry_fwd, carry_bwd), ys)``;
    ``options`` go to both directions' engine (``run_cell``)."""
    carry_fwd, carry_bwd = (None, None) if carry is None else carry
    reset_fwd, reset_bwd = (None, None) if reset_carry is None else reset_carry
    keys = (None, None) if key is None else tuple(jax.random.split(key))
    carry_fwd, y_fwd = scan_lib.run_layer(self.forward, params.forward, xs,
                                          carry_fwd, valid, reverse=False,
                                          key=keys[0], reset_carry=reset_fwd,
                                          **options)
    carry_bwd, y_bwd = scan_lib.run_layer(self.backward, params.backward, xs,
                                          carry_bwd, valid, reverse=True,
                                          key=keys[1], reset_carry=reset_bwd,
                                          **options)
    merge = _MERGES.get(self.merge, self.merge)
    return (carry_fwd, carry_bwd), merge(y_fwd, y_bwd)


Layer = Union[base.Cell, Bidirectional]


@dataclasses.dataclass(frozen=True)
class Stacked:
  """Layers run one after another, each on the previous one's outputs.

  Layers may differ in type (any cell, or :class:`Bidirectional`) and size.
  Dropout with rate ``dropout_rate`` is applied to the outputs of every layer
  but the last, as in ``torch.nn.LSTM(dropout=...)``, using the ``key`` given
  at call time; each element is kept with probability ``1 - dropout_rate``
  and scaled by ``1 / (1 - dropout_rate)``, a new mask at every step.
  ``recurrent_dropout`` regularises every layer (each draws its own masks).

  Attributes:
    layers: the layers, first to last.
    dropout_rate: in ``[0, 1)``.
    recurrent_dropout: a :class:`jaxrnn.RecurrentDropout` for every layer,
      or ``None``.
  """

  layers: Tuple[Layer, ...]
  dropout_rate: float = 0.0
  recurrent_dropout: Optional[dropout_lib.RecurrentDropout] = None

  def __post_init__(self):
    layers = tuple(self.layers) if isinstance(self.layers, (list, tuple)) else None
    if not layers:
      raise ValueError(f"layers: expected a non-empty sequence of cells or "
                       f"Bidirectional, got {self.layers!r}")
    for i, layer in enumerate(layers):
      if not isinstance(layer, (base.Cell, Bidirectional)):
        raise TypeError(f"layers[{i}]: expected a jaxrnn cell or Bidirectional, "
                        f"got {type(layer).__name__}")
    object.__setattr__(self, "layers", layers)
    axes = [layer.feature_axes() for layer in layers]
    if len(set(axes)) > 1:
      raise ValueError(f"layers: expected layers with the same number of "
                       f"feature axes (spatial axes + channels), got {axes}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"dropout_rate: expected a value in [0, 1), got "
                       f"{self.dropout_rate!r}")
    cells = [c for layer in layers for c in (
        (layer.forward, layer.backward) if isinstance(layer, Bidirectional) else (layer,))]
    dropout_lib.check(self.recurrent_dropout, None, True, cells)

  def init(self, key, input_size: int,
           hidden_size: Union[int, Sequence[int]], **kwargs) -> tuple:
    """Params, one entry per layer; ``hidden_size`` is one int or one per layer."""
    base.check_key(key)
    n = len(self.layers)
    sizes = (hidden_size,) * n if isinstance(hidden_size, int) else tuple(hidden_size)
    if len(sizes) != n:
      raise ValueError(f"hidden_size: expected an int or {n} sizes (one per "
                       f"layer), got {hidden_size!r}")
    params = []
    for layer, k, size in zip(self.layers, jax.random.split(key, n), sizes):
      params.append(layer.init(k, input_size, size, **kwargs))
      input_size = layer.output_size(params[-1])
    return tuple(params)

  def initial_carry(self, params: tuple, batch_shape=(), dtype=None) -> tuple:
    self._check_params(params)
    return tuple(layer.initial_carry(p, batch_shape, dtype)
                 for layer, p in zip(self.layers, params))

  def output_size(self, params: tuple) -> int:
    return self.layers[-1].output_size(params[-1])

  def feature_axes(self) -> int:
    return self.layers[0].feature_axes()

  def __call__(self, params: tuple, xs: jax.Array, *,
               initial_carry: Optional[tuple] = None,
               seq_lengths: Optional[jax.Array] = None,
               mask: Optional[jax.Array] = None,
               resets: Optional[jax.Array] = None,
               reset_carry: Optional[tuple] = None,
               time_major: bool = False, unroll: int = 1, remat: bool = False,
               key: Optional[jax.Array] = None, deterministic: bool = False,
               impl: Optional[str] = None):
    """Runs all layers (jit-compiled); arguments as :func:`jaxrnn.scan`
    (``resets`` reset every layer, to ``reset_carry``: one carry per layer,
    or ``None`` for zeros).

    Args:
      key: PRNG key for dropout; required when ``dropout_rate > 0`` or
        ``recurrent_dropout`` is active, unless ``deterministic``.
      deterministic: no dropout (evaluation).

    Returns:
      ``(carries, ys)``: a tuple with each layer's final carry, and the last
      layer's outputs.
    """
    return scan_lib.apply(self, params, xs, initial_carry=initial_carry,
                          seq_lengths=seq_lengths, mask=mask, resets=resets,
                          reset_carry=reset_carry, time_major=time_major,
                          unroll=unroll, remat=remat, impl=impl, key=key,
                          deterministic=deterministic)

  def check_inputs(self, params, xs, initial_carry, batch_shape, *,
                   reset_carry=None, params_name="params",
                   carry_name="initial_carry", xs_name="xs"):
    """Every layer's params, carry and reset target, each layer checked on
    the previous one's output shape; returns the reset targets, or ``None``."""
    self._check_params(params, params_name)
    n = len(self.layers)
    reset_name = carry_name.replace("initial_carry", "reset_carry")
    given = []
    for name, carries in ((carry_name, initial_carry), (reset_name, reset_carry)):
      carries = (None,) * n if carries is None else carries
      if not isinstance(carries, (tuple, list)) or len(carries) != n:
        raise TypeError(f"{name}: expected a tuple of {n} carries (one per "
                        f"layer), got {type(carries).__name__}")
      given.append(carries)
    checked, x = [], xs
    for i, (layer, p) in enumerate(zip(self.layers, params)):
      checked.append(scan_lib.check_layer_inputs(
          layer, p, x, given[0][i], given[1][i], batch_shape,
          params_name=f"{params_name}[{i}]", carry_name=f"{carry_name}[{i}]",
          xs_name=xs_name if i == 0 else
          f"input of layer {i} (output of layer {i - 1})"))
      x = jax.ShapeDtypeStruct(x.shape[:-1] + (layer.output_size(p),), x.dtype)
    return None if reset_carry is None else tuple(checked)

  def check_regularisers(self, dropout, key, deterministic):
    """``(None, key)``: a Stacked layer holds its own regularisers."""
    if dropout is not None:
      raise ValueError("dropout: a Stacked layer holds its own; pass "
                       "Stacked(..., recurrent_dropout=...)")
    draws = not deterministic and (
        (self.dropout_rate > 0 and len(self.layers) > 1) or
        (self.recurrent_dropout is not None and self.recurrent_dropout.active()))
    if draws:
      dropout_lib.check_key(key, f"Stacked with dropout_rate={self.dropout_rate} "
                            f"and recurrent_dropout={self.recurrent_dropout}")
    return None, key if draws else None

  def run(self, params, xs, carry, valid, *, reset_carry=None, key=None,
          dropout=None, **options):
    """Time-major core, no checks: ``(carries, ys)``; ``options`` go to
    every layer."""
    del dropout  # the layer holds its own
    n = len(self.layers)
    carries = (None,) * n if carry is None else carry
    resets_to = (None,) * n if reset_carry is None else reset_carry
    regularise = self.recurrent_dropout is not None and self.recurrent_dropout.active()
    finals = []
    for i, (layer, p, c, reset_to) in enumerate(
        zip(self.layers, params, carries, resets_to)):
      k_layer = None
      if key is not None and regularise:
        key, k_layer = jax.random.split(key)
      c, xs = scan_lib.run_layer(
          layer, p, xs, c, valid, reset_carry=reset_to, key=k_layer,
          dropout=self.recurrent_dropout if regularise else None, **options)
      finals.append(c)
      if key is not None and self.dropout_rate > 0 and i < n - 1:
        key, k_drop = jax.random.split(key)
        keep = jax.random.bernoulli(k_drop, 1.0 - self.dropout_rate, xs.shape)
        xs = jnp.where(keep, xs / (1.0 - self.dropout_rate), jnp.zeros_like(xs))
    return tuple(finals), xs

  def _check_params(self, params, name="params"):
    if not isinstance(params, (tuple, list)) or len(params) != len(self.layers):
      raise TypeError(f"{name}: Stacked expects a tuple of {len(self.layers)} "
                      f"params (one per layer), got {type(params).__name__}"
                      + (f" of length {len(params)}"
                         if isinstance(params, (tuple, list)) else ""))
