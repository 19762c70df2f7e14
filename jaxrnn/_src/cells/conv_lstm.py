"""The convolutional LSTM (Shi et al., 2015), in 1, 2 or 3 spatial dimensions.

"Convolutional LSTM Network: A Machine Learning Approach for Precipitation
Nowcasting" (NeurIPS 2015), equation (3) without the peepholes, as Flax's
``ConvLSTMCell``, Haiku's ``Conv{1,2,3}DLSTM`` and Keras' ``ConvLSTM{1,2,3}D``
compute it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import initializers
from jaxrnn._src.cells import lstm

_LAYOUTS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"),
            3: ("NDHWC", "DHWIO", "NDHWC")}


class ConvLSTMParams(NamedTuple):
  """Params of :class:`ConvLSTMCell`; gate blocks ``i, f, g, o`` on the last
  axis, kernels laid out ``(*kernel_size, in, out)`` (Flax's and TensorFlow's).

  Attributes:
    w_i: ``(*kernel_size, input_channels, 4*hidden_channels)``.
    w_h: ``(*kernel_size, hidden_channels, 4*hidden_channels)``.
    b_i: ``(4*hidden_channels,)`` or ``None``.
    b_h: ``(4*hidden_channels,)`` or ``None``.
  """

  w_i: jax.Array
  w_h: jax.Array
  b_i: Optional[jax.Array]
  b_h: Optional[jax.Array]


def convolve(x: jax.Array, w: jax.Array) -> jax.Array:
  """``x`` ``(*lead, *spatial, in)`` cross-correlated with ``w`` ``(*kernel,
  in, out)``, stride 1, padding ``"SAME"`` (``(k - 1) // 2`` before, the rest
  after: XLA's, hence Flax's); any number of leading axes."""
  n = w.ndim - 2
  lead, rest = x.shape[:-(n + 1)], x.shape[-(n + 1):]
  flat = x.reshape((math.prod(lead),) + rest)
  numbers = jax.lax.conv_dimension_numbers(flat.shape, w.shape, _LAYOUTS[n])
  y = jax.lax.conv_general_dilated(flat, w, (1,) * n, "SAME",
                                   dimension_numbers=numbers)
  return y.reshape(lead + y.shape[1:])


@dataclasses.dataclass(frozen=True)
class ConvLSTMCell(base.Cell):
  r"""Convolutional LSTM cell (Shi et al., 2015).

  .. math::

    [i, f, g, o] &= W_i \star x + b_i + W_h \star h + b_h \\
    c' &= \sigma(f) \odot c + \sigma(i) \odot \tanh(g) \\
    h' &= \sigma(o) \odot \tanh(c'), \qquad y = h'

  where :math:`\star` is a convolution over the spatial axes (stride 1,
  padding ``"SAME"``, so ``h`` keeps the input's spatial shape). Gate order
  ``i, f, g, o``; carry :class:`LSTMState` ``(h, c)``, each
  ``(*batch, *spatial, hidden_channels)``.

  The spatial and channel axes are the cell's *feature axes*: a step's input
  is ``(*batch, *spatial, input_channels)``, a sequence ``(*batch, T,
  *spatial, input_channels)``, and ``initial_carry(params, batch_shape)``
  takes ``batch_shape = (*batch, *spatial)``. ``input_size`` and
  ``hidden_size`` in ``init`` are the channel counts. As in the LSTM,
  ``forget_bias`` (1.0 under the default initializer, Flax's ``+ 1``) is
  added to the forget block of ``b_i`` at initialisation.

  Attributes:
    kernel_size: one odd or even size per spatial axis, 1 to 3 axes: ``(k,)``
      for sequences of 1-D signals, ``(k, k)`` for images, ``(k, k, k)`` for
      volumes.
  """

  kernel_size: Sequence[int] = (3, 3)

  params_type = ConvLSTMParams
  carry_type = base.LSTMState
  num_gates = 4

  def __post_init__(self):
    k = self.kernel_size
    if (not isinstance(k, (tuple, list)) or not 1 <= len(k) <= 3 or
        not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in k)):
      raise ValueError("kernel_size: expected 1 to 3 positive ints (one per "
                       f"spatial axis), got {k!r}")
    object.__setattr__(self, "kernel_size", tuple(k))

  def feature_axes(self) -> int:
    return len(self.kernel_size) + 1

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default",
           forget_bias: Optional[float] = None,
           chrono: Optional[float] = None) -> ConvLSTMParams:
    """Params. ``"default"``: LeCun normal kernels (fan-in over the kernel
    window and input channels, as Flax's ``Conv``) and zero biases;
    ``"pytorch"``: everything uniform in ``±1/sqrt(hidden_size)``."""
    base.check_sizes(input_size, hidden_size)
    base.check_initializer(initializer)
    k = 4 * hidden_size
    shapes = ((*self.kernel_size, input_size, k), (*self.kernel_size, hidden_size, k))
    keys = jax.random.split(key, 4)
    if initializer == "pytorch":
      w_i, w_h = (initializers.uniform(kk, s, hidden_size, dtype)
                  for kk, s in zip(keys, shapes))
      b_i, b_h = (initializers.uniform(kk, (k,), hidden_size, dtype) for kk in keys[2:])
    else:
      draw = jnp.promote_types(dtype, jnp.float32)
      w_i, w_h = (jax.nn.initializers.lecun_normal()(kk, s, draw).astype(dtype)
                  for kk, s in zip(keys, shapes))
      b_i = b_h = jnp.zeros((k,), dtype)
    w = initializers.FusedWeights(w_i, w_h, b_i, b_h)
    return ConvLSTMParams(*lstm.with_forget_bias(w, 1, hidden_size, forget_bias,
                                                 initializer, chrono=chrono, key=key,
                                                 input_gate=0))

  def input_projection(self, params, x):
    return base.add_biases(convolve(x, params.w_i), params.b_i, params.b_h)

  def recurrence(self, params, carry, xp, h_mask=None):
    z = xp + convolve(base.drop(carry.h, h_mask), params.w_h)
    return lstm.lstm_update(carry, z)

  def input_size(self, params) -> int:
    return params.w_i.shape[-2]

  def hidden_size(self, params) -> int:
    return params.w_h.shape[-2]

  def _size_fields(self) -> dict:
    n = len(self.kernel_size) + 2
    return {"w_i": n, "w_h": n}

  def _param_shapes(self, params) -> dict:
    hidden = self.hidden_size(params)
    k = 4 * hidden
    return {"w_i": (*self.kernel_size, self.input_size(params), k),
            "w_h": (*self.kernel_size, hidden, k), "b_i": (k,), "b_h": (k,)}

  def check_input(self, params, x, name: str) -> None:
    super().check_input(params, x, name)
    if x.ndim < self.feature_axes():
      raise ValueError(f"{name}: {type(self).__name__} with {len(self.kernel_size)} "
                       f"spatial axes expects (*batch, *spatial, channels), got "
                       f"shape {base.shape_str(x.shape)}")
