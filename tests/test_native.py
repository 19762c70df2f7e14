"""The native engine against the autodiff engine (JAX's own derivative of
``jax.lax.scan`` over the cell's own step, which test_scan.py checks against
Python loops and test_cells.py against NumPy and PyTorch)."""

import functools
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import _native
from cases import CELLS
from compare import TOL, assert_close, run_and_grad, setup

NATIVE = [name for name, (cell, _) in CELLS.items() if cell.native_variant() is not None]


def test_native_engine_is_built_and_active():
  """`make test` builds the kernels; a silently failed build fails here."""
  assert jaxrnn.native_available(), jaxrnn.native_status()
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4)
  engine, reason = jaxrnn.which_engine(cell, params, jnp.ones((2, 16, 3), jnp.float32))
  assert engine == "native", reason


@pytest.mark.parametrize("steps", [1, 15])
def test_auto_leaves_short_sequences_to_xla(steps):
  """Below MIN_STEPS steps (a one-step call in an RL rollout) "auto" runs
  the fused XLA engine, which measured faster there, and says why;
  impl="native" still runs the kernels, with the same numbers."""
  from jaxrnn._src.engines import native as native_engine
  assert steps < native_engine.MIN_STEPS
  cell = jaxrnn.GRUCell()
  params, xs, carry, valid = setup(cell, (3,), T=steps)
  engine, reason = jaxrnn.which_engine(cell, params, jnp.moveaxis(xs, 0, 1))
  assert engine == "xla" and "MIN_STEPS" in reason and "impl='native'" in reason
  got = run_and_grad(cell, "native", False)(params, xs, carry, valid)
  want = run_and_grad(cell, "auto", False)(params, xs, carry, valid)
  assert_close(got, want, jnp.float64)


def test_every_fused_cell_but_lstmp_has_a_kernel():
  assert sorted(NATIVE) == sorted(set(CELLS) - {"lstmp"})


# The kernels split the hidden units among threads in whole panels of two
# vectors (16 float64 or 32 float32 units with AVX-512): H=37 gives a float64
# call three panels, the last one short, and a float32 call two. Every call
# runs on forced threads (however small its work): each (masked, reverse,
# dtype, threads) combination meets every cell, so that each cell meets
# float64 masked and unmasked in opposite directions, float32 (the kernels'
# own vectorised activations) masked in both, and 2 and 3 threads with each
# dtype. One thread (no pool, no barrier) runs every small call of the other
# tests.
COMBINATIONS = [(False, False, jnp.float64, 2), (True, True, jnp.float64, 3),
                (True, False, jnp.float32, 3), (True, True, jnp.float32, 2)]
SHAPES = {2: (1, 37), 3: (3, 37)}  # threads: (B, H)


@pytest.fixture
def threads(request):
  """Runs the test with `request.param` kernel threads on every call."""
  before = _native.set_threads(request.param, always=True)
  yield request.param
  _native.set_threads(0)
  assert before >= 1


@pytest.mark.parametrize("masked, reverse, dtype, threads", COMBINATIONS,
                         indirect=["threads"])
@pytest.mark.parametrize("name", NATIVE)
def test_native_equals_autodiff(name, masked, reverse, dtype, threads):
  """Outputs, final carries and gradients of every param, input and initial
  carry, with and without a mask, in both directions, on 2 and 3 threads."""
  cell, _ = CELLS[name]
  B, H = SHAPES[threads]
  params, xs, carry, valid = setup(cell, (B,), T=9, H=H, dtype=dtype)
  if name == "rnn_relu":  # keep units active so that the gradient is not all 0
    params = params._replace(b_i=params.b_i + 0.5)
  v = valid if masked else None
  got = run_and_grad(cell, "native", reverse)(params, xs, carry, v)
  want = run_and_grad(cell, "autodiff", reverse)(params, xs, carry, v)
  assert_close(got, want, dtype)


