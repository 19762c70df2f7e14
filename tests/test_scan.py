"""The scan engine and the layers built on it, against Python loops over the
cell (whose steps test_cells.py checks against NumPy and PyTorch)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from jax.test_util import check_grads

import jaxrnn
from cases import CELLS, init_params

pytestmark = pytest.mark.usefixtures("engine")  # each test on both engines

RTOL = 1e-10


def setup(cell, batch_shape, T=7, I=3, H=4, seed=0, dtype=jnp.float64):
  k_p, k_x, k_c = jax.random.split(jax.random.key(seed), 3)
  params = init_params(cell, k_p, I, H, dtype=dtype, initializer="pytorch")
  xs = jax.random.normal(k_x, (*batch_shape, T, I), dtype)
  carry = cell.initial_carry(params, batch_shape)
  carry = type(carry)(*(jax.random.normal(k, c.shape, dtype)
                        for k, c in zip(jax.random.split(k_c, len(carry)), carry)))
  return params, xs, carry


def loop(cell, params, xs, carry, valid=None, reverse=False):
  """Step by step in Python over batch-major xs; valid: (*batch, T) bool."""
  T = xs.shape[-2]
  ys = [None] * T
  order = range(T - 1, -1, -1) if reverse else range(T)
  for t in order:
    new_carry, y = cell(params, carry, xs[..., t, :])
    if valid is None:
      carry = new_carry
    else:
      v = valid[..., t, None]
      carry = jax.tree.map(lambda n, o: jnp.where(v, n, o), new_carry, carry)
      y = jnp.where(v, y, 0.0)
    ys[t] = y
  return carry, jnp.stack(ys, axis=-2)


def assert_trees_close(a, b, rtol=RTOL, atol=1e-12):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


# Every cell with three (batch shape, direction) pairs, rotated over the
# cells so that each batch shape meets each direction.
LOOP_CASES = [(name, shape, (i + j) % 2 == 1) for i, name in enumerate(CELLS)
              for j, shape in enumerate([(), (3,), (2, 3)])]


@pytest.mark.parametrize("name, batch_shape, reverse", LOOP_CASES)
def test_scan_matches_python_loop(name, batch_shape, reverse):
  cell, _ = CELLS[name]
  params, xs, carry = setup(cell, batch_shape)
  got = jaxrnn.scan(cell, params, xs, initial_carry=carry, reverse=reverse)
  assert_trees_close(got, loop(cell, params, xs, carry, reverse=reverse))


@pytest.mark.parametrize("name", ["lstm", "gru_after"])
def test_time_major_and_unroll(name):
  cell, _ = CELLS[name]
  params, xs, carry = setup(cell, (2, 3), T=9)
  want_carry, want_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
  xs_tm = jnp.moveaxis(xs, -2, 0)
  for unroll in (1, 2, 4, True):
    got_carry, got_ys = jaxrnn.scan(cell, params, xs_tm, initial_carry=carry,
                                    time_major=True, unroll=unroll)
    assert got_ys.shape == (9, 2, 3, 4)
    assert_trees_close((got_carry, jnp.moveaxis(got_ys, 0, -2)), (want_carry, want_ys))


def test_jit_equals_no_jit():
  cell, _ = CELLS["peephole"]
  params, xs, carry = setup(cell, (3,))
  lengths = jnp.array([7, 2, 5])
  run = lambda: jaxrnn.scan(cell, params, xs, initial_carry=carry,
                            seq_lengths=lengths, reverse=True)
  jitted = run()
  with jax.disable_jit():
    eager = run()
  assert_trees_close(jitted, eager)
  user_jit = jax.jit(lambda p, x, l: jaxrnn.scan(cell, p, x, seq_lengths=l))
  assert_trees_close(user_jit(params, xs, lengths),
                     jaxrnn.scan(cell, params, xs, seq_lengths=lengths))


@pytest.mark.parametrize("name, reverse", [(name, i % 2 == 1) for i, name in enumerate(CELLS)]
                         + [("lstm", False), ("gru_after", True)])  # both ways for these
def test_padding_changes_nothing(name, reverse):
  """Each padded sequence equals the same sequence run alone, unpadded."""
  cell, _ = CELLS[name]
  batch_shape, T = (2, 3), 8
  params, xs, carry = setup(cell, batch_shape, T=T)
  lengths = jnp.array([[8, 3, 0], [1, 6, 5]])
  xs = jnp.where(jnp.arange(T)[:, None] < lengths[..., None, None], xs, 1e3)  # junk
  got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry,
                                  seq_lengths=lengths, reverse=reverse)
  for idx in np.ndindex(*batch_shape):
    L = int(lengths[idx])
    c0 = jax.tree.map(lambda c: c[idx], carry)
    want_carry, want_ys = jaxrnn.scan(cell, params, xs[idx][:L], initial_carry=c0,
                                      reverse=reverse)
    assert_trees_close(jax.tree.map(lambda c: c[idx], got_carry), want_carry)
    np.testing.assert_allclose(got_ys[idx][:L], want_ys, rtol=RTOL, atol=1e-12)
    assert not got_ys[idx][L:].any()


def test_reverse_is_padding_aware():
  """Reverse = run forward on each sequence flipped within its length."""
  cell, _ = CELLS["lstm"]
  params, xs, _ = setup(cell, (3,), T=6)
  lengths = [6, 4, 1]
  carry, ys = jaxrnn.scan(cell, params, xs, seq_lengths=jnp.array(lengths), reverse=True)
  for b, L in enumerate(lengths):
    want_carry, want_ys = loop(cell, params, xs[b, :L][::-1], cell.initial_carry(params))
    np.testing.assert_allclose(ys[b, :L], want_ys[::-1], rtol=RTOL)
    assert_trees_close(jax.tree.map(lambda c: c[b], carry), want_carry)


@pytest.mark.parametrize("name, reverse", [(name, i % 2 == 0) for i, name in enumerate(CELLS)]
                         + [("lstm", True), ("gru_after", False)])  # both ways for these
def test_arbitrary_mask_matches_loop(name, reverse):
  cell, _ = CELLS[name]
  params, xs, carry = setup(cell, (2, 3), T=9)
  mask = jax.random.bernoulli(jax.random.key(7), 0.6, (2, 3, 9))
  got = jaxrnn.scan(cell, params, xs, initial_carry=carry, mask=mask, reverse=reverse)
  assert_trees_close(got, loop(cell, params, xs, carry, valid=mask, reverse=reverse))
  got_tm = jaxrnn.scan(cell, params, jnp.moveaxis(xs, -2, 0), initial_carry=carry,
                       mask=jnp.moveaxis(mask, -1, 0), reverse=reverse, time_major=True)
  assert_trees_close((got_tm[0], jnp.moveaxis(got_tm[1], 0, -2)), got)


def test_mask_and_lengths_combine():
  cell, _ = CELLS["gru_after"]
  params, xs, carry = setup(cell, (4,), T=6)
  lengths = jnp.array([6, 3, 5, 0])
  mask = jax.random.bernoulli(jax.random.key(3), 0.7, (4, 6))
  both = mask & (jnp.arange(6) < lengths[:, None])
  got = jaxrnn.scan(cell, params, xs, initial_carry=carry, seq_lengths=lengths, mask=mask)
  assert_trees_close(got, loop(cell, params, xs, carry, valid=both))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=4, max_size=4), st.booleans())
def test_property_lengths_equal_mask(lengths, reverse):
  """seq_lengths and the equivalent prefix mask give identical results."""
  cell, _ = CELLS["lstm"]
  params, xs, carry = setup(cell, (4,), T=10)
  lengths = jnp.array(lengths)
  by_lengths = jaxrnn.scan(cell, params, xs, initial_carry=carry,
                           seq_lengths=lengths, reverse=reverse)
  by_mask = jaxrnn.scan(cell, params, xs, initial_carry=carry, reverse=reverse,
                        mask=jnp.arange(10) < lengths[:, None])
  assert_trees_close(by_lengths, by_mask, rtol=0, atol=0)


def test_scan_under_vmap():
  cell, _ = CELLS["cifg"]
  params, xs, carry = setup(cell, (5,))
  lengths = jnp.array([7, 1, 4, 0, 3])
  batched = jaxrnn.scan(cell, params, xs, initial_carry=carry, seq_lengths=lengths)
  one = lambda x, c, l: jaxrnn.scan(cell, params, x, initial_carry=c, seq_lengths=l)
  assert_trees_close(jax.vmap(one)(xs, carry, lengths), batched)


@pytest.mark.parametrize("name", list(CELLS))
def test_scan_gradients(name, engine):
  cell, _ = CELLS[name]
  params, xs, carry = setup(cell, (2,), T=4, I=2, H=3)
  if name == "rnn_relu":
    params = params._replace(b_i=params.b_i + 5.0)
  mask = jnp.array([[True, False, True, True], [True, True, True, False]])
  f = lambda p, x, c: jaxrnn.scan(cell, p, x, initial_carry=c, mask=mask, reverse=True)
  check_grads(f, (params, xs, carry), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
  if engine == "xla":  # forward mode: the autodiff engine's alone
    with jaxrnn.default_engine("autodiff"):
      check_grads(f, (params, xs, carry), order=1, modes=("fwd",), atol=1e-6,
                  rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
def test_scan_dtypes(dtype):
  cell = jaxrnn.LSTMCell()
  params, xs, _ = setup(cell, (2,), dtype=dtype)
  carry, ys = jaxrnn.scan(cell, params, xs, seq_lengths=jnp.array([7, 3]))
  assert ys.dtype == dtype and carry.h.dtype == dtype and carry.c.dtype == dtype
  grads = jax.grad(lambda p: jaxrnn.scan(cell, p, xs)[1].astype(jnp.float32).sum())(params)
  assert all(g.dtype == dtype for g in jax.tree.leaves(grads))


def test_float32_carry_with_bfloat16_inputs_keeps_carry_dtype():
  cell = jaxrnn.GRUCell()
  params, xs, _ = setup(cell, (2,), dtype=jnp.float32)
  carry = cell.initial_carry(params, (2,), jnp.float32)
  out_carry, _ = jaxrnn.scan(cell, params, xs.astype(jnp.bfloat16), initial_carry=carry)
  assert out_carry.h.dtype == jnp.float32


# ------------------------------------------------------------ bidirectional
@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_halves(merge):
  layer = jaxrnn.Bidirectional(jaxrnn.LSTMCell(), jaxrnn.GRUCell(), merge=merge)
  params = layer.init(jax.random.key(0), 3, 4, dtype=jnp.float64, initializer="pytorch")
  xs = jax.random.normal(jax.random.key(1), (3, 6, 3), jnp.float64)
  lengths = [6, 2, 4]
  (c_fwd, c_bwd), ys = layer(params, xs, seq_lengths=jnp.array(lengths))
  assert ys.shape == (3, 6, 8 if merge == "concat" else 4)
  assert layer.output_size(params) == ys.shape[-1]
  for b, L in enumerate(lengths):
    f_carry, f_ys = loop(layer.forward, params.forward, xs[b, :L],
                         layer.forward.initial_carry(params.forward))
    b_carry, b_ys = loop(layer.backward, params.backward, xs[b, :L][::-1],
                         layer.backward.initial_carry(params.backward))
    b_ys = b_ys[::-1]
    want = jnp.concatenate([f_ys, b_ys], -1) if merge == "concat" else f_ys + b_ys
    np.testing.assert_allclose(ys[b, :L], want, rtol=RTOL)
    assert not ys[b, L:].any()
    assert_trees_close(jax.tree.map(lambda c: c[b], (c_fwd, c_bwd)), (f_carry, b_carry))


def test_bidirectional_custom_merge_and_carry():
  layer = jaxrnn.Bidirectional(jaxrnn.SimpleRNNCell(), merge=lambda a, b: a * b)
  assert layer.backward == layer.forward
  params = layer.init(jax.random.key(0), 3, 5, dtype=jnp.float64)
  assert not jax.tree.leaves(jax.tree.map(jnp.array_equal, params.forward, params.backward))[0]
  xs = jax.random.normal(jax.random.key(1), (2, 4, 3), jnp.float64)
  carry = jax.tree.map(lambda c: c + 0.5, layer.initial_carry(params, (2,)))
  _, ys = layer(params, xs, initial_carry=carry)
  _, f = jaxrnn.scan(layer.forward, params.forward, xs, initial_carry=carry[0])
  _, b = jaxrnn.scan(layer.backward, params.backward, xs, initial_carry=carry[1], reverse=True)
  np.testing.assert_allclose(ys, f * b, rtol=RTOL)


# ------------------------------------------------------------------ stacked
def test_stacked_matches_manual_composition():
  stack = jaxrnn.Stacked([jaxrnn.LSTMCell(),
                          jaxrnn.Bidirectional(jaxrnn.GRUCell(), merge="concat"),
                          jaxrnn.PeepholeLSTMCell()])
  params = stack.init(jax.random.key(0), 3, [4, 5, 6], dtype=jnp.float64,
                      initializer="pytorch")
  assert stack.output_size(params) == 6
  xs = jax.random.normal(jax.random.key(1), (2, 7, 3), jnp.float64)
  lengths = jnp.array([7, 4])
  carries, ys = stack(params, xs, seq_lengths=lengths)
  c0, h = jaxrnn.scan(stack.layers[0], params[0], xs, seq_lengths=lengths)
  c1, h = stack.layers[1](params[1], h, seq_lengths=lengths)
  c2, h = jaxrnn.scan(stack.layers[2], params[2], h, seq_lengths=lengths)
  assert_trees_close((carries, ys), ((c0, c1, c2), h))
  tm = stack(params, jnp.moveaxis(xs, 1, 0), seq_lengths=lengths, time_major=True)
  assert_trees_close((tm[0], jnp.moveaxis(tm[1], 0, 1)), (carries, ys))


def test_stacked_dropout():
  stack = jaxrnn.Stacked([jaxrnn.LSTMCell(), jaxrnn.LSTMCell()], dropout_rate=0.5)
  params = stack.init(jax.random.key(0), 3, 8)
  xs = jax.random.normal(jax.random.key(1), (4, 5, 3))
  plain = jaxrnn.Stacked(stack.layers)(params, xs)
  assert_trees_close(stack(params, xs, deterministic=True), plain, rtol=0, atol=0)
  a = stack(params, xs, key=jax.random.key(2))
  assert_trees_close(a, stack(params, xs, key=jax.random.key(2)), rtol=0, atol=0)
  assert not np.allclose(a[1], plain[1])
  assert not np.allclose(a[1], stack(params, xs, key=jax.random.key(3))[1])
  # The first layer's carry is computed before any dropout: unchanged.
  assert_trees_close(a[0][0], plain[0][0], rtol=0, atol=0)
  # A single layer has no dropout: none follows the last layer.
  one_layer = jaxrnn.Stacked([jaxrnn.LSTMCell()], dropout_rate=0.5)
  assert_trees_close(one_layer(params[:1], xs, key=jax.random.key(2)),
                     jaxrnn.Stacked([jaxrnn.LSTMCell()])(params[:1], xs),
                     rtol=0, atol=0)


def test_stacked_dropout_mask_and_scale():
  """Two identity ReLU layers: the output shows the dropout mask itself."""
  rate, n = 0.25, 16
  cell = jaxrnn.SimpleRNNCell("relu")
  identity = jaxrnn.SimpleRNNParams(jnp.eye(n), jnp.zeros((n, n)), None, None)
  stack = jaxrnn.Stacked([cell, cell], dropout_rate=rate)
  xs = jnp.abs(jax.random.normal(jax.random.key(0), (8, 50, n))) + 0.1
  _, ys = stack((identity, identity), xs, key=jax.random.key(1))
  dropped = np.asarray(ys) == 0
  np.testing.assert_allclose(np.asarray(ys)[~dropped],
                             np.asarray(xs)[~dropped] / (1 - rate), rtol=1e-6)
  assert abs(dropped.mean() - rate) < 0.02  # 6400 draws: sd ~0.005


def test_stacked_grad_and_vmap():
  stack = jaxrnn.Stacked([jaxrnn.GRUCell(), jaxrnn.SimpleRNNCell()])
  params = stack.init(jax.random.key(0), 2, 3, dtype=jnp.float64, initializer="pytorch")
  xs = jax.random.normal(jax.random.key(1), (2, 4, 2), jnp.float64)
  check_grads(lambda p, x: stack(p, x)[1], (params, xs), order=1, modes=("rev",),
              atol=1e-6, rtol=1e-6)
  assert_trees_close(jax.vmap(lambda x: stack(params, x))(xs), stack(params, xs))


@pytest.mark.parametrize("name", list(CELLS))
def test_hoisted_and_per_step_projection_agree(name, engine):
  """The engine's two placements of the input matmul give the same numbers;
  the backend picks one (per step on CPU), so both are checked here, on the
  XLA engine's fused backward and (under the "native" fixture, which has no
  hoisting) on the autodiff engine."""
  impl = "xla" if engine == "xla" else "autodiff"
  if list(CELLS).index(name) % 2 != (impl == "xla") and name not in ("lstm", "gru_after"):
    pytest.skip("the cells take the two engines in turn; LSTM and GRU take both")
  from jaxrnn._src.engines import registry as engine
  cell, _ = CELLS[name]
  params, xs, carry = setup(cell, (3,))
  xs = jnp.moveaxis(xs, 1, 0)
  valid = jax.random.bernoulli(jax.random.key(5), 0.7, xs.shape[:2])

  @functools.partial(jax.jit, static_argnums=(3,))
  def run_and_grad(p, x, v, hoist):
    run = lambda p, x: engine.run_cell(cell, p, x, carry, v, reverse=True, unroll=2,
                                       hoist=hoist, impl=impl)
    return run(p, x), jax.grad(lambda p, x: run(p, x)[1].sum(), argnums=(0, 1))(p, x)

  for v in (jnp.ones_like(valid), valid):
    assert_trees_close(run_and_grad(params, xs, v, True), run_and_grad(params, xs, v, False))
  # and the unmasked path
  unmasked = lambda hoist: engine.run_cell(cell, params, xs, carry, None, reverse=False,
                                           unroll=1, hoist=hoist, impl=impl)
  assert_trees_close(unmasked(True), unmasked(False))


@pytest.mark.parametrize("T, reverse", [(1, True), (7, False), (16, True), (16, False)])
def test_remat_changes_nothing(T, reverse):
  cell, _ = CELLS["lstm"]
  params, xs, carry = setup(cell, (3,), T=T)
  lengths = jnp.array([T, max(T - 3, 0), 1])

  @functools.partial(jax.jit, static_argnums=(2,))
  def run_and_grad(p, x, remat):
    def loss(p, x):
      out = jaxrnn.scan(cell, p, x, initial_carry=carry, seq_lengths=lengths,
                        reverse=reverse, remat=remat)
      return out[1].sum() + out[0].c.sum(), out
    return jax.grad(loss, argnums=(0, 1), has_aux=True)(p, x)

  assert_trees_close(run_and_grad(params, xs, True), run_and_grad(params, xs, False))
  stack = jaxrnn.Stacked([jaxrnn.Bidirectional(cell), cell])
  sp = stack.init(jax.random.key(0), 3, 4, dtype=jnp.float64)
  assert_trees_close(stack(sp, xs, remat=True), stack(sp, xs))


def test_remat_memory_grows_sublinearly():
  """Peak temporary memory of a training step, from XLA's own accounting."""
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 4, 16)

  def temp_bytes(T, remat):
    loss = lambda p, x: jaxrnn.scan(cell, p, x, remat=remat)[0].h.sum()
    xs = jax.ShapeDtypeStruct((2, T, 4), jnp.float32)
    return jax.jit(jax.grad(loss)).lower(params, xs).compile().memory_analysis().temp_size_in_bytes

  plain = [temp_bytes(T, False) for T in (400, 1600)]
  remat = [temp_bytes(T, True) for T in (400, 1600)]
  assert plain[1] / plain[0] > 3      # linear: 4x the steps, ~4x the memory
  assert remat[1] / remat[0] < 2.5    # sqrt: 4x the steps, ~2x the memory
  assert remat[1] < plain[1] / 4
