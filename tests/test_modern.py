"""The cells of 2023-2024: the linear recurrences (minGRU, minLSTM, LRU,
RG-LRU) with their parallel-in-time path, and the sLSTM, against NumPy
written from the papers' equations."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
import reference
from jaxrnn import linen as jrl
from jaxrnn import nnx as jrn

MODERN = {
    "min_gru": (jaxrnn.MinGRUCell(), reference.min_gru),
    "min_lstm": (jaxrnn.MinLSTMCell(), reference.min_lstm),
    "lru": (jaxrnn.LRUCell(r_min=0.5, r_max=0.99), reference.lru),
    "rg_lru": (jaxrnn.RGLRUCell(), reference.rg_lru),
    "rg_lru_heads": (jaxrnn.RGLRUCell(num_heads=2), reference.rg_lru),
}
METHODS = ["sequential", "associative"]


def with_method(name, method):
  return dataclasses.replace(MODERN[name][0], method=method)


def case(cell, batch_shape, T, H=4, dtype=jnp.float64, seed=0):
  """Params with random (nonzero) biases, inputs, a random initial carry and
  a random mask; input size = hidden size (the RG-LRU needs it)."""
  k_p, k_x, k_c, k_v, k_b = jax.random.split(jax.random.key(seed), 5)
  params = cell.init(k_p, H, H, dtype=dtype)
  if hasattr(params, "b_i"):
    params = params._replace(b_i=0.3 * jax.random.normal(k_b, params.b_i.shape, dtype))
  xs = jax.random.normal(k_x, (*batch_shape, T, H), dtype)
  carry = cell.initial_carry(params, batch_shape)
  carry = type(carry)(*(jax.random.normal(k, c.shape, dtype)
                        for k, c in zip(jax.random.split(k_c, len(carry)), carry)))
  mask = jax.random.bernoulli(k_v, 0.7, (*batch_shape, T))
  return params, xs, carry, mask


def numpy_layer(ref, params, xs, carry, mask, reverse):
  """A Python loop of the NumPy step, masked: the independent reference."""
  p = type(params)(*(np.asarray(a, np.float64) for a in params))
  xs, mask = np.asarray(xs, np.float64), np.asarray(mask)
  state = tuple(np.asarray(c, np.float64) for c in carry)
  T = xs.shape[-2]
  ys = [None] * T
  for t in (range(T - 1, -1, -1) if reverse else range(T)):
    new, y = ref(p, state, xs[..., t, :])
    v = mask[..., t, None]
    state = tuple(np.where(v, n, o) for n, o in zip(new, state))
    ys[t] = np.where(v, y, 0.0)
  return state, np.stack(ys, axis=-2)


def assert_step_matches(cell, ref, params, carry, x):
  """One step against the NumPy reference, float64, within 1e-12."""
  got_carry, got_y = cell(params, carry, x)
  want_carry, want_y = ref(type(params)(*map(np.asarray, params)),
                           tuple(map(np.asarray, carry)), np.asarray(x))
  np.testing.assert_allclose(got_y, want_y, rtol=1e-12, atol=1e-12)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12),
               tuple(got_carry), want_carry)
  return got_y


@pytest.mark.parametrize("batch_shape", [(), (2, 3)])
@pytest.mark.parametrize("name", list(MODERN))
def test_step_matches_numpy(name, batch_shape):
  cell, ref = MODERN[name]
  params, xs, carry, _ = case(cell, batch_shape, T=1)
  got_y = assert_step_matches(cell, ref, params, carry, xs[..., 0, :])
  assert got_y.shape == (*batch_shape, cell.output_size(params))


@pytest.mark.parametrize("name, method, reverse", [
    (name, method, (i + j) % 2 == 1) for i, name in enumerate(MODERN)
    for j, method in enumerate(METHODS)])
def test_layer_matches_numpy_loop(name, method, reverse):
  """Both methods, with a mask and an initial carry: equal to the NumPy loop
  within float64 rounding. Each cell meets both directions, one per method
  (the reversal itself is the engines' shared code, tested in test_scan)."""
  cell = with_method(name, method)
  params, xs, carry, mask = case(cell, (2, 3), T=9)
  got = jaxrnn.scan(cell, params, xs, initial_carry=carry, mask=mask, reverse=reverse)
  want = numpy_layer(MODERN[name][1], params, xs, carry, mask, reverse)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12),
               (tuple(got[0]), got[1]), want)


