"""Activation options of the LSTM family, GRU, MGU and simple cells
(``activation``, ``recurrent_activation``): every engine against the cell's
own step loop, NumPy written from the equations, numerical gradients,
Keras 3's own layers and Flax nnx's cells; the engine choice (no native
kernel for a non-default activation) and the name table against Keras'.
"""

import math
import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before any import of keras

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
from cases import init_params
from compare import assert_close, run_and_grad
from jaxrnn._native import available as native_available
from jaxrnn._src.cells import activations


def scaled_sigmoid(x):
  """A gate of one's own, passed as a callable."""
  return jax.nn.sigmoid(2.0 * x)


# (activation, recurrent_activation): names, names with kinks, callables.
PAIRS = {
    "relu-hard_sigmoid": ("relu", "hard_sigmoid"),
    "gelu-softsign": ("gelu", "softsign"),
    "silu-callable": (jax.nn.silu, scaled_sigmoid),
}

# Cell factories taking (activation, recurrent_activation).
CELLS = {
    "lstm": lambda a, r: jaxrnn.LSTMCell(activation=a, recurrent_activation=r),
    "lstmp": lambda a, r: jaxrnn.ProjectedLSTMCell(activation=a, recurrent_activation=r),
    "peephole": lambda a, r: jaxrnn.PeepholeLSTMCell(activation=a, recurrent_activation=r),
    "cifg": lambda a, r: jaxrnn.CIFGLSTMCell(activation=a, recurrent_activation=r),
    "gru_after": lambda a, r: jaxrnn.GRUCell(True, activation=a, recurrent_activation=r),
    "gru_before": lambda a, r: jaxrnn.GRUCell(False, activation=a, recurrent_activation=r),
    "mgu_after": lambda a, r: jaxrnn.MGUCell(True, activation=a, recurrent_activation=r),
    "mgu_before": lambda a, r: jaxrnn.MGUCell(False, activation=a, recurrent_activation=r),
    "mgu_no_reset": lambda a, r: jaxrnn.MGUCell(reset_gate=False, activation=a,
                                                recurrent_activation=r),
    "rnn": lambda a, r: jaxrnn.SimpleRNNCell(a),
}


def make(name, pair, *, B=2, T=6, I=3, H=4, dtype=jnp.float64, seed=0):
  cell = CELLS[name](*PAIRS[pair])
  k_p, k_x, k_c = jax.random.split(jax.random.key(seed), 3)
  params = init_params(cell, k_p, I, H, dtype=dtype, initializer="pytorch")
  if isinstance(params, jaxrnn.PeepholeLSTMParams):  # non-zero peepholes
    params = params._replace(p_i=params.p_i + 0.3, p_f=params.p_f - 0.2,
                             p_o=params.p_o + 0.1)
  xs = jax.random.normal(k_x, (B, T, I), dtype)
  carry = cell.initial_carry(params, (B,))
  carry = type(carry)(*(jax.random.normal(k, c.shape, dtype)
                        for k, c in zip(jax.random.split(k_c, len(carry)), carry)))
  return cell, params, xs, carry


def step_loop(cell, params, xs, carry):
  """The cell's own step, one call per step, batch-major ``xs``."""
  ys = []
  for t in range(xs.shape[1]):
    carry, y = cell(params, carry, xs[:, t])
    ys.append(y)
  return carry, jnp.stack(ys, axis=1)


# ------------------------------------------------------------- the engines
@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("name", CELLS)
def test_every_engine_equals_the_step_loop(name, pair):
  cell, params, xs, carry = make(name, pair)
  want = step_loop(cell, params, xs, carry)
  for impl in ("auto", "xla", "autodiff"):
    got = jaxrnn.scan(cell, params, xs, initial_carry=carry, impl=impl)
    assert_close(got, want, jnp.float64)
  engine, reason = jaxrnn.which_engine(cell, params, jnp.ones((2, 32, 3)))
  if name == "rnn" and pair == "relu-hard_sigmoid":  # a kernel's: rnn_relu
    assert engine == ("native" if native_available() else "xla")
    return
  assert engine == ("autodiff" if name in ("gru_before", "mgu_before") else "xla")
  if cell.native_kernel is not None and native_available():
    assert "the kernel" in reason and "activation=" in reason, reason


@pytest.mark.parametrize("name", ["lstm", "lstmp", "peephole", "cifg", "gru_after",
                                  "mgu_after", "mgu_no_reset", "rnn"])
