"""Flax nnx cells, and linen's SimpleCell and MGUCell(reset_gate=False), to
and from jaxrnn, checked against Flax's own cells run step by step."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxrnn
from jaxrnn import interop

TOL = dict(rtol=1e-6, atol=1e-6)
STEPS = 5
# (input_size, hidden_size, batch shape)
CONFIGS = [(1, 1, ()), (3, 5, (3,)), (7, 9, (2, 3)), (4, 2, (3,))]


def half_tanh(x):
  """An activation of one's own, passed to both cells as the same object."""
  return jnp.tanh(0.5 * x)


# name -> (nnx class, its keyword arguments, the jaxrnn cell computing the same)
NNX_CASES = {
    "LSTMCell": (nnx.LSTMCell, {}, jaxrnn.LSTMCell()),
    "OptimizedLSTMCell": (nnx.OptimizedLSTMCell, {}, jaxrnn.LSTMCell()),
    "LSTMCell-relu": (nnx.LSTMCell, {"activation_fn": nnx.relu},
                      jaxrnn.LSTMCell(activation="relu")),
    "GRUCell": (nnx.GRUCell, {}, jaxrnn.GRUCell()),
    "GRUCell-hard_sigmoid": (nnx.GRUCell, {"gate_fn": jax.nn.hard_sigmoid},
                             jaxrnn.GRUCell(recurrent_activation="hard_sigmoid")),
    "SimpleCell": (nnx.SimpleCell, {}, jaxrnn.SimpleRNNCell()),
    "SimpleCell-relu": (nnx.SimpleCell, {"activation_fn": nnx.relu},
                        jaxrnn.SimpleRNNCell("relu")),
    "SimpleCell-residual": (nnx.SimpleCell, {"residual": True}, jaxrnn.SimpleRNNCell()),
    "SimpleCell-own": (nnx.SimpleCell, {"activation_fn": half_tanh},
                       jaxrnn.SimpleRNNCell(half_tanh)),
}


def is_lstm(cell):
  return isinstance(cell, jaxrnn.LSTMCell)


def nnx_cell(name, input_size, hidden, seed=0):
  """The nnx cell of ``name`` with every param re-drawn (biases non-zero)."""
  cls, kwargs, _ = NNX_CASES[name]
  module = cls(input_size, hidden, rngs=nnx.Rngs(seed), **kwargs)
  state = nnx.state(module, nnx.Param)
  leaves, tree = jax.tree.flatten(nnx.to_pure_dict(state))
  keys = jax.random.split(jax.random.key(seed + 1000), len(leaves))
  new = [0.5 * jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves)]
  nnx.replace_by_pure_dict(state, jax.tree.unflatten(tree, new))
  nnx.update(module, state)
  return module


def random_inputs(input_size, hidden, batch, lstm, seed=1):
  """``(xs (*batch, STEPS, input_size), Flax carry)``, float32, non-zero."""
  rng = np.random.default_rng(seed)
  xs = rng.normal(size=batch + (STEPS, input_size)).astype(np.float32)
  h = rng.normal(size=batch + (hidden,)).astype(np.float32)
  if lstm:
    c = rng.normal(size=batch + (hidden,)).astype(np.float32)
    return jnp.asarray(xs), (jnp.asarray(c), jnp.asarray(h))  # Flax: (c, h)
  return jnp.asarray(xs), jnp.asarray(h)


def to_jaxrnn_carry(carry, cell):
  return interop.from_flax_carry(carry) if is_lstm(cell) else jaxrnn.RNNState(carry)


def to_flax_carry(carry, cell):
  return interop.to_flax_carry(carry) if is_lstm(cell) else carry.h


def flax_steps(step, carry, xs):
  """``step(carry, x) -> (carry, y)`` over the time axis (-2) of ``xs``, in a
  Python loop: the carries after each step, and the outputs."""
  carries, ys = [], []
  for t in range(xs.shape[-2]):
    carry, y = step(carry, xs[..., t, :])
    carries.append(carry)
    ys.append(y)
  return carries, jnp.stack(ys, axis=-2)


