"""Helpers that run one layer on two engines and compare everything: outputs,
final carries, and the gradients of every param, input and initial carry."""

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn._src.engines import registry as engine_lib
from cases import init_params

TOL = {jnp.float64: dict(rtol=1e-12, atol=1e-12), jnp.float32: dict(rtol=1e-5, atol=1e-5)}


def setup(cell, batch_shape, T, I=5, H=6, dtype=jnp.float64, seed=0):
  k_p, k_x, k_c, k_v = jax.random.split(jax.random.key(seed), 4)
  params = init_params(cell, k_p, I, H, dtype=dtype, initializer="pytorch")
  if isinstance(params, jaxrnn.PeepholeLSTMParams):  # non-zero peepholes
    params = params._replace(p_i=params.p_i + 0.3, p_f=params.p_f - 0.2,
                             p_o=params.p_o + 0.1)
  xs = jax.random.normal(k_x, (T, *batch_shape, I), dtype)
  carry = cell.initial_carry(params, batch_shape)
  carry = type(carry)(*(jax.random.normal(k, c.shape, dtype)
                        for k, c in zip(jax.random.split(k_c, len(carry)), carry)))
  valid = jax.random.bernoulli(k_v, 0.7, (T, *batch_shape))
  return params, xs, carry, valid


def run_and_grad(cell, impl, reverse, remat=False, hoist=None):
  """Outputs, final carry and the gradient of a loss on both, w.r.t. params,
  inputs and the initial carry, on one engine (time-major core)."""
  def run(p, x, c, v):
    return engine_lib.run_cell(cell, p, x, c, v, reverse=reverse, unroll=1,
                               remat=remat, hoist=hoist, impl=impl)

  def loss(p, x, c, v):
    carry, ys = run(p, x, c, v)
    return (jnp.sum(jnp.sin(3 * ys)) +
            sum(jnp.sum(leaf ** 2) for leaf in jax.tree.leaves(carry)))

  @jax.jit
  def f(p, x, c, v):
    return run(p, x, c, v), jax.grad(loss, argnums=(0, 1, 2))(p, x, c, v)
  return f


def assert_close(a, b, dtype):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **TOL[dtype]), a, b)
