"""The XLA engine's fused backward (jaxrnn/_src/engines/fused.py) against JAX's own
derivative of the same scan (impl="autodiff"), for every cell that splits its
step, with masks, both directions, remat, and both input-projection
placements."""

import jax
import jax.numpy as jnp
import pytest
from jax.test_util import check_grads

import jaxrnn
from cases import CELLS, init_params
from compare import TOL, assert_close, run_and_grad, setup

FUSED = [name for name, (cell, _) in CELLS.items() if cell.step_form() == "split"]


def test_which_cells_split_their_step():
  assert sorted(FUSED) == sorted(set(CELLS) - {"gru_before"})


# Two configurations, each the opposite of the other in every option
# (mask, reverse, remat, hoist), taken in turn by the cells, so that each
# option value meets every cell family; LSTM and GRU get both, and float32.
OPTIONS = [(True, True, False, False), (False, False, True, True)]
CASES = [(name, OPTIONS[i % 2], jnp.float64) for i, name in enumerate(FUSED)]
CASES += [(name, OPTIONS[1 - FUSED.index(name) % 2], jnp.float64)
          for name in ("lstm", "gru_after")]  # both configurations for these
CASES += [(name, OPTIONS[0], jnp.float32) for name in ("lstm", "gru_after")]


@pytest.mark.parametrize("name, options, dtype", CASES)
def test_fused_equals_autodiff(name, options, dtype):
  masked, reverse, remat, hoist = options
  cell, _ = CELLS[name]
  params, xs, carry, valid = setup(cell, (2, 3), T=7, dtype=dtype)
  v = valid if masked else None
  got = run_and_grad(cell, "xla", reverse, remat=remat, hoist=hoist)(params, xs, carry, v)
  want = run_and_grad(cell, "autodiff", reverse, hoist=hoist)(params, xs, carry, v)
  assert_close(got, want, dtype)


@pytest.mark.parametrize("name", ["lstm", "gru_after"])
def test_without_biases(name):
  cell, _ = CELLS[name]
  params, xs, carry, valid = setup(cell, (3,), T=5)
  params = params._replace(b_i=None, b_h=None)
  got = run_and_grad(cell, "xla", False)(params, xs, carry, valid)
  want = run_and_grad(cell, "autodiff", False)(params, xs, carry, valid)
  assert_close(got, want, jnp.float64)


def test_numerical_gradients():
  """Independent of autodiff: central differences."""
  cell = jaxrnn.PeepholeLSTMCell()
  params, xs, carry, valid = setup(cell, (2,), T=4, I=2, H=3)
  f = lambda p, x, c: jaxrnn.scan(cell, p, x, initial_carry=c, mask=valid.T,
                                  reverse=True, impl="xla")
  check_grads(f, (params, xs.swapaxes(0, 1), carry), order=1, modes=("rev",),
              atol=1e-6, rtol=1e-6)


def test_mixed_dtypes():
  """A float32 carry and params with bfloat16 inputs: every gradient keeps its
  primal's dtype, and the values match autodiff to bfloat16 rounding."""
  cell = jaxrnn.GRUCell()
  params = init_params(cell, jax.random.key(0), 3, 4)
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3), jnp.bfloat16)
  carry = cell.initial_carry(params, (2,), jnp.float32)

  def grads(impl):
    loss = lambda p, x, c: jaxrnn.scan(cell, p, x, initial_carry=c, impl=impl)[1].sum()
    return jax.grad(loss, argnums=(0, 1, 2))(params, xs, carry)

  got, want = grads("xla"), grads("autodiff")
  assert jax.tree.map(lambda a: a.dtype, got) == jax.tree.map(lambda a: a.dtype, want)
  jax.tree.map(lambda a, b: jnp.allclose(a.astype(float), b.astype(float),
                                         rtol=2e-2, atol=2e-2) or pytest.fail(), got, want)


def test_forward_mode_is_autodiff_only():
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4)
  xs = jnp.ones((2, 5, 3), jnp.float32)
  f = lambda impl: (lambda x: jaxrnn.scan(cell, params, x, impl=impl)[1])
  with pytest.raises(TypeError, match="impl='autodiff'"):
    jax.jvp(f("xla"), (xs,), (xs,))
  jax.jvp(f("autodiff"), (xs,), (xs,))
  with jaxrnn.default_engine("autodiff"):
    jax.jvp(f(None), (xs,), (xs,))


def test_engine_names():
  gru = jaxrnn.GRUCell(reset_after=False)
  params = gru.init(jax.random.key(0), 3, 4)
  xs = jnp.ones((2, 5, 3), jnp.float32)
  engine, reason = jaxrnn.which_engine(gru, params, xs, impl="xla")
  assert engine == "autodiff" and "does not split its step" in reason
  lstm = jaxrnn.LSTMCell()
  p = lstm.init(jax.random.key(0), 3, 4)
  assert jaxrnn.which_engine(lstm, p, xs, impl="xla")[0] == "xla"
  assert jaxrnn.which_engine(lstm, p, xs, impl="autodiff")[0] == "autodiff"
