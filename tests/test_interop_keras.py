"""Keras 3 interop, checked against Keras itself (``KERAS_BACKEND=jax``)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
  pytest.skip("Keras runs on another backend (KERAS_BACKEND)", allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import jaxrnn  # noqa: E402
from jaxrnn import interop  # noqa: E402

N_RANDOM = 24


@pytest.fixture(autouse=True)
def float32_only():
  """Keras' JAX backend assumes float32 defaults (its reset_after=False GRU
  fails under the suite's x64 mode); the comparisons are in float32."""
  with jax.enable_x64(False):
    yield
TOL = dict(rtol=1e-6, atol=1e-6)


def assert_close(a, b, **tol):
  if isinstance(a, (list, tuple)):
    assert len(a) == len(b)
    for u, v in zip(a, b):
      assert_close(u, v, **tol)
    return
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or TOL))


def random_layer(rng, kind, units, *, sequences, state, backwards=False):
  options = dict(units=units, return_sequences=sequences, return_state=state,
                 use_bias=bool(rng.random() < 0.75), go_backwards=backwards,
                 zero_output_for_mask=bool(rng.random() < 0.3),
                 bias_initializer="random_normal")
  if kind == "GRU":
    options["reset_after"] = bool(rng.random() < 0.6)
  return getattr(keras.layers, kind)(**options)


def random_config(seed):
  """A layer, a Bidirectional, or a stack of two, with random options."""
  rng = np.random.default_rng(seed)
  kind = ["LSTM", "GRU", "SimpleRNN"][seed % 3]
  units = int(rng.integers(1, 8))
  shape = ["layer", "bidirectional", "stack"][seed // 3 % 3]
  sequences, state = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
  if shape == "layer":
    layer = random_layer(rng, kind, units, sequences=sequences, state=state,
                         backwards=bool(rng.random() < 0.5))
  elif shape == "bidirectional":
    layer = keras.layers.Bidirectional(
        random_layer(rng, kind, units, sequences=sequences, state=state),
        merge_mode=["concat", "sum", "ave", "mul", None][seed % 5])
  else:
    layer = [random_layer(rng, kind, units, sequences=True, state=False),
             keras.layers.Bidirectional(random_layer(rng, "GRU", units + 1,
                                                     sequences=sequences, state=False))]
  return layer, rng


def keras_call(layer, x, mask, initial_state):
  kwargs = {} if initial_state is None else {"initial_state": initial_state}
  if isinstance(layer, list):
    for i, sub in enumerate(layer):
      x = sub(x, mask=mask, **(kwargs if i == 0 else {}))
    return x
  return layer(x, mask=mask, **kwargs)


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_random_configuration_matches_keras(seed):
  """Outputs and final states, with masks with holes and initial states; the
  export builds a Keras layer that gives the same again."""
  layer, rng = random_config(seed)
  B, T, I = int(rng.integers(1, 4)), int(rng.integers(1, 8)), int(rng.integers(1, 6))
  x = rng.standard_normal((B, T, I)).astype(np.float32)
  mask = rng.random((B, T)) < 0.7 if seed % 2 else None
  first = layer[0] if isinstance(layer, list) else layer
  keras_call(layer, x, mask, None)  # builds the weights
  model, params = interop.from_keras(layer)
  n = model.layers[0].num_states * (2 if model.layers[0].bidirectional else 1)
  initial = None
  if seed % 4 >= 2:
    units = model.layers[0].units
    initial = [rng.standard_normal((B, units)).astype(np.float32) for _ in range(n)]
  want = keras_call(layer, x, mask, initial)
  got = model(params, x, mask=mask, initial_state=initial)
  assert_close(got, want)

  exported = interop.to_keras(model, params)
  assert type(exported).__name__ == ("Sequential" if isinstance(layer, list)
                                     else type(first).__name__)
  if isinstance(layer, list):  # a Sequential takes no initial state
    again = keras_call(list(exported.layers), x, mask, initial)
  else:
    again = keras_call(exported, x, mask, initial)
  assert_close(again, want)
  model_back, params_back = interop.from_keras(exported)
  assert model_back == model
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params_back)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_gradients_match_keras(kind):
  """Gradients of a loss w.r.t. every weight and the inputs, through Keras'
  stateless call and through jaxrnn."""
  rng = np.random.default_rng(3)
  layer = getattr(keras.layers, kind)(4, return_sequences=True,
                                      bias_initializer="random_normal")
  x = rng.standard_normal((2, 5, 3)).astype(np.float32)
  mask = np.array([[1, 1, 0, 1, 1], [1, 0, 0, 0, 0]], bool)
  layer(x, mask=mask)
  model, params = interop.from_keras(layer)

  def keras_loss(weights, x):
    ys, _ = layer.stateless_call(weights, frozen, x, mask=mask)
    return jnp.sum(jnp.sin(ys))

  def jaxrnn_loss(params, x):
    return jnp.sum(jnp.sin(model(params, x, mask=mask)))

  weights = [v.value for v in layer.trainable_variables]
  frozen = [v.value for v in layer.non_trainable_variables]
  gw, gx = jax.grad(keras_loss, argnums=(0, 1))(weights, x)
  gp, gx_mine = jax.grad(jaxrnn_loss, argnums=(0, 1))(params, x)
  assert_close(gx_mine, gx)
  cell = model.layers[0].cell
  # the gradient w.r.t. jaxrnn's params, laid out as Keras' weights
  assert_close(interop.to_keras(cell, gp[0]).get_weights(), gw)


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "SimpleRNNCell"])
def test_cells_both_ways(kind):
  rng = np.random.default_rng(5)
  keras_cell = getattr(keras.layers, kind)(5, bias_initializer="random_normal")
  keras_cell.build((None, 3))
  cell, params = interop.from_keras(keras_cell)
  x = rng.standard_normal((4, 3)).astype(np.float32)
  states = [rng.standard_normal((4, 5)).astype(np.float32)
            for _ in range(2 if kind == "LSTMCell" else 1)]
  y, new_states = keras_cell(x, states)
  carry = (jaxrnn.LSTMState(*states) if kind == "LSTMCell" else jaxrnn.RNNState(*states))
  carry_mine, y_mine = cell(params, carry, x)
  assert_close(y_mine, y)
  assert_close(list(carry_mine), list(new_states))
  back = interop.to_keras(cell, params)
  assert type(back).__name__ == kind
  for a, b in zip(back.get_weights(), keras_cell.get_weights()):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind,options", [
    ("LSTM", dict(activation="relu", recurrent_activation="hard_sigmoid")),
    ("GRU", dict(activation="softsign", recurrent_activation="sigmoid", reset_after=False)),
    ("SimpleRNN", dict(activation="elu"))])
