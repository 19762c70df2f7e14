"""The blocks and the sequence model: their parts against NumPy written from
the papers' equations, every block's sequence form against a Python loop of
its own step (masks, lengths, resets, a reset target, a stored carry), in
float64, with gradients, and the users' paths (a subclass, vmap, one-step
calls in a jitted loop, the Flax modules, errors)."""

import dataclasses

import jax
from jax.test_util import check_grads
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxrnn
from jaxrnn import blocks
from jaxrnn import linen as jlinen
from jaxrnn import nnx as jnnx

D = 8
BLOCKS = {
    "prenorm_lstm_conv": blocks.PreNormBlock(jaxrnn.LSTMCell(), conv_size=3),
    "prenorm_gru": blocks.PreNormBlock(jaxrnn.GRUCell(), mlp=None, hidden_size=6),
    "prenorm_min_gru": blocks.PreNormBlock(jaxrnn.MinGRUCell(), norm="layer", mlp="gelu"),
    "prenorm_gla": blocks.PreNormBlock(jaxrnn.GLACell(num_heads=2, chunk_size=4),
                                       mlp="swiglu", expansion=2.0),
    "griffin": blocks.GriffinBlock(),
    "griffin_heads": blocks.GriffinBlock(rnn_expansion=1.5, cell=jaxrnn.RGLRUCell(num_heads=3)),
    "mamba": blocks.MambaBlock(cell=jaxrnn.SelectiveSSMCell(state_size=4)),
    "slstm": blocks.SLSTMBlock(cell=jaxrnn.SLSTMCell(num_heads=2)),
    "mlstm": blocks.MLSTMBlock(cell=jaxrnn.MLSTMCell(num_heads=2, chunk_size=4)),
}


def random_carry(block, params, batch, rng):
  """A non-zero stored carry (the mLSTM's stabiliser ``m`` kept at 0)."""
  carry = block.initial_carry(params, batch, jnp.float64)
  carry = jax.tree.map(lambda a: jnp.asarray(0.3 * rng.normal(size=a.shape)), carry)
  if hasattr(carry.cell, "m"):
    carry = carry._replace(cell=carry.cell._replace(m=jnp.zeros_like(carry.cell.m)))
  return carry


def where_rows(flag, a, b):
  return jax.tree.map(
      lambda x, y: jnp.where(flag.reshape(flag.shape + (1,) * (y.ndim - flag.ndim)), x, y),
      a, b)


def step_loop(layer, params, xs, carry, mask, resets, reset_carry):
  """The reference: the layer's own one-step call in a loop (``lax.scan``,
  one call per step), with the rules of masks and resets, batch-major."""
  axis = mask.ndim - 1  # the time axis of xs (tokens have no feature axis)
  resets = jnp.zeros_like(mask) if resets is None else resets
  reset_carry = carry if reset_carry is None else reset_carry

  def body(carry, inputs):
    x, valid, reset = inputs
    target = jax.tree.map(lambda r, a: jnp.broadcast_to(r, a.shape), reset_carry, carry)
    carry = where_rows(reset, target, carry)
    new, y = layer(params, carry, x)
    return where_rows(valid, new, carry), jnp.where(valid[..., None], y, 0)

  carry, ys = jax.lax.scan(body, carry, (jnp.moveaxis(xs, axis, 0),
                                         jnp.moveaxis(mask, -1, 0),
                                         jnp.moveaxis(resets, -1, 0)))
  return carry, jnp.moveaxis(ys, 0, -2)


