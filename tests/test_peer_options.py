"""The peers' output conventions by their own names: Flax's ``keep_order``,
Keras' ``go_backwards`` and ``zero_output_for_mask``; checked against NumPy
written from their definitions, against Flax and Keras themselves, and for
gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
from jaxrnn import interop

CELLS = {"lstm": jaxrnn.LSTMCell(), "gru": jaxrnn.GRUCell(), "rnn": jaxrnn.SimpleRNNCell()}


def problem(cell, seed=0, B=3, T=7, I=2, H=4, dtype=jnp.float64):
  rng = np.random.default_rng(seed)
  params = cell.init(jax.random.key(seed), I, H, dtype=dtype)
  xs = jnp.asarray(rng.standard_normal((B, T, I)), dtype)
  mask = rng.random((B, T)) < 0.6
  mask[0] = False            # a row with no valid step
  mask[1, :2] = False        # leading invalid steps
  mask[-1, -2:] = False      # trailing ones
  carry = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape), dtype),
                       cell.initial_carry(params, (B,), dtype))
  return params, xs, mask, carry


def reference(ys, mask, h0, *, reverse, zero_output, order):
  """NumPy, from the definitions: ``ys`` at their positions, zeros at
  invalid steps (jaxrnn's default output), rearranged."""
  ys, out = np.asarray(ys), np.array(ys)
  B, T = mask.shape
  for b in range(B):
    steps = range(T - 1, -1, -1) if reverse else range(T)
    previous = np.asarray(h0)[b]
    for t in steps:
      if mask[b, t]:
        previous = ys[b, t]
      elif not zero_output:
        out[b, t] = previous
    if order == "flip":
      out[b] = out[b, ::-1]
    elif order == "within":
      length = max([t + 1 for t in range(T) if mask[b, t]], default=0)
      out[b, :length] = out[b, :length][::-1]
  return out


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("option", ["zero_output", "zero_output_reverse", "go_backwards",
                                    "go_backwards_hold", "keep_order", "keep_order_hold"])
def test_options_match_their_definitions(name, option):
  cell = CELLS[name]
  params, xs, mask, carry = problem(cell)
  reverse = option.startswith(("go_backwards", "keep_order")) or option.endswith("reverse")
  hold = option.endswith("hold") or option.startswith("zero_output")
  kwargs = dict(go_backwards=option.startswith("go_backwards"),
                keep_order=not option.startswith("keep_order"),
                zero_output_for_mask=not hold)
  base_carry, base_ys = jaxrnn.scan(cell, params, xs, mask=mask, initial_carry=carry,
                                    reverse=reverse)
  got_carry, got = jaxrnn.scan(cell, params, xs, mask=mask, initial_carry=carry,
                               reverse=reverse, **kwargs)
  order = "flip" if kwargs["go_backwards"] else "within" if not kwargs["keep_order"] else None
  want = reference(base_ys, mask, carry.h, reverse=reverse, zero_output=not hold, order=order)
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
  for a, b in zip(got_carry, base_carry):  # the carry is the same under every option
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(4))
def test_keep_order_matches_flax(seed):
  """``reverse=True, keep_order=False`` against Flax's ``nn.RNN`` with
  ``seq_lengths``."""
  rng = np.random.default_rng(seed)
  B, T, I, H = 3, 6, 3, 4
  xs = jnp.asarray(rng.standard_normal((B, T, I)), jnp.float32)
  lengths = jnp.asarray(rng.integers(0, T + 1, B))
  flax_rnn = nn.RNN(nn.LSTMCell(H), reverse=True, keep_order=False)
  variables = flax_rnn.init(jax.random.key(seed), xs)
  want = flax_rnn.apply(variables, xs, seq_lengths=lengths)
  cell = jaxrnn.LSTMCell()
  params = interop.from_flax(cell, variables["params"]["cell"])
  _, got = jaxrnn.scan(cell, params, xs, seq_lengths=lengths, reverse=True, keep_order=False)
  valid = np.arange(T)[None, :] < np.asarray(lengths)[:, None]
  # Flax leaves its own values at the padding; jaxrnn's are zeros
  np.testing.assert_allclose(np.where(valid[..., None], got, 0),
                             np.where(valid[..., None], want, 0), rtol=1e-6, atol=1e-6)


