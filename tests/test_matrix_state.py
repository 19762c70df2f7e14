"""The matrix-state cells (GLA and its linear-attention and RetNet options,
mLSTM, DeltaNet, Gated DeltaNet) on the chunkwise engine, and Mamba's S6 on
the linear one: against NumPy written from the papers' equations, and every
form (sequential, chunkwise, parallel) against every other in float64."""

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

I, HIDDEN, HEADS = 5, 8, 2

CELLS = {
    "gla": (jaxrnn.GLACell(num_heads=HEADS),
            functools.partial(reference.gla, heads=HEADS)),
    "retnet": (jaxrnn.GLACell(num_heads=HEADS, decay="fixed"),
               functools.partial(reference.gla, heads=HEADS, decay="fixed")),
    "linear_attention": (
        jaxrnn.GLACell(num_heads=HEADS, decay="none", feature_map="elu"),
        functools.partial(reference.gla, heads=HEADS, decay="none", feature_map="elu")),
    "mlstm": (jaxrnn.MLSTMCell(num_heads=HEADS, key_size=3),
              functools.partial(reference.mlstm, heads=HEADS)),
    "deltanet": (jaxrnn.DeltaNetCell(num_heads=HEADS),
                 functools.partial(reference.delta_net, heads=HEADS)),
    "gated_deltanet": (jaxrnn.GatedDeltaNetCell(num_heads=HEADS),
                       functools.partial(reference.delta_net, heads=HEADS, gated=True)),
    "gated_deltanet_negative": (
        jaxrnn.GatedDeltaNetCell(num_heads=HEADS, negative_eigenvalues=True),
        functools.partial(reference.delta_net, heads=HEADS, gated=True,
                          negative_eigenvalues=True)),
}
FORMS = [("sequential", None), ("chunkwise", 4), ("parallel", None)]


def form(name, method, chunk_size=None):
  return dataclasses.replace(CELLS[name][0], method=method, chunk_size=chunk_size)


def case(cell, batch_shape, T, seed=0):
  """Random params (every field perturbed: the gates' zero inits would hide
  terms), inputs, and a random non-zero initial carry and reset target."""
  k_p, k_n, k_x, k_c, k_r = jax.random.split(jax.random.key(seed), 5)
  params = cell.init(k_p, I, HIDDEN, dtype=jnp.float64)
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(k_n, len(leaves))
  params = jax.tree.unflatten(tree, [a + 0.3 * jax.random.normal(k, a.shape, a.dtype)
                                     for k, a in zip(keys, leaves)])
  xs = jax.random.normal(k_x, (*batch_shape, T, I), jnp.float64)
  zeros = cell.initial_carry(params, batch_shape, jnp.float64)
  carry = type(zeros)(*(0.5 * jax.random.normal(k, c.shape, c.dtype)
                        for k, c in zip(jax.random.split(k_c, len(zeros)), zeros)))
  target = type(zeros)(*(0.5 * jax.random.normal(k, c.shape, c.dtype)
                         for k, c in zip(jax.random.split(k_r, len(zeros)), zeros)))
  return params, xs, carry, target


def flags(batch_shape, T, p, seed):
  return np.array(jax.random.bernoulli(jax.random.key(seed), p, (*batch_shape, T)))


# ------------------------------------------------------ the NumPy reference
def to_reference(name, carry):
  """jaxrnn's carry in the papers' terms: mLSTM's unstabilised (C, n) with C
  value-major; the delta rule's S value-major; GLA's S as it is."""
  c = [np.asarray(a, np.float64) for a in carry]
  if name == "mlstm":
    C, n, m = c
    scale = np.exp(m)
    return (scale[..., None, None] * np.swapaxes(C, -1, -2), scale[..., None] * n)
  if "deltanet" in name:
    return (np.swapaxes(c[0], -1, -2),)
  return tuple(c)