@pytest.mark.parametrize("threads", [2], indirect=True)
def test_concurrent_calls_from_python_threads(threads):
  """Four Python threads call native layers at once, again and again, on
  two forced threads each: the pool serves one call at a time, the others
  wait for it, and every result equals the one computed before (to rounding:
  the split of the weight gradients' rows among threads can change their
  order of summation)."""
  cell = jaxrnn.GRUCell()
  params, xs, carry, valid = setup(cell, (8,), T=64, I=16, H=64, dtype=jnp.float32)
  fns = [run_and_grad(cell, "native", reverse) for reverse in (False, True)]
  inputs = [(params, xs * (1 + 0.1 * i), carry, valid) for i in range(4)]
  want = [fns[i % 2](*inputs[i]) for i in range(4)]
  errors = []

  def work(i):
    try:
      for _ in range(10):
        got = fns[i % 2](*inputs[i])
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6),
                     got, want[i])
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  pool = [threading.Thread(target=work, args=(i,)) for i in range(4)]
  for t in pool:
    t.start()
  for t in pool:
    t.join()
  assert not errors, errors[0]


@pytest.mark.parametrize("batch_shape", [(), (1,), (2, 3), (4, 5)])
def test_any_batch_shape(batch_shape):
  cell = jaxrnn.GRUCell(reset_after=False)
  params, xs, carry, valid = setup(cell, batch_shape, T=6)
  got = run_and_grad(cell, "native", True)(params, xs, carry, valid)
  want = run_and_grad(cell, "autodiff", True)(params, xs, carry, valid)
  assert_close(got, want, jnp.float64)


# both directions and two batch sizes for each cell
@pytest.mark.parametrize("batch, reverse", [(2, False), (16, True)])
@pytest.mark.parametrize("name", ["lstm", "gru_after", "rnn_tanh"])
def test_remat_on_native(name, reverse, batch):
  cell, _ = CELLS[name]
  params, xs, carry, valid = setup(cell, (batch,), T=11)
  got = run_and_grad(cell, "native", reverse, remat=True)(params, xs, carry, valid)
  want = run_and_grad(cell, "autodiff", reverse)(params, xs, carry, valid)
  assert_close(got, want, jnp.float64)


def test_long_float32_sequence():
  """T=512, B=16, H=64 in float32: the engines' rounding differs (their
  tanh and sigmoid approximations, GEMM summation order), and gradients are
  sums of 8192 terms that can cancel, so errors are measured against each
  array's scale: within 1e-5 of its largest entry."""
  cell = jaxrnn.LSTMCell()
  params, xs, carry, valid = setup(cell, (16,), T=512, I=32, H=64, dtype=jnp.float32)
  got = run_and_grad(cell, "native", False)(params, xs, carry, valid)
  want = run_and_grad(cell, "autodiff", False)(params, xs, carry, valid)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(
      x, y, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(y)))), got, want)


def test_public_layers_on_both_engines():
  """Bidirectional inside Stacked with dropout, seq_lengths, batch-major."""
  stack = jaxrnn.Stacked([jaxrnn.Bidirectional(jaxrnn.LSTMCell()), jaxrnn.GRUCell(),
                          jaxrnn.SimpleRNNCell("relu")], dropout_rate=0.3)
  params = stack.init(jax.random.key(0), 4, [5, 6, 3], dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (3, 8, 4), jnp.float64)
  lengths = jnp.array([8, 2, 5])
  key = jax.random.key(2)

  def loss(p, impl):
    carries, ys = stack(p, xs, seq_lengths=lengths, key=key, impl=impl)
    return jnp.sum(ys ** 2) + jnp.sum(carries[0][1].c)

  assert stack(params, xs, seq_lengths=lengths, key=key, impl="native")[1].shape == (3, 8, 3)
  assert_close(jax.value_and_grad(loss)(params, "native"),
               jax.value_and_grad(loss)(params, "autodiff"), jnp.float64)


def test_vmap_of_native():
  cell = jaxrnn.CIFGLSTMCell()
  params, xs, carry, _ = setup(cell, (4,), T=5)
  xs = jnp.moveaxis(xs, 1, 0)  # (4, T, I): vmap over the batch
  one = lambda impl: (lambda x: jaxrnn.scan(cell, params, x, impl=impl)[1])
  assert_close(jax.vmap(one("native"))(xs), jax.vmap(one("autodiff"))(xs), jnp.float64)
  grads = lambda impl: jax.grad(lambda p: jax.vmap(
      lambda x: jaxrnn.scan(cell, p, x, impl=impl)[1])(xs).sum())(params)
  assert_close(grads("native"), grads("autodiff"), jnp.float64)


