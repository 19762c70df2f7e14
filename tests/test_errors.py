"""Bad input fails at trace time with an error naming the argument."""

import re

import jax
import jax.numpy as jnp
import pytest

import jaxrnn

# The default engine ("auto": the native kernels where they apply) only; the
# engines equal each other by tests/test_native.py and tests/test_engines.py.

KEY = jax.random.key(0)
LSTM = jaxrnn.LSTMCell()
P = LSTM.init(KEY, 3, 4)
XS = jnp.ones((2, 5, 3))


def raises(exc, *fragments):
  return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


def test_wrong_feature_size():
  with raises(ValueError, "x:", "input_size=3", "(2, 7)"):
    LSTM(P, LSTM.initial_carry(P, (2,)), jnp.ones((2, 7)))
  with raises(ValueError, "xs:", "input_size=3", "(2, 5, 7)"):
    jaxrnn.scan(LSTM, P, jnp.ones((2, 5, 7)))


def test_errors_raised_while_tracing_under_jit():
  with raises(ValueError, "xs:", "input_size=3"):
    jax.jit(lambda x: jaxrnn.scan(LSTM, P, x))(jnp.ones((2, 5, 7)))


def test_non_float_input():
  with raises(TypeError, "xs:", "floating-point", "int"):
    jaxrnn.scan(LSTM, P, jnp.ones((2, 5, 3), jnp.int32))


def test_xs_without_time_axis():
  with raises(ValueError, "xs:", "(*batch, T, input_size)", "(3,)"):
    jaxrnn.scan(LSTM, P, jnp.ones((3,)))


def test_carry_of_wrong_shape():
  with raises(ValueError, "carry.h:", "(2, 4)", "(3, 4)"):
    LSTM(P, LSTM.initial_carry(P, (3,)), jnp.ones((2, 3)))
  bad = jaxrnn.LSTMState(jnp.zeros((2, 4)), jnp.zeros((2, 5)))
  with raises(ValueError, "initial_carry.c:", "(2, 4)", "(2, 5)"):
    jaxrnn.scan(LSTM, P, XS, initial_carry=bad)


def test_carry_of_wrong_type():
  with raises(TypeError, "initial_carry:", "LSTMState", "RNNState"):
    jaxrnn.scan(LSTM, P, XS, initial_carry=jaxrnn.RNNState(jnp.zeros((2, 4))))


def test_params_of_another_cell():
  gru_params = jaxrnn.GRUCell().init(KEY, 3, 4)
  with raises(TypeError, "params:", "LSTMCell expects LSTMParams", "GRUParams"):
    jaxrnn.scan(LSTM, gru_params, XS)
  with raises(TypeError, "params:", "PeepholeLSTMParams", "LSTMParams"):
    jaxrnn.PeepholeLSTMCell().initial_carry(P)


def test_params_with_inconsistent_shapes():
  with raises(ValueError, "params.w_h:", "(4, 16)", "(4, 12)"):
    jaxrnn.scan(LSTM, P._replace(w_h=jnp.zeros((4, 12))), XS)
  with raises(ValueError, "params.b_i:", "(16,)", "(12,)"):
    jaxrnn.scan(LSTM, P._replace(b_i=jnp.zeros((12,))), XS)


def test_seq_lengths_wrong_shape():
  with raises(ValueError, "seq_lengths:", "(2,)", "(3,)"):
    jaxrnn.scan(LSTM, P, XS, seq_lengths=jnp.array([1, 2, 3]))


def test_seq_lengths_wrong_dtype():
  with raises(TypeError, "seq_lengths:", "integer", "float"):
    jaxrnn.scan(LSTM, P, XS, seq_lengths=jnp.array([1.0, 2.0]))


def test_seq_lengths_out_of_range():
  with raises(ValueError, "seq_lengths:", "[0, T=5]", "max 6"):
    jaxrnn.scan(LSTM, P, XS, seq_lengths=jnp.array([1, 6]))
  with raises(ValueError, "seq_lengths:", "min -1"):
    jaxrnn.scan(LSTM, P, XS, seq_lengths=jnp.array([-1, 2]))


