"""Layer-normalised LSTM and GRU (Ba et al., 2016) against NumPy written from
the paper's equations, and numerical gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
import reference

CELLS = {"lstm": (jaxrnn.LayerNormLSTMCell(), reference.ln_lstm),
         "gru": (jaxrnn.LayerNormGRUCell(), reference.ln_gru)}


def random_params(cell, I, H):
  """Params with every gain and shift away from its initial value."""
  params = cell.init(jax.random.key(0), I, H, dtype=jnp.float64)
  keys = jax.random.split(jax.random.key(1), len(params))
  return type(params)(*(p + 0.3 * jax.random.normal(k, p.shape, p.dtype)
                        for k, p in zip(keys, params)))


@pytest.mark.parametrize("name", CELLS)
def test_matches_numpy(name):
  cell, ref = CELLS[name]
  params = random_params(cell, 3, 5)
  xs = jax.random.normal(jax.random.key(2), (2, 6, 3), jnp.float64)
  mask = np.asarray(jax.random.bernoulli(jax.random.key(3), 0.7, (2, 6)))
  carry0 = cell.initial_carry(params, (2,))
  carry0 = type(carry0)(*(c + 0.5 for c in carry0))
  got_carry, got = jaxrnn.scan(cell, params, xs, initial_carry=carry0, mask=mask,
                               reverse=True)
  p = reference.np_params(params)
  state = tuple(np.asarray(c) for c in carry0)
  want = np.zeros(got.shape)
  for t in range(5, -1, -1):
    new, y = ref(p, state, np.asarray(xs[:, t]))
    v = mask[:, t, None]
    state = tuple(np.where(v, n, o) for n, o in zip(new, state))
    want[:, t] = np.where(v, y, 0.0)
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
  for g, w in zip(got_carry, state):
    np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
  check_grads(lambda p, x: jaxrnn.scan(cell, p, x, mask=mask[:, :3])[1], (params, xs[:, :3]),
              order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_init_and_engine():
  cell = jaxrnn.LayerNormLSTMCell()
  params = cell.init(jax.random.key(0), 3, 4)
  np.testing.assert_array_equal(params.b[4:8], 1.0)  # forget_bias
  np.testing.assert_array_equal(params.g_c, 1.0)
  engine, why = jaxrnn.which_engine(cell, params, jnp.zeros((2, 5, 3)))
  assert engine == "autodiff" and "does not split" in why
