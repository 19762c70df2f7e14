r"""The LSTM family: LSTM, peephole LSTM, coupled input-forget (CIFG) LSTM.

All three carry :class:`LSTMState` ``(h, c)`` and share the forget-bias
convention: ``forget_bias`` is *added to the forget gate's input bias at
initialisation* (Keras' ``unit_forget_bias``; Jozefowicz et al. 2015), never
at every step, so that weights imported from PyTorch reproduce it exactly.
It defaults to 1.0 under ``initializer="default"`` and to 0.0 under
``initializer="pytorch"`` (PyTorch's own distribution).

Each takes ``activation`` (:math:`\phi` below: the candidate's and the cell
output's, default ``"tanh"``) and ``recurrent_activation`` (:math:`\sigma`:
the gates', default ``"sigmoid"``), Keras 3's names and meanings; Flax calls
them ``activation_fn`` and ``gate_fn``. A value is a name from
``jaxrnn/_src/cells/activations.py`` (Keras 3's) or a callable. The native
kernels compute the defaults only; a cell with others runs on XLA.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import activations
from jaxrnn._src.cells import base
from jaxrnn._src.cells import initializers


class LSTMParams(NamedTuple):
  """Params of :class:`LSTMCell`; gate blocks in the order ``i, f, g, o``.

  Attributes:
    w_i: ``(input_size, 4*hidden_size)`` (PyTorch ``weight_ih_l0.T``).
    w_h: ``(hidden_size, 4*hidden_size)`` (``weight_hh_l0.T``).
    b_i: ``(4*hidden_size,)`` or ``None`` (``bias_ih_l0``).
    b_h: ``(4*hidden_size,)`` or ``None`` (``bias_hh_l0``).
  """

  w_i: jax.Array
  w_h: jax.Array
  b_i: Optional[jax.Array]
  b_h: Optional[jax.Array]


class PeepholeLSTMParams(NamedTuple):
  """Params of :class:`PeepholeLSTMCell`: :class:`LSTMParams` plus peepholes.

  Attributes:
    w_i, w_h, b_i, b_h: as in :class:`LSTMParams` (gates ``i, f, g, o``).
    p_i, p_f, p_o: diagonal peephole weights, each ``(hidden_size,)``.
  """

  w_i: jax.Array
  w_h: jax.Array
  b_i: Optional[jax.Array]
  b_h: Optional[jax.Array]
  p_i: jax.Array
  p_f: jax.Array
  p_o: jax.Array


class ProjectedLSTMParams(NamedTuple):
  """Params of :class:`ProjectedLSTMCell`; gates ``i, f, g, o``.

  Attributes:
    w_i: ``(input_size, 4*hidden_size)`` (PyTorch ``weight_ih_l0.T``).
    w_h: ``(proj_size, 4*hidden_size)`` (``weight_hh_l0.T``).
    b_i: ``(4*hidden_size,)`` or ``None`` (``bias_ih_l0``).
    b_h: ``(4*hidden_size,)`` or ``None`` (``bias_hh_l0``).
    w_p: projection, ``(hidden_size, proj_size)`` (``weight_hr_l0.T``).
  """

  w_i: jax.Array
  w_h: jax.Array
  b_i: Optional[jax.Array]
  b_h: Optional[jax.Array]
  w_p: jax.Array


class CIFGParams(NamedTuple):
  """Params of :class:`CIFGLSTMCell`; gate blocks in the order ``f, g, o``.

  Attributes:
    w_i: ``(input_size, 3*hidden_size)``.
    w_h: ``(hidden_size, 3*hidden_size)``.
    b_i: ``(3*hidden_size,)`` or ``None``.
    b_h: ``(3*hidden_size,)`` or ``None``.
  """

  w_i: jax.Array
  w_h: jax.Array
  b_i: Optional[jax.Array]
  b_h: Optional[jax.Array]


def with_forget_bias(w: initializers.FusedWeights, forget_gate: int,
                      hidden_size: int, forget_bias, initializer: str, *,
                      chrono: Optional[float] = None, key=None,
                      input_gate: Optional[int] = None):
  """The gate biases at initialisation: ``forget_bias`` added to the forget
  gate's ``b_i`` block or, with ``chrono``, the chrono initialisation
  (:func:`chrono_bias`) of the forget gate and, if the cell has one
  (``input_gate``), of the input gate; ``key`` draws it."""
  if chrono is None:
    if forget_bias is None:
      forget_bias = 1.0 if initializer == "default" else 0.0
    start = forget_gate * hidden_size
    return w._replace(b_i=w.b_i.at[start:start + hidden_size].add(forget_bias))
  if forget_bias is not None:
    raise ValueError(f"forget_bias, chrono: expected at most one of them, got "
                     f"forget_bias={forget_bias!r} and chrono={chrono!r}")
  b_f = chrono_bias(jax.random.fold_in(key, 0xC4), chrono, hidden_size, w.b_i.dtype)
  b_i, b_h = w.b_i, w.b_h
  for gate, value in ((forget_gate, b_f), (input_gate, -b_f)):
    if gate is not None:
      block = slice(gate * hidden_size, (gate + 1) * hidden_size)
      b_i, b_h = b_i.at[block].set(value), b_h.at[block].set(0)
  return w._replace(b_i=b_i, b_h=b_h)


def chrono_bias(key, t_max, hidden_size: int, dtype) -> jax.Array:
  r"""Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural
  networks warp time?", eq. 16): the forget gate's bias

  .. math:: b_f \sim \log\,\mathcal{U}([1, T_{max} - 1]), \qquad b_i = -b_f

  so that the cell's memory times spread up to ``T_max``, the longest
  dependency expected. The cell's ``b_h`` for these gates is 0, so that
  :math:`b_f` is the whole bias."""
  if (isinstance(t_max, bool) or not isinstance(t_max, (int, float))
      or not t_max > 2):
    raise ValueError(f"chrono: expected the longest dependency T_max, a number > 2, "
                     f"got {t_max!r}")
  draw = jnp.promote_types(dtype, jnp.float32)
  u = jax.random.uniform(key, (hidden_size,), draw, 1.0, t_max - 1.0)
  return jnp.log(u).astype(dtype)


@dataclasses.dataclass(frozen=True)
class LSTMCell(activations.WithActivations, base.Cell):
  r"""Long short-term memory cell, as ``torch.nn.LSTMCell``, Keras'
  ``LSTMCell`` and Flax's ``LSTMCell``.

  .. math::

    [i, f, g, o] &= x W_i + b_i + h W_h + b_h \\
    c' &= \sigma(f) \odot c + \sigma(i) \odot \phi(g) \\
    h' &= \sigma(o) \odot \phi(c'), \qquad y = h'

  with :math:`\sigma` = ``recurrent_activation`` (default the logistic
  sigmoid) and :math:`\phi` = ``activation`` (default ``tanh``). Gate order
  ``i, f, g, o`` (PyTorch's; Keras' ``i, f, c, o`` is the same order); carry
  :class:`LSTMState` ``(h, c)``.

  Attributes:
    activation: :math:`\phi`, of the candidate and of the cell output
      (Keras' ``activation``, Flax's ``activation_fn``): a Keras 3 name
      (``"tanh"``, ``"sigmoid"``, ``"hard_sigmoid"``, ``"relu"``, ``"gelu"``,
      ...: :ref:`activations`) or a callable;
      default ``"tanh"``.
    recurrent_activation: :math:`\sigma`, of the gates (Keras'
      ``recurrent_activation``, Flax's ``gate_fn``); default ``"sigmoid"``.
  """

  activation: activations.Activation = dataclasses.field(default="tanh", kw_only=True)
  recurrent_activation: activations.Activation = dataclasses.field(
      default="sigmoid", kw_only=True)

  params_type = LSTMParams
  form = "split"
  native_kernel = "lstm"
  carry_type = base.LSTMState
  num_gates = 4

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default",
           forget_bias: Optional[float] = None,
           chrono: Optional[float] = None) -> LSTMParams:
    """Params; ``forget_bias`` is added to the forget gate's ``b_i`` block;
    ``chrono=T_max`` instead draws the forget and input gates' biases by
    chrono initialisation (:func:`chrono_bias`)."""
    w = initializers.fused_weights(key, input_size, hidden_size, 4,
                                   dtype=dtype, initializer=initializer)
    return LSTMParams(*with_forget_bias(w, 1, hidden_size, forget_bias, initializer,
                                         chrono=chrono, key=key, input_gate=0))

  def pointwise(self, params, carry, z):
    del params
    return lstm_update(carry, z, self.activation, self.recurrent_activation)


def lstm_update(carry: base.LSTMState, z: jax.Array,
                activation: activations.Activation = "tanh",
                recurrent_activation: activations.Activation = "sigmoid"):
  """The LSTM's elementwise step from the gate pre-activations ``z`` (blocks
  ``i, f, g, o``): ``(LSTMState(h', c'), h')``."""
  gate = recurrent_activation
  i, f, g, o = activations.blocks(z, (gate, gate, activation, gate))
  c = f * carry.c + i * g
  h = o * activations.get(activation)(c)
  return base.LSTMState(h, c), h


@dataclasses.dataclass(frozen=True)
class ProjectedLSTMCell(LSTMCell):
  r"""LSTM with a projected hidden state (LSTMP; Sak et al., 2014), as
  ``torch.nn.LSTM(proj_size=...)``.

  .. math::

    [i, f, g, o] &= x W_i + b_i + h W_h + b_h \\
    c' &= \sigma(f) \odot c + \sigma(i) \odot \phi(g) \\
    h' &= \bigl(\sigma(o) \odot \phi(c')\bigr) W_p, \qquad y = h'

  with :math:`\sigma` = ``recurrent_activation`` (default the logistic
  sigmoid) and :math:`\phi` = ``activation`` (default ``tanh``). Gate order
  ``i, f, g, o``; carry :class:`LSTMState` ``(h, c)`` with ``h`` of size
  ``proj_size`` and ``c`` of size ``hidden_size``.

  Attributes:
    activation, recurrent_activation: as in :class:`LSTMCell`.
  """

  params_type = ProjectedLSTMParams

  def init(self, key, input_size, hidden_size, *, proj_size: int,
           dtype: Any = jnp.float32, initializer: str = "default",
           forget_bias: Optional[float] = None,
           chrono: Optional[float] = None) -> ProjectedLSTMParams:
    """Params; ``proj_size`` is the size of ``h`` and of the output;
    ``forget_bias`` and ``chrono`` as in :meth:`LSTMCell.init`."""
    base.check_sizes(input_size, hidden_size)
    if not isinstance(proj_size, int) or not 0 < proj_size < hidden_size:
      raise ValueError(f"proj_size: expected an int in [1, hidden_size="
                       f"{hidden_size}), as torch.nn.LSTM requires, got "
                       f"{proj_size!r}")
    k_w, k_p = jax.random.split(key)
    w = initializers.fused_weights(k_w, input_size, hidden_size, 4, dtype=dtype,
                                   initializer=initializer,
                                   recurrent_size=proj_size)
    w = with_forget_bias(w, 1, hidden_size, forget_bias, initializer,
                         chrono=chrono, key=key, input_gate=0)
    if initializer == "pytorch":
      w_p = initializers.uniform(k_p, (hidden_size, proj_size), hidden_size, dtype)
    else:
      w_p = jax.nn.initializers.lecun_normal()(
          k_p, (hidden_size, proj_size), jnp.promote_types(dtype, jnp.float32)
      ).astype(dtype)
    return ProjectedLSTMParams(*w, w_p)

  def hidden_size(self, params) -> int:
    return params.w_p.shape[0]

  def proj_size(self, params) -> int:
    return params.w_p.shape[1]

  def output_size(self, params) -> int:
    return self.proj_size(params)

  def carry_sizes(self, params) -> tuple:
    return (self.proj_size(params), self.hidden_size(params))

  def _param_shapes(self, params):
    hidden, proj = self.hidden_size(params), self.proj_size(params)
    return {**super()._param_shapes(params), "w_h": (proj, 4 * hidden),
            "w_p": (hidden, proj)}

  def check_params(self, params, name: str = "params") -> None:
    if isinstance(params, self.params_type) and len(getattr(params.w_p, "shape", ())) != 2:
      raise ValueError(f"{name}.w_p: expected a 2-D array, got "
                       f"{base.describe(params.w_p)}")
    super().check_params(params, name)

  def pointwise(self, params, carry, z):
    (_, c), h = super().pointwise(params, carry, z)
    h = h @ params.w_p
    return base.LSTMState(h, c), h


@dataclasses.dataclass(frozen=True)
class PeepholeLSTMCell(activations.WithActivations, base.Cell):
  r"""LSTM with diagonal peephole connections (Gers & Schmidhuber, 2000).

  The input and forget gates see the previous cell state, the output gate
  the new one:

  .. math::

    [z_i, z_f, z_g, z_o] &= x W_i + b_i + h W_h + b_h \\
    i &= \sigma(z_i + p_i \odot c), \quad f = \sigma(z_f + p_f \odot c) \\
    c' &= f \odot c + i \odot \phi(z_g) \\
    o &= \sigma(z_o + p_o \odot c'), \quad h' = o \odot \phi(c'), \quad y = h'

  with :math:`\sigma` = ``recurrent_activation`` (default the logistic
  sigmoid) and :math:`\phi` = ``activation`` (default ``tanh``). Gate order
  ``i, f, g, o``; carry :class:`LSTMState` ``(h, c)``. Peephole weights start
  at zero under ``initializer="default"`` (the cell starts as a plain LSTM)
  and uniform under ``"pytorch"``.

  Attributes:
    activation, recurrent_activation: as in :class:`LSTMCell`.
  """

  activation: activations.Activation = dataclasses.field(default="tanh", kw_only=True)
  recurrent_activation: activations.Activation = dataclasses.field(
      default="sigmoid", kw_only=True)

  params_type = PeepholeLSTMParams
  form = "split"
  native_kernel = "peephole"
  carry_type = base.LSTMState
  num_gates = 4

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default",
           forget_bias: Optional[float] = None,
           chrono: Optional[float] = None) -> PeepholeLSTMParams:
    """Params; ``forget_bias`` and ``chrono`` as in :meth:`LSTMCell.init`."""
    k_w, k_p = jax.random.split(key)
    w = initializers.fused_weights(k_w, input_size, hidden_size, 4,
                                   dtype=dtype, initializer=initializer)
    w = with_forget_bias(w, 1, hidden_size, forget_bias, initializer,
                         chrono=chrono, key=key, input_gate=0)
    if initializer == "pytorch":
      p = initializers.uniform(k_p, (3, hidden_size), hidden_size, dtype)
    else:
      p = jnp.zeros((3, hidden_size), dtype)
    return PeepholeLSTMParams(*w, p[0], p[1], p[2])

  def _param_shapes(self, params):
    hidden = (self.hidden_size(params),)
    return {**super()._param_shapes(params), "p_i": hidden, "p_f": hidden,
            "p_o": hidden}

  def pointwise(self, params, carry, z):
    gate = activations.get(self.recurrent_activation)
    act = activations.get(self.activation)
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)
    i = gate(z_i + params.p_i * carry.c)
    f = gate(z_f + params.p_f * carry.c)
    c = f * carry.c + i * act(z_g)
    h = gate(z_o + params.p_o * c) * act(c)
    return base.LSTMState(h, c), h