@pytest.mark.parametrize("name", list(MODERN))
def test_long_float32_parallel_equals_step_loop(name):
  """T=4096 in float32: the associative scan against a loop (``lax.scan``) of
  the cell's own step. They round differently (a tree of products against a chain),
  and each rounding of a state is carried on with a decay below 1, so the
  errors stay at a few float32 ulps of the state's scale instead of
  growing with T: within 1e-5 of each array's largest entry."""
  cell = with_method(name, "associative")
  params, xs, carry, _ = case(cell, (2,), T=4096, H=8, dtype=jnp.float32)
  got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
  c, ys = jax.lax.scan(lambda c, x: cell(params, c, x), carry, jnp.swapaxes(xs, 0, 1))
  for g, w in zip((*got_carry, got_ys), (*c, jnp.swapaxes(ys, 0, 1))):
    np.testing.assert_allclose(g, w, rtol=0, atol=1e-5 * float(jnp.max(jnp.abs(w))))


@pytest.mark.parametrize("name", list(MODERN))
def test_gradients(name):
  """Numerical gradients, both modes, of the step and of the parallel path
  (masked, reversed). Tolerance 1e-5: the LRU's exp(-exp(nu_log)) makes the
  central differences' own error about 1e-6 relative."""
  cell = with_method(name, "associative")
  params, xs, carry, mask = case(cell, (2,), T=4, H=4 if name == "rg_lru_heads" else 3)
  check_grads(lambda p, c, x: cell(p, c, x), (params, carry, xs[:, 0]), order=1,
              modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)
  f = lambda p, x, c: jaxrnn.scan(cell, p, x, initial_carry=c, mask=mask, reverse=True)
  # forward mode of the layer on minGRU (the same path for all four)
  check_grads(f, (params, xs, carry), order=1, atol=1e-5, rtol=1e-5,
              modes=("fwd", "rev") if name == "min_gru" else ("rev",))


@pytest.mark.parametrize("name, reverse", [("min_gru", False), ("min_lstm", True),
                                           ("lru", False), ("rg_lru", True)])
def test_padding_changes_nothing(name, reverse):
  """Each right-padded sequence equals its own unpadded run (values, final
  carries and input gradients), on the parallel path with remat; each
  direction on two cells."""
  cell = with_method(name, "associative")
  params, xs, carry, _ = case(cell, (3,), T=8)
  lengths = jnp.array([8, 5, 1])
  run = lambda x, c, l: jaxrnn.scan(cell, params, x, initial_carry=c, seq_lengths=l,
                                    reverse=reverse, remat=True)
  got_carry, got_ys = run(xs, carry, lengths)
  got_dx = jax.grad(lambda x: run(x, carry, lengths)[1].sum())(xs)
  for b, L in enumerate(lengths.tolist()):
    c0 = jax.tree.map(lambda a: a[b], carry)
    want_carry, want_ys = jaxrnn.scan(cell, params, xs[b, :L], initial_carry=c0,
                                      reverse=reverse)
    want_dx = jax.grad(lambda x: jaxrnn.scan(cell, params, x, initial_carry=c0,
                                             reverse=reverse)[1].sum())(xs[b, :L])
    np.testing.assert_allclose(got_ys[b, :L], want_ys, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_dx[b, :L], want_dx, rtol=1e-12, atol=1e-12)
    assert not got_ys[b, L:].any() and not got_dx[b, L:].any()
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g[b], w, rtol=1e-12),
                 got_carry, want_carry)


def test_initialisation_rings():
  lru = jaxrnn.LRUCell(r_min=0.9, r_max=0.999, max_phase=np.pi / 10)
  p = lru.init(jax.random.key(0), 3, 1000)
  lam = np.asarray(lru.eigenvalues(p))
  assert np.all((np.abs(lam) >= 0.9 - 1e-6) & (np.abs(lam) <= 0.999 + 1e-6))
  assert np.all((np.angle(lam) >= 0) & (np.angle(lam) <= np.pi / 10 + 1e-6))
  np.testing.assert_allclose(np.exp(p.gamma_log), np.sqrt(1 - np.abs(lam) ** 2), rtol=1e-4)
  rg = jaxrnn.RGLRUCell()
  a = np.asarray(rg.base_decay(rg.init(jax.random.key(0), 1000, 1000)))
  assert np.all((a >= 0.9 - 1e-6) & (a <= 0.999 + 1e-6))
  assert a.min() < 0.91 and a.max() > 0.99  # spread over the ring


