"""The adding problem (Hochreiter & Schmidhuber, 1997), for every cell type.

Each input step is a pair (value in [0, 1), marker in {0, 1}); two steps are
marked, one in each half of the sequence, and the target is the sum of their
values. The model must carry two numbers across up to T steps. Predicting the
mean (1.0) scores a test MSE of about 0.167; below 0.01 counts as solved.

Every cell is trained the same way (a read-out on the final hidden state,
Adam with a cosine schedule and gradient clipping), then a table of test MSE
is printed and the learning curves are plotted together.

  python examples/adding_problem.py                 # T=100, all cells (~6 min on 2 CPU cores)
  python examples/adding_problem.py --length 200 --steps 4000
  python examples/adding_problem.py --cells lstm,rnn --smoke
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn import train

CELLS = {
    "rnn": ("simple RNN (tanh)", jaxrnn.SimpleRNNCell(), {}),
    "lstm": ("LSTM", jaxrnn.LSTMCell(), {}),
    "gru": ("GRU (reset after)", jaxrnn.GRUCell(reset_after=True), {}),
    "gru_cho": ("GRU (reset before)", jaxrnn.GRUCell(reset_after=False), {}),
    "peephole": ("peephole LSTM", jaxrnn.PeepholeLSTMCell(), {}),
    "cifg": ("CIFG LSTM", jaxrnn.CIFGLSTMCell(), {}),
    "lstmp": ("LSTMP (proj h/2)", jaxrnn.ProjectedLSTMCell(), {"proj": True}),
}
MEAN_BASELINE = 1 / 6  # Var(U1 + U2) = 2/12
SOLVED = 0.01


def adding_batch(key, batch_size: int, length: int):
  """``(xs (B, T, 2), targets (B,))`` of the adding problem."""
  k_v, k_a, k_b = jax.random.split(key, 3)
  values = jax.random.uniform(k_v, (batch_size, length))
  first = jax.random.randint(k_a, (batch_size,), 0, max(length // 2, 1))
  second = jax.random.randint(k_b, (batch_size,), length // 2, length)
  steps = jnp.arange(length)
  marked = (steps == first[:, None]) | (steps == second[:, None])
  xs = jnp.stack([values, marked.astype(values.dtype)], axis=-1)
  return xs, jnp.sum(values * marked, axis=-1)


def train_cell(name, args, test_set):
  label, cell, options = CELLS[name]
  readout = jaxrnn.Linear()
  k_cell, k_out, k_data = jax.random.split(jax.random.key(args.seed), 3)
  kwargs = {"proj_size": args.hidden_size // 2} if options.get("proj") else {}
  cell_params = cell.init(k_cell, 2, args.hidden_size, **kwargs)
  params = (cell_params, readout.init(k_out, cell.output_size(cell_params), 1))

  def loss_fn(params, batch):
    xs, targets = batch
    carry, _ = jaxrnn.scan(cell, params[0], xs, unroll=args.unroll)
    return train.regression_loss(readout(params[1], carry.h)[..., 0], targets)

  optimizer = train.make_optimizer(args.learning_rate, clip_norm=1.0,
                                   warmup_steps=min(100, args.steps // 10),
                                   total_steps=args.steps)
  state = train.create_train_state(params, optimizer)
  evaluate = train.make_eval_step(loss_fn)
  batch_fn = lambda step: adding_batch(jax.random.fold_in(k_data, step),
                                       args.batch_size, args.length)
  start = time.perf_counter()
  state, history = train.fit(
      train.make_train_step(loss_fn, optimizer), state, batch_fn,
      num_steps=args.steps, eval_fn=lambda p: evaluate(p, test_set),
      eval_every=args.eval_every, log_every=args.eval_every,
      progress=not args.no_progress, description=f"{label:22s}")
  seconds = time.perf_counter() - start
  test_mse = history[-1]["eval/mse"]
  return {"cell": name, "label": label, "test_mse": test_mse,
          "solved": test_mse < SOLVED, "seconds": seconds,
          "steps": args.steps}, history


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--length", type=int, default=100, help="sequence length T")
  parser.add_argument("--cells", default=",".join(CELLS),
                      help=f"comma-separated, from {','.join(CELLS)}")
  parser.add_argument("--hidden-size", type=int, default=64)
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--learning-rate", type=float, default=3e-3)
  parser.add_argument("--eval-every", type=int, default=100)
  parser.add_argument("--test-size", type=int, default=2000)
  parser.add_argument("--unroll", type=int, default=1)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--results-dir", default=None,
                      help="default: results/adding_T<length>")
  parser.add_argument("--no-progress", action="store_true", help="no progress bars")
  parser.add_argument("--smoke", action="store_true",
                      help="a few steps on short sequences, to check that it runs")
  args = parser.parse_args(argv)
  if args.smoke:
    args.length, args.steps, args.eval_every, args.test_size = 12, 20, 10, 64
  cells = [c for c in args.cells.split(",") if c]
  unknown = [c for c in cells if c not in CELLS]
  if unknown:
    parser.error(f"--cells: unknown {unknown}; choose from {list(CELLS)}")
  results_dir = pathlib.Path(args.results_dir or f"results/adding_T{args.length}")

  print(f"Adding problem, T={args.length}, hidden {args.hidden_size}, batch "
        f"{args.batch_size}, {args.steps} steps per cell, on "
        f"{jax.devices()[0].platform} ({len(jax.devices())} device(s)).")
  print(f"Predicting the mean scores MSE ~{MEAN_BASELINE:.3f}; solved means "
        f"test MSE < {SOLVED}.\n")
  test_set = adding_batch(jax.random.key(10_000 + args.seed), args.test_size, args.length)
  rows, curves = [], train.History()
  for name in cells:
    row, history = train_cell(name, args, test_set)
    rows.append(row)
    for record in history:
      curves.append({"step": record["step"], f"{name}/test_mse": record["eval/mse"]})

  table = ["| cell | test MSE | solved (< 0.01) | train time |",
           "|---|---|---|---|"]
  for r in rows:
    table.append(f"| {r['label']} | {r['test_mse']:.4f} | {'yes' if r['solved'] else 'no'} | "
                 f"{r['seconds']:.0f} s |")
  table = "\n".join(table)
  print(f"\nTest MSE after {args.steps} steps at T={args.length} "
        f"(mean predictor ~{MEAN_BASELINE:.3f}):\n")
  print(table)

  results_dir.mkdir(parents=True, exist_ok=True)
  (results_dir / "table.md").write_text(table + "\n")
  (results_dir / "summary.json").write_text(json.dumps(
      {"length": args.length, "hidden_size": args.hidden_size, "steps": args.steps,
       "batch_size": args.batch_size, "results": rows}, indent=1))
  curves.write(results_dir)
  plot = curves.plot(results_dir / "learning_curves.png",
                     keys=[f"{c}/test_mse" for c in cells],
                     title=f"Adding problem, T={args.length}: test MSE")
  print(f"\nWrote {results_dir}/table.md, summary.json, metrics.json, metrics.csv "
        f"and {plot.name}.")


if __name__ == "__main__":
  main()
