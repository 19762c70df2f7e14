"""Recurrent dropout, zoneout and DropConnect, checked exactly through cells
whose outputs expose the masks (a ReLU RNN with identity weights), and the
fused backward against autodiff with masks on."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn._src.engines import regularisers

B, T, H = 3, 6, 64
KEY = jax.random.key(7)


def relu_rnn(w_h=0.0):
  """h' = relu(x + h W_h): with positive inputs, what the masks do is seen."""
  cell = jaxrnn.SimpleRNNCell("relu")
  eye = jnp.eye(H, dtype=jnp.float64)
  w = jnp.ones((H, H), jnp.float64) if isinstance(w_h, str) else w_h * eye
  return cell, jaxrnn.SimpleRNNParams(eye, w, None, None)


def positive_inputs(T=T):
  return jax.random.uniform(jax.random.key(1), (B, T, H), jnp.float64, 0.5, 1.5)


def check_mask(mask, rate):
  values = np.unique(np.round(np.asarray(mask), 12))
  assert set(values) <= {0.0, round(1 / (1 - rate), 12)}
  kept = np.mean(np.asarray(mask) > 0)
  assert abs(kept - (1 - rate)) < 0.1


@pytest.mark.parametrize("where", ["input", "output"])
def test_input_and_output_masks_are_per_sequence(where):
  cell, params = relu_rnn()
  xs = positive_inputs()
  rate = 0.3
  _, ys = jaxrnn.scan(cell, params, xs, dropout=jaxrnn.RecurrentDropout(**{where: rate}),
                      key=KEY)
  mask = ys / xs  # (B, T, H): y = relu(x * m) = x * m, or relu(x) * m
  np.testing.assert_allclose(mask, np.broadcast_to(mask[:, :1], mask.shape), atol=1e-12)
  check_mask(mask[:, 0], rate)
  assert not np.allclose(mask[0, 0], mask[1, 0])  # one mask per sequence
  _, plain = jaxrnn.scan(cell, params, xs)
  _, evaluated = jaxrnn.scan(cell, params, xs, dropout=jaxrnn.RecurrentDropout(**{where: rate}),
                             deterministic=True)
  np.testing.assert_array_equal(evaluated, plain)


def test_recurrent_mask_is_the_same_at_every_step():
  """x only at step 0 and W_h = I: h_t = m^t, h_1 = m."""
  cell, params = relu_rnn(w_h=1.0)
  xs = jnp.zeros((B, T, H)).at[:, 0].set(1.0)
  rate = 0.25
  _, ys = jaxrnn.scan(cell, params, xs, dropout=jaxrnn.RecurrentDropout(recurrent=rate),
                      key=KEY)
  m = ys[:, 1]
  check_mask(m, rate)
  for t in range(1, T):
    np.testing.assert_allclose(ys[:, t], m ** t, rtol=1e-12)


def test_weight_dropconnect_is_one_mask_per_call():
  """W_h = ones, x_0 = e_j: h_1 = (W ⊙ M)[j] = M[j] for every sequence."""
  cell, params = relu_rnn(w_h="ones")
  xs = jnp.zeros((B, 2, H)).at[:, 0, 0].set(1.0)
  rate = 0.4
  _, ys = jaxrnn.scan(cell, params, xs, dropout=jaxrnn.RecurrentDropout(weight=rate), key=KEY)
  row = ys[:, 1]
  check_mask(row, rate)
  np.testing.assert_array_equal(row, np.broadcast_to(row[:1], row.shape))


def test_zoneout_training_and_evaluation():
  """W_h = 0: the new state is x_t, so each unit of y_t is x_t or y_{t-1}, a
  fresh choice at every step; at evaluation y_t = p y_{t-1} + (1 - p) x_t."""
  cell, params = relu_rnn()
  xs = positive_inputs(T=40)
  rate = 0.3
  dropout = jaxrnn.RecurrentDropout(zoneout=rate)
  _, ys = jaxrnn.scan(cell, params, xs, dropout=dropout, key=KEY)
  ys, xs_np = np.asarray(ys), np.asarray(xs)
  kept = np.isclose(ys[:, 1:], ys[:, :-1], rtol=0, atol=0)
  updated = np.isclose(ys[:, 1:], xs_np[:, 1:], rtol=0, atol=0)
  assert np.all(kept | updated)
  assert abs(kept.mean() - rate) < 0.03
  assert not np.array_equal(kept[:, 0], kept[:, 1])  # new masks every step
  _, ev = jaxrnn.scan(cell, params, xs, dropout=dropout, deterministic=True)
  want, h = np.zeros_like(ys), np.zeros((B, H))
  for t in range(xs.shape[1]):
    h = rate * h + (1 - rate) * xs_np[:, t]
    want[:, t] = h
  np.testing.assert_allclose(ev, want, rtol=1e-12)


