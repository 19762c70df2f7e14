"""Episode resets: a sequence with resets equals its segments run separately
(each as its own row of a batch, no resets), outputs, final carries and
gradients, for every cell, forward and reversed, on every engine.

The call starts from a stored, non-zero carry (as an RL rollout or replay
does): the segment the scan begins in runs from it, every segment that
begins at a reset runs from the reset target (``reset_carry``, zeros when
not given)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from cases import CELLS, init_params

ALL_CELLS = {name: cell for name, (cell, _) in CELLS.items()}
ALL_CELLS.update({
    "mgu": jaxrnn.MGUCell(),
    "min_gru": jaxrnn.MinGRUCell(),
    "min_gru_log": jaxrnn.MinGRUCell(log_space=True, method="associative"),
    "min_lstm": jaxrnn.MinLSTMCell(method="associative"),
    "lru": jaxrnn.LRUCell(r_min=0.5, r_max=0.99),
    "rg_lru": jaxrnn.RGLRUCell(),
    "slstm": jaxrnn.SLSTMCell(num_heads=2),
    "conv_lstm": jaxrnn.ConvLSTMCell(kernel_size=(3,)),  # over a 1-D signal of 5
    "ln_lstm": jaxrnn.LayerNormLSTMCell(),
    "ln_gru": jaxrnn.LayerNormGRUCell(),
})

B, T, H = 2, 9, 4
# Resets at steps 0 and 3 in row 0, at 1, 2 and 6 in row 1 (a one-step
# segment); the mask has invalid steps inside segments and on a reset step.
RESETS = np.zeros((B, T), bool)
RESETS[0, [0, 3]] = RESETS[1, [1, 2, 6]] = True
MASK = np.ones((B, T), bool)
MASK[0, [4, 8]] = MASK[1, [2, 7]] = False


def segments():
  """``(row, start, end)`` of every segment."""
  out = []
  for b in range(B):
    starts = sorted({0, *np.flatnonzero(RESETS[b])})
    out += [(b, s, e) for s, e in zip(starts, starts[1:] + [T])]
  return out


def starts_from_initial(b, s, e, reverse):
  """Whether segment ``[s, e)`` of row ``b`` runs from the call's initial
  carry: the one the scan begins in, unless a reset opens it."""
  return e == T if reverse else (s == 0 and not RESETS[b, 0])


def separate_runs(cell, params, xs, carry, reset_to, reverse):
  """Each segment as its own row, padded with invalid steps, from the row's
  initial carry or from the reset target (zeros when ``None``); outputs put
  back in place. No resets involved."""
  segs = segments()
  rows = np.array([b for b, _, _ in segs])
  seg_xs = jnp.zeros((len(segs), T) + xs.shape[2:], xs.dtype)
  seg_mask = np.zeros((len(segs), T), bool)
  where_k, where_t = np.zeros((B, T), int), np.zeros((B, T), int)
  for k, (b, s, e) in enumerate(segs):
    seg_xs = seg_xs.at[k, :e - s].set(xs[b, s:e])
    seg_mask[k, :e - s] = MASK[b, s:e]
    where_k[b, s:e], where_t[b, s:e] = k, np.arange(e - s)
  if reset_to is None:
    reset_to = jax.tree.map(jnp.zeros_like, carry)
  initial = np.array([starts_from_initial(b, s, e, reverse) for b, s, e in segs])
  seg_carry = jax.tree.map(
      lambda c, r: jnp.where(initial.reshape((-1,) + (1,) * (c.ndim - 1)), c[rows], r[rows]),
      carry, reset_to)
  finals, ys = jaxrnn.scan(cell, params, seg_xs, initial_carry=seg_carry,
                           mask=seg_mask, reverse=reverse, impl="autodiff")
  # the final carry: the last segment's forward, the first one's reversed
  pick = [max(k for k, s in enumerate(segs) if s[0] == b) if not reverse
          else min(k for k, s in enumerate(segs) if s[0] == b) for b in range(B)]
  return jax.tree.map(lambda c: c[np.array(pick)], finals), ys[where_k, where_t]


def one_run(cell, impl, remat):
  def run(params, xs, carry, reset_to, reverse):
    return jaxrnn.scan(cell, params, xs, initial_carry=carry, mask=MASK,
                       resets=RESETS, reset_carry=reset_to, reverse=reverse,
                       impl=impl, remat=remat)
  return run


def with_grads(run, grads):
  """Outputs and final carries, and (if ``grads``) the gradients of a loss on
  both w.r.t. params, inputs, initial carry and reset target, both
  directions in one compiled call."""
  def both(p, x, c, r):
    return tuple(run(p, x, c, r, reverse) for reverse in (False, True))

  def loss(p, x, c, r):
    return sum(jnp.sum(jnp.sin(3 * ys)) + sum(jnp.sum(l ** 2) for l in jax.tree.leaves(carry))
               for carry, ys in both(p, x, c, r))
  if not grads:
    return jax.jit(both)
  return jax.jit(lambda p, x, c, r: (both(p, x, c, r),
                                     jax.grad(loss, argnums=(0, 1, 2, 3))(p, x, c, r)))


def case(cell):
  k_p, k_x, k_c = jax.random.split(jax.random.key(1), 3)
  params = init_params(cell, k_p, H, H, dtype=jnp.float64)
  spatial = (5,) * (cell.feature_axes() - 1)
  xs = jax.random.normal(k_x, (B, T, *spatial, H), jnp.float64)
  carry = cell.initial_carry(params, (B, *spatial))
  # positive: the log-space minGRU needs a non-negative carry
  keys = jax.random.split(k_c, len(carry))
  carry = type(carry)(*(jnp.abs(jax.random.normal(k, c.shape, c.dtype))
                        for k, c in zip(keys, carry)))
  return params, xs, carry


def reset_target(cell, carry):
  """A non-zero reset target, different from the initial carry (positive,
  for the log-space minGRU)."""
  keys = jax.random.split(jax.random.key(7), len(carry))
  return type(carry)(*(0.5 + jnp.abs(jax.random.normal(k, c.shape, c.dtype))
                       for k, c in zip(keys, carry)))


# impl, remat and the reset target (given, or zeros) alternate over the
# cells, so each meets every cell family.
CONFIGS = [(name, ("auto", "autodiff")[i % 2], bool(i // 2 % 2), i % 3 == 0)
           for i, name in enumerate(ALL_CELLS)]


@pytest.mark.parametrize("name, impl, remat, given", CONFIGS)
def test_resets_equal_separate_runs(name, impl, remat, given):
  cell = ALL_CELLS[name]
  params, xs, carry = case(cell)
  target = reset_target(cell, carry) if given else None
  # Gradients where the engine has a backward of its own to get right (the
  # fused one; the linear solve's where-terms), and on two autodiff cells;
  # elsewhere JAX differentiates the forward checked here.
  engine = jaxrnn.which_engine(cell, params, xs, impl=impl, resets=RESETS)[0]
  grads = engine in ("xla", "linear") or name in ("gru_before", "conv_lstm")
  got = with_grads(one_run(cell, impl, remat), grads)(params, xs, carry, target)
  want = with_grads(lambda p, x, c, t, r: separate_runs(cell, p, x, c, t, r), grads)(
      params, xs, carry, target)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10),
               got, want)


def test_engines_with_resets():
  """The native kernels have no resets: "auto" runs XLA's fused engine and
  says why; "native" is refused."""
  cell = jaxrnn.LSTMCell()
  params, xs, _ = case(cell)
  engine, why = jaxrnn.which_engine(cell, params, xs, resets=RESETS)
  assert engine == "xla" and "no resets" in why
  with pytest.raises(ValueError, match="no resets"):
    jaxrnn.scan(cell, params, xs, resets=RESETS, impl="native")


@pytest.mark.parametrize("bad, error, match", [
    (RESETS.astype(int), TypeError, "resets: expected a boolean"),
    (RESETS[:, :-1], ValueError, r"resets: expected shape \(2, 9\)"),
])
def test_bad_resets(bad, error, match):
  cell = jaxrnn.GRUCell()
  params, xs, _ = case(cell)
  with pytest.raises(error, match=match):
    jaxrnn.scan(cell, params, xs, resets=bad)


def test_bidirectional_and_stacked_reset_every_layer():
  """A bidirectional layer stacked on an LSTM: each segment as a separate
  run (the backward direction from the segment's own end)."""
  stack = jaxrnn.Stacked((jaxrnn.LSTMCell(), jaxrnn.Bidirectional(jaxrnn.GRUCell())))
  params = stack.init(jax.random.key(2), H, H, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(3), (B, T, H), jnp.float64)
  _, got = stack(params, xs, mask=MASK, resets=RESETS)
  for b, s, e in segments():
    _, want = stack(params, xs[b, s:e], mask=MASK[b, s:e])
    np.testing.assert_allclose(got[b, s:e], want, rtol=1e-12, atol=1e-12)


def test_flax_and_torch_layers_take_resets():
  """The linen and nnx modules and TorchRNN pass resets to the engine."""
  from flax import nnx
  from jaxrnn import interop
  from jaxrnn import linen as jrl
  from jaxrnn import nnx as jrn
  xs = jax.random.normal(jax.random.key(4), (B, T, H), jnp.float32)
  module = jrl.RNN(jaxrnn.GRUCell(), H)
  variables = module.init(jax.random.key(5), xs)
  params = jrl.to_functional(variables)
  want = jaxrnn.scan(jaxrnn.GRUCell(), params, xs, resets=RESETS)[1]
  np.testing.assert_allclose(module.apply(variables, xs, resets=RESETS)[1], want)
  layer = jrn.RNN(jaxrnn.GRUCell(), H, H, rngs=nnx.Rngs(0))
  want = jaxrnn.scan(jaxrnn.GRUCell(), jrn.to_functional(layer), xs, resets=RESETS)[1]
  np.testing.assert_allclose(layer(xs, resets=RESETS)[1], want)
  torch_rnn = interop.TorchRNN("GRU", H, H, batch_first=True)
  tparams = torch_rnn.init(jax.random.key(6))
  out, _ = torch_rnn(tparams, xs, resets=RESETS)
  b, s, e = segments()[1]
  np.testing.assert_allclose(out[b, s:e], torch_rnn(tparams, xs[b:b + 1, s:e])[0][0],
                             rtol=1e-5, atol=1e-6)
  assert not np.allclose(out, torch_rnn(tparams, xs)[0])


@pytest.mark.parametrize("name, impl", [("lstm", "auto"), ("gru_after", "xla"),
                                        ("gru_before", "autodiff"), ("min_gru", "auto"),
                                        ("lru", "auto")])
def test_rollout_of_one_step_calls_equals_one_call(name, impl):
  """A recurrent-PPO rollout: one-step calls (T=1) inside a jitted lax.scan,
  each from the carry the last one stored, with the episode-start flag as
  resets, equal one call over the whole rollout from the rollout's first
  stored carry (the replay), outputs, final carry and gradients; and a reset
  step starts from zeros, whatever the stored carry."""
  cell = ALL_CELLS[name]
  params, xs, carry = case(cell)
  starts = jnp.asarray(RESETS)

  def rollout(p, c0):
    def one(c, inputs):
      x_t, start_t = inputs
      c, y = jaxrnn.scan(cell, p, x_t[:, None], initial_carry=c,
                         resets=start_t[:, None], impl=impl)
      return c, y[:, 0]
    c, ys = jax.lax.scan(one, c0, (jnp.swapaxes(xs, 0, 1), starts.T))
    return c, jnp.swapaxes(ys, 0, 1)

  def replay(p, c0):
    return jaxrnn.scan(cell, p, xs, initial_carry=c0, resets=starts, impl=impl)

  loss = lambda out: jnp.sum(jnp.sin(3 * out[1])) + sum(
      jnp.sum(l ** 2) for l in jax.tree.leaves(out[0]))
  got = jax.jit(lambda p, c: (rollout(p, c), jax.grad(lambda p, c: loss(rollout(p, c)),
                                                       argnums=(0, 1))(p, c)))(params, carry)
  want = jax.jit(lambda p, c: (replay(p, c), jax.grad(lambda p, c: loss(replay(p, c)),
                                                      argnums=(0, 1))(p, c)))(params, carry)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10),
               got, want)
  # one step with an episode start, from a stored non-zero carry: a fresh start
  _, y_reset = jaxrnn.scan(cell, params, xs[:, :1], initial_carry=carry,
                           resets=np.ones((B, 1), bool), impl=impl)
  _, y_fresh = jaxrnn.scan(cell, params, xs[:, :1], impl=impl)
  np.testing.assert_allclose(y_reset, y_fresh, rtol=1e-12, atol=1e-12)


