"""Sequence classification with variable-length inputs.

Each sequence is a noisy sine wave of one of three frequencies, 8 to 64 steps
long, right-padded to 64 with large junk values. A bidirectional LSTM reads
it with ``seq_lengths``: padded steps change nothing, so the forward carry is
taken at each sequence's last valid step and the backward carry at its first.
Their concatenation goes to a linear classifier.

  python examples/classify.py           # ~1 minute on 2 CPU cores
  python examples/classify.py --smoke
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn import train

MAX_LENGTH = 64
FREQUENCIES = (0.05, 0.1, 0.2)  # cycles per step


def make_batch(key, batch_size):
  k_len, k_cls, k_phase, k_noise = jax.random.split(key, 4)
  lengths = jax.random.randint(k_len, (batch_size,), 8, MAX_LENGTH + 1)
  labels = jax.random.randint(k_cls, (batch_size,), 0, len(FREQUENCIES))
  phase = jax.random.uniform(k_phase, (batch_size, 1), maxval=2 * jnp.pi)
  t = jnp.arange(MAX_LENGTH)
  freq = jnp.asarray(FREQUENCIES)[labels][:, None]
  xs = jnp.sin(2 * jnp.pi * freq * t + phase) + 0.3 * jax.random.normal(k_noise, (batch_size, MAX_LENGTH))
  xs = jnp.where(t < lengths[:, None], xs, 100.0)  # junk padding: must be ignored
  return xs[..., None], lengths, labels


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--hidden-size", type=int, default=32)
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--learning-rate", type=float, default=3e-3)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--results-dir", default="results/classify")
  parser.add_argument("--no-progress", action="store_true")
  parser.add_argument("--smoke", action="store_true", help="a few steps, to check that it runs")
  args = parser.parse_args(argv)
  if args.smoke:
    args.steps = 10

  layer = jaxrnn.Bidirectional(jaxrnn.LSTMCell())
  readout = jaxrnn.Linear()
  k_rnn, k_out, k_data = jax.random.split(jax.random.key(args.seed), 3)
  params = (layer.init(k_rnn, 1, args.hidden_size),
            readout.init(k_out, 2 * args.hidden_size, len(FREQUENCIES)))

  def loss_fn(params, batch):
    xs, lengths, labels = batch
    (fwd, bwd), _ = layer(params[0], xs, seq_lengths=lengths)
    logits = readout(params[1], jnp.concatenate([fwd.h, bwd.h], -1))
    return train.classification_loss(logits, labels)

  test_set = make_batch(jax.random.key(10_000 + args.seed), 2000)
  evaluate = train.make_eval_step(loss_fn)
  optimizer = train.make_optimizer(args.learning_rate, total_steps=args.steps,
                                   warmup_steps=min(50, args.steps // 10))
  state, history = train.fit(
      train.make_train_step(loss_fn, optimizer), train.create_train_state(params, optimizer),
      lambda step: make_batch(jax.random.fold_in(k_data, step), args.batch_size),
      num_steps=args.steps, eval_fn=lambda p: evaluate(p, test_set),
      eval_every=max(args.steps // 6, 1), log_every=max(args.steps // 6, 1),
      progress=not args.no_progress, description="bi-LSTM")
  accuracy = history[-1]["eval/accuracy"]
  print(f"test accuracy over {len(FREQUENCIES)} classes, lengths 8-{MAX_LENGTH}: "
        f"{accuracy:.3f} (chance {1 / len(FREQUENCIES):.3f})")
  results = pathlib.Path(args.results_dir)
  history.write(results)
  (results / "summary.json").write_text(json.dumps({"test_accuracy": accuracy,
                                                     "steps": args.steps}, indent=1))
  print(f"wrote {results}/summary.json, metrics.json, metrics.csv")


if __name__ == "__main__":
  main()
