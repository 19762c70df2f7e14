"""Each cell, one step: against NumPy, PyTorch, numerical gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.test_util import check_grads

import jaxrnn
import reference
from cases import CELLS, init_params

# One step of a cell runs on no engine; the sequence tests below take the
# `engine` fixture to run on both.

BATCH_SHAPES = [(), (3,), (2, 3)]


def random_case(cell, seed, batch_shape, dtype=jnp.float64, initializer="pytorch"):
  """Random params (nonzero biases and peepholes), carry and input."""
  rng = np.random.default_rng(seed)
  input_size, hidden_size = int(rng.integers(1, 9)), int(rng.integers(2, 9))
  key = jax.random.key(seed)
  k_p, k_c, k_x = jax.random.split(key, 3)
  params = init_params(cell, k_p, input_size, hidden_size, dtype=dtype,
                     initializer=initializer)
  carry = cell.initial_carry(params, batch_shape)
  carry = type(carry)(*(jax.random.normal(k, c.shape, dtype)
                        for k, c in zip(jax.random.split(k_c, len(carry)), carry)))
  x = jax.random.normal(k_x, (*batch_shape, input_size), dtype)
  return params, carry, x


# Every cell with each batch shape, a different seed for each.
@pytest.mark.parametrize("name, batch_shape, seed",
                         [(name, shape, seed) for name in CELLS
                          for seed, shape in enumerate(BATCH_SHAPES)])
def test_cell_matches_numpy(name, batch_shape, seed):
  cell, ref = CELLS[name]
  params, carry, x = random_case(cell, seed, batch_shape)
  new_carry, y = cell(params, carry, x)
  want_carry, want_y = ref(reference.np_params(params),
                           tuple(np.asarray(c) for c in carry), np.asarray(x))
  np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)
  for got, want in zip(new_carry, want_carry):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
  assert type(new_carry) is type(carry)
  assert y.shape == (*batch_shape, cell.output_size(params))


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_without_biases_matches_numpy(name):
  cell, ref = CELLS[name]
  params, carry, x = random_case(cell, 5, (4,))
  params = params._replace(b_i=None, b_h=None)
  new_carry, y = cell(params, carry, x)
  _, want_y = ref(reference.np_params(params), tuple(map(np.asarray, carry)),
                  np.asarray(x))
  np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_gradients(name):
  cell, _ = CELLS[name]
  params, carry, x = random_case(cell, 3, (2,))
  if name == "rnn_relu":  # keep pre-activations away from the kink at 0
    params = params._replace(b_i=params.b_i + 5.0)
  check_grads(lambda p, c, x: cell(p, c, x), (params, carry, x), order=2,
              modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_under_jit_and_vmap(name):
  cell, _ = CELLS[name]
  params, carry, x = random_case(cell, 4, (5,))
  want_carry, want_y = cell(params, carry, x)
  got_carry, got_y = jax.jit(cell)(params, carry, x)
  np.testing.assert_allclose(got_y, want_y, rtol=1e-12)
  # vmap over the batch axis of an unbatched call gives the batched result
  vmapped = jax.vmap(cell, in_axes=(None, 0, 0))(params, carry, x)
  np.testing.assert_allclose(vmapped[1], want_y, rtol=1e-12)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12),
               vmapped[0], want_carry)


# ---------------------------------------------------------------- PyTorch
def _torch_case(torch_cell_cls, input_size, hidden_size, **kw):
  torch.manual_seed(0)
  module = torch_cell_cls(input_size, hidden_size, **kw)
  sd = {k: v.detach().numpy() for k, v in module.state_dict().items()}
  return module, sd


def _params_from_torch(params_type, sd):
  return params_type(jnp.asarray(sd["weight_ih"].T), jnp.asarray(sd["weight_hh"].T),
                     jnp.asarray(sd["bias_ih"]), jnp.asarray(sd["bias_hh"]))


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_cell_matches_torch(kind):
  I, H, B = 7, 11, 4
  rng = np.random.default_rng(0)
  x = rng.standard_normal((B, I)).astype(np.float32)
  h = rng.standard_normal((B, H)).astype(np.float32)
  c = rng.standard_normal((B, H)).astype(np.float32)
  if kind.startswith("rnn"):
    act = kind.split("_")[1]
    module, sd = _torch_case(torch.nn.RNNCell, I, H, nonlinearity=act)
    cell, params = jaxrnn.SimpleRNNCell(act), _params_from_torch(jaxrnn.SimpleRNNParams, sd)
    want = module(torch.from_numpy(x), torch.from_numpy(h)).detach().numpy()
    (got,), _ = cell(params, jaxrnn.RNNState(jnp.asarray(h)), jnp.asarray(x))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
  elif kind == "lstm":
    module, sd = _torch_case(torch.nn.LSTMCell, I, H)
    cell, params = jaxrnn.LSTMCell(), _params_from_torch(jaxrnn.LSTMParams, sd)
    want_h, want_c = module(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    (got_h, got_c), y = cell(params, jaxrnn.LSTMState(jnp.asarray(h), jnp.asarray(c)),
                             jnp.asarray(x))
    np.testing.assert_allclose(got_h, want_h.detach().numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got_c, want_c.detach().numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(y, got_h)
  else:
    module, sd = _torch_case(torch.nn.GRUCell, I, H)
    cell, params = jaxrnn.GRUCell(), _params_from_torch(jaxrnn.GRUParams, sd)
    want = module(torch.from_numpy(x), torch.from_numpy(h)).detach().numpy()
    (got,), _ = cell(params, jaxrnn.RNNState(jnp.asarray(h)), jnp.asarray(x))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_scan_matches_torch_sequence_module(kind, engine):
  """A whole sequence through torch.nn.RNN/LSTM/GRU (batch_first) vs scan."""
  I, H, B, T = 5, 9, 3, 13
  torch.manual_seed(1)
  if kind.startswith("rnn"):
    act = kind.split("_")[1]
    module = torch.nn.RNN(I, H, nonlinearity=act, batch_first=True)
    cell, params_type = jaxrnn.SimpleRNNCell(act), jaxrnn.SimpleRNNParams
  elif kind == "lstm":
    module, cell, params_type = torch.nn.LSTM(I, H, batch_first=True), jaxrnn.LSTMCell(), jaxrnn.LSTMParams
  else:
    module, cell, params_type = torch.nn.GRU(I, H, batch_first=True), jaxrnn.GRUCell(), jaxrnn.GRUParams
  sd = {k.removesuffix("_l0"): v.detach().numpy() for k, v in module.state_dict().items()}
  params = _params_from_torch(params_type, sd)
  x = np.random.default_rng(1).standard_normal((B, T, I)).astype(np.float32)
  want_y, want_state = module(torch.from_numpy(x))
  carry, ys = jaxrnn.scan(cell, params, jnp.asarray(x))
  np.testing.assert_allclose(ys, want_y.detach().numpy(), atol=1e-5, rtol=1e-5)
  want_h = (want_state[0] if kind == "lstm" else want_state)[0].detach().numpy()
  np.testing.assert_allclose(carry.h, want_h, atol=1e-5, rtol=1e-5)
  if kind == "lstm":
    np.testing.assert_allclose(carry.c, want_state[1][0].detach().numpy(),
                               atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------- init
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
def test_init_dtype_and_carry(name, dtype):
  cell, _ = CELLS[name]
  params = init_params(cell, jax.random.key(0), 3, 6, dtype=dtype)
  assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(params))
  carry = cell.initial_carry(params, (2, 4))
  assert [c.shape for c in carry] == [(2, 4, n) for n in cell.carry_sizes(params)]
  assert all(c.dtype == dtype and not c.any() for c in carry)
  new_carry, y = cell(params, carry, jnp.ones((2, 4, 3), dtype))
  assert y.dtype == dtype
  assert all(c.dtype == dtype for c in new_carry)


@pytest.mark.parametrize("name", list(CELLS))
def test_pytorch_init_bounds(name):
  cell, _ = CELLS[name]
  H = 16
  params = init_params(cell, jax.random.key(1), 5, H, initializer="pytorch")
  bound = 1 / np.sqrt(H)
  for leaf in jax.tree.leaves(params):
    assert np.abs(leaf).max() <= bound
    assert np.abs(leaf).max() > 0.8 * bound  # really spread over the range


@pytest.mark.parametrize("name", list(CELLS))
def test_default_init(name):
  cell, _ = CELLS[name]
  I, H = 64, 8
  params = init_params(cell, jax.random.key(2), I, H)
  w_h = np.asarray(params.w_h, np.float64)
  for k in range(cell.num_gates):  # each gate's recurrent block is orthogonal
    block = w_h[:, k * H:(k + 1) * H]
    if block.shape[0] < H:  # LSTMP: (proj, hidden), orthonormal rows
      block = block.T
    np.testing.assert_allclose(block.T @ block, np.eye(block.shape[1]), atol=1e-5)
  std = np.asarray(params.w_i).std()
  assert 0.7 / np.sqrt(I) < std < 1.3 / np.sqrt(I)  # LeCun normal
  assert not np.asarray(params.b_h).any()


@pytest.mark.parametrize("cell,forget_block", [
    (jaxrnn.LSTMCell(), 1), (jaxrnn.PeepholeLSTMCell(), 1), (jaxrnn.CIFGLSTMCell(), 0),
    (jaxrnn.ProjectedLSTMCell(), 1)])
def test_forget_bias(cell, forget_block):
  H = 4
  b = np.asarray(init_params(cell, jax.random.key(0), 3, H).b_i).reshape(-1, H)
  assert (b[forget_block] == 1.0).all()
  assert not np.delete(b, forget_block, axis=0).any()
  b = np.asarray(init_params(cell, jax.random.key(0), 3, H, forget_bias=2.5).b_i).reshape(-1, H)
  assert (b[forget_block] == 2.5).all()
  # PyTorch's scheme adds nothing by default: same draw as forget_bias=0
  torch_like = init_params(cell, jax.random.key(0), 3, H, initializer="pytorch")
  shifted = init_params(cell, jax.random.key(0), 3, H, initializer="pytorch", forget_bias=1.0)
  np.testing.assert_allclose(
      np.asarray(shifted.b_i - torch_like.b_i).reshape(-1, H)[forget_block], 1.0,
      rtol=1e-6)


@pytest.mark.parametrize("cell,forget,input_gate", [
    (jaxrnn.LSTMCell(), 1, 0), (jaxrnn.PeepholeLSTMCell(), 1, 0),
    (jaxrnn.CIFGLSTMCell(), 0, None), (jaxrnn.ProjectedLSTMCell(), 1, 0),
    (jaxrnn.LayerNormLSTMCell(), 1, 0), (jaxrnn.ConvLSTMCell((3,)), 1, 0)])
def test_chrono_init(cell, forget, input_gate):
  """Tallec & Ollivier (2018), eq. 16: b_f ~ log U(1, T_max - 1), b_i = -b_f,
  as the gates' whole bias; every other parameter as the default draw."""
  from scipy import stats
  H, T = 512, 1000

  def total_bias(params):
    b = params.b if hasattr(params, "b") else params.b_i + params.b_h
    return np.asarray(b, np.float64).reshape(-1, H)

  params = init_params(cell, jax.random.key(0), 3, H, chrono=T)
  b = total_bias(params)
  assert (b[forget] >= 0).all() and (b[forget] <= np.log(T - 1) + 1e-6).all()
  assert stats.kstest(np.exp(b[forget]), stats.uniform(1, T - 2).cdf).pvalue > 1e-3
  if input_gate is not None:
    np.testing.assert_array_equal(b[input_gate], -b[forget])
  plain = init_params(cell, jax.random.key(0), 3, H, forget_bias=0.0)
  gates = [g for g in (forget, input_gate) if g is not None]
  np.testing.assert_array_equal(np.delete(b, gates, axis=0),
                                np.delete(total_bias(plain), gates, axis=0))
  for name, leaf in params._asdict().items():
    if name not in ("b", "b_i", "b_h"):
      np.testing.assert_array_equal(leaf, getattr(plain, name), err_msg=name)
  with pytest.raises(ValueError, match="forget_bias, chrono: expected at most one"):
    init_params(cell, jax.random.key(0), 3, H, chrono=T, forget_bias=1.0)
  with pytest.raises(ValueError, match="chrono: expected the longest dependency"):
    init_params(cell, jax.random.key(0), 3, H, chrono=2)


def test_linear_readout():
  readout = jaxrnn.Linear()
  params = readout.init(jax.random.key(0), 6, 3, dtype=jnp.float64)
  h = jax.random.normal(jax.random.key(1), (2, 5, 6), jnp.float64)
  want = np.asarray(h) @ np.asarray(params.w) + np.asarray(params.b)
  np.testing.assert_allclose(readout(params, h), want, rtol=1e-12)
  no_bias = readout.init(jax.random.key(0), 6, 3, use_bias=False)
  assert no_bias.b is None
  torch_like = readout.init(jax.random.key(0), 16, 3, initializer="pytorch")
  assert np.abs(torch_like.w).max() <= 0.25 and np.abs(torch_like.b).max() <= 0.25


def test_bfloat16_close_to_float32():
  cell = jaxrnn.LSTMCell()
  p32 = init_params(cell, jax.random.key(0), 8, 16)
  x = jax.random.normal(jax.random.key(1), (4, 10, 8))
  _, y32 = jaxrnn.scan(cell, p32, x)
  p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), p32)
  _, y16 = jaxrnn.scan(cell, p16, x.astype(jnp.bfloat16))
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=5e-2)
