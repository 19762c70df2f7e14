"""The convolutional LSTM: against NumPy written from Shi et al. (2015) in
1, 2 and 3 spatial dimensions, numerical gradients, Flax's ConvLSTMCell with
converted weights, and the sequence layers and modules around it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
import reference
from jaxrnn import interop

# (kernel_size, spatial shape, mask and reverse): even and odd kernels
CASES = [((3,), (7,), False), ((3, 2), (5, 4), True), ((2, 3, 1), (4, 3, 2), False)]


def numpy_layer(params, xs, carry, mask, reverse):
  p = reference.np_params(params)
  state = tuple(np.asarray(c) for c in carry)
  T = xs.shape[1]
  ys = [None] * T
  for t in (range(T - 1, -1, -1) if reverse else range(T)):
    new, y = reference.conv_lstm(p, state, np.asarray(xs[:, t]))
    v = mask[:, t].reshape((-1,) + (1,) * (y.ndim - 1))
    state = tuple(np.where(v, n, o) for n, o in zip(new, state))
    ys[t] = np.where(v, y, 0.0)
  return state, np.stack(ys, axis=1)


@pytest.mark.parametrize("kernel_size, spatial, masked", CASES)
def test_matches_numpy(kernel_size, spatial, masked):
  cell = jaxrnn.ConvLSTMCell(kernel_size)
  k_p, k_x, k_c, k_m = jax.random.split(jax.random.key(0), 4)
  params = cell.init(k_p, 2, 3, dtype=jnp.float64, initializer="pytorch")
  xs = jax.random.normal(k_x, (2, 5, *spatial, 2), jnp.float64)
  carry = jaxrnn.LSTMState(*jax.random.normal(k_c, (2, 2, *spatial, 3), jnp.float64))
  mask = np.asarray(jax.random.bernoulli(k_m, 0.7, (2, 5))) if masked else np.ones((2, 5), bool)
  got_carry, got = jaxrnn.scan(cell, params, xs, initial_carry=carry, reverse=masked,
                               mask=mask if masked else None)
  want_carry, want = numpy_layer(params, xs, carry, mask, reverse=masked)
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
  for g, w in zip(got_carry, want_carry):
    np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
  assert got.shape == (2, 5, *spatial, 3)


def test_numerical_gradients():
  cell = jaxrnn.ConvLSTMCell((3, 2))
  params = cell.init(jax.random.key(1), 2, 2, dtype=jnp.float64, initializer="pytorch")
  xs = jax.random.normal(jax.random.key(2), (2, 3, 4, 3, 2), jnp.float64)
  carry = jaxrnn.LSTMState(*jax.random.normal(jax.random.key(3), (2, 2, 4, 3, 2), jnp.float64))
  f = lambda p, x, c: jaxrnn.scan(cell, p, x, initial_carry=c, remat=True)
  check_grads(f, (params, xs, carry), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_against_flax_both_ways():
  from flax import linen as nn
  flax_cell = nn.ConvLSTMCell(features=3, kernel_size=(3, 3), param_dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(4), (2, 4, 5, 6, 2), jnp.float64)
  flax_carry = flax_cell.initialize_carry(jax.random.key(5), xs[:, 0].shape)
  variables = flax_cell.init(jax.random.key(6), flax_carry, xs[:, 0])
  # non-zero biases, so that the gate order and the forget shift are seen
  flax_params = jax.tree.map(lambda a: a + 0.1 * jnp.arange(a.size).reshape(a.shape) / a.size,
                             variables["params"])
  want = []
  for t in range(xs.shape[1]):
    flax_carry, y = flax_cell.apply({"params": flax_params}, flax_carry, xs[:, t])
    want.append(y)
  cell = jaxrnn.ConvLSTMCell((3, 3))
  params = interop.from_flax(cell, flax_params)
  carry, got = jaxrnn.scan(cell, params, xs)
  np.testing.assert_allclose(got, jnp.stack(want, 1), rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(carry.c, flax_carry[0], rtol=1e-12, atol=1e-12)
  back = interop.to_flax(cell, params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14),
               back, flax_params)


def test_layers_and_modules():
  """Bidirectional and Stacked compose as with any cell; the linen and nnx
  modules give the functional layer's numbers and their carry shapes."""
  from flax import nnx
  from jaxrnn import linen as jrl
  from jaxrnn import nnx as jrn
  cell = jaxrnn.ConvLSTMCell((3,))
  xs = jax.random.normal(jax.random.key(7), (2, 6, 5, 2), jnp.float32)
  stack = jaxrnn.Stacked((cell, jaxrnn.Bidirectional(cell)))
  params = stack.init(jax.random.key(8), 2, 3)
  _, ys = stack(params, xs, seq_lengths=jnp.array([6, 4]))
  c1, y1 = jaxrnn.scan(cell, params[0], xs, seq_lengths=jnp.array([6, 4]))
  _, y_f = jaxrnn.scan(cell, params[1].forward, y1, seq_lengths=jnp.array([6, 4]))
  _, y_b = jaxrnn.scan(cell, params[1].backward, y1, seq_lengths=jnp.array([6, 4]),
                       reverse=True)
  np.testing.assert_allclose(ys, jnp.concatenate([y_f, y_b], -1), rtol=1e-6, atol=1e-6)
  assert ys.shape == (2, 6, 5, 6) and c1.h.shape == (2, 5, 3)

  module = jrl.RNN(cell, 3)
  variables = module.init(jax.random.key(9), xs)
  assert module.initialize_carry(None, xs.shape).h.shape == (2, 5, 3)
  np.testing.assert_allclose(module.apply(variables, xs)[1],
                             jaxrnn.scan(cell, jrl.to_functional(variables), xs)[1])
  layer = jrn.RNN(cell, 2, 3, rngs=nnx.Rngs(0))
  assert layer.initialize_carry(xs.shape).c.shape == (2, 5, 3)
  np.testing.assert_allclose(layer(xs)[1], jaxrnn.scan(cell, jrn.to_functional(layer), xs)[1])


@pytest.mark.parametrize("make, error, match", [
    (lambda: jaxrnn.ConvLSTMCell(3), ValueError, "kernel_size: expected 1 to 3"),
    (lambda: jaxrnn.ConvLSTMCell((3, 0)), ValueError, "kernel_size"),
    (lambda: jaxrnn.Stacked((jaxrnn.ConvLSTMCell((3,)), jaxrnn.LSTMCell())),
     ValueError, "same number of feature axes"),
])
def test_bad_cells(make, error, match):
  with pytest.raises(error, match=match):
    make()


def test_bad_inputs():
  cell = jaxrnn.ConvLSTMCell((3, 3))
  params = cell.init(jax.random.key(0), 2, 3)
  with pytest.raises(ValueError, match=r"xs: expected an array of shape \(\*batch, T, "
                     r"\*spatial, channels\)"):
    jaxrnn.scan(cell, params, jnp.zeros((4, 5, 2)))
  with pytest.raises(ValueError, match=r"initial_carry.h: expected shape \(1, 4, 5, 3\)"):
    jaxrnn.scan(cell, params, jnp.zeros((1, 6, 4, 5, 2)),
                initial_carry=cell.initial_carry(params, (1, 4, 4)))
  with pytest.raises(ValueError, match=r"params.w_h: expected shape \(3, 3, 3, 12\)"):
    cell(params._replace(w_h=params.w_h[:, :2]), cell.initial_carry(params, (4, 5)),
         jnp.zeros((4, 5, 2)))