def test_rg_lru_block_diagonal_gates():
  """num_heads = n: w_i holds n LeCun-normal blocks (variance 1/d), and a cell
  with one head per channel group equals the dense cell whose W_a, W_x are
  those blocks on the diagonal, zero elsewhere."""
  H, n = 512, 4
  cell = jaxrnn.RGLRUCell(num_heads=n)
  p = cell.init(jax.random.key(0), H, H)
  assert p.w_i.shape == (n, H // n, 2 * H // n) and cell.hidden_size(p) == H
  np.testing.assert_allclose(np.var(np.asarray(p.w_i)), 1 / (H // n), rtol=0.05)
  d = H // n
  w_dense = jnp.zeros((H, 2 * H))
  for k in range(n):
    rows = slice(k * d, (k + 1) * d)
    w_dense = w_dense.at[rows, k * d:(k + 1) * d].set(p.w_i[k, :, :d])
    w_dense = w_dense.at[rows, H + k * d:H + (k + 1) * d].set(p.w_i[k, :, d:])
  xs = jax.random.normal(jax.random.key(1), (2, 6, H))
  got = jaxrnn.scan(cell, p, xs)
  want = jaxrnn.scan(jaxrnn.RGLRUCell(), p._replace(w_i=w_dense), xs)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6), got, want)


def test_bfloat16_inputs_accumulate_in_float32():
  cell = jaxrnn.RGLRUCell(method="sequential")
  params = cell.init(jax.random.key(0), 8, 8, dtype=jnp.bfloat16)
  xs = jax.random.normal(jax.random.key(1), (2, 64, 8), jnp.bfloat16)
  carry, ys = jaxrnn.scan(cell, params, xs)
  assert ys.dtype == jnp.bfloat16 and carry.h.dtype == jnp.bfloat16
  want = jaxrnn.scan(cell, jax.tree.map(lambda a: a.astype(jnp.float32), params),
                     xs.astype(jnp.float32))[1]
  np.testing.assert_allclose(ys.astype(np.float32), want, atol=2e-2, rtol=2e-2)


def test_layers_and_modules():
  """Bidirectional inside Stacked, and the linen and nnx modules, over the
  new cells: equal to the functional layer."""
  stack = jaxrnn.Stacked([jaxrnn.Bidirectional(jaxrnn.MinGRUCell(), jaxrnn.MinLSTMCell()),
                          jaxrnn.LRUCell()])
  params = stack.init(jax.random.key(0), 3, [4, 5], dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3), jnp.float64)
  lengths = jnp.array([6, 4])
  _, ys = stack(params, xs, seq_lengths=lengths)
  assert ys.shape == (2, 6, 8)  # the LRU's output has its input's size
  _, ys_remat = stack(params, xs, seq_lengths=lengths, remat=True)
  np.testing.assert_allclose(ys_remat, ys, rtol=1e-12)
  dense = (cell for name, (cell, _) in MODERN.items() if name != "rg_lru_heads")
  for cell in (*dense, jaxrnn.RGLRUCell(num_heads=3), jaxrnn.SLSTMCell()):
    module = jrl.RNN(cell, hidden_size=3)
    variables = module.init(jax.random.key(2), xs)
    np.testing.assert_array_equal(
        module.apply(variables, xs, seq_lengths=lengths)[1],
        jaxrnn.scan(cell, jrl.to_functional(variables), xs, seq_lengths=lengths)[1])
    nnx_module = jrn.RNN(cell, 3, 3, rngs=__import__("flax").nnx.Rngs(0))
    np.testing.assert_array_equal(  # the same compiled layer as above
        nnx_module(xs, seq_lengths=lengths)[1],
        jaxrnn.scan(cell, jrn.to_functional(nnx_module), xs, seq_lengths=lengths)[1])


def test_errors_name_the_argument():
  with pytest.raises(ValueError, match="method: expected one of"):
    jaxrnn.MinGRUCell(method="parallel")
  with pytest.raises(ValueError, match="input_size: RGLRUCell needs"):
    jaxrnn.RGLRUCell().init(jax.random.key(0), 3, 4)
  with pytest.raises(ValueError, match="r_min, r_max"):
    jaxrnn.LRUCell(r_min=0.5, r_max=0.4)
  with pytest.raises(ValueError, match="num_heads: expected a positive int, got 0"):
    jaxrnn.RGLRUCell(num_heads=0)
  with pytest.raises(ValueError, match="hidden_size: expected a multiple of num_heads=3"):
    jaxrnn.RGLRUCell(num_heads=3).init(jax.random.key(0), 4, 4)
  dense = jaxrnn.RGLRUCell().init(jax.random.key(0), 4, 4)
  with pytest.raises(ValueError, match=r"params.w_i: expected a 3-D array"):
    jaxrnn.RGLRUCell(num_heads=2)(dense, jaxrnn.RNNState(jnp.zeros(4)), jnp.ones(4))
  cell = jaxrnn.LRUCell()
  params = cell.init(jax.random.key(0), 3, 4)
  with pytest.raises(ValueError, match="params.c_re: expected shape"):
    jaxrnn.scan(cell, params._replace(c_re=params.c_re.T), jnp.ones((2, 5, 3)))
  with pytest.raises(ValueError, match="impl: 'native' cannot run LRUCell"):
    jaxrnn.scan(cell, params, jnp.ones((2, 5, 3)), impl="native")
  engine, reason = jaxrnn.which_engine(cell, params, jnp.ones((2, 5, 3)))
  assert engine == "linear" and "sequential" in reason