def jaxrnn_steps(cell, params, carry, xs):
  carries, ys = flax_steps(lambda c, x: cell(params, c, x),
                           to_jaxrnn_carry(carry, cell), xs)
  return [to_flax_carry(c, cell) for c in carries], ys


def assert_same_run(flax_run, jaxrnn_run):
  (flax_carries, flax_ys), (our_carries, our_ys) = flax_run, jaxrnn_run
  np.testing.assert_allclose(our_ys, flax_ys, **TOL)
  for ours, theirs in zip(our_carries, flax_carries):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), ours, theirs)


def pure(module):
  return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(module, nnx.Param)))


def assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(np.testing.assert_array_equal, a, b)


# -------------------------------------------------------------- nnx import
@pytest.mark.parametrize("input_size, hidden, batch", CONFIGS)
@pytest.mark.parametrize("name", NNX_CASES)
def test_nnx_cell_steps_match_flax(name, input_size, hidden, batch):
  cell = NNX_CASES[name][2]
  module = nnx_cell(name, input_size, hidden)
  xs, carry = random_inputs(input_size, hidden, batch, is_lstm(cell))
  params = interop.from_flax(cell, module)
  assert_same_run(flax_steps(module, carry, xs), jaxrnn_steps(cell, params, carry, xs))
  # the pure dict of the module's state holds the same params (but not
  # residual=True, which only the module records)
  from_dict = interop.from_flax(cell, nnx.to_pure_dict(nnx.state(module)))
  if name == "SimpleCell-residual":
    from_dict = from_dict._replace(w_h=from_dict.w_h + jnp.eye(hidden, dtype=jnp.float32))
  assert_trees_equal(from_dict, params)


@pytest.mark.parametrize("name", NNX_CASES)
def test_scan_matches_nnx_rnn(name):
  cell = NNX_CASES[name][2]
  input_size, hidden, batch = 3, 4, (2, 3)
  module = nnx_cell(name, input_size, hidden, seed=2)
  xs, carry = random_inputs(input_size, hidden, batch, is_lstm(cell), seed=3)
  flax_carry, flax_ys = nnx.RNN(module, return_carry=True)(xs, initial_carry=carry)
  params = interop.from_flax(cell, module)
  our_carry, our_ys = jaxrnn.scan(cell, params, xs,
                                  initial_carry=to_jaxrnn_carry(carry, cell))
  np.testing.assert_allclose(our_ys, flax_ys, **TOL)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL),
               to_flax_carry(our_carry, cell), flax_carry)


@pytest.mark.parametrize("name", NNX_CASES)
def test_input_gradients_match_flax(name):
  cell = NNX_CASES[name][2]
  input_size, hidden, batch = 4, 3, (2,)
  module = nnx_cell(name, input_size, hidden, seed=4)
  xs, carry = random_inputs(input_size, hidden, batch, is_lstm(cell), seed=5)
  weights = jnp.asarray(np.random.default_rng(6).normal(
      size=batch + (STEPS, hidden)).astype(np.float32))
  params = interop.from_flax(cell, module)

  def flax_loss(xs):
    return jnp.sum(weights * flax_steps(module, carry, xs)[1])

  def our_loss(xs):
    return jnp.sum(weights * jaxrnn_steps(cell, params, carry, xs)[1])

  np.testing.assert_allclose(jax.grad(our_loss)(xs), jax.grad(flax_loss)(xs), **TOL)


def test_nnx_state_is_read_as_its_pure_dict():
  module = nnx_cell("GRUCell", 3, 4)
  cell = jaxrnn.GRUCell()
  assert_trees_equal(interop.from_flax(cell, nnx.state(module)),
                     interop.from_flax(cell, module))


# -------------------------------------------------------------- nnx export
def exportable_params(name, cell, input_size, hidden):
  """jaxrnn params with every bias non-zero, but the n block of a GRU's
  b_h, which the nnx GRUCell cannot hold."""
  params = cell.init(jax.random.key(7), input_size, hidden, initializer="pytorch")
  if isinstance(cell, jaxrnn.GRUCell):
    params = params._replace(b_h=params.b_h.at[2 * hidden:].set(0))
  return params


