"""The minimal gated unit: against NumPy, numerical gradients, and the fused
backward against autodiff (against Flax's MGUCell: tests/test_interop.py; its
``reset_gate=False`` form, with hand-mapped params: here)."""

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


# ------------------------------------------------------- reset_gate=False
def _flax_mgu_params(variables):
  """Flax linen ``MGUCell(reset_gate=False)``'s params as jaxrnn's, by hand:
  ``if`` and ``in`` carry the input biases; ``hf`` and ``hn`` have none."""
  p = variables["params"]
  return jaxrnn.MGUParams(
      jnp.concatenate([p["if"]["kernel"], p["in"]["kernel"]], axis=-1),
      jnp.concatenate([p["hf"]["kernel"], p["hn"]["kernel"]], axis=-1),
      jnp.concatenate([p["if"]["bias"], p["in"]["bias"]]), None)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("fns", [{}, dict(gate_fn=jax.nn.hard_sigmoid,
                                          activation_fn=jax.nn.relu)])
def test_mgu_without_reset_gate_matches_flax(reset_after, fns):
  nn = pytest.importorskip("flax.linen")
  module = nn.MGUCell(features=5, reset_gate=False, param_dtype=jnp.float64, **fns)
  x = jax.random.normal(jax.random.key(0), (2, 3), jnp.float64)
  h = jax.random.normal(jax.random.key(1), (2, 5), jnp.float64)
  variables = module.init(jax.random.key(2), h, x)
  assert "bias" not in variables["params"]["hn"]  # Flax: no b_hn in this form
  variables = jax.tree.map(lambda a: a + 0.2, variables)  # nonzero biases
  h_f, y_f = module.apply(variables, h, x)
  cell = jaxrnn.MGUCell(reset_after=reset_after, reset_gate=False,
                        activation=fns.get("activation_fn", "tanh"),
                        recurrent_activation=fns.get("gate_fn", "sigmoid"))
  (h_j,), y_j = cell(_flax_mgu_params(variables), jaxrnn.RNNState(h), x)
  np.testing.assert_allclose(h_j, h_f, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(y_j, y_f, rtol=1e-12, atol=1e-12)
  # and the reset gate is what tells the two forms apart
  (h_r,), _ = jaxrnn.MGUCell(reset_after=reset_after, **(
      {} if not fns else dict(activation=jax.nn.relu,
                              recurrent_activation=jax.nn.hard_sigmoid)))(
      _flax_mgu_params(variables), jaxrnn.RNNState(h), x)
  assert not np.allclose(h_r, h_f)


def test_mgu_without_reset_gate_matches_numpy():
  """With ``b_h``'s ``n`` block, which adds to the input bias."""
  cell = jaxrnn.MGUCell(reset_gate=False)
  params = cell.init(jax.random.key(0), 3, 5, dtype=jnp.float64, initializer="pytorch")
  h = jax.random.normal(jax.random.key(1), (4, 5), jnp.float64)
  x = jax.random.normal(jax.random.key(2), (4, 3), jnp.float64)
  p = reference.np_params(params)
  H = 5
  f = reference.sigmoid(np.asarray(x) @ p.w_i[:, :H] + p.b_i[:H]
                        + np.asarray(h) @ p.w_h[:, :H] + p.b_h[:H])
  n = np.tanh(np.asarray(x) @ p.w_i[:, H:] + p.b_i[H:]
              + np.asarray(h) @ p.w_h[:, H:] + p.b_h[H:])
  want = (1 - f) * n + f * np.asarray(h)
  (got,), _ = cell(params, jaxrnn.RNNState(h), x)
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
  check_grads(lambda p, c, x: cell(p, c, x), (params, jaxrnn.RNNState(h), x),
              order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
  assert cell.step_form() == "split"
  assert jaxrnn.MGUCell(reset_after=False, reset_gate=False).step_form() == "split"


@pytest.mark.parametrize("reset_after", [True, False])
def test_mgu_without_reset_gate_every_engine_equals_the_step_loop(reset_after):
  cell = jaxrnn.MGUCell(reset_after=reset_after, reset_gate=False)
  params, xs, carry, valid = setup(cell, (2, 3), T=7)
  carry_loop = carry
  ys = []
  for t in range(xs.shape[0]):
    carry_loop, y = cell(params, carry_loop, xs[t])
    ys.append(y)
  want = carry_loop, jnp.stack(ys)
  for impl in ("auto", "xla", "autodiff"):
    got = jaxrnn.scan(cell, params, xs, initial_carry=carry, time_major=True, impl=impl)
    assert_close(got, want, jnp.float64)
  # masked and reversed, gradients too: the fused backward against autodiff
  assert_close(run_and_grad(cell, "xla", True)(params, xs, carry, valid),
               run_and_grad(cell, "autodiff", True)(params, xs, carry, valid), jnp.float64)
  assert jaxrnn.which_engine(cell, params, jnp.ones((2, 20, 5)))[0] == "xla"
  with pytest.raises(ValueError, match="impl: 'native' cannot run MGUCell"):
    jaxrnn.scan(cell, params, xs, impl="native")


def test_reset_after_changes_nothing_without_reset_gate():
  a = jaxrnn.MGUCell(reset_after=True, reset_gate=False)
  b = jaxrnn.MGUCell(reset_after=False, reset_gate=False)
  params, xs, carry, _ = setup(a, (2,), T=5)
  assert_close(jaxrnn.scan(a, params, xs, initial_carry=carry, time_major=True),
               jaxrnn.scan(b, params, xs, initial_carry=carry, time_major=True),
               jnp.float64)


def test_reset_gate_must_be_a_bool():
  with pytest.raises(TypeError, match="reset_gate: expected a bool, got 0"):
    jaxrnn.MGUCell(reset_gate=0)