def test_fused_backward_equals_autodiff(name):
  """A masked, reversed layer: outputs, carries and every gradient."""
  cell, params, xs, carry = make(name, "gelu-softsign")
  xs = jnp.swapaxes(xs, 0, 1)  # the engines' core is time-major
  valid = jax.random.bernoulli(jax.random.key(3), 0.7, xs.shape[:2])
  assert_close(run_and_grad(cell, "xla", True)(params, xs, carry, valid),
               run_and_grad(cell, "autodiff", True)(params, xs, carry, valid),
               jnp.float64)


@pytest.mark.parametrize("name", ["lstm", "gru_after", "gru_before"])
def test_numerical_gradients(name):
  cell, params, xs, carry = make(name, "gelu-softsign", B=1, T=3, I=2, H=3)

  def loss(p, x, c):
    c, ys = jaxrnn.scan(cell, p, x, initial_carry=c, impl="xla")
    return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(leaf ** 2) for leaf in c)
  check_grads(loss, (params, xs, carry), order=1, modes=("rev",),
              atol=1e-6, rtol=1e-6)


# ------------------------------------------------- NumPy from the equations
def _erf(x):
  return np.vectorize(math.erf)(x)


NP = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "linear": lambda x: x,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: 1.0507009873554804934193349852946 * np.where(
        x > 0, x, 1.6732632423543772848170429916717 * np.expm1(np.minimum(x, 0.0))),
    "softplus": lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
}


def np_lstm(p, h, c, xs, act, gate):
  H = p.w_h.shape[0]
  blk = lambda a, k: a[..., k * H:(k + 1) * H]
  ys = []
  for t in range(xs.shape[1]):
    z = xs[:, t] @ p.w_i + p.b_i + h @ p.w_h + p.b_h
    i, f, g, o = gate(blk(z, 0)), gate(blk(z, 1)), act(blk(z, 2)), gate(blk(z, 3))
    c = f * c + i * g
    h = o * act(c)
    ys.append(h)
  return h, c, np.stack(ys, 1)


def np_gru(p, h, xs, act, gate, reset_after):
  H = p.w_h.shape[0]
  blk = lambda a, k: a[..., k * H:(k + 1) * H]
  ys = []
  for t in range(xs.shape[1]):
    xz = xs[:, t] @ p.w_i + p.b_i
    r = gate(blk(xz, 0) + h @ blk(p.w_h, 0) + blk(p.b_h, 0))
    u = gate(blk(xz, 1) + h @ blk(p.w_h, 1) + blk(p.b_h, 1))
    if reset_after:
      n = act(blk(xz, 2) + r * (h @ blk(p.w_h, 2) + blk(p.b_h, 2)))
    else:
      n = act(blk(xz, 2) + (r * h) @ blk(p.w_h, 2) + blk(p.b_h, 2))
    h = (1 - u) * n + u * h
    ys.append(h)
  return h, np.stack(ys, 1)


def np_simple(p, h, xs, act):
  ys = []
  for t in range(xs.shape[1]):
    h = act(xs[:, t] @ p.w_i + p.b_i + h @ p.w_h + p.b_h)
    ys.append(h)
  return h, np.stack(ys, 1)


def as_np(tree):
  return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


@pytest.mark.parametrize("pair", [("relu", "hard_sigmoid"), ("gelu", "softsign"),
                                  ("elu", "sigmoid"), ("linear", "tanh")])