def numpy_layer(ref, params, xs, state, mask, resets, target, reverse):
  """A Python loop of the NumPy step under the layer's rules: reset before
  the step, then an invalid step holds the state and outputs zero."""
  p = reference.np_params(params)
  xs = np.asarray(xs, np.float64)
  T = xs.shape[-2]
  ys = [None] * T
  order = list(range(T - 1, -1, -1) if reverse else range(T))
  for i, t in enumerate(order):
    if resets is not None:  # in reverse a segment starts at its last step
      r = resets[..., t] if not reverse else (
          resets[..., t + 1] if t + 1 < T else np.zeros_like(resets[..., t]))
      state = tuple(np.where(r.reshape(r.shape + (1,) * (s.ndim - r.ndim)), g, s)
                    for s, g in zip(state, target))
    new, y = ref(p, state, xs[..., t, :])
    v = mask[..., t]
    state = tuple(np.where(v.reshape(v.shape + (1,) * (n.ndim - v.ndim)), n, s)
                  for n, s in zip(new, state))
    ys[t] = np.where(v[..., None], y, 0.0)
  return state, np.stack(ys, axis=-2)


@pytest.mark.parametrize("name", list(CELLS))
def test_step_matches_numpy(name):
  """One step from a stored non-zero carry, batch shape (2, 3)."""
  cell, ref = CELLS[name]
  params, xs, carry, _ = case(cell, (2, 3), 1)
  new, y = cell(params, carry, xs[..., 0, :])
  want_state, want_y = ref(reference.np_params(params), to_reference(name, carry),
                           np.asarray(xs[..., 0, :]))
  np.testing.assert_allclose(y, want_y, rtol=1e-10, atol=1e-12)
  for got, want in zip(to_reference(name, new), want_state):
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, reverse", [(n, i % 2 == 1) for i, n in enumerate(CELLS)]
                         + [("mlstm", False), ("gated_deltanet", False)])
def test_layer_matches_numpy_loop(name, reverse):
  """The chunkwise layer (chunks of 4, T=11) with a mask, resets inside and
  at chunk boundaries, a stored initial carry and a reset target, against
  the NumPy loop; the cells take the two directions in turn, mLSTM and
  Gated DeltaNet both."""
  cell = form(name, "chunkwise", 4)
  params, xs, carry, target = case(cell, (2,), 11, seed=1)
  mask, resets = flags((2,), 11, 0.8, 2), flags((2,), 11, 0.25, 3)
  resets[0, [4, 6]] = True  # a chunk boundary and a step inside a chunk
  got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry, mask=mask,
                                  resets=resets, reset_carry=target, reverse=reverse)
  want_state, want_ys = numpy_layer(CELLS[name][1], params, xs,
                                    to_reference(name, carry), mask, resets,
                                    to_reference(name, target), reverse)
  np.testing.assert_allclose(got_ys, want_ys, rtol=1e-9, atol=1e-11)
  for got, want in zip(to_reference(name, got_carry), want_state):
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


# ------------------------------------------------------------- the forms
OPTIONS = {  # T a multiple of the chunk (4) or not; resets at 3 (inside) and 8
    "batched": dict(batch_shape=(2, 3), T=12, mask=0.7, resets=0.2),
    "reverse_target": dict(batch_shape=(), T=11, resets=0.25, reverse=True,
                           target=True, mask=0.8),
}


def run_forms(name, options):
  """Every form's outputs, final carry, and the gradients of a loss of both
  with respect to params, xs, the initial carry and the reset target."""
  batch_shape, T = options["batch_shape"], options["T"]
  cell = CELLS[name][0]
  params, xs, carry, target = case(cell, batch_shape, T, seed=4)
  kw = dict(reverse=options.get("reverse", False))
  if "mask" in options:
    kw["mask"] = flags(batch_shape, T, options["mask"], 5)
  if "resets" in options:
    resets = flags(batch_shape, T, options["resets"], 6)
    resets[..., [3, 8]] = True  # inside a chunk, and at a chunk's start
    kw["resets"] = resets
  if not options.get("target"):
    target = None
  results = {}
  for method, C in FORMS:
    c = form(name, method, C)

    def loss(p, x, c0, r):
      final, ys = jaxrnn.scan(c, p, x, initial_carry=c0,
                              reset_carry=r if kw.get("resets") is not None else None,
                              **kw)
      total = jnp.sum(jnp.sin(ys)) + sum(jnp.sum(jnp.cos(a)) for a in jax.tree.leaves(final))
      return total, (final, ys)

    grads, out = jax.grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(
        params, xs, carry, target if target is not None else carry)
    results[(method, C)] = (out, grads)
  return results


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("name", [n for n in CELLS if n != "gated_deltanet_negative"])
def test_forms_agree(name, option):
  """Sequential, chunkwise (C=4) and parallel: outputs, final carries and
  gradients within 1e-10. (β ∈ (0, 2) changes no algebra; it meets the
  NumPy loop above.)"""
  results = run_forms(name, OPTIONS[option])
  want = results[("sequential", None)]
  for key, got in results.items():
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a, b, rtol=1e-10, atol=1e-10, err_msg=str(key)), got, want)