def test_activations_both_ways(kind, options):
  """Keras' activation options become the cell's, and go back by name."""
  rng = np.random.default_rng(7)
  layer = getattr(keras.layers, kind)(4, return_sequences=True,
                                      bias_initializer="random_normal", **options)
  x = rng.standard_normal((2, 6, 3)).astype(np.float32)
  mask = rng.random((2, 6)) < 0.7
  want = layer(x, mask=mask)
  model, params = interop.from_keras(layer)
  cell = model.layers[0].cell
  assert cell.activation == options["activation"]
  assert_close(model(params, x, mask=mask), want)
  assert jaxrnn.which_engine(cell, params[0], x)[0] != "native"
  again = interop.to_keras(model, params)
  assert again.cell.activation.__name__ == options["activation"]
  assert_close(again(x, mask=mask), want)


def test_torch_style_biases_export_summed():
  """jaxrnn's two LSTM biases (PyTorch's layout) sum into Keras' one."""
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4, initializer="pytorch")
  assert params.b_h is not None
  keras_cell = interop.to_keras(cell, params)
  x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
  zeros = [np.zeros((2, 4), np.float32)] * 2
  y, _ = keras_cell(x, zeros)
  _, y_mine = cell(params, jaxrnn.LSTMState(*zeros), x)
  assert_close(y_mine, y)


