"""Flax cells' params, both ways: linen params dicts and nnx cell modules.

Flax itself is never imported here. A linen cell is given as its params dict
(``variables["params"]``); an nnx cell as the module itself (flax.nnx is then
loaded already, and is looked up, not imported) or as the pure dict of its
state, ``nnx.to_pure_dict(nnx.state(module))``. :func:`from_flax` tells the
three apart by the object's type and the dict's keys.

The peers and their params, ``H`` the hidden size. Kernels are ``(in, out)``
as jaxrnn's ``w_i``, ``w_h``; fused kernels hold the gate blocks, each ``H``
wide, in the order given.

- ``LSTMCell()``:

  - linen ``LSTMCell`` and ``OptimizedLSTMCell``: per gate ``g`` in ``i, f,
    g, o``, an input kernel ``"i{g}"`` without bias and a recurrent kernel
    ``"h{g}"`` with bias;
  - nnx ``LSTMCell``: the same as submodules ``ii, if_, ig, io`` (``if_``:
    ``if`` is a Python keyword) and ``hi, hf, hg, ho``;
  - nnx ``OptimizedLSTMCell``: ``dense_i`` kernel ``(in, 4H)`` without bias,
    ``dense_h`` kernel ``(H, 4H)`` with bias, blocks ``i, f, g, o``.

- ``GRUCell(reset_after=True)``:

  - linen ``GRUCell``: input kernels ``"ir", "iz", "in"`` with biases,
    recurrent kernels ``"hr", "hz"`` without and ``"hn"`` with bias
    (PyTorch's ``b_hn``, inside the reset);
  - nnx ``GRUCell``: ``dense_i`` ``(in, 3H)`` with bias, ``dense_h`` ``(H,
    3H)`` without, blocks ``r, z, n``. It has no ``b_hn``.

- ``MGUCell(reset_after=True)``: linen ``MGUCell`` (``reset_gate=True``):
  ``"if", "in"`` with biases, ``"hf"`` without, ``"hn"`` with.
  ``MGUCell(reset_gate=False)``: linen ``MGUCell(reset_gate=False)``: the
  same, but ``"hn"`` without bias (jaxrnn's ``b_h`` ``n`` block adds to
  ``"in"``'s). flax.nnx (0.12) has no MGU cell.

- ``SimpleRNNCell()``:

  - linen ``SimpleCell``: ``"i"`` kernel with bias, ``"h"`` kernel without;
  - nnx ``SimpleCell``: ``dense_i`` ``(in, H)`` with bias, ``dense_h`` ``(H,
    H)`` without.

- ``ConvLSTMCell(kernel_size)``: linen ``ConvLSTMCell``: two convolutions,
  ``"ih"`` and ``"hh"``, each a kernel ``(*kernel_size, in, 4*features)`` and
  a bias, gate blocks in the order ``i, g, f, o``. It adds 1 to the forget
  gate at every step; jaxrnn holds that 1 in the forget block of ``b_i`` (its
  ``forget_bias``).

Where jaxrnn has a bias Flax lacks (the LSTM's ``b_i``; the GRU's ``r, z``
blocks of ``b_h``; the simple cell's ``b_h``), export adds it to the bias
Flax has in the same sum: the mathematics is unchanged, and results agree to
float rounding. The one bias that cannot move is the GRU's ``b_hn``, which
the reset gate multiplies: export to the nnx ``GRUCell`` raises a
``ValueError`` where it is non-zero (the linen ``GRUCell`` holds it).

Activations: Flax's ``gate_fn`` and ``activation_fn`` are jaxrnn's
``recurrent_activation`` and ``activation`` (defaults sigmoid and tanh on
both sides). A params dict does not record them: build the jaxrnn cell with
the Flax cell's, e.g. ``SimpleRNNCell("relu")`` for ``activation_fn=
nnx.relu``. An nnx module does, and they are checked against the cell's:
the same function object, the function of the cell's activation name
(``jax.nn.hard_sigmoid`` for ``"hard_sigmoid"``), or ``jnp.tanh``,
``jax.nn.sigmoid`` and ``jax.nn.relu`` for ``"tanh"``, ``"sigmoid"`` and
``"relu"``. For a function of one's own, give the jaxrnn cell that same
object.

Flax's ``SimpleCell(residual=True)`` computes ``act(x W_i + b_i + h W_h +
h)``, which is ``SimpleRNNCell`` with ``w_h = W_h + I``: an nnx module says
whether it is residual, and both directions add or take off the identity
(results agree to float rounding). A params dict does not say, and is read
as ``residual=False``.

Carries: Flax's LSTM carry (linen and nnx) is ``(c, h)``, jaxrnn's
``LSTMState(h, c)``; use :func:`to_flax_carry` and :func:`from_flax_carry`.
The GRU, MGU and simple cells' Flax carry is the array ``h``, jaxrnn's
``RNNState(h)``.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._src.cells import activations
from jaxrnn._src.cells import base
from jaxrnn._src.cells import conv_lstm
from jaxrnn._src.cells import gru
from jaxrnn._src.cells import lstm
from jaxrnn._src.cells import simple

_LSTM_GATES = ("i", "f", "g", "o")
_GRU_GATES = ("r", "z", "n")
# nnx LSTMCell's input submodules, per gate; "if" is a keyword, hence "if_".
_NNX_LSTM_INPUT = {"i": "ii", "f": "if_", "g": "ig", "o": "io"}
# nnx cell class -> the jaxrnn family computing the same function.
_NNX_CELLS = {"LSTMCell": "lstm", "OptimizedLSTMCell": "lstm",
              "GRUCell": "gru", "SimpleCell": "simple"}
_FAMILY_CELLS = {"lstm": "LSTMCell()", "gru": "GRUCell(reset_after=True)",
                 "simple": "SimpleRNNCell()"}


def _get(params: Mapping, name: str, leaf: str):
  try:
    return jnp.asarray(params[name][leaf])
  except (KeyError, TypeError):
    raise ValueError(f"flax_params: missing {name!r}/{leaf!r}; got keys "
                     f"{sorted(params) if isinstance(params, Mapping) else type(params).__name__}"
                     ) from None


def _get_optional(params: Mapping, name: str, leaf: str):
  sub = params.get(name) if isinstance(params, Mapping) else None
  if isinstance(sub, Mapping) and sub.get(leaf) is not None:
    return jnp.asarray(sub[leaf])
  return None


def _blocks(array, n):
  return jnp.split(array, n, axis=-1)


def _unsupported(cell) -> ValueError:
  return ValueError(
      f"cell: Flax linen has no equivalent of {cell!r}, nor has nnx: linen "
      "has LSTMCell / OptimizedLSTMCell (plain LSTM), GRUCell and MGUCell "
      "(reset after the recurrent matmul), SimpleCell and ConvLSTMCell; nnx "
      "has LSTMCell / OptimizedLSTMCell, GRUCell and SimpleCell")


def _no_peer(cell) -> ValueError:
  """The error for a cell without a Flax peer, as export reports it."""
  if type(cell) in (gru.GRUCell, gru.MGUCell):  # reset_after=False
    return ValueError(
        f"cell: {type(cell).__name__}(reset_after=False) resets before the "
        "recurrent matmul; Flax's cell resets after it, a different function")
  return _unsupported(cell)


def _family(cell) -> Optional[str]:
  """What ``cell`` computes, in the terms of Flax's cells; None for none."""
  if type(cell) is lstm.LSTMCell:
    return "lstm"
  if type(cell) is gru.GRUCell and cell.reset_after:
    return "gru"
  if type(cell) is gru.MGUCell and (cell.reset_after or not cell.reset_gate):
    return "mgu"  # without the reset gate, reset_after changes nothing
  if type(cell) is simple.SimpleRNNCell:
    return "simple"
  if type(cell) is conv_lstm.ConvLSTMCell:
    return "conv_lstm"
  return None


