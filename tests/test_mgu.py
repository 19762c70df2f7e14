"""The minimal gated unit: against NumPy, Flax's MGUCell (converted weights,
both ways), numerical gradients, and the fused backward against autodiff."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
import reference
from compare import assert_close, run_and_grad, setup
from jaxrnn import interop


@pytest.mark.parametrize("reset_after", [True, False])
def test_mgu_matches_numpy_and_gradients(reset_after):
  cell = jaxrnn.MGUCell(reset_after=reset_after)
  params = cell.init(jax.random.key(0), 3, 5, dtype=jnp.float64, initializer="pytorch")
  h = jax.random.normal(jax.random.key(1), (2, 4, 5), jnp.float64)
  x = jax.random.normal(jax.random.key(2), (2, 4, 3), jnp.float64)
  (got,), y = cell(params, jaxrnn.RNNState(h), x)
  (want,), _ = reference.mgu(reference.np_params(params), (np.asarray(h),), np.asarray(x),
                             reset_after=reset_after)
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
  np.testing.assert_array_equal(y, got)
  check_grads(lambda p, c, x: cell(p, c, x), (params, jaxrnn.RNNState(h[0]), x[0]),
              order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
  assert cell.splits_step() == reset_after


def test_mgu_against_flax_both_ways():
  module = nn.MGUCell(features=5)
  x = jax.random.normal(jax.random.key(0), (2, 3))
  h = jax.random.normal(jax.random.key(1), (2, 5))
  variables = jax.tree.map(lambda a: a + 0.2, module.init(jax.random.key(2), h, x))
  h_f, _ = module.apply(variables, h, x)
  cell = jaxrnn.MGUCell()
  params = interop.from_flax(cell, variables["params"])
  (h_j,), _ = cell(params, jaxrnn.RNNState(h), x)
  np.testing.assert_allclose(h_j, h_f, atol=1e-6)
  params = cell.init(jax.random.key(3), 3, 5, initializer="pytorch")  # all biases nonzero
  (h_j,), _ = cell(params, jaxrnn.RNNState(h), x)
  h_f, _ = module.apply({"params": interop.to_flax(cell, params)}, h, x)
  np.testing.assert_allclose(h_j, h_f, atol=1e-6)
  with pytest.raises(ValueError, match="reset_after=False.*different function"):
    interop.to_flax(jaxrnn.MGUCell(reset_after=False), params)


def test_mgu_fused_backward_equals_autodiff():
  """A masked, reversed layer: outputs, carries and every gradient."""
  cell = jaxrnn.MGUCell()
  params, xs, carry, valid = setup(cell, (2, 3), T=7)
  assert_close(run_and_grad(cell, "xla", True)(params, xs, carry, valid),
               run_and_grad(cell, "autodiff", True)(params, xs, carry, valid), jnp.float64)
  assert jaxrnn.which_engine(cell, params, jnp.ones((2, 5, 5)))[0] == "xla"