def test_lstm_and_gru_against_numpy(pair):
  act, gate = pair
  cell, params, xs, carry = make("lstm", "relu-hard_sigmoid")
  cell = jaxrnn.LSTMCell(activation=act, recurrent_activation=gate)
  h, c, ys = np_lstm(as_np(params), *as_np(tuple(carry)), as_np(xs), NP[act], NP[gate])
  got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
  np.testing.assert_allclose(got_ys, ys, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(got_carry.h, h, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(got_carry.c, c, rtol=1e-12, atol=1e-12)
  for reset_after in (True, False):
    cell, params, xs, carry = make("gru_after", "relu-hard_sigmoid", seed=1)
    cell = jaxrnn.GRUCell(reset_after, activation=act, recurrent_activation=gate)
    h, ys = np_gru(as_np(params), as_np(carry.h), as_np(xs), NP[act], NP[gate],
                   reset_after)
    got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
    np.testing.assert_allclose(got_ys, ys, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_carry.h, h, rtol=1e-12, atol=1e-12)
  cell, params, xs, carry = make("rnn", "relu-hard_sigmoid", seed=2)
  cell = jaxrnn.SimpleRNNCell(act)
  h, ys = np_simple(as_np(params), as_np(carry.h), as_np(xs), NP[act])
  got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
  np.testing.assert_allclose(got_ys, ys, rtol=1e-12, atol=1e-12)


def test_table_against_numpy():
  assert set(NP) == set(activations.ACTIVATIONS)
  x = np.linspace(-7.0, 7.0, 281)
  for name, fn in activations.ACTIVATIONS.items():
    np.testing.assert_allclose(fn(jnp.asarray(x)), NP[name](x), rtol=1e-12,
                               atol=1e-14, err_msg=name)


# ------------------------------------------------------------------ Keras 3
@pytest.fixture(scope="module")
def keras():
  return pytest.importorskip("keras")


def test_table_is_keras(keras):
  """Each name is the function Keras 3 gives it, with its defaults (Keras'
  ops compute in float32, whatever the input: float32 here; the exact and
  the tanh-approximated GELU differ by up to 2e-4, far above this)."""
  x = jnp.linspace(-7.0, 7.0, 281, dtype=jnp.float32)
  for name, fn in activations.ACTIVATIONS.items():
    want = np.asarray(keras.activations.get(name)(x))
    np.testing.assert_allclose(fn(x), want, rtol=1e-6, atol=1e-7, err_msg=name)


def _keras_run(keras, layer, xs, state):
  """Builds ``layer``, and returns a function of its weights."""
  layer(np.asarray(xs), initial_state=state)  # builds it

  def run(weights):
    layer.set_weights(weights)
    out = layer(np.asarray(xs), initial_state=state)
    return [np.asarray(o) for o in out]
  return run


KERAS_PAIR = dict(activation="relu", recurrent_activation="hard_sigmoid")
# Keras' ops compute in float32 whatever their inputs: the comparisons too.
KERAS_TOL = dict(rtol=1e-5, atol=1e-6)


def test_lstm_against_keras(keras):
  cell = jaxrnn.LSTMCell(**KERAS_PAIR)
  _, params, xs, carry = make("lstm", "relu-hard_sigmoid", dtype=jnp.float32)
  layer = keras.layers.LSTM(4, return_sequences=True, return_state=True,
                            **KERAS_PAIR)
  run = _keras_run(keras, layer, xs, [np.asarray(carry.h), np.asarray(carry.c)])
  # Keras' gate order i, f, c, o is jaxrnn's i, f, g, o; one bias.
  ys, h, c = run([np.asarray(params.w_i), np.asarray(params.w_h),
                  np.asarray(params.b_i + params.b_h)])
  got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
  np.testing.assert_allclose(got_ys, ys, **KERAS_TOL)
  np.testing.assert_allclose(got_carry.h, h, **KERAS_TOL)
  np.testing.assert_allclose(got_carry.c, c, **KERAS_TOL)


def _zrn(w):
  """Keras' GRU blocks ``z, r, h`` in jaxrnn's order ``r, z, n``."""
  z, r, n = np.split(np.asarray(w), 3, axis=-1)
  return np.concatenate([r, z, n], axis=-1)


def _rzn_to_keras(w):
  r, z, n = np.split(np.asarray(w), 3, axis=-1)
  return np.concatenate([z, r, n], axis=-1)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_against_keras(keras, reset_after):
  cell = jaxrnn.GRUCell(reset_after, **KERAS_PAIR)
  _, params, xs, carry = make("gru_after", "relu-hard_sigmoid", seed=1,
                             dtype=jnp.float32)
  layer = keras.layers.GRU(4, return_sequences=True, return_state=True,
                           reset_after=reset_after, **KERAS_PAIR)
  run = _keras_run(keras, layer, xs, [np.asarray(carry.h)])
  if reset_after:  # bias (2, 3H): row 0 input, row 1 recurrent
    bias = np.stack([_rzn_to_keras(params.b_i), _rzn_to_keras(params.b_h)])
  else:  # one bias (3H,): jaxrnn's b_h must sit outside the reset, as b_i
    params = params._replace(b_i=params.b_i + params.b_h, b_h=None)
    bias = _rzn_to_keras(params.b_i)
  ys, h = run([_rzn_to_keras(params.w_i), _rzn_to_keras(params.w_h), bias])
  got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
  np.testing.assert_allclose(got_ys, ys, **KERAS_TOL)
  np.testing.assert_allclose(got_carry.h, h, **KERAS_TOL)


@pytest.mark.parametrize("activation", ["relu", "softsign"])
def test_simple_rnn_against_keras(keras, activation):
  cell = jaxrnn.SimpleRNNCell(activation)
  _, params, xs, carry = make("rnn", "relu-hard_sigmoid", seed=2,
                             dtype=jnp.float32)
  layer = keras.layers.SimpleRNN(4, return_sequences=True, return_state=True,
                                 activation=activation)
  run = _keras_run(keras, layer, xs, [np.asarray(carry.h)])
  ys, h = run([np.asarray(params.w_i), np.asarray(params.w_h),
               np.asarray(params.b_i + params.b_h)])
  got_carry, got_ys = jaxrnn.scan(cell, params, xs, initial_carry=carry)
  np.testing.assert_allclose(got_ys, ys, **KERAS_TOL)
  np.testing.assert_allclose(got_carry.h, h, **KERAS_TOL)


# ----------------------------------------------------------------- Flax nnx
def test_lstm_and_gru_against_flax_nnx():
  nnx = pytest.importorskip("flax.nnx")
  I, H = 3, 4
  rngs = nnx.Rngs(0)
  x = jax.random.normal(jax.random.key(1), (2, I), jnp.float64)
  h0 = jax.random.normal(jax.random.key(2), (2, H), jnp.float64)
  c0 = jax.random.normal(jax.random.key(3), (2, H), jnp.float64)
  fns = dict(gate_fn=jax.nn.hard_sigmoid, activation_fn=nnx.relu)
  mine = dict(recurrent_activation=jax.nn.hard_sigmoid, activation=nnx.relu)

  flax_lstm = nnx.LSTMCell(I, H, rngs=rngs, param_dtype=jnp.float64, **fns)
  gates = ("ii", "if_", "ig", "io"), ("hi", "hf", "hg", "ho")
  w_i = jnp.concatenate([getattr(flax_lstm, g).kernel[...] for g in gates[0]], -1)
  w_h = jnp.concatenate([getattr(flax_lstm, g).kernel[...] for g in gates[1]], -1)
  b_h = jnp.concatenate([getattr(flax_lstm, g).bias[...] for g in gates[1]], -1)
  (c, h), y = flax_lstm((c0, h0), x)
  cell = jaxrnn.LSTMCell(**mine)
  (got_h, got_c), got_y = cell(jaxrnn.LSTMParams(w_i, w_h, None, b_h),
                               jaxrnn.LSTMState(h0, c0), x)
  np.testing.assert_allclose(got_h, h, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(got_c, c, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(got_y, y, rtol=1e-12, atol=1e-12)

  flax_gru = nnx.GRUCell(I, H, rngs=rngs, param_dtype=jnp.float64, **fns)
  h, _ = flax_gru(h0, x)
  params = jaxrnn.GRUParams(flax_gru.dense_i.kernel[...], flax_gru.dense_h.kernel[...],
                            flax_gru.dense_i.bias[...], None)
  (got_h,), _ = jaxrnn.GRUCell(**mine)(params, jaxrnn.RNNState(h0), x)
  np.testing.assert_allclose(got_h, h, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ engine choice
needs_native = pytest.mark.skipif(not native_available(),
                                  reason="the native kernels are not built")


@needs_native
def test_defaults_still_run_natively():
  xs = jnp.ones((2, 32, 3), jnp.float32)
  for cell in (jaxrnn.LSTMCell(), jaxrnn.GRUCell(), jaxrnn.GRUCell(False),
               jaxrnn.CIFGLSTMCell(), jaxrnn.PeepholeLSTMCell(),
               jaxrnn.SimpleRNNCell(), jaxrnn.SimpleRNNCell("relu"),
               # the defaults' own functions, as Flax users pass them
               jaxrnn.LSTMCell(activation=jnp.tanh, recurrent_activation=jax.nn.sigmoid),
               jaxrnn.SimpleRNNCell(jax.nn.relu)):
    params = init_params(cell, jax.random.key(0), 3, 4)
    assert jaxrnn.which_engine(cell, params, xs)[0] == "native", cell


OFF_NATIVE = {
    "lstm_relu": jaxrnn.LSTMCell(activation="relu"),
    "lstm_hard_sigmoid": jaxrnn.LSTMCell(recurrent_activation="hard_sigmoid"),
    "gru_gelu": jaxrnn.GRUCell(activation="gelu"),
    "gru_before_callable": jaxrnn.GRUCell(False, recurrent_activation=scaled_sigmoid),
    "cifg_softsign": jaxrnn.CIFGLSTMCell(activation="softsign"),
    "peephole_hard_sigmoid": jaxrnn.PeepholeLSTMCell(recurrent_activation="hard_sigmoid"),
    "rnn_gelu": jaxrnn.SimpleRNNCell("gelu"),
}


@needs_native
@pytest.mark.parametrize("name", OFF_NATIVE)
def test_other_activations_leave_the_native_kernel(name):
  cell = OFF_NATIVE[name]
  params = init_params(cell, jax.random.key(0), 3, 4)
  xs = jax.random.normal(jax.random.key(1), (2, 32, 3))
  engine, reason = jaxrnn.which_engine(cell, params, xs)
  assert engine == ("autodiff" if cell.step_form() != "split" else "xla")
  assert "the native engine does not apply" in reason and "only" in reason, reason
  assert cell.native_variant() is None
  with pytest.raises(ValueError, match=r"impl: 'native' cannot run .*activation="):
    jaxrnn.scan(cell, params, xs, impl="native")
  # and it runs, on XLA, what the step loop runs
  want = step_loop(cell, params, xs[:, :5], cell.initial_carry(params, (2,)))
  assert_close(jaxrnn.scan(cell, params, xs[:, :5]), want, jnp.float32)


# ------------------------------------------------------------- construction
def test_bad_activations_fail_at_construction():
  with pytest.raises(ValueError, match=r"activation: expected one of .*'gelu'.*"
                                       r"got 'gelu_tanh'"):
    jaxrnn.LSTMCell(activation="gelu_tanh")
  with pytest.raises(ValueError, match="recurrent_activation: .*got 'hard-sigmoid'"):
    jaxrnn.GRUCell(recurrent_activation="hard-sigmoid")
  with pytest.raises(TypeError, match="activation: .*callable, got float 0.5"):
    jaxrnn.SimpleRNNCell(0.5)
  with pytest.raises(TypeError, match="recurrent_activation: expected a hashable"):
    jaxrnn.MGUCell(recurrent_activation=Unhashable())


class Unhashable:
  __hash__ = None

  def __call__(self, x):
    return x


def test_cells_stay_static_arguments():
  a = jaxrnn.LSTMCell(activation="relu", recurrent_activation=scaled_sigmoid)
  b = jaxrnn.LSTMCell(activation="relu", recurrent_activation=scaled_sigmoid)
  assert a == b and hash(a) == hash(b) and a != jaxrnn.LSTMCell()
  params = a.init(jax.random.key(0), 3, 4)
  step = jax.jit(lambda cell, p, c, x: cell(p, c, x), static_argnums=0)
  carry = a.initial_carry(params, (2,))
  x = jnp.ones((2, 3))
  assert_close(step(a, params, carry, x), a(params, carry, x), jnp.float32)


def test_sigmoid_is_the_logistic_function():
  x = jnp.linspace(-20.0, 20.0, 401, dtype=jnp.float64)
  # (1 + tanh(x/2)) / 2 is within rounding of 1 in absolute terms, so its
  # relative error grows where sigmoid(x) is tiny.
  np.testing.assert_allclose(activations.get("sigmoid")(x), jax.nn.sigmoid(x),
                             rtol=1e-13, atol=1e-15)


def test_subclass_may_add_fields_of_its_own():
  """The activation fields are keyword-only, so a user's dataclass subclass
  can add a field without a default, and positional arguments keep their
  meaning (``GRUCell(False)`` is ``reset_after``)."""
  import dataclasses

  @dataclasses.dataclass(frozen=True)
  class Scaled(jaxrnn.LSTMCell):
    scale: float

    def pointwise(self, params, carry, z):
      return super().pointwise(params, carry, self.scale * z)

  cell = Scaled(0.5, activation="relu")
  params = cell.init(jax.random.key(0), 2, 3)
  xs = jax.random.normal(jax.random.key(1), (4, 2))
  carry, ys = jaxrnn.scan(cell, params, xs)
  loop_carry, outs = cell.initial_carry(params), []
  for x in xs:
    loop_carry, y = cell(params, loop_carry, x)
    outs.append(y)
  np.testing.assert_allclose(ys, jnp.stack(outs), rtol=1e-6, atol=1e-6)
  assert jaxrnn.GRUCell(False).reset_after is False
  with pytest.raises(TypeError):
    jaxrnn.GRUCell(True, "relu")