# ------------------------------------------------------------------- nnx
def _nnx_module_kind(obj) -> Optional[str]:
  """The Flax nnx cell class ``obj`` is an instance of (by name), ``"other"``
  for another nnx module, ``None`` for no nnx module. flax.nnx is looked up in
  ``sys.modules``: an nnx module exists only once it is loaded."""
  nnx = sys.modules.get("flax.nnx")
  if nnx is None or not isinstance(obj, nnx.Module):
    return None
  for name in _NNX_CELLS:
    cls = getattr(nnx, name, None)
    if cls is not None and isinstance(obj, cls):
      return name
  return "other"


def _check_nnx_module(cell, family: Optional[str], module, name: str) -> str:
  """Raises unless ``module`` is an nnx cell computing what ``cell`` does;
  returns its class name."""
  kind = _nnx_module_kind(module)
  if kind in (None, "other"):
    raise TypeError(
        f"{name}: expected a Flax nnx LSTMCell, OptimizedLSTMCell, GRUCell or "
        f"SimpleCell, got {type(module).__name__}")
  if family is None:
    raise _no_peer(cell)
  if family not in _FAMILY_CELLS:
    raise ValueError(f"cell: Flax nnx has no equivalent of {cell!r}; Flax "
                     "linen has, as a params dict")
  if _NNX_CELLS[kind] != family:
    raise ValueError(
        f"{name}: a Flax nnx {kind} computes what jaxrnn's "
        f"{_FAMILY_CELLS[_NNX_CELLS[kind]]} does, not {cell!r}")
  fields = {"activation_fn": "activation"}
  if family != "simple":
    fields["gate_fn"] = "recurrent_activation"
  for flax_field, field in fields.items():
    theirs = getattr(module, flax_field)
    ours = getattr(cell, field)
    if not _same_function(theirs, ours):
      raise ValueError(
          f"{name}: the Flax nnx {kind}'s {flax_field} is "
          f"{activations.label(theirs)}, and {cell!r} computes "
          f"{activations.label(ours)} there; give the jaxrnn cell "
          f"{field}=<that function> to match")
  return kind


