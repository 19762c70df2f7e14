"""Layer-normalised LSTM and GRU (Ba, Kiros & Hinton, 2016, "Layer
Normalization", section 3.1 and its LSTM of the supplementary material).

The input and the recurrent pre-activations are normalised *separately*,
each over all of its gate blocks together, so that neither term can swamp the
other; the LSTM also normalises its cell state before the output ``tanh``
(the carried ``c`` itself is not normalised). Each normalisation has its own
learned gain; the shifts of the two pre-activation normalisations add to the
gate bias, so they are folded into one bias ``b`` (the same function, fewer
parameters). ``LN(z) = γ ⊙ (z − mean(z)) / sqrt(var(z) + ε)`` over the last
axis, ``ε = 1e-5`` by default.

Neither cell splits its step into a matmul and an elementwise part (the
normalisation of ``h W_h`` is not elementwise), so sequence layers run them
on the autodiff engine.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import initializers
from jaxrnn._src.cells import lstm


def normalize(z: jax.Array, gain: jax.Array, epsilon: float,
              shift: Optional[jax.Array] = None) -> jax.Array:
  """``gain ⊙ (z − mean) / sqrt(var + ε) (+ shift)`` over the last axis."""
  mean = jnp.mean(z, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(z - mean), axis=-1, keepdims=True)
  out = (z - mean) * jax.lax.rsqrt(var + epsilon) * gain
  return out if shift is None else out + shift


class LayerNormLSTMParams(NamedTuple):
  """Params of :class:`LayerNormLSTMCell`; gate blocks ``i, f, g, o``.

  Attributes:
    w_i: ``(input_size, 4*hidden_size)``.
    w_h: ``(hidden_size, 4*hidden_size)``.
    b: ``(4*hidden_size,)``, the gate bias (with both normalisations' shifts).
    g_i: ``(4*hidden_size,)``, gain of the input normalisation.
    g_h: ``(4*hidden_size,)``, gain of the recurrent normalisation.
    g_c: ``(hidden_size,)``, gain of the cell-state normalisation.
    b_c: ``(hidden_size,)``, shift of the cell-state normalisation.
  """

  w_i: jax.Array
  w_h: jax.Array
  b: jax.Array
  g_i: jax.Array
  g_h: jax.Array
  g_c: jax.Array
  b_c: jax.Array


class LayerNormGRUParams(NamedTuple):
  """Params of :class:`LayerNormGRUCell`; gate blocks ``r, z, n``.

  Attributes:
    w_i: ``(input_size, 3*hidden_size)``.
    w_h: ``(hidden_size, 3*hidden_size)``.
    b: ``(3*hidden_size,)``, the gate bias.
    b_hn: ``(hidden_size,)``, the bias of the candidate's recurrent term,
      inside the reset (as PyTorch's ``b_hn``).
    g_i: ``(3*hidden_size,)``, gain of the input normalisation.
    g_h: ``(3*hidden_size,)``, gain of the recurrent normalisation.
  """

  w_i: jax.Array
  w_h: jax.Array
  b: jax.Array
  b_hn: jax.Array
  g_i: jax.Array
  g_h: jax.Array


@dataclasses.dataclass(frozen=True)
class _LayerNormCell(base.Cell):
  """What the two cells share: weights from the usual initialisers, unit
  gains, and the input projection ``LN(x W_i) + b`` (one normalisation per
  step's input, so it is hoisted out of the time loop like a matmul)."""

  epsilon: float = 1e-5

  def input_projection(self, params, x):
    return normalize(x @ params.w_i, params.g_i, self.epsilon, params.b)

  def input_weights(self, params):
    raise NotImplementedError(f"{type(self).__name__}: the input projection is "
                              "not affine (it is normalised)")


  def _fused(self, key, input_size, hidden_size, dtype, initializer):
    return initializers.fused_weights(key, input_size, hidden_size, self.num_gates,
                                      dtype=dtype, initializer=initializer)

  def _param_shapes(self, params) -> dict:
    hidden = self.hidden_size(params)
    k = self.num_gates * hidden
    return {"w_i": (self.input_size(params), k), "w_h": (hidden, k), "b": (k,),
            "g_i": (k,), "g_h": (k,)}


@dataclasses.dataclass(frozen=True)
class LayerNormLSTMCell(_LayerNormCell):
  r"""Layer-normalised LSTM (Ba et al., 2016).

  .. math::

    [i, f, g, o] &= \mathrm{LN}(x W_i; g_i) + \mathrm{LN}(h W_h; g_h) + b \\
    c' &= \sigma(f) \odot c + \sigma(i) \odot \tanh(g) \\
    h' &= \sigma(o) \odot \tanh(\mathrm{LN}(c'; g_c, b_c)), \qquad y = h'

  Gate order ``i, f, g, o``; carry :class:`LSTMState` ``(h, c)``;
  ``forget_bias`` (1.0 under ``initializer="default"``) is added to ``b``'s
  forget block at initialisation.

  Attributes:
    epsilon: added to the variance in every normalisation.
  """

  params_type = LayerNormLSTMParams
  carry_type = base.LSTMState
  num_gates = 4

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default",
           forget_bias: Optional[float] = None,
           chrono: Optional[float] = None) -> LayerNormLSTMParams:
    """Params: weights as :class:`LSTMCell`'s, gains 1, shifts 0;
    ``forget_bias`` and ``chrono`` as in :meth:`LSTMCell.init`."""
    w = lstm.with_forget_bias(self._fused(key, input_size, hidden_size, dtype,
                                          initializer),
                              1, hidden_size, forget_bias, initializer,
                              chrono=chrono, key=key, input_gate=0)
    ones = lambda n: jnp.ones((n,), dtype)
    return LayerNormLSTMParams(w.w_i, w.w_h, w.b_i + w.b_h, ones(4 * hidden_size),
                               ones(4 * hidden_size), ones(hidden_size),
                               jnp.zeros((hidden_size,), dtype))

  def recurrence(self, params, carry, xp, h_mask=None):
    hw = base.drop(carry.h, h_mask) @ params.w_h
    i, f, g, o = base.gates(xp + normalize(hw, params.g_h, self.epsilon), "ssts")
    c = f * carry.c + i * g
    h = o * jnp.tanh(normalize(c, params.g_c, self.epsilon, params.b_c))
    return base.LSTMState(h, c), h

  def _param_shapes(self, params) -> dict:
    hidden = self.hidden_size(params)
    return {**super()._param_shapes(params), "g_c": (hidden,), "b_c": (hidden,)}


@dataclasses.dataclass(frozen=True)
class LayerNormGRUCell(_LayerNormCell):
  r"""Layer-normalised GRU (Ba et al., 2016), reset after the recurrent
  matmul, in :class:`GRUCell`'s conventions.

  With ``[x_r, x_z, x_n] = LN(x W_i; g_i) + b`` and ``[h_r, h_z, h_n] =
  LN(h W_h; g_h)``:

  .. math::

    r &= \sigma(x_r + h_r), \qquad z = \sigma(x_z + h_z) \\
    n &= \tanh(x_n + r \odot (h_n + b_{hn})) \\
    h' &= (1 - z) \odot n + z \odot h, \qquad y = h'

  Gate order ``r, z, n``; carry :class:`RNNState` ``(h,)``.

  Attributes:
    epsilon: added to the variance in every normalisation.
  """

  params_type = LayerNormGRUParams
  carry_type = base.RNNState
  num_gates = 3

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> LayerNormGRUParams:
    """Params: weights as :class:`GRUCell`'s, gains 1."""
    w = self._fused(key, input_size, hidden_size, dtype, initializer)
    k = 3 * hidden_size
    b = w.b_i + w.b_h.at[2 * hidden_size:].set(0)
    return LayerNormGRUParams(w.w_i, w.w_h, b, w.b_h[2 * hidden_size:],
                              jnp.ones((k,), dtype), jnp.ones((k,), dtype))

  def recurrence(self, params, carry, xp, h_mask=None):
    hidden = params.w_h.shape[0]
    hw = normalize(base.drop(carry.h, h_mask) @ params.w_h, params.g_h, self.epsilon)
    r, z = jnp.split(base.sigmoid(xp[..., :2 * hidden] + hw[..., :2 * hidden]), 2,
                     axis=-1)
    n = jnp.tanh(xp[..., 2 * hidden:] + r * (hw[..., 2 * hidden:] + params.b_hn))
    h = (1 - z) * n + z * carry.h
    return base.RNNState(h), h

  def _param_shapes(self, params) -> dict:
    return {**super()._param_shapes(params), "b_hn": (self.hidden_size(params),)}