def test_engines_are_named():
  params, xs, _, _ = case(CELLS["mlstm"][0], (2,), 9)
  assert jaxrnn.which_engine(form("mlstm", "auto"), params, xs)[0] == "chunkwise"
  engine, why = jaxrnn.which_engine(form("mlstm", "sequential"), params, xs)
  assert engine == "autodiff" and "method='sequential'" in why
  assert "parallel form" in jaxrnn.which_engine(form("mlstm", "parallel"), params, xs)[1]
  assert "chunks of 4" in jaxrnn.which_engine(form("mlstm", "chunkwise", 4), params, xs)[1]


@pytest.mark.parametrize("name", ["gla", "mlstm", "gated_deltanet"])
def test_packed_sequences_equal_separate_runs(name):
  """A packed row with resets equals each segment run alone from zeros."""
  cell = form(name, "chunkwise", 4)
  params, xs, _, _ = case(cell, (), 14, seed=8)
  bounds = [0, 3, 9, 14]
  resets = np.zeros(14, bool)
  resets[bounds[:-1]] = True
  _, ys = jaxrnn.scan(cell, params, xs, resets=resets)
  for s, e in zip(bounds[:-1], bounds[1:]):
    _, alone = jaxrnn.scan(cell, params, xs[s:e])
    np.testing.assert_allclose(ys[s:e], alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["gla", "mlstm", "deltanet"])
@pytest.mark.parametrize("method", ["chunkwise", "parallel"])
def test_causal(name, method):
  """Changing step s changes no output before s."""
  cell = form(name, method, 4 if method == "chunkwise" else None)
  params, xs, _, _ = case(cell, (2,), 12, seed=9)
  _, ys = jaxrnn.scan(cell, params, xs)
  for s in (2, 4, 9):
    _, changed = jaxrnn.scan(cell, params, xs.at[:, s].add(1.0))
    np.testing.assert_array_equal(changed[:, :s], ys[:, :s])
    assert not np.allclose(changed[:, s], ys[:, s])


@pytest.mark.parametrize("name", list(CELLS))
def test_float32_chunkwise_long(name):
  """T=4096 in float32, chunkwise at the default chunk, against the float64
  step loop, within 1e-5 of the outputs' scale. Measured (max error over
  the scale): chunkwise 1.3e-7 (GLA) to 6.9e-7 (mLSTM); the float32 step
  loop itself 1.1e-7 to 1.4e-6 (mLSTM). The chunkwise form is as exact as
  the step loop, and 1e-5 leaves 7x over the worst of either."""
  cell = CELLS[name][0]
  params, xs, _, _ = case(cell, (1,), 4096, seed=10)
  xs = xs / 2
  _, want = jaxrnn.scan(dataclasses.replace(cell, method="sequential"), params, xs)
  params32 = jax.tree.map(lambda a: a.astype(jnp.float32), params)
  _, got = jaxrnn.scan(cell, params32, xs.astype(jnp.float32))
  assert got.dtype == jnp.float32
  scale = float(jnp.max(jnp.abs(want)))
  np.testing.assert_allclose(got, want, atol=1e-5 * scale, rtol=0)