def _same_function(theirs, ours) -> bool:
  """Whether Flax's callable ``theirs`` is jaxrnn's activation ``ours`` (a
  name or a callable): the same object, the name's function, or a function
  standing for the same name (``jax.nn.sigmoid`` for ``"sigmoid"``)."""
  if theirs is ours or theirs is activations.get(ours):
    return True
  name = activations.name_of(theirs)
  return name is not None and name == activations.name_of(ours)


def _nnx_module_params(module, kind: str) -> dict:
  """The pure dict of an nnx cell's params, read by attribute."""
  names = (list(_NNX_LSTM_INPUT.values()) + [f"h{g}" for g in _LSTM_GATES]
           if kind == "LSTMCell" else ["dense_i", "dense_h"])
  out = {}
  for sub_name in names:
    sub = getattr(module, sub_name)
    out[sub_name] = {leaf: getattr(sub, leaf)[...] for leaf in ("kernel", "bias")
                     if getattr(sub, leaf, None) is not None}
  return out


def _is_nnx_dict(flax_params: Mapping) -> bool:
  return "dense_i" in flax_params or "if_" in flax_params


def _from_nnx_dict(cell, family: Optional[str], flax_params: Mapping):
  """jaxrnn params from the pure dict of an nnx cell's state."""
  if "if_" in flax_params:  # nnx LSTMCell, per-gate submodules
    if family != "lstm":
      raise ValueError(
          f"flax_params: keys {sorted(flax_params)} are a Flax nnx LSTMCell's, "
          f"whose jaxrnn peer is LSTMCell(), not {cell!r}")
    return _lstm_from_gates(flax_params, _NNX_LSTM_INPUT)
  if family not in _FAMILY_CELLS:
    raise ValueError(
        f"flax_params: keys {sorted(flax_params)} are a Flax nnx "
        f"OptimizedLSTMCell's, GRUCell's or SimpleCell's; {cell!r} is none of "
        "their jaxrnn peers")
  w_i = _get(flax_params, "dense_i", "kernel")
  w_h = _get(flax_params, "dense_h", "kernel")
  if w_h.ndim == 2 and w_h.shape[1] != cell.num_gates * w_h.shape[0]:
    raise ValueError(
        f"flax_params: 'dense_h' kernel has shape {tuple(w_h.shape)}; {cell!r} "
        f"needs (hidden, {cell.num_gates}*hidden): {cell.num_gates} gate "
        f"block(s), the Flax nnx {_nnx_peer_names(family)}")
  b_i = _get_optional(flax_params, "dense_i", "bias")
  b_h = _get_optional(flax_params, "dense_h", "bias")
  return cell.params_type(w_i, w_h, b_i, b_h)


