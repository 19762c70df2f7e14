"""Keras 3 ``LSTM`` / ``GRU`` / ``SimpleRNN`` (and their cells,
``Bidirectional`` and stacks of them), both ways.

Reading needs no Keras: layers are read by their public attributes and
weights by ``get_weights()``; :func:`to_keras` imports Keras to build layers.

Layout. Keras stores ``kernel`` ``(in, gates*units)`` and ``recurrent_kernel``
``(units, gates*units)`` and computes ``x @ kernel``, as jaxrnn's ``w_i`` and
``w_h``. The LSTM's gate order is jaxrnn's (``i, f, c, o``; one bias, held in
``b_i``). The GRU's is ``z, r, h`` where jaxrnn's is ``r, z, n``; its bias is
``(2, 3*units)`` (input row, recurrent row) with ``reset_after=True``, the
jaxrnn ``GRUCell(reset_after=True)``, and ``(3*units,)`` with
``reset_after=False``, the jaxrnn ``GRUCell(reset_after=False)``. Conversion
is a reordering of blocks, so a round trip returns identical arrays.

Semantics. A Keras layer's call is reproduced by :class:`KerasRNN`: masked
steps output the previous output (``zero_output_for_mask=False``, Keras'
default), ``go_backwards`` returns the outputs in the order of the pass, and
``Bidirectional`` zeros masked steps when it returns sequences (as Keras
forces). Dropout is a training-time regulariser of Keras' call and is not
carried over: :class:`KerasRNN` is the inference call.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._src.cells import activations
from jaxrnn._src.cells import base
from jaxrnn._src.cells import gru
from jaxrnn._src.cells import lstm
from jaxrnn._src.cells import simple
from jaxrnn._src.layers import composite
from jaxrnn._src.layers import scan as scan_lib

_KINDS = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}
_MERGES = ("concat", "sum", "ave", "mul", None)


_CELL_KINDS = {lstm.LSTMCell: "LSTM", gru.GRUCell: "GRU", simple.SimpleRNNCell: "SimpleRNN"}


def _kind(cell: base.Cell) -> str:
  """The Keras layer of ``cell``: exact types only, since a subclass may
  compute something else (its own ``pointwise``, say)."""
  kind = _CELL_KINDS.get(type(cell))
  if kind is None:
    raise ValueError(f"cell: Keras has no equivalent of {cell!r}; it has LSTM, "
                     "GRU (both reset_after) and SimpleRNN")
  return kind


def _gru_order(array):
  """GRU gate blocks ``z, r, h`` <-> ``r, z, n`` (the swap is its own inverse)."""
  a, b, c = jnp.split(jnp.asarray(array), 3, axis=-1)
  return jnp.concatenate([b, a, c], axis=-1)


def _activation(fn, name: str) -> activations.Activation:
  """A Keras layer's activation as a cell's: the table's name where ``fn``
  is Keras' own function of that name (``keras.activations.get(name)``),
  else the callable itself, so a function that merely shares a name (e.g.
  ``jax.nn.gelu``, the tanh approximation, against Keras' exact ``"gelu"``)
  keeps its own mathematics."""
  if not callable(fn):
    raise TypeError(f"{name}: expected a Keras activation, got {fn!r}")
  keras = sys.modules.get("keras")  # loaded: a Keras layer exists
  label = getattr(fn, "__name__", None)
  if keras is not None and label in activations.ACTIVATIONS:
    try:
      if keras.activations.get(label) is fn:
        return label
    except ValueError:
      pass
  return fn


def _cell_options(cell: base.Cell) -> dict:
  """The Keras constructor options that ``cell`` fixes."""
  names = ("activation",) if isinstance(cell, simple.SimpleRNNCell) else (
      "activation", "recurrent_activation")
  options = {}
  for name in names:  # a name where there is one, else the callable itself
    value = getattr(cell, name)
    options[name] = activations.name_of(value) or value
  if isinstance(cell, gru.GRUCell):
    options["reset_after"] = cell.reset_after
  return options


def _jaxrnn_cell(keras_cell) -> base.Cell:
  kind = _KINDS.get(type(keras_cell).__name__)
  if kind is None:
    raise TypeError(f"layer: expected a Keras LSTM, GRU or SimpleRNN (layer or cell), "
                    f"got {type(keras_cell).__name__}")
  activation = _activation(keras_cell.activation, "activation")
  if kind == "SimpleRNN":
    return simple.SimpleRNNCell(activation)
  options = dict(activation=activation, recurrent_activation=_activation(
      keras_cell.recurrent_activation, "recurrent_activation"))
  if kind == "LSTM":
    return lstm.LSTMCell(**options)
  return gru.GRUCell(reset_after=bool(keras_cell.reset_after), **options)


def _params_from_weights(cell: base.Cell, weights: Sequence, name: str):
  weights = [np.asarray(w) for w in weights]
  if len(weights) not in (2, 3):
    raise ValueError(f"{name}: expected [kernel, recurrent_kernel(, bias)], got "
                     f"{len(weights)} arrays")
  kernel, recurrent, bias = (weights + [None])[:3]
  kind = _kind(cell)
  b_i = b_h = None
  if kind == "GRU":
    kernel, recurrent = _gru_order(kernel), _gru_order(recurrent)
    if bias is not None and cell.reset_after:
      if bias.ndim != 2 or bias.shape[0] != 2:
        raise ValueError(f"{name}: expected a GRU bias (2, 3*units) with "
                         f"reset_after=True, got {base.shape_str(bias.shape)}")
      b_i, b_h = _gru_order(bias[0]), _gru_order(bias[1])
    elif bias is not None:
      b_i = _gru_order(bias)
  elif bias is not None:
    b_i = jnp.asarray(bias)
  params = cell.params_type(jnp.asarray(kernel), jnp.asarray(recurrent), b_i, b_h)
  cell.check_params(params, name)
  return params


def _weights_from_params(cell: base.Cell, params, use_bias: bool) -> list:
  cell.check_params(params)
  kind = _kind(cell)
  w_i, w_h = np.array(params.w_i), np.array(params.w_h)
  zeros = jnp.zeros((w_i.shape[1],), w_i.dtype)
  if kind == "GRU":
    w_i, w_h = np.array(_gru_order(w_i)), np.array(_gru_order(w_h))
  if not use_bias:
    if params.b_i is not None or params.b_h is not None:
      raise ValueError("params: have biases; Keras' use_bias=False layer has none")
    return [w_i, w_h]
  if kind == "GRU" and cell.reset_after:
    b_i, b_h = (base.add_biases(zeros, b) for b in (params.b_i, params.b_h))
    return [w_i, w_h, np.stack([np.array(_gru_order(b_i)), np.array(_gru_order(b_h))])]
  bias = base.add_biases(zeros, params.b_i, params.b_h)
  return [w_i, w_h, np.array(_gru_order(bias) if kind == "GRU" else bias)]


@dataclasses.dataclass(frozen=True)
class KerasLayer:
  """One Keras recurrent layer's options.

  Fields are the Keras constructor's arguments; ``merge_mode`` is
  ``Bidirectional``'s (``None`` for a one-direction layer is not used).
  """

  cell: base.Cell
  units: int
  use_bias: bool = True
  return_sequences: bool = False
  return_state: bool = False
  go_backwards: bool = False
  zero_output_for_mask: bool = False
  bidirectional: bool = False
  merge_mode: Optional[str] = "concat"
  unroll: bool = False

  def __post_init__(self):
    _kind(self.cell)
    if isinstance(self.units, bool) or not isinstance(self.units, int) or self.units < 1:
      raise ValueError(f"units: expected a positive int, got {self.units!r}")
    for field in ("use_bias", "return_sequences", "return_state", "go_backwards",
                  "zero_output_for_mask", "bidirectional", "unroll"):
      if not isinstance(getattr(self, field), bool):
        raise TypeError(f"{field}: expected a bool, got {getattr(self, field)!r}")
    if self.merge_mode not in _MERGES:
      raise ValueError(f"merge_mode: expected one of {_MERGES}, got {self.merge_mode!r}")

  @property
  def num_states(self) -> int:
    return 2 if _kind(self.cell) == "LSTM" else 1


def _layer_spec(layer) -> KerasLayer:
  kind = type(layer).__name__
  if kind == "Bidirectional":
    fwd, bwd = layer.forward_layer, layer.backward_layer
    spec, backward = _layer_spec(fwd), _layer_spec(bwd)
    if dataclasses.replace(backward, go_backwards=False) != spec or fwd.go_backwards:
      raise ValueError("layer: a Bidirectional whose backward_layer differs from its "
                       "forward layer (other than go_backwards) is not supported")
    return dataclasses.replace(spec, bidirectional=True, merge_mode=layer.merge_mode,
                               return_sequences=bool(layer.return_sequences),
                               return_state=bool(layer.return_state),
                               zero_output_for_mask=bool(layer.return_sequences))
  cell = getattr(layer, "cell", None)
  if cell is None or type(cell).__name__ not in _KINDS:
    raise TypeError(f"layer: expected a Keras LSTM, GRU, SimpleRNN, RNN of one of "
                    f"their cells, or Bidirectional of one, got {kind}"
                    + (f" of {type(cell).__name__}" if cell is not None else ""))
  if getattr(layer, "stateful", False):
    raise ValueError("layer: stateful=True keeps the state inside the Keras layer; "
                     "convert the stateless layer and pass the state as initial_state")
  return KerasLayer(_jaxrnn_cell(cell), int(cell.units), bool(cell.use_bias),
                    bool(layer.return_sequences), bool(layer.return_state),
                    bool(layer.go_backwards), bool(layer.zero_output_for_mask),
                    unroll=bool(getattr(layer, "unroll", False)))


def _layer_params(spec: KerasLayer, layer, name: str):
  if spec.bidirectional:
    return composite.BidirectionalParams(
        _params_from_weights(spec.cell, layer.forward_layer.get_weights(), f"{name}.forward"),
        _params_from_weights(spec.cell, layer.backward_layer.get_weights(), f"{name}.backward"))
  return _params_from_weights(spec.cell, layer.get_weights(), name)


@dataclasses.dataclass(frozen=True)
class KerasRNN:
  """Keras recurrent layers, one or a stack, as jaxrnn layers with Keras'
  call::

    outputs = model(params, inputs, mask=mask)                 # return_state=False
    outputs, *states = model(params, inputs, initial_state=[h, c])

  ``inputs`` ``(batch, time, features)``; ``mask`` boolean ``(batch, time)``;
  ``initial_state`` a list as Keras takes it (``[h, c]`` for an LSTM, ``[h]``
  otherwise; forward states then backward states for ``Bidirectional``),
  for the first layer; what is returned is what the last layer returns.
  """

  layers: tuple

  def __post_init__(self):
    if not self.layers or not all(isinstance(s, KerasLayer) for s in self.layers):
      raise TypeError(f"layers: expected a non-empty tuple of KerasLayer, got {self.layers!r}")
    for i, spec in enumerate(self.layers[:-1]):
      if not spec.return_sequences or spec.return_state:
        raise ValueError(f"layers[{i}]: a layer inside a stack must return sequences "
                         "and no states")
      if spec.bidirectional and spec.merge_mode is None:
        raise ValueError(f"layers[{i}]: merge_mode=None returns two sequences; a layer "
                         "inside a stack takes one")

  def init(self, key, input_size: int, *, dtype: Any = jnp.float32) -> tuple:
    """Fresh params (jaxrnn's default initialisers, not Keras')."""
    base.check_key(key)
    params, size = [], input_size
    for spec, k in zip(self.layers, jax.random.split(key, len(self.layers))):
      if spec.bidirectional:
            p = composite.Bidirectional(spec.cell).init(k, size, spec.units, dtype=dtype)
      else:
        p = spec.cell.init(k, size, spec.units, dtype=dtype)
      if not spec.use_bias:
        p = jax.tree.map(lambda q: q._replace(b_i=None, b_h=None), p,
                         is_leaf=lambda q: hasattr(q, "b_i"))
      params.append(p)
      size = spec.units * (2 if spec.bidirectional and spec.merge_mode == "concat" else 1)
    return tuple(params)

  def check_params(self, params) -> None:
    if not isinstance(params, tuple) or len(params) != len(self.layers):
      raise ValueError(f"params: expected a tuple of {len(self.layers)} layers' params, "
                       f"got {base.describe(params)}")

  def __call__(self, params: tuple, inputs, *, initial_state=None, mask=None):
    self.check_params(params)
    inputs = base.as_array(inputs, "inputs")
    mask = base.as_array(mask, "mask")
    if mask is not None and any(spec.unroll for spec in self.layers):
      raise ValueError("mask: a Keras layer with unroll=True treats masked steps "
                       "otherwise than its own unroll=False loop (it ignores "
                       "zero_output_for_mask); KerasRNN reproduces unroll=False")
    x = inputs
    for i, (spec, p) in enumerate(zip(self.layers, params)):
      result = _call_layer(spec, p, x, initial_state if i == 0 else None, mask,
                           f"params[{i}]")
      x = result[0] if isinstance(result, list) else result
    return result


def _carry(spec: KerasLayer, params, states, batch_shape, name: str):
  """Keras' list of states as the cell's carry, checked under Keras' name."""
  states = [base.as_array(s, f"{name}[{i}]") for i, s in enumerate(states)]
  carry = (base.LSTMState if _kind(spec.cell) == "LSTM" else base.RNNState)(*states)
  spec.cell.check_carry(params, carry, batch_shape, name)
  return carry


def _direction(spec, params, x, states, mask, go_backwards, name):
  carry = None
  if states is not None:
    carry = _carry(spec, params, states, tuple(x.shape[:-2]), name)
  zero = spec.zero_output_for_mask or mask is None
  carry, ys = scan_lib.scan(spec.cell, params, x, initial_carry=carry, mask=mask,
                            go_backwards=go_backwards, zero_output_for_mask=zero)
  last = ys[..., -1, :]
  if not spec.return_sequences:
    ys = last
  elif spec.bidirectional and go_backwards:
    ys = jnp.flip(ys, axis=-2)  # Keras returns the backward outputs in time order
  return ys, list(carry)


def _call_layer(spec: KerasLayer, params, x, initial_state, mask, name):
  n = spec.num_states
  states = None
  if initial_state is not None:  # Keras takes one tensor or a list
    states = (list(initial_state) if isinstance(initial_state, (list, tuple))
              else [initial_state])
    want = n * (2 if spec.bidirectional else 1)
    if len(states) != want:
      raise ValueError(f"initial_state: expected {want} arrays for this layer, got "
                       f"{len(states)}")
  if not spec.bidirectional:
    ys, finals = _direction(spec, params, x, states, mask, spec.go_backwards,
                            "initial_state")
    return [ys, *finals] if spec.return_state else ys
  fwd, fwd_finals = _direction(spec, params.forward, x, states and states[:n], mask,
                               False, "initial_state")
  bwd, bwd_finals = _direction(spec, params.backward, x, states and states[n:], mask,
                               True, "initial_state")
  if spec.merge_mode is None:
    out = [fwd, bwd]
  else:
    out = {"concat": lambda a, b: jnp.concatenate([a, b], axis=-1),
           "sum": jnp.add, "mul": jnp.multiply,
           "ave": lambda a, b: (a + b) / 2}[spec.merge_mode](fwd, bwd)
  if spec.return_state:
    return [*(out if spec.merge_mode is None else [out]), *fwd_finals, *bwd_finals]
  return out


def from_keras(layer: Any):
  """jaxrnn's form of a Keras recurrent layer, cell, or stack of layers.

  Args:
    layer: a Keras cell (``LSTMCell``, ``GRUCell``, ``SimpleRNNCell``), a
      layer (``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN`` of one of those cells,
      ``Bidirectional`` of one), or a list or ``keras.Sequential`` of layers.
      Built (called once, or ``build``), so that its weights exist.

  Returns:
    ``(cell, params)`` for a cell; ``(KerasRNN, params)`` otherwise, where
    ``params`` is a tuple with one entry per layer.

  Raises:
    TypeError: a layer of another kind (the message names it).
    ValueError: an option jaxrnn does not reproduce (``stateful``).
  """
  if type(layer).__name__ in _KINDS:
    cell = _jaxrnn_cell(layer)
    return cell, _params_from_weights(cell, layer.get_weights(), f"{type(layer).__name__}")
  if type(layer).__name__ == "Sequential":
    layers = [l for l in layer.layers if type(l).__name__ != "InputLayer"]
  elif isinstance(layer, (list, tuple)):
    layers = list(layer)
  else:
    layers = [layer]
  specs = tuple(_layer_spec(l) for l in layers)
  model = KerasRNN(specs)
  return model, tuple(_layer_params(s, l, f"layers[{i}]")
                      for i, (s, l) in enumerate(zip(specs, layers)))


def _keras_options(spec: KerasLayer) -> dict:
  return dict(units=spec.units, use_bias=spec.use_bias, **_cell_options(spec.cell))


def to_keras(model: Any, params):
  """A built Keras layer, cell or ``Sequential`` holding ``params``.

  Args:
    model: a jaxrnn ``LSTMCell``, ``GRUCell`` or ``SimpleRNNCell`` (gives a
      Keras cell), or a :class:`KerasRNN` (gives its layer, or a
      ``keras.Sequential`` for a stack).
    params: its params. Biases jaxrnn holds twice (``b_i`` and ``b_h``) are
      summed where Keras has one.
  """
  import keras  # noqa: PLC0415 - Keras only for export

  if isinstance(model, base.Cell):
    kind = _kind(model)
    cell = getattr(keras.layers, f"{kind}Cell")(
        units=model.output_size(params),
        use_bias=params.b_i is not None or params.b_h is not None,
        **_cell_options(model))
    cell.build((None, model.input_size(params)))
    cell.set_weights(_weights_from_params(model, params, cell.use_bias))
    return cell
  if not isinstance(model, KerasRNN):
    raise TypeError(f"model: expected a jaxrnn cell or a KerasRNN, got {type(model).__name__}")
  model.check_params(params)
  built, size = [], None
  for i, (spec, p) in enumerate(zip(model.layers, params)):
    kind = _kind(spec.cell)
    options = dict(return_sequences=spec.return_sequences, return_state=spec.return_state,
                   zero_output_for_mask=spec.zero_output_for_mask, **_keras_options(spec))
    if spec.bidirectional:
      layer = keras.layers.Bidirectional(getattr(keras.layers, kind)(**options),
                                         merge_mode=spec.merge_mode)
      first = p.forward
    else:
      layer = getattr(keras.layers, kind)(go_backwards=spec.go_backwards,
                                          unroll=spec.unroll, **options)
      first = p
    size = spec.cell.input_size(first) if size is None else size
    layer.build((None, None, size))
    if spec.bidirectional:
      layer.forward_layer.set_weights(_weights_from_params(spec.cell, p.forward, spec.use_bias))
      layer.backward_layer.set_weights(_weights_from_params(spec.cell, p.backward, spec.use_bias))
    else:
      layer.set_weights(_weights_from_params(spec.cell, p, spec.use_bias))
    built.append(layer)
    size = spec.units * (2 if spec.bidirectional and spec.merge_mode == "concat" else 1)
  return built[0] if len(built) == 1 else keras.Sequential(built)