@pytest.mark.parametrize("name", list(CELLS))
def test_check_grads(name):
  """Numerical gradients of the chunkwise layer (C=2) with a mask and
  resets, and of the step (reverse mode; forward mode is JAX's own
  differentiation of the same functions, taken in test_s6_gradients)."""
  cell = form(name, "chunkwise", 2)
  params, xs, carry, _ = case(cell, (2,), 5, seed=11)
  mask, resets = flags((2,), 5, 0.8, 12), flags((2,), 5, 0.3, 13)
  layer = lambda p, x, c: jaxrnn.scan(cell, p, x, initial_carry=c, mask=mask,
                                      resets=resets)
  # 1e-5: central differences with check_grads' step leave about 1e-6
  check_grads(layer, (params, xs, carry), order=1, modes=("rev",),
              atol=1e-5, rtol=1e-5)
  check_grads(lambda p, c, x: cell(p, c, x), (params, carry, xs[:, 0]), order=1,
              modes=("rev",), atol=1e-5, rtol=1e-5)


# -------------------------------------------------------- as users use it
def test_subclass_with_its_own_step_runs_its_step():
  """A subclass that changes the step loses the chunkwise form (the chunk
  would ignore it) and runs its own step; one that changes the terms keeps
  it and still equals its own step loop."""

  @dataclasses.dataclass(frozen=True)
  class Clipped(jaxrnn.MLSTMCell):
    def step(self, terms, carry):
      carry, out = super().step(terms, carry)
      return carry, jnp.clip(out, -0.1, 0.1)

  @dataclasses.dataclass(frozen=True)
  class Doubled(jaxrnn.GLACell):
    def terms(self, params, x):
      t = super().terms(params, x)
      return t._replace(v=2 * t.v)

  params, xs, _, _ = case(jaxrnn.MLSTMCell(num_heads=HEADS), (2,), 9)
  clipped = Clipped(num_heads=HEADS, chunk_size=4)
  assert jaxrnn.which_engine(clipped, params, xs)[0] == "autodiff"
  _, ys = jaxrnn.scan(clipped, params, xs)
  assert float(jnp.max(jnp.abs(ys))) <= 0.1
  _, plain = jaxrnn.scan(jaxrnn.MLSTMCell(num_heads=HEADS), params, xs)
  assert not np.allclose(ys, plain)

  params, xs, _, _ = case(jaxrnn.GLACell(num_heads=HEADS), (2,), 9)
  doubled = Doubled(num_heads=HEADS, chunk_size=4)
  assert jaxrnn.which_engine(doubled, params, xs)[0] == "chunkwise"
  _, got = jaxrnn.scan(doubled, params, xs)
  _, want = jaxrnn.scan(dataclasses.replace(doubled, method="sequential"), params, xs)
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
  _, base = jaxrnn.scan(jaxrnn.GLACell(num_heads=HEADS), params, xs)
  np.testing.assert_allclose(got, 2 * base, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["mlstm", "gated_deltanet"])
def test_one_step_calls_in_a_jitted_loop_equal_the_layer(name):
  cell = form(name, "chunkwise", 4)
  params, xs, carry, _ = case(cell, (3,), 10, seed=14)

  @jax.jit
  def rollout(carry, xs):
    return jax.lax.scan(lambda c, x: cell(params, c, x), carry, jnp.moveaxis(xs, 1, 0))

  final, ys = rollout(carry, xs)
  want_final, want_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
  np.testing.assert_allclose(jnp.moveaxis(ys, 0, 1), want_ys, rtol=1e-10, atol=1e-12)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
               final, want_final)


def test_vmap_equals_batch():
  cell = form("deltanet", "chunkwise", 4)
  params, xs, carry, _ = case(cell, (3,), 10, seed=15)
  layer = lambda x, c: jaxrnn.scan(cell, params, x, initial_carry=c)
  got = jax.vmap(layer)(xs, carry)
  want = layer(xs, carry)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13),
               got, want)