def _nnx_peer_names(family: str) -> str:
  return " or ".join(k for k, v in _NNX_CELLS.items() if v == family)


def _concrete(array, name: str):
  if isinstance(array, jax.core.Tracer):
    raise ValueError(
        f"{name}: export to an nnx module needs concrete params, to check "
        "what Flax can hold; call to_flax outside jit")
  return np.asarray(array)


def _to_nnx_dict(params, kind: str, residual: bool) -> dict:
  """The pure dict of an nnx ``kind`` cell's params for jaxrnn ``params``."""
  k = params.w_h.shape[1]
  hidden = params.w_h.shape[0]
  zeros = jnp.zeros((k,), params.w_h.dtype)
  if kind == "LSTMCell":
    out = _lstm_to_gates(params, _NNX_LSTM_INPUT)
  elif kind == "OptimizedLSTMCell":
    b = base.add_biases(zeros, params.b_i, params.b_h)
    out = {"dense_i": {"kernel": params.w_i},
           "dense_h": {"kernel": params.w_h, "bias": b}}
  elif kind == "GRUCell":
    b_h = base.add_biases(zeros, params.b_h)
    b_hn = _concrete(b_h[2 * hidden:], "params.b_h")
    if np.any(b_hn != 0):
      raise ValueError(
          "params.b_h: its n block (PyTorch's b_hn, max |b_hn| = "
          f"{float(np.max(np.abs(b_hn))):.3g}) is non-zero, and the Flax nnx "
          "GRUCell has no recurrent bias: b_hn sits inside the reset, r * (h "
          "W_hn + b_hn), so it cannot fold into dense_i's bias. Flax linen's "
          "GRUCell holds it (to_flax without module)")
    b_i = base.add_biases(zeros, params.b_i).at[:2 * hidden].add(b_h[:2 * hidden])
    out = {"dense_i": {"kernel": params.w_i, "bias": b_i},
           "dense_h": {"kernel": params.w_h}}
  else:  # SimpleCell
    w_h = params.w_h
    if residual:  # act(... + h W_h + h): W_h = w_h - I
      w_h = w_h - jnp.eye(hidden, dtype=w_h.dtype)
    out = {"dense_i": {"kernel": params.w_i,
                       "bias": base.add_biases(zeros, params.b_i, params.b_h)},
           "dense_h": {"kernel": w_h}}
  return out


def _to_nnx_module(cell, family: Optional[str], params, module):
  """A new nnx module like ``module``, holding ``params``."""
  kind = _check_nnx_module(cell, family, module, "module")
  residual = kind == "SimpleCell" and bool(module.residual)
  pure = _to_nnx_dict(params, kind, residual)
  sizes = f"input_size={params.w_i.shape[0]}, hidden_size={params.w_h.shape[0]}"
  for sub_name, leaves in pure.items():
    sub = getattr(module, sub_name)
    for leaf, array in leaves.items():
      var = getattr(sub, leaf, None)
      if var is None:
        raise ValueError(f"module.{sub_name}: has no {leaf}, which the Flax "
                         f"nnx {kind} has; was the module built otherwise?")
      if tuple(var.shape) != tuple(array.shape):
        raise ValueError(
            f"module.{sub_name}.{leaf}: has shape {tuple(var.shape)}; params "
            f"({sizes}) give {tuple(array.shape)}")
  nnx = sys.modules["flax.nnx"]  # loaded: module is an nnx module
  new = nnx.clone(module)
  for sub_name, leaves in pure.items():
    sub = getattr(new, sub_name)
    for leaf, array in leaves.items():
      var = getattr(sub, leaf)
      var[...] = jnp.asarray(array, var.dtype)
  return new


