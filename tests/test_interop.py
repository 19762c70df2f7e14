"""PyTorch, Flax and Equinox interop, checked against the peers themselves."""

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxrnn
from jaxrnn import interop

# The default engine ("auto": the native kernels where they apply) only; the
# engines equal each other by tests/test_native.py and tests/test_engines.py.

TORCH_CLASSES = {"RNN_TANH": torch.nn.RNN, "RNN_RELU": torch.nn.RNN,
                 "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}
N_RANDOM = 16


def random_config(seed):
  rng = np.random.default_rng(seed)
  mode = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"][seed % 4]
  hidden = int(rng.integers(2, 9))
  return dict(
      mode=mode, input_size=int(rng.integers(1, 7)), hidden_size=hidden,
      num_layers=int(rng.integers(1, 4)), bias=bool(rng.random() < 0.75),
      batch_first=bool(rng.random() < 0.5), bidirectional=bool(rng.random() < 0.5),
      proj_size=int(rng.integers(1, hidden)) if mode == "LSTM" and seed // 4 % 2 else 0)


def torch_module(config, seed):
  torch.manual_seed(seed)
  kwargs = {k: v for k, v in config.items() if k != "mode" and not (k == "proj_size" and not v)}
  if config["mode"].startswith("RNN"):
    kwargs["nonlinearity"] = config["mode"][4:].lower()
  return TORCH_CLASSES[config["mode"]](**kwargs)


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_random_configuration_matches_torch(seed):
  """Outputs, final states and gradients w.r.t. inputs and every weight."""
  config = random_config(seed)
  module = torch_module(config, seed)
  model, params = interop.from_torch(module)
  assert model == interop.TorchRNN(**config)
  rng = np.random.default_rng(100 + seed)
  N, T = int(rng.integers(1, 5)), int(rng.integers(1, 8))
  D, L = model.num_directions, model.num_layers
  shape = (N, T, model.input_size) if model.batch_first else (T, N, model.input_size)
  x = rng.standard_normal(shape).astype(np.float32)
  with_hx, with_lengths = seed % 3 == 1, seed % 3 == 2
  h0 = rng.standard_normal((D * L, N, model.output_size)).astype(np.float32)
  c0 = rng.standard_normal((D * L, N, model.hidden_size)).astype(np.float32)
  lengths = rng.integers(1, T + 1, N)
  lengths[0] = T  # pad_packed_sequence pads to the longest length
  hx_np = ((h0, c0) if model.mode == "LSTM" else h0) if with_hx else None

  # torch
  x_t = torch.tensor(x, requires_grad=True)
  hx_t = None if hx_np is None else jax.tree.map(torch.tensor, hx_np)
  inp = x_t
  if with_lengths:
    inp = torch.nn.utils.rnn.pack_padded_sequence(
        x_t, torch.tensor(lengths), batch_first=model.batch_first, enforce_sorted=False)
  out_t, state_t = module(inp, hx_t)
  if with_lengths:
    out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=model.batch_first)
  states_t = state_t if model.mode == "LSTM" else (state_t,)
  weights = [rng.standard_normal(a.shape).astype(np.float32) for a in (out_t, *states_t)]
  loss_t = sum((a * torch.from_numpy(w)).sum() for a, w in zip((out_t, *states_t), weights))
  loss_t.backward()

  # jaxrnn
  def loss(params, x):
    out, state = model(params, x, hx_np, seq_lengths=jnp.asarray(lengths) if with_lengths else None)
    states = state if model.mode == "LSTM" else (state,)
    return sum((a * w).sum() for a, w in zip((out, *states), weights)), (out, states)

  (_, (out, states)), (g_params, g_x) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
      params, jnp.asarray(x))
  tol = dict(atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(out, out_t.detach().numpy(), **tol)
  for got, want in zip(states, states_t):
    np.testing.assert_allclose(got, want.detach().numpy(), **tol)
  np.testing.assert_allclose(g_x, x_t.grad.numpy(), **tol)
  g_sd = model.to_state_dict(g_params)
  for name, p in module.named_parameters():
    np.testing.assert_allclose(g_sd[name], p.grad.numpy(), **tol, err_msg=name)


@pytest.mark.parametrize("seed", range(8))
def test_round_trip_is_identical(seed):
  config = random_config(seed)
  module = torch_module(config, seed)
  model, params = interop.from_torch(module)
  sd = model.to_state_dict(params)
  original = module.state_dict()
  assert list(sd) == list(original)
  for k, v in original.items():
    assert sd[k].dtype == np.float32
    np.testing.assert_array_equal(sd[k], v.numpy())
  # and it loads into a fresh torch module
  fresh = torch_module(config, seed + 1000)
  fresh.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})