def max_error(a, b):
  return max(float(jnp.max(jnp.abs(x - y))) for x, y in
             zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# ----------------------------------------------------------------- parts
def test_norms_match_numpy():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 4, 12))
  for kind, heads, bias in (("rms", 1, True), ("layer", 1, True), ("layer", 3, False)):
    norm = blocks.Norm(kind, eps=1e-5, heads=heads, bias=bias)
    params = norm.init(12, jnp.float64)
    params = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)), params)
    z = x.reshape(3, 4, heads, 12 // heads)
    if kind == "layer":
      z = z - z.mean(-1, keepdims=True)
    want = (z / np.sqrt((z ** 2).mean(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    want = want * np.asarray(params.scale)
    if params.bias is not None:
      want = want + np.asarray(params.bias)
    np.testing.assert_allclose(norm(params, jnp.asarray(x)), want, rtol=1e-12, atol=1e-12)


def test_mlp_matches_numpy():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(5, 6))
  gelu = lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v ** 3)))
  silu = lambda v: v / (1 + np.exp(-v))
  for kind in ("gelu", "geglu", "swiglu"):
    mlp = blocks.MLP(kind, expansion=1.5)
    p = mlp.init(jax.random.key(0), 6, jnp.float64)
    h = x @ np.asarray(p.up.w) + np.asarray(p.up.b)
    if kind == "gelu":
      h = gelu(h)
    else:
      g, u = np.split(h, 2, axis=-1)
      h = (gelu(g) if kind == "geglu" else silu(g)) * u
    want = h @ np.asarray(p.down.w) + np.asarray(p.down.b)
    np.testing.assert_allclose(mlp(p, jnp.asarray(x)), want, rtol=1e-12, atol=1e-12)


def numpy_conv(w, b, buffer, xs, valid, resets, reset_buffer):
  """Row by row: the inputs of the valid steps of each segment, after the
  segment's starting buffer, convolved (no shift register)."""
  T, B, C = xs.shape
  k1 = w.shape[0] - 1
  ys, finals = np.zeros_like(xs), np.zeros((B, k1, C))
  for r in range(B):
    history = list(buffer[r])
    for t in range(T):
      if resets[t, r]:
        history = list(reset_buffer[r])
      if valid[t, r]:
        history.append(xs[t, r])
        window = np.stack(history[-(k1 + 1):])
        ys[t, r] = (window * w).sum(0) + b
    finals[r] = np.stack(history[-k1:])
  return finals, ys


