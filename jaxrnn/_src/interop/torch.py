"""PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (and their cells), both ways.

Nothing here imports torch: state_dicts are read as mappings of arrays
(``torch.Tensor``, NumPy or JAX), and modules by their public attributes.

Layout. PyTorch stores ``weight_ih_l{k}`` as ``(gates*hidden, in)`` and
computes ``x @ W.T``; jaxrnn stores ``w_i = weight_ih.T``. Gate orders are the
same (LSTM ``i, f, g, o``; GRU ``r, z, n``), both biases are kept, and the GRU
is the reset-after variant, so the conversion is a transpose and nothing else:
the round trip torch -> jaxrnn -> torch returns identical tensors.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._src.cells import base
from jaxrnn._src.cells import gru
from jaxrnn._src.layers import composite as layers
from jaxrnn._src.cells import lstm
from jaxrnn._src.cells import simple

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _to_numpy(value, name: str) -> np.ndarray:
  if hasattr(value, "detach"):  # a torch.Tensor, without importing torch
    value = value.detach().cpu().numpy()
  try:
    return np.asarray(value)
  except Exception as e:  # noqa: BLE001 - report which entry, whatever failed
    raise TypeError(f"{name}: expected an array or tensor, got "
                    f"{type(value).__name__}") from e


@dataclasses.dataclass(frozen=True)
class TorchRNN:
  """The architecture of a ``torch.nn.RNN/LSTM/GRU`` as jaxrnn layers.

  Fields are the torch constructor's arguments; ``mode`` is torch's
  ``module.mode``: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"``.
  Calling it has the torch module's call shape::

    output, h_n = model(params, input, h_0)            # RNN, GRU
    output, (h_n, c_n) = model(params, input, (h_0, c_0))  # LSTM

  with torch's layouts: ``input`` ``(L, N, H_in)`` (``(N, L, H_in)`` when
  ``batch_first``, or ``(L, H_in)`` unbatched); states
  ``(D*num_layers, N, H_out)``, where ``D`` is 2 if bidirectional, else 1, and
  ``H_out`` is ``proj_size`` if nonzero, else ``hidden_size``.
  """

  mode: str
  input_size: int
  hidden_size: int
  num_layers: int = 1
  bias: bool = True
  batch_first: bool = False
  dropout: float = 0.0
  bidirectional: bool = False
  proj_size: int = 0

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"mode: expected one of {MODES}, got {self.mode!r}")
    base.check_sizes(self.input_size, self.hidden_size)
    if not isinstance(self.num_layers, int) or self.num_layers < 1:
      raise ValueError(f"num_layers: expected a positive int, got {self.num_layers!r}")
    if self.proj_size and (self.mode != "LSTM" or not 0 < self.proj_size < self.hidden_size):
      raise ValueError(f"proj_size: expected 0, or an int in [1, hidden_size="
                       f"{self.hidden_size}) for mode 'LSTM', got "
                       f"{self.proj_size!r} for mode {self.mode!r}")

  # ------------------------------------------------------------ structure
  @property
  def cell(self) -> base.Cell:
    if self.mode == "LSTM":
      return lstm.ProjectedLSTMCell() if self.proj_size else lstm.LSTMCell()
    if self.mode == "GRU":
      return gru.GRUCell(reset_after=True)
    return simple.SimpleRNNCell("tanh" if self.mode == "RNN_TANH" else "relu")

  @property
  def stacked(self) -> layers.Stacked:
    layer = layers.Bidirectional(self.cell) if self.bidirectional else self.cell
    return layers.Stacked((layer,) * self.num_layers, dropout_rate=self.dropout)

  @property
  def num_directions(self) -> int:
    return 2 if self.bidirectional else 1

  @property
  def output_size(self) -> int:
    """``H_out``: the size of each direction's output and of ``h_n``."""
    return self.proj_size or self.hidden_size

  def init(self, key: jax.Array, *, dtype: Any = jnp.float32) -> tuple:
    """Fresh params drawn as torch draws them (``initializer="pytorch"``)."""
    kwargs = dict(dtype=dtype, initializer="pytorch")
    if self.proj_size:
      kwargs["proj_size"] = self.proj_size
    params = self.stacked.init(key, self.input_size, self.hidden_size, **kwargs)
    if not self.bias:
      params = jax.tree.map(lambda p: p._replace(b_i=None, b_h=None), params,
                            is_leaf=lambda p: isinstance(p, tuple) and hasattr(p, "b_i"))
    return params

  # ----------------------------------------------------------- state_dict
  def _expected(self) -> dict:
    """``{key: (shape, layer, direction, field)}`` in torch's order."""
    gates, hidden, out = _GATES[self.mode] * self.hidden_size, self.hidden_size, self.output_size
    expected = {}
    for layer in range(self.num_layers):
      in_size = self.input_size if layer == 0 else self.num_directions * out
      for d in range(self.num_directions):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        expected[f"weight_ih{sfx}"] = ((gates, in_size), layer, d, "w_i")
        expected[f"weight_hh{sfx}"] = ((gates, out), layer, d, "w_h")
        if self.bias:
          expected[f"bias_ih{sfx}"] = ((gates,), layer, d, "b_i")
          expected[f"bias_hh{sfx}"] = ((gates,), layer, d, "b_h")
        if self.proj_size:
          expected[f"weight_hr{sfx}"] = ((self.proj_size, hidden), layer, d, "w_p")
    return expected

  def from_state_dict(self, state_dict: Mapping[str, Any]) -> tuple:
    """jaxrnn params (a :class:`Stacked`'s) from a torch module's state_dict.

    Raises:
      ValueError: a key is missing or unexpected, or a shape is wrong; the
        message names the key, the shapes and the option that disagrees.
    """
    expected = self._expected()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
      raise ValueError(
          f"state_dict: does not match {self!r}: missing keys {missing}, "
          f"unexpected keys {unexpected}" + _hint(missing + unexpected))
    fields = {}
    for key, (shape, layer, d, field) in expected.items():
      value = _to_numpy(state_dict[key], f"state_dict[{key!r}]")
      if value.shape != shape:
        raise ValueError(f"state_dict[{key!r}]: expected shape "
                         f"{base.shape_str(shape)} for {self!r}, got "
                         f"{base.shape_str(value.shape)}")
      fields.setdefault((layer, d), {})[field] = jnp.asarray(
          value.T if field.startswith("w_") else value)
    cell = self.cell
    params = []
    for layer in range(self.num_layers):
      per_dir = []
      for d in range(self.num_directions):
        f = fields[(layer, d)]
        f.setdefault("b_i", None)
        f.setdefault("b_h", None)
        per_dir.append(cell.params_type(**f))
      params.append(layers.BidirectionalParams(*per_dir) if self.bidirectional
                    else per_dir[0])
    return tuple(params)

  def to_state_dict(self, params: tuple) -> dict:
    """A torch state_dict (of NumPy arrays) from jaxrnn params.

    Load it with ``module.load_state_dict({k: torch.from_numpy(v) ...})``.
    """
    self.stacked._check_params(params)
    state_dict = {}
    for key, (shape, layer, d, field) in self._expected().items():
      layer_params = params[layer]
      if self.bidirectional:
        layer_params = layer_params[d]
      value = getattr(layer_params, field)
      if value is None:
        raise ValueError(f"params[{layer}]: {field} is None but {self!r} has "
                         "bias=True")
      value = np.array(value)  # a writable copy the caller owns
      state_dict[key] = np.ascontiguousarray(value.T) if field.startswith("w_") else value
      if state_dict[key].shape != shape:
        raise ValueError(f"params[{layer}].{field}: gives {key} of shape "
                         f"{base.shape_str(state_dict[key].shape)}, expected "
                         f"{base.shape_str(shape)}")
    return state_dict

  # ------------------------------------------------------------------ call
  def __call__(self, params: tuple, input: jax.Array, hx: Any = None, *,
               seq_lengths: Optional[jax.Array] = None,
               resets: Optional[jax.Array] = None, reset_hx: Any = None,
               key: Optional[jax.Array] = None, impl: Optional[str] = None):
    """``(input, hx) -> (output, h_n)`` (LSTM: ``(output, (h_n, c_n))``).

    Args:
      params: from :meth:`from_state_dict` or :meth:`init`.
      input: ``(L, N, H_in)``, ``(N, L, H_in)`` if ``batch_first``, or
        ``(L, H_in)``.
      hx: ``h_0`` (LSTM: ``(h_0, c_0)``), each ``(D*num_layers, N, H)``, or
        ``None`` for zeros.
      seq_lengths: ``(N,)`` lengths, the equivalent of running torch on a
        ``pack_padded_sequence``: outputs past each length are zero and the
        final states are taken at each sequence's last valid step.
      resets: boolean, ``(L, N)`` (``(N, L)`` if ``batch_first``, ``(L,)``
        unbatched): true at ``t`` sets the state to ``reset_hx`` (zeros if
        ``None``; not ``hx``, the state the call starts from) before step
        ``t``, in every layer; the reverse direction runs each segment from
        its own end (see :func:`jaxrnn.scan`).
      reset_hx: the state a segment begins from, laid out as ``hx``.
      key: PRNG key for dropout between layers (torch's training mode);
        ``None`` means no dropout (evaluation mode).
      impl: the engine, as in :func:`jaxrnn.scan`.
    """
    input = base.as_array(input, "input")
    if isinstance(hx, tuple):  # the LSTM's (h_0, c_0)
      hx = tuple(base.as_array(v, f"hx[{i}]") for i, v in enumerate(hx))
    else:
      hx = base.as_array(hx, "hx")
    unbatched = getattr(input, "ndim", None) == 2
    time_major = unbatched or not self.batch_first
    batch_shape = () if unbatched else (
        input.shape[0] if self.batch_first else input.shape[1],)
    carries = None if hx is None else self._carries_from_hx(params, hx, batch_shape)
    if isinstance(reset_hx, tuple):
      reset_hx = tuple(base.as_array(v, f"reset_hx[{i}]") for i, v in enumerate(reset_hx))
    else:
      reset_hx = base.as_array(reset_hx, "reset_hx")
    reset_carries = (None if reset_hx is None
                     else self._carries_from_hx(params, reset_hx, batch_shape))
    finals, output = self.stacked(
        params, input, initial_carry=carries, seq_lengths=seq_lengths,
        resets=resets, reset_carry=reset_carries, time_major=time_major, key=key,
        deterministic=key is None, impl=impl)
    per_direction = [c for layer in finals
                     for c in (layer if self.bidirectional else (layer,))]
    h_n = jnp.stack([c.h for c in per_direction])
    if self.mode == "LSTM":
      return output, (h_n, jnp.stack([c.c for c in per_direction]))
    return output, h_n

  def _carries_from_hx(self, params, hx, batch_shape):
    n = self.num_layers * self.num_directions
    if self.mode == "LSTM":
      if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"hx: LSTM expects a pair (h_0, c_0), got {type(hx).__name__}")
      states = {"h_0": hx[0], "c_0": hx[1]}
      sizes = {"h_0": self.output_size, "c_0": self.hidden_size}
    else:
      states, sizes = {"h_0": hx}, {"h_0": self.hidden_size}
    for name, value in states.items():
      want = (n, *batch_shape, sizes[name])
      if getattr(value, "shape", None) != want:
        raise ValueError(f"hx: expected {name} of shape {base.shape_str(want)} "
                         f"(D*num_layers, batch, size), got {base.describe(value)}")
    state_type = base.LSTMState if self.mode == "LSTM" else base.RNNState
    per_direction = [state_type(*(jnp.asarray(v)[i] for v in states.values()))
                     for i in range(n)]
    d = self.num_directions
    return tuple(tuple(per_direction[layer * d:(layer + 1) * d]) if self.bidirectional
                 else per_direction[layer] for layer in range(self.num_layers))