def test_composites_remat_and_modules():
  """Bidirectional, Stacked and remat over matrix-state cells equal their
  sequential forms; the linen and nnx modules run the same layer."""
  gla, mlstm = form("gla", "chunkwise", 4), form("mlstm", "chunkwise", 4)
  xs = jax.random.normal(jax.random.key(16), (2, 10, I), jnp.float64)
  lengths = jnp.array([10, 7])
  for layer, sequential in (
      (jaxrnn.Bidirectional(gla, mlstm),
       jaxrnn.Bidirectional(form("gla", "sequential"), form("mlstm", "sequential"))),
      (jaxrnn.Stacked([mlstm, form("gated_deltanet", "chunkwise", 3)]),
       jaxrnn.Stacked([form("mlstm", "sequential"), form("gated_deltanet", "sequential")]))):
    params = layer.init(jax.random.key(17), I, HIDDEN, dtype=jnp.float64)
    got = layer(params, xs, seq_lengths=lengths)
    want = sequential(params, xs, seq_lengths=lengths)
    remat = layer(params, xs, seq_lengths=lengths, remat=True)
    for other in (want, remat):
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
                   got, other)
  module = jrl.RNN(mlstm, hidden_size=HIDDEN)
  variables = module.init(jax.random.key(18), xs)
  np.testing.assert_array_equal(
      module.apply(variables, xs, seq_lengths=lengths)[1],
      jaxrnn.scan(mlstm, jrl.to_functional(variables), xs, seq_lengths=lengths)[1])
  nnx_module = jrn.RNN(gla, I, HIDDEN, rngs=__import__("flax").nnx.Rngs(0))
  np.testing.assert_array_equal(
      nnx_module(xs, seq_lengths=lengths)[1],
      jaxrnn.scan(gla, jrn.to_functional(nnx_module), xs, seq_lengths=lengths)[1])


def test_bfloat16_inputs():
  """bf16 params and inputs: the terms and the state accumulate in float32,
  the outputs come back in bf16, near the float32 run."""
  cell = form("gated_deltanet", "chunkwise", 16)
  params, xs, _, _ = case(cell, (2,), 40, seed=19)
  p32 = jax.tree.map(lambda a: a.astype(jnp.float32), params)
  _, want = jaxrnn.scan(cell, p32, xs.astype(jnp.float32))
  p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
  carry, got = jaxrnn.scan(cell, p16, xs.astype(jnp.bfloat16))
  assert got.dtype == jnp.bfloat16 and carry.S.dtype == jnp.float32
  np.testing.assert_allclose(got.astype(jnp.float32), want, atol=0.05 * float(
      jnp.max(jnp.abs(want))))


def test_errors_name_the_argument():
  with pytest.raises(ValueError, match="method: expected one of"):
    jaxrnn.GLACell(method="fast")
  with pytest.raises(ValueError, match="chunk_size: expected a positive int"):
    jaxrnn.MLSTMCell(chunk_size=0)
  with pytest.raises(ValueError, match="decay: expected one of"):
    jaxrnn.GLACell(decay="exp")
  with pytest.raises(ValueError, match="hidden_size: expected a multiple of num_heads=3"):
    jaxrnn.DeltaNetCell(num_heads=3).init(jax.random.key(0), 4, 8)
  with pytest.raises(ValueError, match="hidden_size: S6 is channel-wise"):
    jaxrnn.SelectiveSSMCell().init(jax.random.key(0), 4, 8)
  cell = jaxrnn.MLSTMCell(num_heads=2)
  params = cell.init(jax.random.key(0), 4, 8)
  xs = jnp.zeros((3, 5, 4))
  bad = cell.initial_carry(params, (3,))._replace(C=jnp.zeros((3, 2, 4, 3)))
  with pytest.raises(ValueError, match=r"initial_carry.C: expected shape \(3, 2, 4, 4\)"):
    jaxrnn.scan(cell, params, xs, initial_carry=bad)
  with pytest.raises(ValueError, match="w_a1: expected None"):
    jaxrnn.GLACell(num_heads=2, decay="none").check_params(
        jaxrnn.GLACell(num_heads=2).init(jax.random.key(0), 4, 8))
  with pytest.raises(ValueError, match="dropout.recurrent"):
    jaxrnn.scan(cell, params, xs, dropout=jaxrnn.RecurrentDropout(recurrent=0.1),
                key=jax.random.key(0))


