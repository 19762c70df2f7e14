"""Flax linen ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell`` and ``MGUCell``
params, both ways.

Works on the params dicts (``variables["params"]``); Flax itself is not
imported. Both Flax LSTM cells name their parameters the same way: per gate
``g`` in ``i, f, g, o``, an input kernel ``"i{g}"`` without bias and a
recurrent kernel ``"h{g}"`` with bias. The GRU has input kernels ``"ir",
"iz", "in"`` with biases, recurrent kernels ``"hr", "hz"`` without and
``"hn"`` with bias (PyTorch's ``b_hn``). The MGU (``reset_gate=True``) has
``"if", "in"`` with biases, ``"hf"`` without and ``"hn"`` with. The
``ConvLSTMCell`` has two convolutions, ``"ih"`` and ``"hh"``, each with a
kernel ``(*kernel_size, in, 4*features)`` and a bias, gate blocks in the
order ``i, g, f, o``, and adds 1 to the forget gate at every step; jaxrnn
holds that 1 in the forget block of ``b_i`` (its ``forget_bias``).

Where jaxrnn has a bias Flax lacks (the LSTM's ``b_i``; the GRU's ``r, z``
blocks of ``b_h``), export adds it to the bias Flax has in the same sum: the
mathematics is unchanged, and results agree to float rounding. Flax's carry
is ``(c, h)``; use :func:`to_flax_carry` and :func:`from_flax_carry`.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import conv_lstm
from jaxrnn._src.cells import gru
from jaxrnn._src.cells import lstm

_LSTM_GATES = ("i", "f", "g", "o")
_GRU_GATES = ("r", "z", "n")


def _get(params: Mapping, name: str, leaf: str):
  try:
    return jnp.asarray(params[name][leaf])
  except (KeyError, TypeError):
    raise ValueError(f"flax_params: missing {name!r}/{leaf!r}; got keys "
                     f"{sorted(params) if isinstance(params, Mapping) else type(params).__name__}"
                     ) from None


def _blocks(array, n):
  return jnp.split(array, n, axis=-1)


def _unsupported(cell) -> ValueError:
  return ValueError(
      f"cell: Flax linen has no equivalent of {cell!r}: it has LSTMCell / "
      "OptimizedLSTMCell (plain LSTM), GRUCell and MGUCell (reset after the "
      "recurrent matmul) and ConvLSTMCell only")


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


def from_flax(cell: base.Cell, flax_params: Mapping[str, Any]):
  """jaxrnn params for ``cell`` from a Flax linen cell's params dict.

  Args:
    cell: ``LSTMCell()`` for Flax's ``LSTMCell``/``OptimizedLSTMCell``,
      ``GRUCell(reset_after=True)`` for Flax's ``GRUCell``,
      ``MGUCell(reset_after=True)`` for Flax's ``MGUCell``, or
      ``ConvLSTMCell(kernel_size)`` for Flax's ``ConvLSTMCell`` (stride 1,
      padding ``"SAME"``, the Flax defaults).
    flax_params: ``variables["params"]`` of the Flax cell.
  """
  if type(cell) is lstm.LSTMCell:
    w_i = jnp.concatenate([_get(flax_params, f"i{g}", "kernel") for g in _LSTM_GATES], 1)
    w_h = jnp.concatenate([_get(flax_params, f"h{g}", "kernel") for g in _LSTM_GATES], 1)
    b_h = jnp.concatenate([_get(flax_params, f"h{g}", "bias") for g in _LSTM_GATES])
    params = lstm.LSTMParams(w_i, w_h, None, b_h)
  elif type(cell) is gru.GRUCell and cell.reset_after:
    w_i = jnp.concatenate([_get(flax_params, f"i{g}", "kernel") for g in _GRU_GATES], 1)
    b_i = jnp.concatenate([_get(flax_params, f"i{g}", "bias") for g in _GRU_GATES])
    w_h = jnp.concatenate([_get(flax_params, f"h{g}", "kernel") for g in _GRU_GATES], 1)
    b_hn = _get(flax_params, "hn", "bias")
    b_h = jnp.concatenate([jnp.zeros(2 * b_hn.shape[0], b_hn.dtype), b_hn])
    params = gru.GRUParams(w_i, w_h, b_i, b_h)
  elif type(cell) is gru.MGUCell and cell.reset_after:
    w_i = jnp.concatenate([_get(flax_params, g, "kernel") for g in ("if", "in")], 1)
    b_i = jnp.concatenate([_get(flax_params, g, "bias") for g in ("if", "in")])
    w_h = jnp.concatenate([_get(flax_params, g, "kernel") for g in ("hf", "hn")], 1)
    b_hn = _get(flax_params, "hn", "bias")
    params = gru.MGUParams(w_i, w_h, b_i, jnp.concatenate([jnp.zeros_like(b_hn), b_hn]))
  elif type(cell) is conv_lstm.ConvLSTMCell:
    params = _conv_lstm_from_flax(flax_params)
  else:
    raise _unsupported(cell)
  cell.check_params(params, "flax_params")
  return params


def to_flax(cell: base.Cell, params) -> dict:
  """A Flax linen params dict (``{"params": ...}`` content) for ``cell``."""
  cell.check_params(params)
  if type(cell) is lstm.LSTMCell:
    k = params.w_i.shape[1]
    b = base.add_biases(jnp.zeros((k,), params.w_i.dtype), params.b_i, params.b_h)
    out = {}
    for g, w_i, w_h, b_g in zip(_LSTM_GATES, _blocks(params.w_i, 4),
                                _blocks(params.w_h, 4), _blocks(b, 4)):
      out[f"i{g}"] = {"kernel": w_i}
      out[f"h{g}"] = {"kernel": w_h, "bias": b_g}
    return out
  if type(cell) is gru.GRUCell and cell.reset_after:
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
  if type(cell) is gru.MGUCell and cell.reset_after:
    hidden = params.w_h.shape[0]
    zeros = jnp.zeros((2 * hidden,), params.w_i.dtype)
    b_i = base.add_biases(zeros, params.b_i)
    b_h = base.add_biases(zeros, params.b_h)
    w_if, w_in = _blocks(params.w_i, 2)
    w_hf, w_hn = _blocks(params.w_h, 2)
    return {"if": {"kernel": w_if, "bias": b_i[:hidden] + b_h[:hidden]},
            "in": {"kernel": w_in, "bias": b_i[hidden:]},
            "hf": {"kernel": w_hf}, "hn": {"kernel": w_hn, "bias": b_h[hidden:]}}
  if type(cell) is conv_lstm.ConvLSTMCell:
    return _conv_lstm_to_flax(params)
  if type(cell) in (gru.GRUCell, gru.MGUCell):
    raise ValueError(
        f"cell: {type(cell).__name__}(reset_after=False) resets before the "
        "recurrent matmul; Flax's cell resets after it, a different function")
  raise _unsupported(cell)


def to_flax_carry(carry: base.LSTMState):
  """jaxrnn ``LSTMState(h, c)`` -> Flax's LSTM carry ``(c, h)``."""
  return (carry.c, carry.h)


def from_flax_carry(carry) -> base.LSTMState:
  """Flax's LSTM carry ``(c, h)`` -> jaxrnn ``LSTMState(h, c)``."""
  c, h = carry
  return base.LSTMState(h, c)