# ----------------------------------------------------------------- linen
def _lstm_from_gates(flax_params, input_names: Mapping[str, str]):
  w_i = jnp.concatenate([_get(flax_params, input_names[g], "kernel")
                         for g in _LSTM_GATES], 1)
  w_h = jnp.concatenate([_get(flax_params, f"h{g}", "kernel") for g in _LSTM_GATES], 1)
  b_h = jnp.concatenate([_get(flax_params, f"h{g}", "bias") for g in _LSTM_GATES])
  return lstm.LSTMParams(w_i, w_h, None, b_h)


def _lstm_to_gates(params, input_names: Mapping[str, str]) -> dict:
  k = params.w_i.shape[1]
  b = base.add_biases(jnp.zeros((k,), params.w_i.dtype), params.b_i, params.b_h)
  out = {}
  for g, w_i, w_h, b_g in zip(_LSTM_GATES, _blocks(params.w_i, 4),
                              _blocks(params.w_h, 4), _blocks(b, 4)):
    out[input_names[g]] = {"kernel": w_i}
    out[f"h{g}"] = {"kernel": w_h, "bias": b_g}
  return out


def _swap_g_f(array):
  """Gate blocks ``i, g, f, o`` (Flax's ConvLSTM) <-> ``i, f, g, o``."""
  i, a, b, o = _blocks(array, 4)
  return jnp.concatenate([i, b, a, o], axis=-1)


_FLAX_FORGET_SHIFT = 1.0  # Flax's ConvLSTMCell computes sigmoid(f + 1)


def _conv_lstm_from_flax(flax_params):
  convs = {}
  for name in ("ih", "hh"):
    kernel = _get(flax_params, name, "kernel")
    bias = (_get(flax_params, name, "bias") if "bias" in flax_params.get(name, {})
            else jnp.zeros(kernel.shape[-1:], kernel.dtype))
    convs[name] = (_swap_g_f(kernel), _swap_g_f(bias))
  (w_i, b_i), (w_h, b_h) = convs["ih"], convs["hh"]
  hidden = w_h.shape[-2]
  b_i = b_i.at[hidden:2 * hidden].add(_FLAX_FORGET_SHIFT)
  return conv_lstm.ConvLSTMParams(w_i, w_h, b_i, b_h)


