"""Flax linen and nnx modules: identical to the functional API."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxrnn
from jaxrnn import interop
from jaxrnn import linen as jrl
from jaxrnn import nnx as jrn

# The default engine ("auto": the native kernels where they apply) only; the
# engines equal each other by tests/test_native.py and tests/test_engines.py.

XS = jax.random.normal(jax.random.key(0), (3, 7, 5))
LENGTHS = jnp.array([7, 2, 5])
LAYERS = {
    "lstm": jaxrnn.LSTMCell(),
    "gru_before": jaxrnn.GRUCell(reset_after=False),
    "bidirectional": jaxrnn.Bidirectional(jaxrnn.PeepholeLSTMCell(), jaxrnn.GRUCell(), merge="sum"),
    "stacked": jaxrnn.Stacked([jaxrnn.Bidirectional(jaxrnn.LSTMCell()), jaxrnn.CIFGLSTMCell()]),
}


def same(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("name", list(LAYERS))
def test_linen_rnn_equals_functional(name):
  layer = LAYERS[name]
  module = jrl.RNN(layer, hidden_size=6)
  variables = module.init(jax.random.key(1), XS)
  params = jrl.to_functional(variables)
  assert jax.tree.structure(params) == jax.tree.structure(layer.init(jax.random.key(1), 5, 6))
  got = module.apply(variables, XS, seq_lengths=LENGTHS)
  if isinstance(layer, jaxrnn.Cell):
    want = jaxrnn.scan(layer, params, XS, seq_lengths=LENGTHS)
  else:
    want = layer(params, XS, seq_lengths=LENGTHS)
  same(got, want)
  same(module.apply(jrl.from_functional(params), XS, seq_lengths=LENGTHS), want)
  carry = module.initialize_carry(jax.random.key(2), XS.shape)
  same(jax.tree.map(jnp.shape, carry),
       jax.tree.map(jnp.shape, layer.initial_carry(params, (3,))))


def test_linen_reverse_and_cell():
  module = jrl.RNN(jaxrnn.GRUCell(), hidden_size=4, reverse=True, unroll=2)
  variables = module.init(jax.random.key(1), XS)
  same(module.apply(variables, XS, seq_lengths=LENGTHS),
       jaxrnn.scan(jaxrnn.GRUCell(), jrl.to_functional(variables), XS, seq_lengths=LENGTHS,
                   reverse=True))
  step = jrl.Cell(jaxrnn.ProjectedLSTMCell(), hidden_size=6, proj_size=3)
  carry = step.initialize_carry(jax.random.key(0), (3, 5))
  assert carry.h.shape == (3, 3) and carry.c.shape == (3, 6)
  variables = step.init(jax.random.key(1), carry, XS[:, 0])
  same(step.apply(variables, carry, XS[:, 0]),
       jaxrnn.ProjectedLSTMCell()(jrl.to_functional(variables), carry, XS[:, 0]))
  with pytest.raises(ValueError, match="reverse: applies to a cell"):
    jrl.RNN(LAYERS["stacked"], hidden_size=4, reverse=True).init(jax.random.key(0), XS)


@pytest.mark.parametrize("name", list(LAYERS))
def test_nnx_rnn_equals_functional(name):
  layer = LAYERS[name]
  module = jrn.RNN(layer, 5, 6, rngs=nnx.Rngs(0))
  params = jrn.to_functional(module)
  got = module(XS, seq_lengths=LENGTHS)
  want = (jaxrnn.scan(layer, params, XS, seq_lengths=LENGTHS) if isinstance(layer, jaxrnn.Cell)
          else layer(params, XS, seq_lengths=LENGTHS))
  same(got, want)
  fresh = layer.init(jax.random.key(5), 5, 6)
  jrn.load_functional(module, fresh)
  same(jrn.to_functional(module), fresh)
  carry = module.initialize_carry(XS.shape)
  same(jax.tree.map(jnp.shape, carry), jax.tree.map(jnp.shape, layer.initial_carry(fresh, (3,))))


def test_nnx_cell_and_dropout_modes():
  step = jrn.Cell(jaxrnn.LSTMCell(), 5, 4, rngs=nnx.Rngs(0))
  carry = step.initialize_carry((3, 5))
  same(step(carry, XS[:, 0]), jaxrnn.LSTMCell()(jrn.to_functional(step), carry, XS[:, 0]))
  stack = jaxrnn.Stacked([jaxrnn.LSTMCell(), jaxrnn.LSTMCell()], dropout_rate=0.5)
  module = jrn.RNN(stack, 5, 8, rngs=nnx.Rngs(0, dropout=1))
  train_a, train_b = module(XS)[1], module(XS)[1]
  assert not np.allclose(train_a, train_b)  # fresh dropout each call
  module.eval()
  same(module(XS)[1], stack(jrn.to_functional(module), XS, deterministic=True)[1])


def test_modules_pass_chrono_to_init():
  """``chrono`` reaches every LSTM's init, in each module, stacks included."""
  def check(params, H=6, T=50):
    b = np.asarray(params.b_i + params.b_h).reshape(4, H)
    assert ((b[1] >= 0) & (b[1] <= np.log(T - 1) + 1e-6)).all() and b[1].std() > 0.1
    np.testing.assert_array_equal(b[0], -b[1])

  variables = jrl.RNN(jaxrnn.LSTMCell(), hidden_size=6, chrono=50).init(jax.random.key(1), XS)
  check(jrl.to_functional(variables))
  step = jrl.Cell(jaxrnn.LSTMCell(), hidden_size=6, chrono=50)
  carry = step.initialize_carry(jax.random.key(0), XS[:, 0].shape)
  check(jrl.to_functional(step.init(jax.random.key(1), carry, XS[:, 0])))
  check(jrn.to_functional(jrn.Cell(jaxrnn.LSTMCell(), 5, 6, rngs=nnx.Rngs(0), chrono=50)))
  stack = jaxrnn.Stacked([jaxrnn.LSTMCell(), jaxrnn.LSTMCell()])
  for params in jrn.to_functional(jrn.RNN(stack, 5, 6, rngs=nnx.Rngs(0), chrono=50)):
    check(params)