def test_errors():
  with pytest.raises(TypeError, match="expected a Keras LSTM, GRU"):
    interop.from_keras(keras.layers.Dense(3))
  stateful = keras.layers.LSTM(3, stateful=True)
  stateful.build((2, 4, 3))
  with pytest.raises(ValueError, match="stateful"):
    interop.from_keras(stateful)
  with pytest.raises(ValueError, match="Keras has no equivalent"):
    interop.to_keras(jaxrnn.MinGRUCell(), jaxrnn.MinGRUCell().init(jax.random.key(0), 2, 3))
  layer = keras.layers.LSTM(3)
  layer.build((None, None, 2))
  model, params = interop.from_keras(layer)
  with pytest.raises(ValueError, match="initial_state: expected 2"):
    model(params, np.zeros((1, 4, 2), np.float32), initial_state=[np.zeros((1, 3))])
  with pytest.raises(ValueError, match="initial_state"):
    model(params, np.zeros((2, 4, 2), np.float32),
          initial_state=[np.zeros((2, 5)), np.zeros((2, 5))])
  with pytest.raises(ValueError, match="params: expected a tuple of 1"):
    interop.to_keras(model, params * 2)
  pair = keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True),
                                    merge_mode=None)
  pair.build((None, None, 2))
  with pytest.raises(ValueError, match="merge_mode=None returns two sequences"):
    interop.from_keras([pair, keras.layers.GRU(3)])
  unrolled = keras.layers.GRU(3, unroll=True)
  unrolled.build((None, 4, 2))
  model, params = interop.from_keras(unrolled)
  model(params, np.zeros((1, 4, 2), np.float32))  # without a mask, the same function
  with pytest.raises(ValueError, match="unroll=True"):
    model(params, np.zeros((1, 4, 2), np.float32), mask=np.ones((1, 4), bool))


def test_subclass_is_not_exported_as_the_plain_cell():
  class Clipped(jaxrnn.LSTMCell):
    def pointwise(self, params, carry, z):
      return super().pointwise(params, carry, jnp.clip(z, -1, 1))
  cell = Clipped()
  with pytest.raises(ValueError, match="Keras has no equivalent of .*Clipped"):
    interop.to_keras(cell, cell.init(jax.random.key(0), 2, 3))


def test_reset_before_gru_biases_sum_into_keras_one():
  """jaxrnn's reset-before GRU adds both biases outside the reset gate, so
  PyTorch-style params (b_h drawn too) export to Keras' single bias."""
  cell = jaxrnn.GRUCell(reset_after=False)
  params = cell.init(jax.random.key(0), 3, 4, initializer="pytorch")
  keras_cell = interop.to_keras(cell, params)
  x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
  h = np.random.default_rng(2).standard_normal((2, 4)).astype(np.float32)
  y, _ = keras_cell(x, [h])
  _, y_mine = cell(params, jaxrnn.RNNState(h), x)
  assert_close(y_mine, y)


def test_single_tensor_initial_state():
  """Keras takes ``initial_state=h`` as well as ``[h]``."""
  layer = keras.layers.GRU(3, return_sequences=True)
  x = np.random.default_rng(0).standard_normal((2, 5, 2)).astype(np.float32)
  h = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
  want = layer(x, initial_state=h)
  model, params = interop.from_keras(layer)
  assert_close(model(params, x, initial_state=h), want)


@pytest.mark.parametrize("make", ["jax_gelu", "keras_ops_gelu", "own_tanh"])
def test_activation_functions_keep_their_own_mathematics(make):
  """A function that is not Keras' own activation of its name (jax.nn.gelu is
  the tanh approximation, Keras' "gelu" the exact one) is carried as the
  function itself."""
  def tanh(v):  # a user's function that shares a name
    return jnp.tanh(2 * v)
  fn = {"jax_gelu": jax.nn.gelu, "keras_ops_gelu": keras.ops.gelu, "own_tanh": tanh}[make]
  layer = keras.layers.SimpleRNN(4, activation=fn, return_sequences=True,
                                 bias_initializer="random_normal")
  x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
  want = layer(x)
  model, params = interop.from_keras(layer)
  assert model.layers[0].cell.activation is fn
  assert_close(model(params, x), want)