# ------------------------------------------------------------------ sLSTM
def slstm_case(cell, batch_shape, T, H=4, seed=0):
  """A random carry with a positive normaliser n (as any reachable state)."""
  k_p, k_x, k_c, k_v = jax.random.split(jax.random.key(seed), 4)
  params = cell.init(k_p, 3, H, dtype=jnp.float64)
  params = params._replace(b=0.5 * jax.random.normal(k_p, params.b.shape, jnp.float64))
  h, c, n, m = (jax.random.normal(k, (*batch_shape, H), jnp.float64)
                for k in jax.random.split(k_c, 4))
  carry = jaxrnn.SLSTMState(h, c, jnp.abs(n) + 0.5, m)
  xs = jax.random.normal(k_x, (*batch_shape, T, 3), jnp.float64)
  return params, xs, carry, jax.random.bernoulli(k_v, 0.7, (*batch_shape, T))


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_slstm_matches_numpy(forget_gate):
  cell = jaxrnn.SLSTMCell(num_heads=2, forget_gate=forget_gate)
  ref = functools.partial(reference.slstm, forget_gate=forget_gate)
  params, xs, carry, mask = slstm_case(cell, (2, 3), T=7)
  assert_step_matches(cell, ref, params, carry, xs[..., 0, :])
  for reverse in (False, True):
    got = jaxrnn.scan(cell, params, xs, initial_carry=carry, mask=mask, reverse=reverse)
    want = numpy_layer(ref, params, xs, carry, mask, reverse)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12),
                 (tuple(got[0]), got[1]), want)


def test_slstm_gradients_and_zero_start():
  cell = jaxrnn.SLSTMCell(num_heads=2)
  params, xs, carry, mask = slstm_case(cell, (2,), T=4)
  f = lambda p, x, c: jaxrnn.scan(cell, p, x, initial_carry=c, mask=mask)
  check_grads(f, (params, xs, carry), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
  # From the zero carry (n = 0) over a long sequence: finite everywhere.
  xs = 3 * jax.random.normal(jax.random.key(5), (2, 2000, 3))
  p32 = cell.init(jax.random.key(6), 3, 4)
  loss = lambda p: jaxrnn.scan(cell, p, xs)[1].sum()
  value, grads = jax.value_and_grad(loss)(p32)
  assert np.isfinite(value) and all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  with pytest.raises(ValueError, match="hidden_size: expected a multiple of num_heads"):
    jaxrnn.SLSTMCell(num_heads=3).init(jax.random.key(0), 3, 4)
  with pytest.raises(ValueError, match="forget_gate"):
    jaxrnn.SLSTMCell(forget_gate="tanh")


# ------------------------------------------------------ log-space minGRU/LSTM
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["min_gru", "min_lstm"])
def test_log_space_matches_numpy(name, method):
  """The log-space form (positive candidate g, solved on log h) equals the
  NumPy loop of its equations in linear space; both directions, masked, from
  a positive carry; then from zeros behind masked leading steps, where the
  gradients stay finite."""
  cell = dataclasses.replace(MODERN[name][0], log_space=True, method=method)
  ref = functools.partial(MODERN[name][1], log_space=True)
  params, xs, carry, mask = case(cell, (2, 3), T=9)
  carry = jax.tree.map(jnp.abs, carry)
  for reverse in (False, True):
    got = jaxrnn.scan(cell, params, xs, initial_carry=carry, mask=mask, reverse=reverse)
    want = numpy_layer(ref, params, xs, carry, mask, reverse)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12),
                 (tuple(got[0]), got[1]), want)
  lead = mask.at[..., :3].set(False)
  loss = lambda p, x: jaxrnn.scan(cell, p, x, mask=lead)[1].sum()
  grads = jax.grad(loss, argnums=(0, 1))(params, xs)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  if method == "associative":
    check_grads(lambda p, x: jaxrnn.scan(cell, p, x, initial_carry=carry, mask=mask)[1],
                (params, xs), order=1, modes=("rev",), atol=1e-5, rtol=1e-5)
