"""Trains an LSTM with optax on the adding problem and prints the loss falling.

The adding problem (Hochreiter & Schmidhuber, 1997): each input step is a pair
(value in [0, 1), marker in {0, 1}); exactly two steps are marked, and the
target is the sum of their values. Predicting the mean scores MSE ~0.167.

Runs on CPU by default (about a minute); on GPU/TPU unchanged.

  python examples/train_lstm.py --help
"""

import argparse
import time

import jax
import jax.numpy as jnp
import optax

import jaxrnn


def adding_batch(key, batch_size, length):
  k_v, k_a, k_b = jax.random.split(key, 3)
  values = jax.random.uniform(k_v, (batch_size, length))
  # one marker in each half, so the two marked steps are far apart
  first = jax.random.randint(k_a, (batch_size,), 0, length // 2)
  second = jax.random.randint(k_b, (batch_size,), length // 2, length)
  steps = jnp.arange(length)
  markers = (steps == first[:, None]) | (steps == second[:, None])
  xs = jnp.stack([values, markers.astype(values.dtype)], axis=-1)
  return xs, jnp.sum(values * markers, axis=-1)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--length", type=int, default=50, help="sequence length T")
  parser.add_argument("--hidden-size", type=int, default=64)
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=1500)
  parser.add_argument("--learning-rate", type=float, default=3e-3)
  parser.add_argument("--log-every", type=int, default=100)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  cell, readout = jaxrnn.LSTMCell(), jaxrnn.Linear()
  k_cell, k_out, k_data = jax.random.split(jax.random.key(args.seed), 3)
  params = (cell.init(k_cell, 2, args.hidden_size),
            readout.init(k_out, args.hidden_size, 1))
  optimizer = optax.chain(optax.clip_by_global_norm(1.0),
                          optax.adam(args.learning_rate))
  opt_state = optimizer.init(params)

  def loss_fn(params, xs, targets):
    carry, _ = jaxrnn.scan(cell, params[0], xs)
    predictions = readout(params[1], carry.h)[..., 0]
    return jnp.mean((predictions - targets) ** 2)

  @jax.jit
  def train_step(params, opt_state, key):
    xs, targets = adding_batch(key, args.batch_size, args.length)
    loss, grads = jax.value_and_grad(loss_fn)(params, xs, targets)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  print(f"LSTM, hidden {args.hidden_size}, adding problem T={args.length}, "
        f"on {jax.devices()[0].platform}; predicting the mean scores ~0.167")
  start, running = time.perf_counter(), []
  for step, key in enumerate(jax.random.split(k_data, args.steps), start=1):
    params, opt_state, loss = train_step(params, opt_state, key)
    running.append(loss)
    if step % args.log_every == 0 or step == args.steps:
      mean = float(jnp.mean(jnp.stack(running)))
      print(f"step {step:5d}  train MSE {mean:.4f}  ({time.perf_counter() - start:.0f}s)")
      running = []
  xs, targets = adding_batch(jax.random.key(args.seed + 1), 1000, args.length)
  print(f"test MSE on 1000 fresh sequences: {float(loss_fn(params, xs, targets)):.4f}")


if __name__ == "__main__":
  main()