# --------------------------------------------------------------------- S6
def s6_case(batch_shape, T, seed=0):
  cell = jaxrnn.SelectiveSSMCell(state_size=3)
  params = cell.init(jax.random.key(seed), 4, 4, dtype=jnp.float64)
  params = params._replace(d=params.d + 0.3)
  xs = jax.random.normal(jax.random.key(seed + 1), (*batch_shape, T, 4), jnp.float64)
  carry = cell.initial_carry(params, batch_shape, jnp.float64)
  carry = type(carry)(jax.random.normal(jax.random.key(seed + 2), carry.h.shape))
  return cell, params, xs, carry


@pytest.mark.parametrize("method", ["sequential", "associative"])
def test_s6_matches_numpy(method):
  """S6 on the linear engine, masked and reset, from a stored carry, both
  directions, against the NumPy loop of Algorithm 2."""
  cell, params, xs, carry = s6_case((2,), 9)
  cell = dataclasses.replace(cell, method=method)
  mask, resets = flags((2,), 9, 0.8, 20), flags((2,), 9, 0.3, 21)
  for reverse in (False, True):
    got_carry, got = jaxrnn.scan(cell, params, xs, initial_carry=carry, mask=mask,
                                 resets=resets, reverse=reverse)
    state, want = numpy_layer(reference.s6, params, xs, (np.asarray(carry.h),), mask,
                              resets, (np.zeros(carry.h.shape),), reverse)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_carry.h, state[0], rtol=1e-10, atol=1e-12)
  assert jaxrnn.which_engine(cell, params, xs)[0] == "linear"


@pytest.mark.parametrize("T", [1, 7, 10])
def test_s6_in_loop_solve_equals_the_associative_one(T):
  """The sequential solve computes S6's coefficients step by step, in
  rematerialised chunks of about sqrt(T) steps (T=7, 10: padded to whole
  chunks); outputs, final carries and gradients w.r.t. params, inputs, the
  initial carry and the reset target equal the associative solve's, which
  materialises every step's coefficients."""
  cell, params, xs, carry = s6_case((2,), T, seed=4)
  mask, resets = flags((2,), T, 0.8, 22), flags((2,), T, 0.3, 23)
  target = type(carry)(carry.h[::-1] * 0.5)
  results = {}
  for method in ("sequential", "associative"):
    c = dataclasses.replace(cell, method=method)
    for reverse in (False, True):
      def loss(p, x, h0, h_reset):
        final, ys = jaxrnn.scan(c, p, x, initial_carry=h0, mask=mask, resets=resets,
                                reset_carry=h_reset, reverse=reverse)
        return jnp.sum(jnp.sin(ys)) + jnp.sum(jnp.cos(final.h)), (final, ys)
      results[method, reverse] = jax.grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(
          params, xs, carry, target)
  assert "step by step" in jaxrnn.which_engine(
      dataclasses.replace(cell, method="sequential"), params, xs)[1]
  for reverse in (False, True):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
                 results["sequential", reverse], results["associative", reverse])


def test_s6_in_loop_zoneout_equals_the_associative_one():
  """Zoneout's masks (training) and its expectation (evaluation) enter the
  in-loop solve as they enter the materialised one."""
  cell, params, xs, carry = s6_case((2,), 10, seed=5)
  dropout = jaxrnn.RecurrentDropout(zoneout=0.3)
  for deterministic in (False, True):
    got, want = (jaxrnn.scan(dataclasses.replace(cell, method=m), params, xs,
                             initial_carry=carry, dropout=dropout, key=jax.random.key(6),
                             deterministic=deterministic)
                 for m in ("sequential", "associative"))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
                 got, want)


def test_s6_gradients():
  cell, params, xs, carry = s6_case((2,), 5, seed=3)
  layer = lambda p, x, c: jaxrnn.scan(cell, p, x, initial_carry=c)
  check_grads(layer, (params, xs, carry), order=1, modes=("rev", "fwd"),
              atol=1e-6, rtol=1e-6)