def test_unbatched_input_and_init():
  model = interop.TorchRNN("GRU", 3, 5, num_layers=2, bidirectional=True)
  params = model.init(jax.random.key(0))
  module = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True)
  module.load_state_dict({k: torch.from_numpy(np.asarray(v))
                          for k, v in model.to_state_dict(params).items()})
  x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
  out_t, h_t = module(torch.from_numpy(x))
  out, h = model(params, jnp.asarray(x))
  assert out.shape == (6, 10) and h.shape == (4, 5)
  np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-5)
  np.testing.assert_allclose(h, h_t.detach().numpy(), atol=1e-5)
  bound = 1 / np.sqrt(5)
  assert all(np.abs(leaf).max() <= bound for leaf in jax.tree.leaves(params))
  no_bias = interop.TorchRNN("LSTM", 3, 5, bias=False).init(jax.random.key(0))
  assert no_bias[0].b_i is None and no_bias[0].b_h is None


def test_dropout_between_layers_takes_a_key():
  model = interop.TorchRNN("LSTM", 3, 8, num_layers=2, dropout=0.5)
  params = model.init(jax.random.key(0))
  x = jnp.ones((5, 2, 3))
  eval_out, _ = model(params, x)
  train_out, _ = model(params, x, key=jax.random.key(1))
  assert not np.allclose(eval_out, train_out)
  np.testing.assert_array_equal(eval_out, model(params, x)[0])


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_torch_cells(kind):
  torch.manual_seed(0)
  module = getattr(torch.nn, kind)(4, 6)
  cell, params = interop.from_torch_cell(module)
  x = torch.randn(3, 4)
  h = torch.randn(3, 6)
  if kind == "LSTMCell":
    c = torch.randn(3, 6)
    want = module(x, (h, c))[0]
    carry = jaxrnn.LSTMState(jnp.asarray(h.numpy()), jnp.asarray(c.numpy()))
  else:
    want = module(x, h)
    carry = jaxrnn.RNNState(jnp.asarray(h.numpy()))
  _, y = cell(params, carry, jnp.asarray(x.numpy()))
  np.testing.assert_allclose(y, want.detach().numpy(), atol=1e-5)


# ------------------------------------------------------------ bad state_dicts
def test_state_dict_errors_name_the_key():
  module = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
  sd = module.state_dict()
  model = interop.TorchRNN("LSTM", 3, 4, num_layers=2, bidirectional=True)
  missing = {k: v for k, v in sd.items() if k != "bias_hh_l1"}
  with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l1'\]"):
    model.from_state_dict(missing)
  with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
    model.from_state_dict({**sd, "extra": sd["bias_hh_l1"]})
  bad = {**sd, "weight_ih_l1": torch.zeros(16, 3)}
  with pytest.raises(ValueError, match=r"state_dict\['weight_ih_l1'\]: expected shape \(16, 8\).*\(16, 3\)"):
    model.from_state_dict(bad)
  one_way = interop.TorchRNN("LSTM", 3, 4, num_layers=2)
  with pytest.raises(ValueError, match=r"unexpected keys \['weight_ih_l0_reverse'.*bidirectional"):
    one_way.from_state_dict(sd)
  projected = interop.TorchRNN("LSTM", 3, 4, num_layers=2, bidirectional=True, proj_size=2)
  with pytest.raises(ValueError, match=r"missing keys \['weight_hr_l0'.*proj_size"):
    projected.from_state_dict(sd)
  no_bias = interop.TorchRNN("LSTM", 3, 4, num_layers=2, bidirectional=True, bias=False)
  with pytest.raises(ValueError, match=r"unexpected keys \['bias_ih_l0'.*bias"):
    no_bias.from_state_dict(sd)
  gru = interop.TorchRNN("GRU", 3, 4, num_layers=2, bidirectional=True)
  with pytest.raises(ValueError, match=r"weight_ih_l0'\]: expected shape \(12, 3\).*\(16, 3\)"):
    gru.from_state_dict(sd)


def test_bad_options_and_states():
  with pytest.raises(ValueError, match="mode: expected one of"):
    interop.TorchRNN("LSTMP", 3, 4)
  with pytest.raises(ValueError, match="proj_size: .*got 2 for mode 'GRU'"):
    interop.TorchRNN("GRU", 3, 4, proj_size=2)
  model = interop.TorchRNN("LSTM", 3, 4, num_layers=2)
  params = model.init(jax.random.key(0))
  x = jnp.ones((5, 2, 3))
  with pytest.raises(ValueError, match=r"hx: expected h_0 of shape \(2, 2, 4\).*\(1, 2, 4\)"):
    model(params, x, (jnp.zeros((1, 2, 4)), jnp.zeros((2, 2, 4))))
  with pytest.raises(TypeError, match=r"hx: LSTM expects a pair"):
    model(params, x, jnp.zeros((2, 2, 4)))
  with pytest.raises(TypeError, match="module: expected a torch.nn.RNN, LSTM or GRU, got Linear"):
    interop.from_torch(torch.nn.Linear(2, 3))
  with pytest.raises(TypeError, match="module: expected a torch.nn.RNNCell.*got LSTM"):
    interop.from_torch_cell(torch.nn.LSTM(2, 3))