def _hint(keys) -> str:
  hints = []
  if any("_reverse" in k for k in keys):
    hints.append("bidirectional")
  if any("weight_hr" in k for k in keys):
    hints.append("proj_size")
  if any(k.startswith("bias_") for k in keys):
    hints.append("bias")
  return f" (check {', '.join(hints or ['num_layers'])})"


def from_torch(module: Any) -> tuple:
  """``(TorchRNN, params)`` from a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` module.

  The port of a model is then one line: ``output, h_n = model(params, x, h_0)``
  in place of ``output, h_n = module(x, h_0)``.
  """
  try:
    model = TorchRNN(
        mode=module.mode, input_size=module.input_size,
        hidden_size=module.hidden_size, num_layers=module.num_layers,
        bias=module.bias, batch_first=module.batch_first,
        dropout=float(module.dropout), bidirectional=module.bidirectional,
        proj_size=getattr(module, "proj_size", 0))
  except AttributeError as e:
    raise TypeError(f"module: expected a torch.nn.RNN, LSTM or GRU, got "
                    f"{type(module).__name__} ({e})") from None
  return model, model.from_state_dict(module.state_dict())


_CELL_MODULES = {"RNNCell": simple.SimpleRNNParams, "LSTMCell": lstm.LSTMParams,
                 "GRUCell": gru.GRUParams}


def from_torch_cell(module: Any) -> tuple:
  """``(cell, params)`` from a ``torch.nn.RNNCell``, ``LSTMCell`` or ``GRUCell``."""
  kind = type(module).__name__
  if kind not in _CELL_MODULES:
    raise TypeError(f"module: expected a torch.nn.RNNCell, LSTMCell or GRUCell, "
                    f"got {kind}")
  if kind == "RNNCell":
    cell = simple.SimpleRNNCell(module.nonlinearity)
  else:
    cell = lstm.LSTMCell() if kind == "LSTMCell" else gru.GRUCell(reset_after=True)
  sd = {k: _to_numpy(v, f"state_dict[{k!r}]") for k, v in module.state_dict().items()}
  get = lambda k: jnp.asarray(sd[k]) if k in sd else None
  params = _CELL_MODULES[kind](jnp.asarray(sd["weight_ih"].T),
                               jnp.asarray(sd["weight_hh"].T),
                               get("bias_ih"), get("bias_hh"))
  cell.check_params(params, f"{kind}.state_dict()")
  return cell, params