@pytest.mark.parametrize("kernel_size", [2, 4])
def test_causal_conv_matches_numpy(kernel_size):
  rng = np.random.default_rng(kernel_size)
  T, B, C = 12, 4, 3
  conv = blocks.CausalConv(kernel_size)
  p = conv.init(jax.random.key(0), C, jnp.float64)
  xs = rng.normal(size=(T, B, C))
  buffer, target = rng.normal(size=(2, B, kernel_size - 1, C))
  valid = rng.random((T, B)) > 0.3
  resets = rng.random((T, B)) > 0.75
  resets[-1, 0] = True  # a reset after the last valid step sets the final buffer
  valid[-1, 0] = False
  want_final, want = numpy_conv(np.asarray(p.w), np.asarray(p.b), buffer, xs, valid,
                                resets, target)
  final, ys = conv.sequence(p, xs, buffer, valid, resets, target)
  np.testing.assert_allclose(ys, want, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(final, want_final, rtol=1e-12, atol=1e-12)
  none = np.zeros_like(resets)
  want_final, want = numpy_conv(np.asarray(p.w), np.asarray(p.b), buffer, xs,
                                np.ones_like(valid), none, target)
  final, ys = conv.sequence(p, xs, buffer)
  np.testing.assert_allclose(ys, want, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(final, want_final, rtol=1e-12, atol=1e-12)


def test_causal_conv_gradients():
  rng = np.random.default_rng(3)
  conv = blocks.CausalConv(3)
  p = conv.init(jax.random.key(0), 2, jnp.float64)
  xs, buffer = rng.normal(size=(7, 2, 2)), rng.normal(size=(2, 2, 2))
  valid, resets = rng.random((7, 2)) > 0.3, rng.random((7, 2)) > 0.7
  f = lambda p, xs, buffer: conv.sequence(p, xs, buffer, valid, resets)
  check_grads(f, (p, xs, buffer), order=1, modes=["rev"])


# ----------------------------------------------------------- step == sequence
@pytest.mark.parametrize("name", list(BLOCKS))
def test_sequence_equals_step_loop(name):
  """Masks with holes, resets (one after the last valid step), a per-row
  reset target, a stored carry, batch (2, 2): outputs, final carries and the
  gradients with respect to params, inputs and both carries."""
  block, rng = BLOCKS[name], np.random.default_rng(0)
  params = block.init(jax.random.key(1), D, dtype=jnp.float64)
  batch, T = (2, 2), 9
  xs = jnp.asarray(rng.normal(size=(*batch, T, D)))
  carry, target = (random_carry(block, params, batch, rng) for _ in range(2))
  mask = rng.random((*batch, T)) > 0.25
  resets = rng.random((*batch, T)) > 0.8
  mask[0, 0, -1], resets[0, 0, -1] = False, True
  mask, resets = jnp.asarray(mask), jnp.asarray(resets)

  def sequence(params, xs, carry, target):
    return jaxrnn.scan(block, params, xs, initial_carry=carry, mask=mask,
                       resets=resets, reset_carry=target)

  def loop(params, xs, carry, target):
    return step_loop(block, params, xs, carry, mask, resets, target)

  args = (params, xs, carry, target)
  assert max_error(sequence(*args), jax.jit(loop)(*args)) < 1e-10
  loss = lambda f: lambda *a: sum(jnp.sum(jnp.sin(v)) for v in jax.tree.leaves(f(*a)))
  grad = lambda f: jax.jit(jax.grad(loss(f), argnums=(0, 1, 2, 3)))
  assert max_error(grad(sequence)(*args), grad(loop)(*args)) < 1e-9


@pytest.mark.parametrize("name", ["mamba"])
def test_numerical_gradients(name):
  block = BLOCKS[name]
  params = block.init(jax.random.key(2), 4, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(3), (2, 5, 4), jnp.float64)
  lengths = jnp.array([5, 3])
  f = lambda params, xs: jaxrnn.scan(block, params, xs, seq_lengths=lengths)[1]
  check_grads(f, (params, xs), order=1, modes=["rev"], atol=1e-5,
                            rtol=1e-5)


def test_lengths_and_no_batch():
  block = BLOCKS["griffin"]
  params = block.init(jax.random.key(0), D, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (3, 7, D), jnp.float64)
  lengths = jnp.array([7, 4, 0])
  carry, ys = jaxrnn.scan(block, params, xs, seq_lengths=lengths)
  for r, n in enumerate(lengths):  # each row alone, batch (), its own length
    c, y = jaxrnn.scan(block, params, xs[r, :int(n)]) if n else (
        block.initial_carry(params, (), jnp.float64), jnp.zeros((0, D)))
    assert max_error(jax.tree.map(lambda a: a[r], carry), c) < 1e-12
    np.testing.assert_allclose(ys[r, :int(n)], y, atol=1e-12)
    assert not np.any(np.asarray(ys[r, int(n):]))


def test_time_major_and_reset_target_without_batch():
  block = BLOCKS["mamba"]
  params = block.init(jax.random.key(0), D, dtype=jnp.float64)
  rng = np.random.default_rng(5)
  xs = jnp.asarray(rng.normal(size=(2, 6, D)))
  target = random_carry(block, params, (), rng)  # one carry for every row
  resets = jnp.asarray(rng.random((2, 6)) > 0.6)
  c1, y1 = jaxrnn.scan(block, params, xs, resets=resets, reset_carry=target)
  c2, y2 = jaxrnn.scan(block, params, jnp.swapaxes(xs, 0, 1), resets=resets.T,
                       reset_carry=target, time_major=True)
  assert max_error(c1, c2) < 1e-12
  np.testing.assert_allclose(y1, jnp.swapaxes(y2, 0, 1), atol=1e-12)
  batched = jax.tree.map(lambda a: jnp.broadcast_to(a, (2, *a.shape)), target)
  want = step_loop(block, params, xs, block.initial_carry(params, (2,), jnp.float64),
                   jnp.ones((2, 6), bool), resets, batched)
  assert max_error((c1, y1), want) < 1e-10


# ------------------------------------------------------------------ model
@pytest.mark.parametrize("tokens", [True, False])
def test_model_sequence_equals_step_loop(tokens):
  mix = (blocks.GriffinBlock(), blocks.MLSTMBlock(cell=jaxrnn.MLSTMCell(num_heads=2)))
  kwargs = dict(vocab_size=11) if tokens else dict(input_size=3)
  model = blocks.SequenceModel(mix, d_model=D, num_outputs=5, **kwargs)
  params = model.init(jax.random.key(0), dtype=jnp.float64)
  rng = np.random.default_rng(7)
  xs = (jnp.asarray(rng.integers(0, 11, (2, 8)), jnp.int32) if tokens
        else jnp.asarray(rng.normal(size=(2, 8, 3))))
  mask = jnp.asarray(rng.random((2, 8)) > 0.2)
  resets = jnp.asarray(rng.random((2, 8)) > 0.8)
  carry = model.initial_carry(params, (2,), jnp.float64)
  got = jaxrnn.scan(model, params, xs, mask=mask, resets=resets)
  want = step_loop(model, params, xs, carry, mask, resets, carry)
  assert got[1].shape == (2, 8, 5)
  assert max_error(got, want) < 1e-10


def test_one_step_calls_in_a_jitted_loop_and_vmap():
  """A rollout: the model's step inside ``lax.scan`` under ``jit`` (as an RL
  agent acts) equals the sequence form; ``vmap`` over a batch axis equals
  the batched call."""
  model = blocks.SequenceModel((blocks.SLSTMBlock(),) * 2, d_model=D, num_outputs=2,
                               input_size=3)
  params = model.init(jax.random.key(0))
  xs = jax.random.normal(jax.random.key(1), (4, 10, 3))

  @jax.jit
  def rollout(params, xs):
    carry = model.initial_carry(params, (4,))
    return jax.lax.scan(lambda c, x: model(params, c, x), carry, jnp.swapaxes(xs, 0, 1))

  carry, ys = rollout(params, xs)
  want = jaxrnn.scan(model, params, xs)
  assert max_error((carry, jnp.swapaxes(ys, 0, 1)), want) < 1e-5
  mapped = jax.vmap(lambda x: jaxrnn.scan(model, params, x))(xs)
  assert max_error(mapped, want) < 1e-5


def test_subclassed_block_and_cell():
  """A user's subclass of a block (its own body) and a user's cell inside a
  block (its own pointwise step) run their overrides in both forms."""

  @dataclasses.dataclass(frozen=True)
  class Scaled(blocks.PreNormBlock):
    def body(self, params, x, ops):
      return 0.5 * super().body(params, x, ops)

  @dataclasses.dataclass(frozen=True)
  class LeakyLSTM(jaxrnn.LSTMCell):
    def pointwise(self, params, carry, z):
      carry, y = super().pointwise(params, carry, z)
      return carry._replace(c=0.9 * carry.c), y

  plain = blocks.PreNormBlock(jaxrnn.LSTMCell(), conv_size=2)
  for block in (Scaled(jaxrnn.LSTMCell(), conv_size=2), blocks.PreNormBlock(LeakyLSTM(),
                                                                           conv_size=2)):
    params = block.init(jax.random.key(0), D, dtype=jnp.float64)
    xs = jax.random.normal(jax.random.key(1), (2, 6, D), jnp.float64)
    ones = jnp.ones((2, 6), bool)
    got = jaxrnn.scan(block, params, xs)
    want = step_loop(block, params, xs, block.initial_carry(params, (2,), jnp.float64),
                     ones, None, None)
    assert max_error(got, want) < 1e-10
    assert max_error(got, jaxrnn.scan(plain, params, xs)) > 1e-3  # the override acts


def test_xlstm_blocks_start_as_the_paper():
  """At init the sLSTM's i and f gates read only the convolved input and z,
  o only the plain one; the mLSTM's q, k only the convolved, v the plain."""
  p = blocks.SLSTMBlock().init(jax.random.key(0), D)
  w = p.cell.w_i
  assert not np.any(w[D:, :2 * D]) and not np.any(w[:D, 2 * D:])
  assert np.all(np.abs(w[:D, :2 * D]).sum(0) > 0) and np.all(np.abs(w[D:, 2 * D:]).sum(0) > 0)
  p = blocks.MLSTMBlock().init(jax.random.key(0), D)
  n = 2 * D
  assert not np.any(p.cell.w_q[n:]) and not np.any(p.cell.w_k[n:])
  assert not np.any(p.cell.w_v[:n]) and np.any(p.cell.w_v[n:])


# ------------------------------------------------------------------- flax
def test_flax_modules():
  block = BLOCKS["mlstm"]
  xs = jax.random.normal(jax.random.key(0), (2, 6, D))
  module = jlinen.Block(block, d_model=D)
  variables = module.init(jax.random.key(1), xs)
  params = jlinen.to_functional(variables)
  carry, ys = module.apply(variables, xs, mask=jnp.ones((2, 6), bool))
  want = jaxrnn.scan(block, params, xs)
  assert max_error((carry, ys), want) < 1e-6
  c0 = module.apply(variables, (2,), method="initialize_carry")
  _, y0 = module.apply(variables, c0, xs[:, 0], method="step")
  np.testing.assert_allclose(y0, ys[:, 0], atol=1e-5)

  nnx_module = jnnx.Block(block, D, rngs=nnx.Rngs(0))
  jnnx.load_functional(nnx_module, params)
  assert max_error(nnx_module(xs), want) < 1e-6
  assert max_error(jnnx.to_functional(nnx_module), params) == 0
  _, y0 = nnx_module.step(nnx_module.initialize_carry((2,)), xs[:, 0])
  np.testing.assert_allclose(y0, ys[:, 0], atol=1e-5)
  model = blocks.SequenceModel((block,), d_model=D, num_outputs=3, vocab_size=7)
  tokens = jnp.zeros((2, 5), jnp.int32)
  variables = jlinen.Block(model).init(jax.random.key(0), tokens)
  assert jlinen.Block(model).apply(variables, tokens)[1].shape == (2, 5, 3)


# ----------------------------------------------------------------- errors
def test_errors_name_the_argument():
  block = blocks.GriffinBlock()
  params = block.init(jax.random.key(0), D)
  xs = jnp.zeros((2, 5, D))
  with pytest.raises(ValueError, match=r"xs: expected last dimension d_model=8"):
    jaxrnn.scan(block, params, jnp.zeros((2, 5, 3)))
  with pytest.raises(TypeError, match=r"initial_carry: GriffinBlock expects BlockState"):
    jaxrnn.scan(block, params, xs, initial_carry=(1, 2))
  carry = block.initial_carry(params, (3,))
  with pytest.raises(ValueError, match=r"initial_carry.conv: expected shape \(2, 3, 11\)"):
    jaxrnn.scan(block, params, xs, initial_carry=carry._replace(
        cell=block.initial_carry(params, (2,)).cell))
  with pytest.raises(ValueError, match=r"initial_carry.cell.h: expected shape"):
    jaxrnn.scan(block, params, xs, initial_carry=carry)
  with pytest.raises(ValueError, match="reverse: applies to a cell"):
    jaxrnn.scan(block, params, xs, reverse=True)
  with pytest.raises(ValueError, match="dropout: GriffinBlock takes no"):
    jaxrnn.scan(block, params, xs, dropout=jaxrnn.RecurrentDropout(input=0.1),
                key=jax.random.key(0))
  with pytest.raises(TypeError, match=r"params: PreNormBlock expects PreNormParams"):
    jaxrnn.scan(blocks.PreNormBlock(jaxrnn.GRUCell()), params, xs)
  with pytest.raises(ValueError, match="conv_size: expected 0"):
    blocks.PreNormBlock(jaxrnn.GRUCell(), conv_size=1)
  with pytest.raises(ValueError, match="mlp: expected one of"):
    blocks.PreNormBlock(jaxrnn.GRUCell(), mlp="relu")
  with pytest.raises(TypeError, match="cell: expected a jaxrnn.RGLRUCell"):
    blocks.GriffinBlock(cell=jaxrnn.GRUCell())
  with pytest.raises(ValueError, match="vocab_size, input_size: expected exactly one"):
    blocks.SequenceModel((block,), d_model=D, num_outputs=2)
  model = blocks.SequenceModel((block,), d_model=D, num_outputs=2, vocab_size=5)
  mp = model.init(jax.random.key(0))
  with pytest.raises(TypeError, match="xs: expected integer tokens"):
    jaxrnn.scan(model, mp, xs)
  with pytest.raises(TypeError, match="which_engine answers for a cell"):
    jaxrnn.which_engine(block, params, xs)


def test_cell_init_reaches_the_cell():
  """``cell_init`` is passed to the cell's init: the block's cell params are
  the cell's own init with the same options, drawn with the block's key."""
  block = blocks.PreNormBlock(jaxrnn.LSTMCell(), cell_init={"chrono": 100})
  assert hash(block) == hash(blocks.PreNormBlock(jaxrnn.LSTMCell(), cell_init={"chrono": 100}))
  params = block.init(jax.random.key(3), D)
  k_cell = jax.random.split(jax.random.key(3), 4)[1]
  want = jaxrnn.LSTMCell().init(k_cell, D, D, chrono=100)
  jax.tree.map(np.testing.assert_array_equal, params.cell, want)
  default = blocks.PreNormBlock(jaxrnn.LSTMCell()).init(jax.random.key(3), D)
  assert not np.array_equal(default.cell.b_i, params.cell.b_i)
  with pytest.raises(ValueError, match=r"cell_init: expected keywords of GRUCell.init "
                                       r"\(initializer\), got 'chrono'"):
    blocks.PreNormBlock(jaxrnn.GRUCell(), cell_init={"chrono": 100})
  with pytest.raises(ValueError, match="cell_init: .* got 'dtype'"):
    blocks.PreNormBlock(jaxrnn.GRUCell(), cell_init={"dtype": jnp.float64})
  with pytest.raises(TypeError, match="cell_init: expected a dict"):
    blocks.PreNormBlock(jaxrnn.GRUCell(), cell_init=3)


def test_misuse_is_refused():
  """What the review found a user could trip on: a block in Bidirectional,
  params of another configuration, tokens out of range, bf16 step against
  sequence."""
  block = blocks.MambaBlock(expand=1)
  with pytest.raises(TypeError, match="forward: expected a jaxrnn cell"):
    jaxrnn.Bidirectional(block)
  with_mlp = blocks.PreNormBlock(jaxrnn.GRUCell()).init(jax.random.key(0), D)
  with pytest.raises(ValueError, match=r"params.mlp_norm: expected None \(mlp=None\)"):
    jaxrnn.scan(blocks.PreNormBlock(jaxrnn.GRUCell(), mlp=None), with_mlp, jnp.zeros((2, D)))
  model = blocks.SequenceModel((block,), d_model=D, num_outputs=2, vocab_size=5)
  params = model.init(jax.random.key(0))
  with pytest.raises(ValueError, match=r"xs: expected tokens in \[0, vocab_size=5\), got min 0 "
                                       r"and max 5"):
    jaxrnn.scan(model, params, jnp.array([[0, 5]]))
  assert jaxrnn.blocks is blocks
  # bf16 inputs with float32 params: the carry stays float32, step == sequence.
  params = block.init(jax.random.key(1), D)
  xs = jax.random.normal(jax.random.key(2), (2, 4, D)).astype(jnp.bfloat16)
  carry, ys = jaxrnn.scan(block, params, xs)
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(carry))
  loop = step_loop(block, params, xs, block.initial_carry(params, (2,)),
                   jnp.ones((2, 4), bool), None, None)
  assert max_error((carry, ys.astype(jnp.float32)), (loop[0], loop[1].astype(jnp.float32))) < 0.05