def test_mask_wrong_shape_and_dtype():
  with raises(ValueError, "mask:", "(2, 5)", "(5, 2)"):
    jaxrnn.scan(LSTM, P, XS, mask=jnp.ones((5, 2), bool))
  with raises(ValueError, "mask:", "(5, 2)", "(T, *batch)", "(2, 5)"):
    jaxrnn.scan(LSTM, P, jnp.ones((5, 2, 3)), mask=jnp.ones((2, 5), bool),
                time_major=True)
  with raises(TypeError, "mask:", "boolean", "float"):
    jaxrnn.scan(LSTM, P, XS, mask=jnp.ones((2, 5)))


def test_unknown_merge_mode():
  with raises(ValueError, "merge:", "'concat'", "'mean'"):
    jaxrnn.Bidirectional(LSTM, merge="mean")


def test_unknown_activation():
  with raises(ValueError, "activation:", "'tanh'", "'sigmoid'", "'sigmod'"):
    jaxrnn.SimpleRNNCell("sigmod")
  with raises(ValueError, "recurrent_activation:", "'hard_sigmoid'", "'sigmod'"):
    jaxrnn.LSTMCell(recurrent_activation="sigmod")
  with raises(TypeError, "activation:", "callable", "int"):
    jaxrnn.GRUCell(activation=3)
  with raises(TypeError, "reset_gate:", "bool"):
    jaxrnn.MGUCell(reset_gate="no")


def test_bad_gru_variant_and_initializer():
  with raises(TypeError, "reset_after:", "bool"):
    jaxrnn.GRUCell(reset_after="yes")
  with raises(ValueError, "initializer:", "'glorot'"):
    LSTM.init(KEY, 3, 4, initializer="glorot")
  with raises(ValueError, "hidden_size:", "positive int", "0"):
    LSTM.init(KEY, 3, 0)


def test_bad_unroll_and_cell():
  with raises(ValueError, "unroll:", "0"):
    jaxrnn.scan(LSTM, P, XS, unroll=0)
  with raises(TypeError, "cell:", "jaxrnn cell", "function"):
    jaxrnn.scan(lambda p, c, x: (c, x), P, XS)


def test_bidirectional_bad_params_and_carry():
  layer = jaxrnn.Bidirectional(LSTM, jaxrnn.GRUCell())
  with raises(TypeError, "params:", "BidirectionalParams", "LSTMParams"):
    layer(P, XS)
  params = jaxrnn.BidirectionalParams(P, P)
  with raises(TypeError, "params.backward:", "GRUParams", "LSTMParams"):
    layer(params, XS)
  good = layer.init(KEY, 3, 4)
  with raises(TypeError, "initial_carry:", "pair"):
    layer(good, XS, initial_carry=LSTM.initial_carry(P, (2,)))


def test_stacked_errors():
  with raises(ValueError, "layers:", "non-empty"):
    jaxrnn.Stacked([])
  with raises(TypeError, "layers[1]:", "str"):
    jaxrnn.Stacked([LSTM, "gru"])
  with raises(ValueError, "dropout_rate:", "[0, 1)", "1.5"):
    jaxrnn.Stacked([LSTM], dropout_rate=1.5)
  stack = jaxrnn.Stacked([LSTM, jaxrnn.GRUCell()], dropout_rate=0.1)
  params = stack.init(KEY, 3, [4, 6])
  with raises(ValueError, "key:", "dropout_rate=0.1", "deterministic=True"):
    stack(params, XS)
  with raises(TypeError, "params:", "2 params", "length 1"):
    stack(params[:1], XS)
  mismatched = (params[0], jaxrnn.GRUCell().init(KEY, 5, 6))
  with raises(ValueError, "input of layer 1", "input_size=5", "(2, 5, 4)"):
    stack(mismatched, XS, deterministic=True)
  with raises(ValueError, "hidden_size:", "2 sizes", "[4]"):
    stack.init(KEY, 3, [4])
