"""The minimal gated unit: against NumPy, numerical gradients, and the fused
backward against autodiff (against Flax's MGUCell: tests/test_interop.py)."""

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
  assert (cell.step_form() == "split") == reset_after


def test_mgu_reset_before_has_no_flax_form():
  cell = jaxrnn.MGUCell(reset_after=False)
  with pytest.raises(ValueError, match="reset_after=False.*different function"):
    interop.to_flax(cell, cell.init(jax.random.key(0), 3, 5))


def test_mgu_fused_backward_equals_autodiff():
  """A masked, reversed layer: outputs, carries and every gradient."""
  cell = jaxrnn.MGUCell()
  params, xs, carry, valid = setup(cell, (2, 3), T=7)
  assert_close(run_and_grad(cell, "xla", True)(params, xs, carry, valid),
               run_and_grad(cell, "autodiff", True)(params, xs, carry, valid), jnp.float64)
  assert jaxrnn.which_engine(cell, params, jnp.ones((2, 5, 5)))[0] == "xla"