# ------------------------------------------------------------ engine choice
def test_auto_falls_back_with_a_reason():
  lstmp = jaxrnn.ProjectedLSTMCell()
  params = lstmp.init(jax.random.key(0), 3, 4, proj_size=2)
  engine, reason = jaxrnn.which_engine(lstmp, params, jnp.ones((2, 5, 3), jnp.float32))
  assert engine == "xla" and "ProjectedLSTMCell" in reason
  lstm = jaxrnn.LSTMCell()
  p = lstm.init(jax.random.key(0), 3, 4)
  engine, reason = jaxrnn.which_engine(lstm, p, jnp.ones((2, 5, 3), jnp.bfloat16))
  assert engine == "xla" and "bfloat16" in reason
  engine, reason = jaxrnn.which_engine(lstm, p, jnp.ones((2, 0, 3), jnp.float32))
  assert engine == "xla" and "empty" in reason
  engine, _ = jaxrnn.which_engine(lstm, p, jnp.ones((2, 5, 3), jnp.float32), impl="xla")
  assert engine == "xla"
  with jaxrnn.default_engine("xla"):
    assert jaxrnn.which_engine(lstm, p, jnp.ones((2, 5, 3), jnp.float32))[0] == "xla"


def test_impl_native_says_why_it_cannot():
  lstmp = jaxrnn.ProjectedLSTMCell()
  params = lstmp.init(jax.random.key(0), 3, 4, proj_size=2)
  with pytest.raises(ValueError, match="impl: 'native' cannot run ProjectedLSTMCell"):
    jaxrnn.scan(lstmp, params, jnp.ones((2, 5, 3), jnp.float32), impl="native")
  with pytest.raises(ValueError, match="impl: expected one of"):
    jaxrnn.scan(jaxrnn.LSTMCell(), None, jnp.ones((2, 5, 3), jnp.float32), impl="fast")


def test_forward_mode_names_the_switch():
  cell = jaxrnn.GRUCell()
  params = cell.init(jax.random.key(0), 3, 4)
  xs = jnp.ones((2, 5, 3), jnp.float32)
  f = lambda impl: (lambda x: jaxrnn.scan(cell, params, x, impl=impl)[1])
  with pytest.raises(TypeError, match="impl='autodiff'"):
    jax.jvp(f("native"), (xs,), (xs,))


def test_runs_on_xla_when_the_extension_is_missing(monkeypatch):
  """The pure-JAX engine keeps working without the native part."""
  monkeypatch.setattr(_native, "_loaded", lambda: (False, "not built (test)"))
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4)
  xs = jnp.ones((2, 5, 3), jnp.float32)
  assert not jaxrnn.native_available() and jaxrnn.native_status() == "not built (test)"
  engine, reason = jaxrnn.which_engine(cell, params, xs)
  assert engine == "xla" and "not built (test)" in reason
  ys = jaxrnn.scan(cell, params, xs, unroll=3)[1]  # a new compilation: auto -> xla
  np.testing.assert_allclose(ys, jaxrnn.scan(cell, params, xs, impl="xla")[1])
  with pytest.raises(ValueError, match="not built"):
    jaxrnn.scan(cell, params, xs, impl="native", unroll=2)


def test_profile_counts_the_phases():
  """benchmarks/profile_native.py's timers: on, they see each phase run."""
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4)
  xs = jnp.ones((2, 5, 3), jnp.float32)
  grad = jax.jit(jax.grad(lambda p: jaxrnn.scan(cell, p, xs, impl="native")[1].sum()))
  jax.block_until_ready(grad(params))  # compiled before timing
  _native.profile(True)
  jax.block_until_ready(grad(params))
  phases = _native.profile(False)
  assert set(phases) == {"pack", "recurrent", "gate_math", "barrier", "carries", "weights"}
  assert all(seconds > 0 for seconds in phases.values()), phases
  jax.block_until_ready(grad(params))  # off: nothing is counted
  assert all(seconds == 0 for seconds in _native.profile(False).values())