@dataclasses.dataclass(frozen=True)
class CIFGLSTMCell(activations.WithActivations, base.Cell):
  r"""Coupled input-forget gate LSTM (Greff et al., 2017): ``i = 1 - f``.

  .. math::

    [f, g, o] &= x W_i + b_i + h W_h + b_h \\
    c' &= \sigma(f) \odot c + (1 - \sigma(f)) \odot \phi(g) \\
    h' &= \sigma(o) \odot \phi(c'), \qquad y = h'

  with :math:`\sigma` = ``recurrent_activation`` (default the logistic
  sigmoid) and :math:`\phi` = ``activation`` (default ``tanh``). Gate order
  ``f, g, o`` (no input-gate weights); carry :class:`LSTMState` ``(h, c)``.

  Attributes:
    activation, recurrent_activation: as in :class:`LSTMCell`.
  """

  activation: activations.Activation = dataclasses.field(default="tanh", kw_only=True)
  recurrent_activation: activations.Activation = dataclasses.field(
      default="sigmoid", kw_only=True)

  params_type = CIFGParams
  form = "split"
  native_kernel = "cifg"
  carry_type = base.LSTMState
  num_gates = 3

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default",
           forget_bias: Optional[float] = None,
           chrono: Optional[float] = None) -> CIFGParams:
    """Params; ``forget_bias`` and ``chrono`` as in :meth:`LSTMCell.init`
    (the input gate is ``1 - f``, so ``chrono`` sets the forget gate's only)."""
    w = initializers.fused_weights(key, input_size, hidden_size, 3,
                                   dtype=dtype, initializer=initializer)
    return CIFGParams(*with_forget_bias(w, 0, hidden_size, forget_bias, initializer,
                                         chrono=chrono, key=key))

  def pointwise(self, params, carry, z):
    gate = self.recurrent_activation
    f, g, o = activations.blocks(z, (gate, self.activation, gate))
    c = f * carry.c + (1 - f) * g
    h = o * activations.get(self.activation)(c)
    return base.LSTMState(h, c), h
