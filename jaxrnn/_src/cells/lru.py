"""The linear recurrent unit (Orvieto et al., 2023, "Resurrecting Recurrent
Neural Networks for Long Sequences")."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.cells import linear_recurrence


class LRUParams(NamedTuple):
  """Params of :class:`LRUCell` (state size ``N``, input and output size
  ``I``).

  Attributes:
    nu_log, theta_log: ``(N,)``; ``λ = exp(−exp(nu_log) + i·exp(theta_log))``.
    gamma_log: ``(N,)``, the input normalisation ``γ = exp(gamma_log)``.
    b_re, b_im: ``(I, N)``, the input matrix ``B`` (``x B``, row vectors).
    c_re, c_im: ``(N, I)``, the output matrix ``C``.
    d: ``(I,)``, the diagonal skip connection ``D``.
  """

  nu_log: jax.Array
  theta_log: jax.Array
  gamma_log: jax.Array
  b_re: jax.Array
  b_im: jax.Array
  c_re: jax.Array
  c_im: jax.Array
  d: jax.Array


class LRUState(NamedTuple):
  """Carry of :class:`LRUCell`: the complex state as real and imaginary parts.

  Two real arrays rather than one complex one, so that masks, checkpoints,
  optax and every carry check treat it like any other carry; the
  recurrence itself runs in complex arithmetic.

  Attributes:
    re, im: ``(*batch, N)`` each.
  """

  re: jax.Array
  im: jax.Array


@dataclasses.dataclass(frozen=True)
class LRUCell(linear_recurrence.LinearRecurrentCell):
  r"""Linear recurrent unit (Orvieto et al., 2023): a diagonal complex linear
  recurrence with a stable exponential parametrisation.

  .. math::

    \lambda &= \exp(-\exp(\nu_{\log}) + i \exp(\theta_{\log})), \qquad
    \gamma = \exp(\gamma_{\log}) \\
    s' &= \lambda \odot s + \gamma \odot (u B), \qquad
    y = \mathrm{Re}(s' C) + D \odot u

  ``u`` is the input (size ``I``), ``s`` the complex state (size
  ``hidden_size = N``), ``y`` has the input's size. ``gamma_log`` is
  learned and starts at ``log sqrt(1 − |λ|²)`` (the paper's normalisation).
  Initialisation (the paper's): ``|λ|`` uniform on the ring
  ``[r_min, r_max]`` (uniform in area), phase uniform in ``[0, max_phase]``,
  ``B`` and ``C`` Glorot-like complex normals, ``D`` standard normal.
  Carry :class:`LRUState` ``(re, im)``.

  Attributes:
    r_min, r_max: the ring of ``|λ|`` at initialisation (``init`` only).
    max_phase: the largest phase at initialisation (``init`` only).
    method: ``"auto"``, ``"associative"`` or ``"sequential"``; see
      :mod:`jaxrnn._src.engines.linear`.
  """

  r_min: float = 0.0
  r_max: float = 1.0
  max_phase: float = 2 * math.pi

  params_type = LRUParams
  carry_type = LRUState
  num_gates = 1

  def __post_init__(self):
    super().__post_init__()
    if not 0 <= self.r_min < self.r_max <= 1:
      raise ValueError(f"r_min, r_max: expected 0 <= r_min < r_max <= 1, got "
                       f"{self.r_min!r}, {self.r_max!r}")
    if not self.max_phase > 0:
      raise ValueError(f"max_phase: expected a positive float, got {self.max_phase!r}")

  def init(self, key, input_size, hidden_size, *, dtype: Any = jnp.float32,
           initializer: str = "default") -> LRUParams:
    """The paper's initialisation; ``hidden_size`` is the state size ``N``."""
    base.check_sizes(input_size, hidden_size)
    if initializer != "default":
      raise ValueError(f"initializer: expected 'default' (the LRU has no "
                       f"PyTorch counterpart), got {initializer!r}")
    draw = jnp.promote_types(dtype, jnp.float32)
    k_u1, k_u2, k_b, k_c, k_d = jax.random.split(key, 5)
    N, I = hidden_size, input_size
    u1 = jax.random.uniform(k_u1, (N,), draw)
    u2 = jax.random.uniform(k_u2, (N,), draw)
    nu_log = jnp.log(-0.5 * jnp.log(u1 * (self.r_max ** 2 - self.r_min ** 2)
                                    + self.r_min ** 2))
    theta_log = jnp.log(self.max_phase * u2)
    gamma_log = 0.5 * jnp.log1p(-jnp.exp(-2 * jnp.exp(nu_log)))  # log sqrt(1-|λ|²)
    b = jax.random.normal(k_b, (2, I, N), draw) / math.sqrt(2 * I)
    c = jax.random.normal(k_c, (2, N, I), draw) / math.sqrt(N)
    d = jax.random.normal(k_d, (I,), draw)
    leaves = (nu_log, theta_log, gamma_log, b[0], b[1], c[0], c[1], d)
    return LRUParams(*(leaf.astype(dtype) for leaf in leaves))

  def input_size(self, params) -> int:
    return params.b_re.shape[0]

  def hidden_size(self, params) -> int:
    return params.nu_log.shape[0]

  def output_size(self, params) -> int:
    return self.input_size(params)

  def _size_fields(self) -> dict:
    return {"nu_log": 1, "b_re": 2}

  def _param_shapes(self, params) -> dict:
    N, I = self.hidden_size(params), self.input_size(params)
    return {"nu_log": (N,), "theta_log": (N,), "gamma_log": (N,),
            "b_re": (I, N), "b_im": (I, N), "c_re": (N, I), "c_im": (N, I),
            "d": (I,)}

  def eigenvalues(self, params) -> jax.Array:
    """``λ``, complex, ``(N,)``."""
    return jnp.exp(jax.lax.complex(-jnp.exp(params.nu_log),
                                   jnp.exp(params.theta_log)))

  def state(self, carry):
    acc = linear_recurrence.accumulator(carry.re.dtype)  # no complex bfloat16
    return jax.lax.complex(carry.re.astype(acc), carry.im.astype(acc))

  def to_carry(self, h):
    return LRUState(h.real, h.imag)

  def zoneout_groups(self) -> tuple:
    """``re`` and ``im`` together: zoneout holds a complex unit whole."""
    return (("re", "im"),)

  def coefficients(self, params, x):
    acc = linear_recurrence.accumulator(x.dtype, params.b_re.dtype)
    x = x.astype(acc)
    p = jax.tree.map(lambda a: a.astype(acc), params)
    gamma = jnp.exp(p.gamma_log)
    bu = jax.lax.complex(x @ p.b_re, x @ p.b_im) * gamma
    lam = self.eigenvalues(p)
    return jnp.broadcast_to(lam, bu.shape), bu

  def readout(self, params, h, x):
    acc = linear_recurrence.accumulator(x.dtype, params.c_re.dtype)
    p = jax.tree.map(lambda a: a.astype(acc), params)
    return h.real @ p.c_re - h.imag @ p.c_im + p.d * x.astype(acc)
