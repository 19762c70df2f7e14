"""Equinox ``nn.LSTMCell`` and ``nn.GRUCell``, both ways.

Import reads the module's arrays (Equinox is not imported); export builds an
Equinox module, so it imports Equinox. Equinox stores ``weight_ih`` as
``(gates*hidden, in)`` like PyTorch, with gate orders ``i, f, g, o`` and
``r, z, n``. Its LSTM has a single bias, and its GRU one input bias plus
``bias_n``, PyTorch's ``b_hn`` (reset after the recurrent matmul). Export adds
jaxrnn's biases into those where the sum is the same; the mathematics is
unchanged.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import activations
from jaxrnn._src.cells import base
from jaxrnn._src.cells import gru
from jaxrnn._src.cells import lstm


def _unsupported(what) -> ValueError:
  return ValueError(
      f"{what}: Equinox has nn.LSTMCell (plain LSTM) and nn.GRUCell (reset "
      "after the recurrent matmul) only")


def from_equinox(module: Any) -> tuple:
  """``(cell, params)`` from an ``equinox.nn.LSTMCell`` or ``GRUCell``."""
  kind = type(module).__name__
  w_i, w_h = jnp.asarray(module.weight_ih).T, jnp.asarray(module.weight_hh).T
  if kind == "LSTMCell":
    bias = None if module.bias is None else jnp.asarray(module.bias)
    cell, params = lstm.LSTMCell(), lstm.LSTMParams(w_i, w_h, bias, None)
  elif kind == "GRUCell":
    cell = gru.GRUCell(reset_after=True)
    if module.bias is None:
      params = gru.GRUParams(w_i, w_h, None, None)
    else:
      b_n = jnp.asarray(module.bias_n)
      b_h = jnp.concatenate([jnp.zeros(2 * b_n.shape[0], b_n.dtype), b_n])
      params = gru.GRUParams(w_i, w_h, jnp.asarray(module.bias), b_h)
  else:
    raise _unsupported(f"module: got {kind}")
  cell.check_params(params, f"{kind}")
  return cell, params


def to_equinox(cell: base.Cell, params) -> Any:
  """An ``equinox.nn.LSTMCell`` or ``GRUCell`` holding ``params``."""
  import equinox as eqx  # only this function needs Equinox

  cell.check_params(params)
  if type(cell) in (lstm.LSTMCell, gru.GRUCell):
    different = activations.describe(cell, activations.DEFAULTS)
    if different:
      raise ValueError(f"cell: Equinox's cells are fixed to tanh and sigmoid; {different}")
  input_size, hidden = cell.input_size(params), cell.hidden_size(params)
  dtype = params.w_i.dtype
  use_bias = params.b_i is not None or params.b_h is not None
  zeros = jnp.zeros((cell.num_gates * hidden,), dtype)
  template_key = jax.random.key(0)  # every array is replaced below
  if type(cell) is lstm.LSTMCell:
    module = eqx.nn.LSTMCell(input_size, hidden, use_bias=use_bias, dtype=dtype,
                             key=template_key)
    new = [params.w_i.T, params.w_h.T]
    where = lambda m: (m.weight_ih, m.weight_hh)
    if use_bias:
      new.append(base.add_biases(zeros, params.b_i, params.b_h))
      where = lambda m: (m.weight_ih, m.weight_hh, m.bias)
    return eqx.tree_at(where, module, tuple(new))
  if type(cell) is gru.GRUCell and cell.reset_after:
    module = eqx.nn.GRUCell(input_size, hidden, use_bias=use_bias, dtype=dtype,
                            key=template_key)
    if not use_bias:
      return eqx.tree_at(lambda m: (m.weight_ih, m.weight_hh), module,
                         (params.w_i.T, params.w_h.T))
    b_i, b_h = base.add_biases(zeros, params.b_i), base.add_biases(zeros, params.b_h)
    b_i = b_i.at[:2 * hidden].add(b_h[:2 * hidden])  # r, z: same sum
    return eqx.tree_at(lambda m: (m.weight_ih, m.weight_hh, m.bias, m.bias_n), module,
                       (params.w_i.T, params.w_h.T, b_i, b_h[2 * hidden:]))
  if type(cell) is gru.GRUCell:
    raise ValueError(
        "cell: GRUCell(reset_after=False) resets before the recurrent matmul "
        "(Cho et al.); Equinox's GRUCell resets after it, a different function")
  raise _unsupported(f"cell: got {cell!r}")