def _conv_lstm_to_flax(params):
  k = params.w_h.shape[-1]
  zeros = jnp.zeros((k,), params.w_h.dtype)
  b_i = base.add_biases(zeros, params.b_i)
  b_i = b_i.at[k // 4:k // 2].add(-_FLAX_FORGET_SHIFT)
  b_h = base.add_biases(zeros, params.b_h)
  return {"ih": {"kernel": _swap_g_f(params.w_i), "bias": _swap_g_f(b_i)},
          "hh": {"kernel": _swap_g_f(params.w_h), "bias": _swap_g_f(b_h)}}


def _from_linen(cell, family: Optional[str], flax_params: Mapping):
  if family == "lstm":
    return _lstm_from_gates(flax_params, {g: f"i{g}" for g in _LSTM_GATES})
  if family == "gru":
    w_i = jnp.concatenate([_get(flax_params, f"i{g}", "kernel") for g in _GRU_GATES], 1)
    b_i = jnp.concatenate([_get(flax_params, f"i{g}", "bias") for g in _GRU_GATES])
    w_h = jnp.concatenate([_get(flax_params, f"h{g}", "kernel") for g in _GRU_GATES], 1)
    b_hn = _get(flax_params, "hn", "bias")
    b_h = jnp.concatenate([jnp.zeros(2 * b_hn.shape[0], b_hn.dtype), b_hn])
    return gru.GRUParams(w_i, w_h, b_i, b_h)
  if family == "mgu":
    w_i = jnp.concatenate([_get(flax_params, g, "kernel") for g in ("if", "in")], 1)
    b_i = jnp.concatenate([_get(flax_params, g, "bias") for g in ("if", "in")])
    w_h = jnp.concatenate([_get(flax_params, g, "kernel") for g in ("hf", "hn")], 1)
    b_hn = _get_optional(flax_params, "hn", "bias")
    if (b_hn is not None) != cell.reset_gate:  # Flax: "hn" has a bias iff reset_gate
      raise ValueError(
          f"flax_params: 'hn' has {'a' if b_hn is not None else 'no'} bias, so the "
          f"Flax MGUCell had reset_gate={b_hn is not None}; cell is {cell!r}")
    b_h = None if b_hn is None else jnp.concatenate([jnp.zeros_like(b_hn), b_hn])
    return gru.MGUParams(w_i, w_h, b_i, b_h)
  if family == "simple":
    return simple.SimpleRNNParams(_get(flax_params, "i", "kernel"),
                                  _get(flax_params, "h", "kernel"),
                                  _get(flax_params, "i", "bias"), None)
  if family == "conv_lstm":
    return _conv_lstm_from_flax(flax_params)
  raise _unsupported(cell)


def _to_linen(cell, family: Optional[str], params) -> dict:
  if family == "lstm":
    return _lstm_to_gates(params, {g: f"i{g}" for g in _LSTM_GATES})
  if family == "gru":
    k = params.w_i.shape[1]
    zeros = jnp.zeros((k,), params.w_i.dtype)
    b_i = base.add_biases(zeros, params.b_i)
    b_h = base.add_biases(zeros, params.b_h)
    hidden = k // 3
    b_i = b_i.at[:2 * hidden].add(b_h[:2 * hidden])  # r, z: same sum
    out = {}
    for g, w_i, w_h, b_g in zip(_GRU_GATES, _blocks(params.w_i, 3),
                                _blocks(params.w_h, 3), _blocks(b_i, 3)):
      out[f"i{g}"] = {"kernel": w_i, "bias": b_g}
      out[f"h{g}"] = {"kernel": w_h}
    out["hn"]["bias"] = b_h[2 * hidden:]
    return out
  if family == "mgu":
    hidden = params.w_h.shape[0]
    zeros = jnp.zeros((2 * hidden,), params.w_i.dtype)
    b_i = base.add_biases(zeros, params.b_i)
    b_h = base.add_biases(zeros, params.b_h)
    w_if, w_in = _blocks(params.w_i, 2)
    w_hf, w_hn = _blocks(params.w_h, 2)
    if not cell.reset_gate:  # b_hn adds to b_in: Flax's "hn" has no bias
      return {"if": {"kernel": w_if, "bias": b_i[:hidden] + b_h[:hidden]},
              "in": {"kernel": w_in, "bias": b_i[hidden:] + b_h[hidden:]},
              "hf": {"kernel": w_hf}, "hn": {"kernel": w_hn}}
    return {"if": {"kernel": w_if, "bias": b_i[:hidden] + b_h[:hidden]},
            "in": {"kernel": w_in, "bias": b_i[hidden:]},
            "hf": {"kernel": w_hf}, "hn": {"kernel": w_hn, "bias": b_h[hidden:]}}
  if family == "simple":
    zeros = jnp.zeros((params.w_h.shape[0],), params.w_h.dtype)
    return {"i": {"kernel": params.w_i,
                  "bias": base.add_biases(zeros, params.b_i, params.b_h)},
            "h": {"kernel": params.w_h}}
  if family == "conv_lstm":
    return _conv_lstm_to_flax(params)
  raise _no_peer(cell)


# ---------------------------------------------------------------- public
def from_flax(cell: base.Cell, flax_params: Any):
  """jaxrnn params for ``cell`` from a Flax cell: linen or nnx.

  Which of the three forms ``flax_params`` is, is read from its type and
  keys: an nnx module; a dict with ``"dense_i"`` or ``"if_"`` keys (an nnx
  cell's pure state); any other dict (linen). The module docstring lists
  each peer's param names and layout.

  Args:
    cell: ``LSTMCell()`` for Flax's ``LSTMCell``/``OptimizedLSTMCell`` (linen
      or nnx), ``GRUCell(reset_after=True)`` for Flax's ``GRUCell`` (linen or
      nnx), ``MGUCell()`` for linen's ``MGUCell`` (``MGUCell(reset_gate=
      False)`` for its ``reset_gate=False``), ``SimpleRNNCell()`` for Flax's
      ``SimpleCell`` (linen or nnx), or ``ConvLSTMCell(kernel_size)`` for
      linen's ``ConvLSTMCell`` (stride 1, padding ``"SAME"``, the Flax
      defaults). Each with the Flax cell's activations, where not the
      defaults (e.g. ``SimpleRNNCell("relu")``).
    flax_params: one of

      - a Flax linen cell's ``variables["params"]``;
      - a Flax nnx cell module (``nnx.LSTMCell``, ``nnx.OptimizedLSTMCell``,
        ``nnx.GRUCell``, ``nnx.SimpleCell``), whose params are read and whose
        type, activations and ``residual`` are checked against ``cell``;
      - the pure dict of an nnx cell's state,
        ``nnx.to_pure_dict(nnx.state(module))`` (``nnx.state(module)`` works
        as well). It does not record ``residual``: it is read as ``False``.

  Returns:
    ``cell``'s params. An nnx ``GRUCell``'s ``b_h`` is ``None`` (it has no
    recurrent bias), as is an LSTM's ``b_i`` and a simple cell's ``b_h``.

  Raises:
    TypeError: ``flax_params`` is neither a dict nor a Flax nnx cell.
    ValueError: Flax has no peer of ``cell``; ``flax_params`` is another
      cell's, misses a param, or has shapes ``cell`` cannot take.
  """
  family = _family(cell)
  if _nnx_module_kind(flax_params) is not None:
    kind = _check_nnx_module(cell, family, flax_params, "flax_params")
    params = _from_nnx_dict(cell, family, _nnx_module_params(flax_params, kind))
    if kind == "SimpleCell" and flax_params.residual:  # act(... + h W_h + h)
      params = params._replace(
          w_h=params.w_h + jnp.eye(params.w_h.shape[0], dtype=params.w_h.dtype))
  elif not isinstance(flax_params, Mapping):
    raise TypeError(
        "flax_params: expected a Flax linen params dict, a Flax nnx cell, or "
        f"the pure dict of an nnx cell's state; got {type(flax_params).__name__}")
  elif family is None:
    raise _unsupported(cell)
  elif _is_nnx_dict(flax_params):
    params = _from_nnx_dict(cell, family, flax_params)
  else:
    params = _from_linen(cell, family, flax_params)
  cell.check_params(params, "flax_params")
  return params


def to_flax(cell: base.Cell, params, module: Any = None):
  """Flax params for ``cell``'s ``params``: a linen dict, or a new nnx cell.

  Biases Flax lacks are added to the one in the same sum (see the module
  docstring); the function computed is the same, to float rounding.

  Args:
    cell: a jaxrnn cell with a Flax peer, as for :func:`from_flax`.
    params: ``cell``'s params (biases may be ``None``).
    module: ``None`` for a Flax linen params dict; or a Flax nnx cell
      (``nnx.LSTMCell``, ``nnx.OptimizedLSTMCell``, ``nnx.GRUCell``,
      ``nnx.SimpleCell``) to take the type, configuration and param dtype of.

  Returns:
    With ``module=None``, the linen cell's params (what goes under
    ``{"params": ...}``). With an nnx ``module``, a new module of the same
    type and configuration (a clone) holding ``params``, cast to its param
    dtype; ``module`` itself is unchanged.

  Raises:
    TypeError: ``module`` is not a Flax nnx cell.
    ValueError: Flax has no peer of ``cell``; ``module`` computes another
      function (another cell, other activations) or has other shapes than
      ``params``; or ``params.b_h`` has a non-zero ``n`` block (``b_hn``),
      which the nnx ``GRUCell`` cannot hold.
  """
  cell.check_params(params)
  family = _family(cell)
  if module is not None:
    return _to_nnx_module(cell, family, params, module)
  return _to_linen(cell, family, params)


def to_flax_carry(carry: base.LSTMState):
  """jaxrnn ``LSTMState(h, c)`` -> Flax's LSTM carry ``(c, h)``."""
  return (carry.c, carry.h)


def from_flax_carry(carry) -> base.LSTMState:
  """Flax's LSTM carry ``(c, h)`` -> jaxrnn ``LSTMState(h, c)``."""
  c, h = carry
  return base.LSTMState(h, c)
