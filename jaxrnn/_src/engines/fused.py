"""The XLA engine's fused backward: cuDNN's scheme for a layer, in plain JAX.

JAX's own derivative of ``lax.scan`` keeps every matmul of the step inside
the backward loop: ``dh W_hᵀ``, but also ``dW_h += h_{t-1}ᵀ dz_t`` and, with
the input projection in the step, ``dW_i += x_tᵀ dz_t`` and ``dx_t = dz_t
W_iᵀ``. Here the loop keeps only the first: for a cell whose step splits as

    z_t = preactivation(x_t W_i + b, h_{t-1} W_h)       (affine)
    (carry_t, y_t) = pointwise(carry_{t-1}, z_t)        (elementwise)

the forward saves ``carry_{t-1}`` and ``z_t`` per step, and the backward loop
carries the carry's cotangent through ``pointwise``'s vjp and one matmul by
``W_hᵀ``. Everything else is one matmul over all ``T * batch`` rows after the
loop (as cuDNN and oneDNN do)::

    dW_h = Σ_t h_{t-1}ᵀ dhw_t    dW_i = Σ_t x_tᵀ dxp_t    dx = dxp W_iᵀ

Saved per step and row: the carry before the step and ``z``: LSTM and
peephole 2H + 4H, CIFG 2H + 3H, LSTMP P + H + 4H, reset-after GRU H + 4H,
simple RNN H + H. Measured with ``memory_analysis`` (LSTM, B=32 T=256 I=128
H=256, float32), the compiled forward+backward holds 101 MB of temporaries
against 151 MB for JAX's derivative of the same scan, and ran in 0.70x its
time (0.67x at B=1 T=1000 I=64 H=128), interleaved on a 2-core x86 CPU.

It is a ``jax.custom_vjp``: reverse mode only. ``impl="autodiff"`` runs the
plain scan that JAX differentiates itself, forward mode included.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp

from jaxrnn._src.cells import base
from jaxrnn._src.engines import protocol
from jaxrnn._src.engines import steps as steps_lib


class Fused(protocol.Engine):
  """The ``"xla"`` engine: cells declared ``form = "split"``."""

  name = "xla"
  impls = ("auto", "xla")

  def supports(self, cell, spec) -> Optional[str]:
    if cell.step_form() != "split":
      return (f"{type(cell).__name__} does not split its step into a matmul and "
              f"an elementwise part (form {cell.step_form()!r})")
    if spec.zoneout:
      return "the fused backward has no zoneout"
    return None

  def describe(self, cell, spec) -> str:
    if spec.impl == "xla":
      return "impl='xla' was asked for"
    return f"the fused XLA engine runs {type(cell).__name__}"

  def run(self, cell, params, carry, steps, reset_to, options):
    steps = protocol.Steps(steps.xs, steps.valid, steps.resets)  # no zoneout here
    return _layer(cell, options.reverse, options.unroll, options.hoist, params,
                  steps, carry, reset_to if steps.resets is not None else None,
                  options.h_mask)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _layer(cell, reverse, unroll, hoist, params, steps, carry, reset_to, h_mask):
  return _forward(cell, reverse, unroll, hoist, params, steps, carry, reset_to,
                  h_mask, save=False)


def _forward(cell, reverse, unroll, hoist, params, steps, carry, reset_to,
             h_mask, *, save):
  """The step rules (:mod:`.steps`) around ``preactivation`` and
  ``pointwise``; with ``save``, each step's carry (after a reset) and ``z``
  are kept for the backward."""
  w_i, b = cell.input_weights(params)
  project = lambda x: base.add_biases(x @ w_i, b)

  def step(c, x_t):
    z = cell.preactivation(params, x_t if hoist else project(x_t),
                           base.drop(c.h, h_mask) @ params.w_h)
    new, y = cell.pointwise(params, c, z)
    return new, y, ((c, z) if save else None)

  options = protocol.Options(reverse=reverse, unroll=unroll)
  final, (ys, saved) = steps_lib.scan_steps(
      step, carry, steps._replace(xs=project(steps.xs) if hoist else steps.xs),
      reset_to, options)
  return (final, ys) if not save else (final, ys, saved)


def _layer_fwd(cell, reverse, unroll, hoist, params, steps, carry, reset_to,
               h_mask):
  final, ys, (carries, zs) = _forward(cell, reverse, unroll, hoist, params,
                                      steps, carry, reset_to, h_mask, save=True)
  return (final, ys), (params, steps, carry, reset_to, h_mask,
                       carries, zs)


def _without_weights(params):
  """``params`` less the two matmul weights: what ``pointwise`` and
  ``preactivation`` may read, and the only grads the loop accumulates."""
  return params._replace(w_i=None, w_h=None)


def _layer_bwd(cell, reverse, unroll, hoist, res, cts):
  del hoist  # the backward is the same either way
  params, steps, carry0, reset_to, h_mask, carries, zs = res
  xs, valid, resets, _ = steps
  d_final, dys = cts
  small = _without_weights(params)
  with_weights = lambda p: p._replace(w_i=params.w_i, w_h=params.w_h)
  gates = params.w_h.shape[1]
  # preactivation is affine in (xp, hw): its vjp at zero is its transpose.
  zeros = lambda lead: jnp.zeros((*lead, gates), zs.dtype)
  transpose_pre = lambda lead: jax.vjp(
      lambda p, xp, hw: cell.preactivation(with_weights(p), xp, hw),
      small, zeros(lead), zeros(lead))[1]
  w_h_t = params.w_h.T

  def step(acc, inputs):
    dc, dp, d_reset = acc
    c, z, dy, v, r = inputs
    out, vjp = jax.vjp(lambda p, c, z: cell.pointwise(with_weights(p), c, z),
                       small, c, z)
    dc_in = dc
    if v is not None:  # rule 5 transposed: an invalid step passes dc through
      dy = jnp.where(base.per_step(v, dy), dy, jnp.zeros_like(dy))
      dc_in = jax.tree.map(
          lambda d: jnp.where(base.per_step(v, d), d, jnp.zeros_like(d)), dc)
    # the forward cast the new carry to the carry's dtype: undo for the vjp
    dp_t, dc_prev, dz = vjp(jax.tree.map(lambda d, o: d.astype(o.dtype),
                                         (dc_in, dy), out))
    dhw = transpose_pre(z.shape[:-1])(dz)[2]
    dh = base.drop(dhw @ w_h_t, h_mask)
    dc_prev = dc_prev._replace(h=dc_prev.h + dh.astype(dc_prev.h.dtype))
    if v is not None:
      dc_prev = base.where_carry(v, dc_prev, dc)
    dc_prev = jax.tree.map(lambda d, c: d.astype(c.dtype), dc_prev, c)
    if r is not None:  # a reset step's carry came from reset_to
      zero = jax.tree.map(jnp.zeros_like, dc_prev)
      d_reset = _add(d_reset, base.where_carry(r, dc_prev, zero))
      dc_prev = base.where_carry(r, zero, dc_prev)
    return (dc_prev, _add(dp, dp_t), d_reset), dz

  dp0 = jax.tree.map(jnp.zeros_like, small)
  d_reset0 = None if resets is None else jax.tree.map(jnp.zeros_like, reset_to)
  (d_carry0, dp_loop, d_reset), dzs = jax.lax.scan(
      step, (d_final, dp0, d_reset0), (carries, zs, dys, valid, resets),
      reverse=not reverse, unroll=unroll)

  # Everything else: one matmul (or sum) over all T * batch rows.
  dp_pre, dxps, dhws = transpose_pre(zs.shape[:-1])(dzs)
  rows = lambda a: a.reshape(-1, a.shape[-1])
  d_w_h = _matmul_t(rows(base.drop(carries.h, h_mask)), rows(dhws))
  w_i, b = cell.input_weights(params)
  d_w_i = _matmul_t(rows(xs), rows(dxps))
  d_b = None if b is None else rows(dxps).sum(0, dtype=_accumulator(dxps.dtype))
  dxs = (dxps @ w_i.T).astype(xs.dtype)
  _, input_vjp = jax.vjp(cell.input_weights, params)
  (d_params,) = input_vjp((d_w_i.astype(w_i.dtype),
                           None if b is None else d_b.astype(b.dtype)))
  d_params = _add(d_params, with_weights(_add(dp_loop, dp_pre))._replace(
      w_i=None, w_h=d_w_h))
  d_params = jax.tree.map(lambda d, p: d.astype(p.dtype), d_params, params)
  d_carry0 = jax.tree.map(lambda d, c: d.astype(c.dtype), d_carry0, carry0)
  return d_params, protocol.Steps(dxs, None, None, None), d_carry0, d_reset, None


_layer.defvjp(_layer_fwd, _layer_bwd)


def _accumulator(dtype):
  """float32 at least: sums over T * batch rows are not taken in bfloat16."""
  return jnp.promote_types(dtype, jnp.float32)


def _matmul_t(a, b):
  """``aᵀ b``, accumulated in at least float32."""
  return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())),
                             preferred_element_type=_accumulator(b.dtype))


def _add(a, b):
  """Field-wise sum of two params trees in which ``None`` is zero."""
  return jax.tree.map(lambda x, y: x if y is None else y if x is None else x + y,
                      a, b, is_leaf=lambda x: x is None)