# ---------------------------------------------------------------------- Flax
@pytest.mark.parametrize("flax_cls", [nn.LSTMCell, nn.OptimizedLSTMCell])
def test_flax_lstm_both_ways(flax_cls):
  module = flax_cls(features=6)
  x = jax.random.normal(jax.random.key(0), (3, 4))
  carry = (jax.random.normal(jax.random.key(1), (3, 6)),
           jax.random.normal(jax.random.key(2), (3, 6)))  # Flax: (c, h)
  variables = module.init(jax.random.key(3), carry, x)
  variables = jax.tree.map(lambda a: a + 0.1, variables)  # nonzero biases
  (c_f, h_f), y_f = module.apply(variables, carry, x)
  cell = jaxrnn.LSTMCell()
  params = interop.from_flax(cell, variables["params"])
  new_carry, y = cell(params, interop.from_flax_carry(carry), x)
  np.testing.assert_allclose(y, y_f, atol=1e-6)
  np.testing.assert_allclose(interop.to_flax_carry(new_carry)[0], c_f, atol=1e-6)
  # export, with an input bias Flax lacks: folded into the recurrent bias
  params = params._replace(b_i=jnp.linspace(-1, 1, 24))
  _, y = cell(params, interop.from_flax_carry(carry), x)
  (_, _), y_f = module.apply({"params": interop.to_flax(cell, params)}, carry, x)
  np.testing.assert_allclose(y, y_f, atol=1e-6)


@pytest.mark.parametrize("module, cell", [(nn.GRUCell(features=5), jaxrnn.GRUCell()),
                                          (nn.MGUCell(features=5), jaxrnn.MGUCell())])
def test_flax_gated_units_both_ways(module, cell):
  x = jax.random.normal(jax.random.key(0), (2, 3))
  h = jax.random.normal(jax.random.key(1), (2, 5))
  variables = jax.tree.map(lambda a: a + 0.2, module.init(jax.random.key(2), h, x))
  h_f, _ = module.apply(variables, h, x)
  params = interop.from_flax(cell, variables["params"])
  (h_j,), _ = cell(params, jaxrnn.RNNState(h), x)
  np.testing.assert_allclose(h_j, h_f, atol=1e-6)
  params = cell.init(jax.random.key(3), 3, 5, initializer="pytorch")  # all biases nonzero
  (h_j,), _ = cell(params, jaxrnn.RNNState(h), x)
  h_f, _ = module.apply({"params": interop.to_flax(cell, params)}, h, x)
  np.testing.assert_allclose(h_j, h_f, atol=1e-6)


def test_flax_and_equinox_refuse_other_mathematics():
  gru_before = jaxrnn.GRUCell(reset_after=False)
  params = gru_before.init(jax.random.key(0), 3, 4)
  with pytest.raises(ValueError, match="reset_after=False.*different function"):
    interop.to_flax(gru_before, params)
  with pytest.raises(ValueError, match="reset_after=False.*different function"):
    interop.to_equinox(gru_before, params)
  relu_gru = jaxrnn.GRUCell(activation="relu")
  with pytest.raises(ValueError, match="Equinox's cells are fixed to tanh and sigmoid.*'relu'"):
    interop.to_equinox(relu_gru, relu_gru.init(jax.random.key(0), 3, 4))
  peephole = jaxrnn.PeepholeLSTMCell()
  with pytest.raises(ValueError, match="Flax linen has no equivalent of PeepholeLSTMCell"):
    interop.to_flax(peephole, peephole.init(jax.random.key(0), 3, 4))
  with pytest.raises(ValueError, match="Flax linen has no equivalent of GRUCell"):
    interop.from_flax(gru_before, {})
  with pytest.raises(ValueError, match=r"flax_params: missing 'ii'/'kernel'"):
    interop.from_flax(jaxrnn.LSTMCell(), {"hi": {}})


# ------------------------------------------------------------------- Equinox
@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_equinox_both_ways(kind, use_bias):
  module = getattr(eqx.nn, kind)(4, 6, use_bias=use_bias, key=jax.random.key(0))
  if use_bias and kind == "GRUCell":
    module = eqx.tree_at(lambda m: m.bias_n, module, module.bias_n + 0.3)
  x = jax.random.normal(jax.random.key(1), (4,))
  h = jax.random.normal(jax.random.key(2), (6,))
  c = jax.random.normal(jax.random.key(3), (6,))
  cell, params = interop.from_equinox(module)
  if kind == "LSTMCell":
    want = module(x, (h, c))[0]
    carry = jaxrnn.LSTMState(h, c)
  else:
    want = module(x, h)
    carry = jaxrnn.RNNState(h)
  _, y = cell(params, carry, x)
  np.testing.assert_allclose(y, want, atol=1e-6)
  # export: jaxrnn params with two biases -> one Equinox module
  if use_bias:
    params = cell.init(jax.random.key(4), 4, 6, initializer="pytorch")
  _, y = cell(params, carry, x)
  exported = interop.to_equinox(cell, params)
  got = exported(x, (h, c))[0] if kind == "LSTMCell" else exported(x, h)
  np.testing.assert_allclose(got, y, atol=1e-6)
