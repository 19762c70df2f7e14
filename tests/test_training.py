"""The training module: losses, steps, truncated BPTT, checkpoints, resume,
data parallelism."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from jaxrnn import train

CELL, READOUT = jaxrnn.LSTMCell(), jaxrnn.Linear()


def init_params(seed=0, hidden=8):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return (CELL.init(k1, 2, hidden), READOUT.init(k2, hidden, 1))


def loss_fn(params, batch):
  xs, targets = batch
  carry, _ = jaxrnn.scan(CELL, params[0], xs)
  return train.regression_loss(READOUT(params[1], carry.h)[..., 0], targets)


def batch_fn(step, batch_size=16, T=6):
  xs = jax.random.uniform(jax.random.fold_in(jax.random.key(42), step), (batch_size, T, 2))
  return xs, xs[:, :, 0].sum(-1) * 0.2  # a sum over time: needs memory


def test_losses_against_numpy():
  rng = np.random.default_rng(0)
  logits = rng.standard_normal((4, 5, 7))
  labels = rng.integers(0, 7, (4, 5))
  mask = rng.random((4, 5)) < 0.6
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
  loss, metrics = train.language_model_loss(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(mask))
  np.testing.assert_allclose(loss, nll[mask].mean(), rtol=1e-10)
  np.testing.assert_allclose(metrics["bits_per_token"], nll[mask].mean() / np.log(2), rtol=1e-10)
  np.testing.assert_allclose(metrics["accuracy"], (logits.argmax(-1) == labels)[mask].mean())
  loss, metrics = train.classification_loss(jnp.asarray(logits[:, 0]), jnp.asarray(labels[:, 0]))
  np.testing.assert_allclose(loss, nll[:, 0].mean(), rtol=1e-10)
  pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
  mse, _ = train.regression_loss(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(mask[:3, :4]))
  np.testing.assert_allclose(mse, ((pred - target) ** 2)[mask[:3, :4]].mean(), rtol=1e-10)


def test_schedule_and_clipping_come_from_optax():
  opt = train.make_optimizer(1e-2, clip_norm=0.5, warmup_steps=10, total_steps=100)
  params = {"w": jnp.ones(3)}
  state = opt.init(params)
  huge = {"w": jnp.full(3, 1e6)}
  updates, _ = opt.update(huge, state, params)
  assert float(jnp.abs(updates["w"]).max()) == 0.0  # warmup starts at lr 0
  reference = optax.chain(optax.clip_by_global_norm(0.5), optax.adamw(
      optax.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 100), weight_decay=0.0))
  s1, s2 = opt.init(params), reference.init(params)
  for i in range(15):
    g = {"w": jnp.full(3, float(i) - 3)}
    u1, s1 = opt.update(g, s1, params)
    u2, s2 = reference.update(g, s2, params)
    np.testing.assert_array_equal(u1["w"], u2["w"])


def test_loss_falls(tmp_path):
  opt = train.make_optimizer(1e-2)
  state = train.create_train_state(init_params(), opt)
  evaluate = train.make_eval_step(loss_fn)
  test_batch = batch_fn(10_000, batch_size=256)
  state, history = train.fit(train.make_train_step(loss_fn, opt), state, batch_fn,
                             num_steps=150, log_every=50, progress=False,
                             eval_fn=lambda p: evaluate(p, test_batch), eval_every=50,
                             results_dir=tmp_path)
  assert int(state.step) == 150 and len(history) == 3
  assert history[-1]["eval/mse"] < 0.3 * history[0]["eval/mse"]
  assert (tmp_path / "metrics.json").exists() and (tmp_path / "metrics.csv").exists()
  png = history.plot(tmp_path / "curves.png")
  assert png.stat().st_size > 1000


def run(num_steps, directory=None, every=10, keep=3):
  opt = train.make_optimizer(1e-2, total_steps=40, warmup_steps=5)
  state = train.create_train_state(init_params(), opt)
  ckpt = None if directory is None else train.Checkpointer(directory, every=every, keep=keep)
  state, _ = train.fit(train.make_train_step(loss_fn, opt), state, batch_fn,
                       num_steps=num_steps, checkpointer=ckpt, progress=False, log_every=10)
  if ckpt is not None:
    ckpt.close()
  return state, ckpt


def test_resume_equals_uninterrupted(tmp_path):
  uninterrupted, _ = run(40)
  run(25, tmp_path)                # "crashes" after step 25 (saved at 10, 20, 25)
  resumed, ckpt = run(40, tmp_path)  # a fresh process would start here
  assert int(resumed.step) == 40
  jax.tree.map(np.testing.assert_array_equal, resumed.params, uninterrupted.params)
  jax.tree.map(np.testing.assert_array_equal, resumed.opt_state, uninterrupted.opt_state)
  assert ckpt.manager.all_steps() == [25, 30, 40]  # keep=3, the end always saved


def test_interrupted_write_never_replaces_a_good_checkpoint(tmp_path):
  state, ckpt = run(20, tmp_path)
  partial = tmp_path / "30.orbax-checkpoint-tmp-1700000000"
  (partial / "default").mkdir(parents=True)
  (partial / "default" / "half_written").write_bytes(b"\x00" * 10)
  with train.Checkpointer(tmp_path) as fresh:
    assert fresh.latest_step() == 20
    restored = fresh.restore(state)
  jax.tree.map(np.testing.assert_array_equal, restored.params, state.params)


def test_mismatched_and_corrupt_checkpoints_fail_clearly(tmp_path):
  state, ckpt = run(10, tmp_path)
  opt = train.make_optimizer(1e-2)
  other = train.create_train_state(init_params(hidden=12), opt)
  with train.Checkpointer(tmp_path) as ckpt, pytest.raises(
      ValueError, match=r"checkpoint: step 10 .* cannot be restored|checkpoint: step 10 .* has shapes"):
    ckpt.restore(other)
  for f in (tmp_path / "10").rglob("*"):
    if f.is_file() and f.stat().st_size > 0 and "METADATA" not in f.name and "commit" not in f.name:
      f.write_bytes(b"garbage")
  with train.Checkpointer(tmp_path) as ckpt, pytest.raises(ValueError, match="checkpoint: step 10"):
    ckpt.restore(state)
  with train.Checkpointer(tmp_path / "empty") as ckpt, pytest.raises(
      ValueError, match="checkpoint: none found"):
    ckpt.restore(state)


def test_truncated_bptt():
  stream = np.arange(1 + 4 * 3 * 5)
  chunks = list(train.stream_chunks(stream, chunk_length=5, batch_size=4))
  assert len(chunks) == 3 and chunks[0].shape == (4, 6)
  for a, b in zip(chunks, chunks[1:]):  # each row continues where it stopped
    np.testing.assert_array_equal(a[:, -1], b[:, 0])

  def tbptt_loss(params, carry, chunk):
    carry, ys = jaxrnn.scan(CELL, params[0], chunk, initial_carry=carry)
    loss = jnp.mean(READOUT(params[1], ys) ** 2)
    return loss, (carry, {"loss": loss})

  opt = optax.sgd(0.1)
  params = init_params()
  state = train.create_train_state(params, opt)
  step = train.make_tbptt_train_step(tbptt_loss, opt)
  xs = jax.random.normal(jax.random.key(0), (3, 12, 2), jnp.float32)
  carry0 = CELL.initial_carry(params[0], (3,))
  state1, carry1, _ = step(state, carry0, xs[:, :6])
  state2, carry2, _ = step(state1, carry1, xs[:, 6:])
  # the carry continues the stream: equal to one scan over both chunks (first params)
  want1, _ = jaxrnn.scan(CELL, params[0], xs[:, :6])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), carry1, want1)
  # the second update's gradient stops at the chunk boundary
  grads = jax.grad(lambda p: tbptt_loss(p, jax.lax.stop_gradient(carry1), xs[:, 6:])[0])(state1.params)
  expected = jax.tree.map(lambda p, g: p - 0.1 * g, state1.params, grads)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), state2.params, expected)
  full = jax.grad(lambda p: tbptt_loss(p, jaxrnn.scan(CELL, p[0], xs[:, :6])[0], xs[:, 6:])[0])(state1.params)
  assert not np.allclose(full[0].w_h, grads[0].w_h)  # the boundary really matters


SHARDING_SCRIPT = r"""
import sys, jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, sys.argv[1])
from test_training import init_params, loss_fn, batch_fn
from jaxrnn import train
opt = train.make_optimizer(1e-2)
state = train.create_train_state(init_params(), opt)
state, _ = train.fit(train.make_train_step(loss_fn, opt), state, batch_fn, num_steps=8,
                     progress=False, log_every=4)
leaves = jax.tree.leaves(state.params)
assert all(len(l.sharding.device_set) == len(jax.devices()) for l in leaves)
np.save(sys.argv[2], np.concatenate([np.ravel(l) for l in leaves]))
print(len(jax.devices()))
"""


def test_data_parallel_on_8_devices_equals_one(tmp_path):
  results = {}
  for devices in (1, 8):
    env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
           + f" --xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu"}
    out = tmp_path / f"{devices}.npy"
    proc = subprocess.run([sys.executable, "-c", SHARDING_SCRIPT, str(pathlib.Path(__file__).parent),
                           str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == str(devices)
    results[devices] = np.load(out)
  np.testing.assert_allclose(results[8], results[1], rtol=2e-5, atol=1e-6)


def test_shard_batch_rejects_uneven_batches():
  mesh = train.data_mesh()
  with pytest.raises(ValueError, match="batch: leading axis"):
    train.shard_batch(jnp.ones(()), mesh)