def test_keras_options_match_keras():
  """``go_backwards`` and ``zero_output_for_mask`` against Keras' own LSTM,
  every combination, from a stored state (the interop tests cover the rest)."""
  keras = pytest.importorskip("keras")
  if keras.backend.backend() != "jax":
    pytest.skip("Keras runs on another backend")
  rng = np.random.default_rng(0)
  B, T, I, H = 3, 7, 4, 5
  x = rng.standard_normal((B, T, I)).astype(np.float32)
  mask = rng.random((B, T)) > 0.3
  mask[0, 0] = False
  h0, c0 = (rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
  with jax.enable_x64(False):
    for backwards in (False, True):
      for zero in (False, True):
        layer = keras.layers.LSTM(H, return_sequences=True, return_state=True,
                                  go_backwards=backwards, zero_output_for_mask=zero,
                                  bias_initializer="random_normal")
        ys, h, c = layer(x, mask=mask, initial_state=[h0, c0])
        w_i, w_h, b = layer.get_weights()
        params = jaxrnn.LSTMCell.params_type(jnp.asarray(w_i), jnp.asarray(w_h),
                                             jnp.asarray(b), None)
        carry, got = jaxrnn.scan(jaxrnn.LSTMCell(), params, x, mask=mask,
                                 initial_carry=jaxrnn.LSTMState(h0, c0),
                                 go_backwards=backwards, zero_output_for_mask=zero)
        np.testing.assert_allclose(got, ys, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(carry.h, h, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(carry.c, c, rtol=1e-6, atol=1e-6)


def test_lengths_and_time_major():
  """``seq_lengths`` and time-major layouts take the same conventions."""
  cell = jaxrnn.GRUCell()
  params, xs, _, carry = problem(cell)
  lengths = jnp.array([0, 3, 7])
  mask = np.arange(7)[None, :] < np.asarray(lengths)[:, None]
  for kwargs in (dict(reverse=True, keep_order=False), dict(go_backwards=True),
                 dict(zero_output_for_mask=False, reverse=True)):
    _, want = jaxrnn.scan(cell, params, xs, mask=mask, initial_carry=carry, **kwargs)
    _, got = jaxrnn.scan(cell, params, xs, seq_lengths=lengths, initial_carry=carry,
                         **kwargs)
    np.testing.assert_array_equal(got, want)
    _, got = jaxrnn.scan(cell, params, jnp.swapaxes(xs, 0, 1), seq_lengths=lengths,
                         initial_carry=carry, time_major=True, **kwargs)
    np.testing.assert_allclose(jnp.swapaxes(got, 0, 1), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(zero_output_for_mask=False),
                                    dict(go_backwards=True, zero_output_for_mask=False),
                                    dict(reverse=True, keep_order=False)])
def test_gradients(kwargs):
  cell = jaxrnn.GRUCell()
  params, xs, mask, carry = problem(cell, B=2, T=5)
  loss = lambda params, xs, carry: jnp.sum(jnp.sin(jaxrnn.scan(
      cell, params, xs, mask=mask, initial_carry=carry, **kwargs)[1]))
  check_grads(loss, (params, xs, carry), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def test_flax_modules_take_the_options():
  cell = jaxrnn.GRUCell()
  params, xs, mask, carry = problem(cell, dtype=jnp.float32)
  _, want = jaxrnn.scan(cell, params, xs, mask=mask, go_backwards=True,
                        zero_output_for_mask=False)
  from jaxrnn import linen, nnx as jnnx
  from flax import nnx
  module = linen.RNN(cell, hidden_size=4, go_backwards=True,
                            zero_output_for_mask=False)
  _, got = module.apply({"params": {"layer": params}}, xs, mask=mask)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  layer = jnnx.RNN(cell, 2, 4, rngs=nnx.Rngs(0), reverse=True, keep_order=False)
  jnnx.load_functional(layer, params)
  _, got = layer(xs, mask=mask)
  _, want = jaxrnn.scan(cell, params, xs, mask=mask, reverse=True, keep_order=False)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_errors():
  cell = jaxrnn.GRUCell()
  params, xs, mask, _ = problem(cell)
  with pytest.raises(ValueError, match="keep_order=False: .*reverse=True"):
    jaxrnn.scan(cell, params, xs, keep_order=False)
  with pytest.raises(ValueError, match="go_backwards=True, keep_order=False"):
    jaxrnn.scan(cell, params, xs, go_backwards=True, keep_order=False, reverse=True)
  with pytest.raises(TypeError, match="zero_output_for_mask: expected a bool"):
    jaxrnn.scan(cell, params, xs, zero_output_for_mask=0)
  with pytest.raises(ValueError, match="zero_output_for_mask=False: .*resets"):
    jaxrnn.scan(cell, params, xs, mask=mask, resets=~mask, zero_output_for_mask=False)
  from flax import nnx
  from jaxrnn import nnx as jnnx
  with pytest.raises(ValueError, match="keep_order=False"):
    jnnx.RNN(cell, 2, 4, rngs=nnx.Rngs(0), keep_order=False)
  mlstm = jaxrnn.MLSTMCell(num_heads=1)
  p = mlstm.init(jax.random.key(0), 2, 4)
  with pytest.raises(ValueError, match="zero_output_for_mask=False: .*has no h"):
    jaxrnn.scan(mlstm, p, xs[..., :2], mask=mask, zero_output_for_mask=False)
  model = jaxrnn.blocks.SequenceModel((jaxrnn.blocks.PreNormBlock(cell),), d_model=4,
                                      input_size=2, num_outputs=1)
  with pytest.raises(ValueError, match="go_backwards: applies to a cell"):
    jaxrnn.scan(model, model.init(jax.random.key(0)), xs, go_backwards=True)