def test_zoneout_on_linear_cells():
  """minGRU keeps its linear solve under zoneout: against a step loop with
  the same masks, in training and evaluation."""
  cell = jaxrnn.MinGRUCell()
  params = cell.init(jax.random.key(0), 4, 4, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(2), (T, B, 4), jnp.float64)
  dropout = jaxrnn.RecurrentDropout(zoneout=0.4)
  carry = cell.initial_carry(params, (B,))
  from jaxrnn._src.engines import registry as engine
  for deterministic in (False, True):
    masks = regularisers.draw(dropout, KEY, deterministic, cell, params, xs, carry)
    _, ys = engine.run_cell(cell, params, xs, None, None, reverse=False, unroll=1,
                            dropout=dropout, key=KEY, deterministic=deterministic)
    h = carry
    for t in range(T):
      new, _ = cell(params, h, xs[t])
      if deterministic:
        h = jaxrnn.RNNState(0.4 * h.h + 0.6 * new.h)
      else:
        h = jaxrnn.RNNState(jnp.where(masks.zone.h[t], h.h, new.h))
      np.testing.assert_allclose(ys[t], h.h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_fused_backward_with_recurrent_and_weight_dropout(name):
  cell = {"lstm": jaxrnn.LSTMCell(), "gru": jaxrnn.GRUCell()}[name]
  params = cell.init(jax.random.key(0), 3, 5, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (2, 16, 3), jnp.float64)
  dropout = jaxrnn.RecurrentDropout(input=0.2, recurrent=0.3, weight=0.2, output=0.1)

  def loss(p, x, impl):
    c, ys = jaxrnn.scan(cell, p, x, dropout=dropout, key=KEY, impl=impl, reverse=True)
    return jnp.sum(jnp.sin(ys)) + jnp.sum(c.h ** 2)
  assert jaxrnn.which_engine(cell, params, xs)[0] == "native"
  got = jax.value_and_grad(loss, argnums=(0, 1))(params, xs, "auto")
  want = jax.value_and_grad(loss, argnums=(0, 1))(params, xs, "autodiff")
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
               got, want)


def test_stacked_and_flax_modules():
  from flax import nnx
  from jaxrnn import linen as jrl
  from jaxrnn import nnx as jrn
  dropout = jaxrnn.RecurrentDropout(recurrent=0.3, zoneout=0.1)
  xs = jax.random.normal(jax.random.key(3), (2, 5, 4))
  stack = jaxrnn.Stacked((jaxrnn.GRUCell(), jaxrnn.Bidirectional(jaxrnn.LSTMCell())),
                         recurrent_dropout=dropout)
  params = stack.init(jax.random.key(4), 4, 6)
  a = stack(params, xs, key=jax.random.key(0))[1]
  b = stack(params, xs, key=jax.random.key(1))[1]
  assert not np.allclose(a, b)
  with pytest.raises(ValueError, match="key: .*needs a PRNG key"):
    stack(params, xs)
  module = jrl.RNN(jaxrnn.GRUCell(), 6, dropout=dropout)
  variables = module.init(jax.random.key(5), xs)
  p = jrl.to_functional(variables)
  train = lambda k: module.apply(variables, xs, deterministic=False,
                                 rngs={"dropout": jax.random.key(k)})[1]
  np.testing.assert_array_equal(train(6), train(6))
  assert not np.allclose(train(6), train(7))  # masks from the "dropout" stream
  np.testing.assert_allclose(module.apply(variables, xs)[1], jaxrnn.scan(
      jaxrnn.GRUCell(), p, xs, dropout=dropout, deterministic=True)[1])
  layer = jrn.RNN(jaxrnn.GRUCell(), 4, 6, dropout=dropout, rngs=nnx.Rngs(0, dropout=1))
  first, second = layer(xs)[1], layer(xs)[1]
  assert not np.allclose(first, second)  # the stream advances
  layer.eval()
  np.testing.assert_allclose(layer(xs)[1], jaxrnn.scan(
      jaxrnn.GRUCell(), jrn.to_functional(layer), xs, dropout=dropout, deterministic=True)[1])


@pytest.mark.parametrize("call, error, match", [
    (lambda: jaxrnn.RecurrentDropout(recurrent=1.0), ValueError,
     r"dropout.recurrent: expected a rate in \[0, 1\)"),
    (lambda: jaxrnn.scan(*relu_rnn(), positive_inputs(), dropout=jaxrnn.RecurrentDropout(input=.1)),
     ValueError, "key: dropout needs a PRNG key"),
    (lambda: jaxrnn.scan(*relu_rnn(), positive_inputs(), dropout=jaxrnn.RecurrentDropout(input=.1),
                         key=3), TypeError, "key: expected a PRNG key"),
    (lambda: jaxrnn.scan(*relu_rnn(), positive_inputs(), dropout=0.1), TypeError,
     "dropout: expected a jaxrnn.RecurrentDropout"),
    (lambda: jaxrnn.scan(jaxrnn.MinGRUCell(), jaxrnn.MinGRUCell().init(KEY, H, 4),
                         positive_inputs(), dropout=jaxrnn.RecurrentDropout(recurrent=.1),
                         key=KEY), ValueError, "dropout.recurrent: MinGRUCell has no"),
    (lambda: jaxrnn.Stacked((jaxrnn.LRUCell(),), recurrent_dropout=jaxrnn.RecurrentDropout(
        weight=.1)), ValueError, "dropout.weight: LRUCell has no recurrent weights"),
])
def test_bad_arguments(call, error, match):
  with pytest.raises(error, match=match):
    call()
