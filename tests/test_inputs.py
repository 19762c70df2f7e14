"""What users naturally pass: Python lists and NumPy arrays wherever an array
is expected (the same numbers as jax arrays), keys that are not keys (a
TypeError naming `key`), empty batches and empty sequences, half precision,
and long sequences, for every cell."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxrnn
from jaxrnn import interop
from jaxrnn import linen as jrl
from jaxrnn import nnx as jrn
from test_resets import ALL_CELLS, case

XS = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
LENGTHS, MASK = [5, 2], [[True] * 5, [True, False, True, True, True]]
RESETS = [[False] * 5, [False, False, False, True, False]]


def layers():
  cell = jaxrnn.GRUCell()
  bi, stack = jaxrnn.Bidirectional(cell), jaxrnn.Stacked([cell, cell])
  return {"scan": (lambda p, *a, **k: jaxrnn.scan(cell, p, *a, **k), cell.init),
          "bidirectional": (bi, bi.init), "stacked": (stack, stack.init)}


@pytest.mark.parametrize("name", ["scan", "bidirectional", "stacked"])
def test_lists_and_numpy_equal_jax_arrays(name):
  layer, init = layers()[name]
  params = init(jax.random.key(0), 3, 4)
  want = layer(params, jnp.asarray(XS), seq_lengths=jnp.asarray(LENGTHS),
               mask=jnp.asarray(MASK), resets=jnp.asarray(RESETS))
  for xs, extra in ((XS, np.asarray), (XS.tolist(), lambda v: v)):
    got = layer(params, xs, seq_lengths=extra(LENGTHS), mask=extra(MASK),
                resets=extra(RESETS))
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6), got, want)


def test_lists_in_carries_steps_modules_and_torch():
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4)
  carry = jaxrnn.LSTMState(np.ones((2, 4), np.float32).tolist(), np.zeros((2, 4)).tolist())
  want = jaxrnn.scan(cell, params, XS, initial_carry=jax.tree.map(jnp.asarray, cell.initial_carry(
      params, (2,)))._replace(h=jnp.ones((2, 4))))
  got = jaxrnn.scan(cell, params, XS.tolist(), initial_carry=carry)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6), got, want)
  step = cell(params, carry, XS[:, 0].tolist())[1]
  np.testing.assert_allclose(step, want[1][:, 0], rtol=1e-5, atol=1e-6)
  readout = jaxrnn.Linear()
  out = readout.init(jax.random.key(1), 4, 1)
  np.testing.assert_allclose(readout(out, step.tolist()), readout(out, step), rtol=1e-5, atol=1e-6)
  module = jrl.RNN(cell, 4)
  variables = module.init(jax.random.key(2), XS.tolist())
  np.testing.assert_allclose(module.apply(variables, XS.tolist(), seq_lengths=LENGTHS)[1],
                             module.apply(variables, XS, seq_lengths=np.asarray(LENGTHS))[1],
                             rtol=1e-5, atol=1e-6)
  layer = jrn.RNN(cell, 3, 4, rngs=nnx.Rngs(0))
  np.testing.assert_allclose(layer(XS.tolist())[1], layer(jnp.asarray(XS))[1],
                             rtol=1e-5, atol=1e-6)
  torch_rnn = interop.TorchRNN("LSTM", 3, 4, batch_first=True)
  tparams = torch_rnn.init(jax.random.key(3))
  hx = (np.zeros((1, 2, 4)).tolist(), np.zeros((1, 2, 4)).tolist())
  np.testing.assert_allclose(torch_rnn(tparams, XS.tolist(), hx, seq_lengths=LENGTHS)[0],
                             torch_rnn(tparams, jnp.asarray(XS), seq_lengths=jnp.asarray(LENGTHS))[0],
                             rtol=1e-5, atol=1e-6)


BAD_KEYS = [0, np.zeros(3, np.uint32), jnp.zeros((2, 2), jnp.uint32), "key"]


@pytest.mark.parametrize("bad", BAD_KEYS, ids=["int", "wrong-shape", "wrong-shape-2d", "str"])
def test_keys_that_are_not_keys(bad):
  cell = jaxrnn.LSTMCell()
  for init in (lambda k: cell.init(k, 3, 4), lambda k: jaxrnn.Bidirectional(cell).init(k, 3, 4),
               lambda k: jaxrnn.Stacked([cell]).init(k, 3, 4),
               lambda k: jaxrnn.Linear().init(k, 3, 4),
               lambda k: interop.TorchRNN("GRU", 3, 4).init(k),
               lambda k: jaxrnn.ConvLSTMCell((3,)).init(k, 3, 4),
               lambda k: jaxrnn.LRUCell().init(k, 3, 4)):
    with pytest.raises(TypeError, match="key: expected a PRNG key"):
      init(bad)
  params = cell.init(jax.random.key(0), 3, 4)
  with pytest.raises(TypeError, match="key: expected a PRNG key"):
    jaxrnn.scan(cell, params, XS, dropout=jaxrnn.RecurrentDropout(input=0.1), key=bad)
  with pytest.raises(TypeError, match="key: expected a PRNG key"):
    jaxrnn.Stacked([cell, cell], dropout_rate=0.1)((params, cell.init(jax.random.key(1), 4, 4)),
                                                   XS, key=bad)


def test_ragged_lists_are_refused():
  cell = jaxrnn.GRUCell()
  with pytest.raises((TypeError, ValueError), match="xs"):
    jaxrnn.scan(cell, cell.init(jax.random.key(0), 3, 4), [[[1.0, 2.0, 3.0]], [[1.0]]])


@pytest.mark.parametrize("name", sorted(ALL_CELLS))
def test_empty_batch_and_empty_sequence(name):
  """Documented: T=0 returns the initial carry and no outputs; an empty
  batch returns empty carries and outputs."""
  cell = ALL_CELLS[name]
  params, xs, carry = case(cell)
  empty_t, empty_b = xs[:, :0], xs[:0]
  final, ys = jaxrnn.scan(cell, params, empty_t, initial_carry=carry)
  assert ys.shape[:2] == (2, 0)
  jax.tree.map(np.testing.assert_array_equal, final, carry)
  final, ys = jaxrnn.scan(cell, params, empty_b)
  assert ys.shape[0] == 0 and all(leaf.shape[0] == 0 for leaf in jax.tree.leaves(final))