@pytest.mark.parametrize("input_size, hidden, batch", CONFIGS[1:3])
@pytest.mark.parametrize("name", NNX_CASES)
def test_to_nnx_module(name, input_size, hidden, batch):
  cell = NNX_CASES[name][2]
  module = nnx_cell(name, input_size, hidden)
  before = pure(module)
  xs, carry = random_inputs(input_size, hidden, batch, is_lstm(cell))
  params = exportable_params(name, cell, input_size, hidden)
  bias_free = params._replace(b_i=None, b_h=None)
  for p in (params, bias_free):
    new = interop.to_flax(cell, p, module=module)
    assert type(new) is type(module) and new is not module
    for attr in ("in_features", "hidden_features", "activation_fn", "residual",
                 "gate_fn"):
      assert getattr(new, attr, None) is getattr(module, attr, None)
    assert_same_run(flax_steps(new, carry, xs), jaxrnn_steps(cell, p, carry, xs))
  assert_trees_equal(pure(module), before)  # the module given is unchanged
  # what from_flax gives comes back as it was
  loaded = interop.from_flax(cell, module)
  again = interop.from_flax(cell, interop.to_flax(cell, loaded, module=module))
  if name == "SimpleCell-residual":  # + I - I: equal to float rounding
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), again, loaded)
  else:
    assert_trees_equal(again, loaded)


def test_to_nnx_module_casts_to_its_param_dtype():
  cell = jaxrnn.LSTMCell()
  module = nnx_cell("OptimizedLSTMCell", 3, 4)
  params = cell.init(jax.random.key(0), 3, 4, dtype=jnp.float64)
  new = interop.to_flax(cell, params, module=module)
  assert new.dense_i.kernel[...].dtype == jnp.float32
  np.testing.assert_allclose(new.dense_i.kernel[...], params.w_i, rtol=1e-7)


# --------------------------------------------------------------------- linen
LINEN_CASES = {
    "SimpleCell": (nn.SimpleCell, {}, jaxrnn.SimpleRNNCell()),
    "SimpleCell-relu": (nn.SimpleCell, {"activation_fn": nn.relu},
                        jaxrnn.SimpleRNNCell("relu")),
    "MGUCell-no-reset-gate": (nn.MGUCell, {"reset_gate": False},
                              jaxrnn.MGUCell(reset_gate=False)),
}


@pytest.mark.parametrize("input_size, hidden, batch", CONFIGS)
@pytest.mark.parametrize("name", LINEN_CASES)
def test_linen_cells_both_ways(name, input_size, hidden, batch):
  cls, kwargs, cell = LINEN_CASES[name]
  module = cls(features=hidden, **kwargs)
  xs, h = random_inputs(input_size, hidden, batch, lstm=False)
  variables = module.init(jax.random.key(0), h, xs[..., 0, :])
  leaves, tree = jax.tree.flatten(variables)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  variables = jax.tree.unflatten(tree, [0.5 * jax.random.normal(k, a.shape, a.dtype)
                                        for k, a in zip(keys, leaves)])
  params = interop.from_flax(cell, variables["params"])
  run = lambda v: flax_steps(lambda c, x: module.apply(v, c, x), h, xs)  # noqa: E731
  assert_same_run(run(variables), jaxrnn_steps(cell, params, h, xs))
  assert_trees_equal(interop.from_flax(cell, interop.to_flax(cell, params)), params)
  # export: every bias non-zero, and none
  params = cell.init(jax.random.key(2), input_size, hidden, initializer="pytorch")
  for p in (params, params._replace(b_i=None, b_h=None)):
    exported = {"params": interop.to_flax(cell, p)}
    assert_same_run(run(exported), jaxrnn_steps(cell, p, h, xs))