def _toy_tokens(key, n=64, T=12, vocab=10):
  """Label: whether token 3 occurs in the sequence (needs the whole sequence)."""
  tokens = jax.random.randint(key, (n, T), 0, vocab)
  return tokens, jnp.any(tokens == 3, axis=-1).astype(jnp.int32)


def test_larger_linen_model_trains():
  class Classifier(nn.Module):
    @nn.compact
    def __call__(self, tokens, lengths):
      x = nn.Embed(10, 8)(tokens)
      stack = jaxrnn.Stacked([jaxrnn.Bidirectional(jaxrnn.LSTMCell())] * 2)
      carries, ys = jrl.RNN(stack, hidden_size=16)(x, seq_lengths=lengths)
      return nn.Dense(2)(ys.sum(1) / lengths[:, None])

  tokens, labels = _toy_tokens(jax.random.key(0))
  lengths = jnp.full((64,), 12)
  model = Classifier()
  params = model.init(jax.random.key(1), tokens, lengths)
  opt = optax.adam(1e-2)
  opt_state = opt.init(params)
  loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(
      model.apply(p, tokens, lengths), labels).mean()

  @jax.jit
  def step(p, s):
    value, g = jax.value_and_grad(loss)(p)
    u, s = opt.update(g, s)
    return optax.apply_updates(p, u), s, value

  losses = []
  for _ in range(60):
    params, opt_state, value = step(params, opt_state)
    losses.append(float(value))
  assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_larger_nnx_model_trains():
  class Classifier(nnx.Module):
    def __init__(self, rngs):
      self.embed = nnx.Embed(10, 8, rngs=rngs)
      stack = jaxrnn.Stacked([jaxrnn.Bidirectional(jaxrnn.GRUCell())] * 2)
      self.rnn = jrn.RNN(stack, 8, 16, rngs=rngs)
      self.dense = nnx.Linear(32, 2, rngs=rngs)

    def __call__(self, tokens):
      _, ys = self.rnn(self.embed(tokens))
      return self.dense(ys.mean(1))

  tokens, labels = _toy_tokens(jax.random.key(0))
  model = Classifier(nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer):
    loss_fn = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(tokens), labels).mean()
    value, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return value

  losses = [float(step(model, optimizer)) for _ in range(60)]
  assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_conversions_reject_foreign_params():
  module = jrn.RNN(jaxrnn.LSTMCell(), 5, 6, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="params: expected the structure and shapes"):
    jrn.load_functional(module, jaxrnn.LSTMCell().init(jax.random.key(0), 5, 7))
  with pytest.raises(ValueError, match="params: expected the structure and shapes"):
    jrn.load_functional(module, jaxrnn.GRUCell().init(jax.random.key(0), 5, 6))
  with pytest.raises(ValueError, match="variables: expected params with a 'layer' entry"):
    jrl.to_functional({"params": {"Dense_0": {}}})


def _bias_free():
  """Params without biases, as interop.from_flax(LSTMCell(), ...) (b_i None)
  and a torch layer with bias=False (both None) give them."""
  flax_cell = nn.LSTMCell(6)
  flax_params = flax_cell.init(jax.random.key(1), flax_cell.initialize_carry(
      jax.random.key(0), (3, 5)), XS[:, 0])["params"]
  from_flax = interop.from_flax(jaxrnn.LSTMCell(), flax_params)
  assert from_flax.b_i is None and from_flax.b_h is not None
  no_bias = jaxrnn.GRUCell().init(jax.random.key(2), 5, 6)._replace(b_i=None, b_h=None)
  return {"lstm": (jaxrnn.LSTMCell(), from_flax), "gru": (jaxrnn.GRUCell(), no_bias)}


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_bias_free_params_load_into_every_module_and_come_back(name):
  """Every params a layer runs load into the nnx Cell and RNN and the linen
  RNN, come back out unchanged, and compute what the functional layer does;
  loading the module's own params back restores the biases."""
  cell, params = _bias_free()[name]
  want = jaxrnn.scan(cell, params, XS)
  module = jrn.RNN(cell, 5, 6, rngs=nnx.Rngs(0))
  full = jrn.to_functional(module)
  jrn.load_functional(module, params)
  same(jrn.to_functional(module), params)
  same(module(XS), want)
  jrn.load_functional(module, full)  # the biases come back
  same(jrn.to_functional(module), full)
  step = jrn.Cell(cell, 5, 6, rngs=nnx.Rngs(0))
  jrn.load_functional(step, params)
  carry = step.initialize_carry(XS[:, 0].shape)
  same(step(carry, XS[:, 0]), cell(params, carry, XS[:, 0]))
  linen = jrl.RNN(cell, hidden_size=6)
  same(linen.apply(jrl.from_functional(params), XS), want)
  same(jrl.to_functional(jrl.from_functional(params)), params)
  with pytest.raises(ValueError, match="params: expected the structure and shapes"):
    jrn.load_functional(module, params._replace(w_i=None))  # not a bias