def test_reset_carry_on_every_layer():
  """Bidirectional (a pair), Stacked (one per layer), linen, nnx and TorchRNN
  (reset_hx) reset to the target given, one unbatched carry for every row
  included: each equals its scan of the same cell(s) with that target."""
  from flax import nnx
  from jaxrnn import interop
  from jaxrnn import linen as jrl
  from jaxrnn import nnx as jrn
  cell = jaxrnn.GRUCell()
  xs = jax.random.normal(jax.random.key(4), (B, T, H), jnp.float64)
  target = jaxrnn.RNNState(0.3 + jnp.arange(H, dtype=jnp.float64) / 10)  # every row
  batched = jaxrnn.RNNState(jnp.broadcast_to(target.h, (B, H)))
  params = cell.init(jax.random.key(5), H, H, dtype=jnp.float64)
  want = jaxrnn.scan(cell, params, xs, resets=RESETS, reset_carry=batched)
  np.testing.assert_allclose(
      jaxrnn.scan(cell, params, xs, resets=RESETS, reset_carry=target)[1], want[1])
  assert not np.allclose(want[1], jaxrnn.scan(cell, params, xs, resets=RESETS)[1])
  bi = jaxrnn.Bidirectional(cell)
  bp = jaxrnn.BidirectionalParams(params, params)
  _, ys = bi(bp, xs, resets=RESETS, reset_carry=(target, target))
  back = jaxrnn.scan(cell, params, xs, resets=RESETS, reset_carry=target, reverse=True)[1]
  np.testing.assert_allclose(ys, jnp.concatenate([want[1], back], -1))
  stack = jaxrnn.Stacked((cell, cell))
  (_, c2), ys = stack((params, params), xs, resets=RESETS, reset_carry=(target, target))
  c, y = jaxrnn.scan(cell, params, want[1], resets=RESETS, reset_carry=target)
  np.testing.assert_allclose(ys, y)
  np.testing.assert_allclose(c2.h, c.h)
  module = jrl.RNN(cell, H, param_dtype=jnp.float64)
  np.testing.assert_allclose(module.apply(jrl.from_functional(params), xs, resets=RESETS,
                                          reset_carry=target)[1], want[1])
  layer = jrn.RNN(cell, H, H, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
  jrn.load_functional(layer, params)
  np.testing.assert_allclose(layer(xs, resets=RESETS, reset_carry=target)[1], want[1])
  torch_rnn = interop.TorchRNN("GRU", H, H, batch_first=True)
  tparams = torch_rnn.init(jax.random.key(6), dtype=jnp.float64)
  hx = jnp.broadcast_to(target.h, (1, B, H))
  out, _ = torch_rnn(tparams, xs, resets=RESETS, reset_hx=hx)
  np.testing.assert_allclose(out, jaxrnn.scan(cell, tparams[0], xs, resets=RESETS,
                                              reset_carry=batched)[1])
  with pytest.raises(ValueError, match="reset_carry: given without resets"):
    jaxrnn.scan(cell, params, xs, reset_carry=target)
  with pytest.raises(ValueError, match="reset_carry"):
    jaxrnn.scan(cell, params, xs, resets=RESETS,
                reset_carry=jaxrnn.RNNState(jnp.zeros((3, H))))