# -------------------------------------------------------------------- errors
def test_nnx_gru_cannot_hold_b_hn():
  cell = jaxrnn.GRUCell()
  module = nnx_cell("GRUCell", 3, 4)
  params = cell.init(jax.random.key(0), 3, 4, initializer="pytorch")
  with pytest.raises(ValueError, match=r"params\.b_h: its n block .*b_hn"):
    interop.to_flax(cell, params, module=module)
  with pytest.raises(ValueError, match="concrete"):
    jax.jit(lambda p: interop.to_flax(cell, p, module=module).dense_i.kernel[...])(
        params._replace(b_h=params.b_h.at[8:].set(0)))


def test_nnx_refusals():
  lstm, gru = jaxrnn.LSTMCell(), jaxrnn.GRUCell()
  gru_module = nnx_cell("GRUCell", 3, 4)
  lstm_params = lstm.init(jax.random.key(0), 3, 4)
  with pytest.raises(ValueError, match="nnx GRUCell computes what jaxrnn's GRUCell"):
    interop.from_flax(lstm, gru_module)
  with pytest.raises(ValueError, match="nnx GRUCell computes"):
    interop.to_flax(lstm, lstm_params, module=gru_module)
  with pytest.raises(TypeError, match="module: expected a Flax nnx LSTMCell.*got Linear"):
    interop.to_flax(lstm, lstm_params, module=nnx.Linear(3, 4, rngs=nnx.Rngs(0)))
  with pytest.raises(TypeError, match="module: expected a Flax nnx .*got GRUCell"):
    interop.to_flax(gru, gru.init(jax.random.key(0), 3, 4), module=nn.GRUCell(4))
  with pytest.raises(TypeError, match="flax_params: expected a Flax linen params dict"):
    interop.from_flax(gru, [1, 2])
  with pytest.raises(ValueError, match=r"module\.dense_i\.kernel: has shape \(3, 12\); "
                     r"params \(input_size=5, hidden_size=4\) give \(5, 12\)"):
    interop.to_flax(gru, gru.init(jax.random.key(0), 5, 4), module=gru_module)
  with pytest.raises(ValueError,
                     match=r"activation_fn is jax\S*\.relu, and .* computes 'tanh'"):
    interop.from_flax(jaxrnn.SimpleRNNCell(), nnx_cell("SimpleCell-relu", 3, 4))
  with pytest.raises(ValueError, match="gate_fn is .*recurrent_activation="):
    interop.from_flax(gru, nnx_cell("GRUCell-hard_sigmoid", 3, 4))
  mgu = jaxrnn.MGUCell()
  with pytest.raises(ValueError, match="Flax nnx has no equivalent of MGUCell"):
    interop.to_flax(mgu, mgu.init(jax.random.key(0), 3, 4), module=gru_module)
  before = jaxrnn.GRUCell(reset_after=False)
  with pytest.raises(ValueError, match="reset_after=False.*different function"):
    interop.to_flax(before, before.init(jax.random.key(0), 3, 4), module=gru_module)
  with pytest.raises(ValueError, match="keys .* are a Flax nnx LSTMCell's"):
    interop.from_flax(gru, pure(nnx_cell("LSTMCell", 3, 4)))
  with pytest.raises(ValueError, match=r"'dense_h' kernel has shape \(4, 16\).*3 gate"):
    interop.from_flax(gru, pure(nnx_cell("OptimizedLSTMCell", 3, 4)))


def test_linen_mgu_reset_gate_must_agree():
  h, x = jnp.zeros((4,)), jnp.zeros((3,))
  with_gate = nn.MGUCell(4).init(jax.random.key(0), h, x)["params"]
  without = nn.MGUCell(4, reset_gate=False).init(jax.random.key(0), h, x)["params"]
  with pytest.raises(ValueError, match="'hn' has a bias.*reset_gate=True"):
    interop.from_flax(jaxrnn.MGUCell(reset_gate=False), with_gate)
  with pytest.raises(ValueError, match="'hn' has no bias.*reset_gate=False"):
    interop.from_flax(jaxrnn.MGUCell(), without)
