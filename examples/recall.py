"""Multi-query associative recall (MQAR; Arora et al., 2023, "Zoology").

Each sequence holds N key-value pairs, then noise, then the N keys again in
another order; at each query the model must name the key's value. Keys and
values come from separate vocabularies of 64, N is drawn from {4, 8, 16}
per batch, and sequences are 64 tokens long. A model is: token embedding
(64 wide), the previous token's embedding beside it (a shift, the width-2
convolution that Zoology's models put before the mixer), one recurrent layer
and a linear read-out, trained on the query positions only.

Every cell gets about the same **parameter count** (38-62 thousand): the
matrix-state cells are 64 wide with 4 heads of 16 × 16 (a state of 1024
numbers); the LSTM has 64 units (a state of 128: h and c), minGRU 128 (a
state of 128). The table gives query accuracy per N on held-out sequences,
with each model's parameters and state size. Matrix-state cells store each
pair in a rank-one update addressed by its key; a vector state must
compress all pairs into one vector. (An LSTM with the matrix cells' state
of 1024, 512 units, has 1.2 million parameters and takes 10 minutes here.)

  python examples/recall.py            # a few minutes on 2 CPU cores
  python examples/recall.py --smoke
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn import train

KEYS, VALUES = 64, 64
NOISE = KEYS + VALUES  # the one noise token
VOCAB = NOISE + 1
PAIRS = (4, 8, 16)
WIDTH, HEADS = 64, 4

CELLS = {  # name: (cell, hidden size), 38-62 thousand parameters each
    "lstm": (jaxrnn.LSTMCell(), 64),
    "min_gru": (jaxrnn.MinGRUCell(), 128),
    "gla": (jaxrnn.GLACell(num_heads=HEADS), WIDTH),
    "deltanet": (jaxrnn.DeltaNetCell(num_heads=HEADS), WIDTH),
    "gated_deltanet": (jaxrnn.GatedDeltaNetCell(num_heads=HEADS), WIDTH),
    "mlstm": (jaxrnn.MLSTMCell(num_heads=HEADS), WIDTH),
}


def make_batch(rng: np.random.Generator, batch_size: int, length: int, pairs: int):
  """Tokens ``(batch, length)``, targets (value ids) and the query mask."""
  keys = np.argsort(rng.random((batch_size, KEYS)), axis=1)[:, :pairs]
  values = KEYS + rng.integers(0, VALUES, (batch_size, pairs))
  tokens = np.full((batch_size, length), NOISE)
  tokens[:, 0:2 * pairs:2], tokens[:, 1:2 * pairs:2] = keys, values
  order = np.argsort(rng.random((batch_size, pairs)), axis=1)
  rows = np.arange(batch_size)[:, None]
  tokens[:, length - pairs:] = keys[rows, order]
  targets = np.zeros((batch_size, length), int)
  targets[:, length - pairs:] = values[rows, order] - KEYS
  mask = np.zeros((batch_size, length), bool)
  mask[:, length - pairs:] = True
  return jnp.asarray(tokens), jnp.asarray(targets), jnp.asarray(mask)


def model(cell, hidden):
  readout = jaxrnn.Linear()

  def init(key):
    k_e, k_c, k_o = jax.random.split(key, 3)
    return {"embed": 0.3 * jax.random.normal(k_e, (VOCAB, WIDTH)),
            "cell": cell.init(k_c, 2 * WIDTH, hidden),
            "out": readout.init(k_o, cell.output_size(cell.init(k_c, 2 * WIDTH, hidden)),
                                VALUES)}

  def apply(params, tokens):
    e = params["embed"][tokens]
    shifted = jnp.pad(e, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    _, ys = jaxrnn.scan(cell, params["cell"], jnp.concatenate([e, shifted], -1))
    return readout(params["out"], ys)

  return init, apply


def train_cell(name, args, test_sets):
  cell, hidden = CELLS[name]
  init, apply = model(cell, hidden)
  params = init(jax.random.key(args.seed))
  n_params = sum(a.size for a in jax.tree.leaves(params))

  def loss_fn(params, batch):
    tokens, targets, mask = batch
    return train.language_model_loss(apply(params, tokens), targets, mask)

  optimizer = train.make_optimizer(args.learning_rate, total_steps=args.steps,
                                   warmup_steps=min(100, args.steps // 10))
  step = train.make_train_step(loss_fn, optimizer)
  state = train.create_train_state(params, optimizer)
  rng = np.random.default_rng(args.seed)
  start = time.perf_counter()
  for i in range(args.steps):
    batch = make_batch(rng, args.batch_size, args.length, int(rng.choice(PAIRS)))
    state, metrics = step(state, batch)
    if not args.no_progress and (i + 1) % max(args.steps // 5, 1) == 0:
      print(f"  {name} step {i + 1}: loss {float(metrics['loss']):.3f}", flush=True)
  seconds = time.perf_counter() - start
  evaluate = train.make_eval_step(loss_fn)
  accuracy = {n: float(evaluate(state.params, batch)["accuracy"])
              for n, batch in test_sets.items()}
  carry = cell.initial_carry(params["cell"], ())
  state = sum(a.size for a in jax.tree.leaves(carry))
  return {"cell": name, "hidden_size": hidden, "params": int(n_params),
          "state_size": int(state), "accuracy": accuracy, "seconds": seconds}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cells", default=",".join(CELLS))
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--length", type=int, default=64)
  parser.add_argument("--learning-rate", type=float, default=3e-3)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--results-dir", default="results/recall")
  parser.add_argument("--no-progress", action="store_true")
  parser.add_argument("--smoke", action="store_true", help="a few steps, to check that it runs")
  args = parser.parse_args(argv)
  if args.smoke:
    args.steps, args.batch_size = 4, 8
  cells = [c for c in args.cells.split(",") if c]
  unknown = [c for c in cells if c not in CELLS]
  if unknown:
    parser.error(f"--cells: unknown {unknown}; choose from {list(CELLS)}")
  if args.length < 3 * max(PAIRS):
    parser.error(f"--length: expected at least {3 * max(PAIRS)} (pairs and queries)")
  test_rng = np.random.default_rng(10_000 + args.seed)
  test_sets = {n: make_batch(test_rng, 500, args.length, n) for n in PAIRS}
  print(f"MQAR, {args.length} tokens, {args.steps} steps of {args.batch_size} per "
        f"cell, about equal parameters; chance is {1 / VALUES:.3f}.\n")
  rows = []
  for name in cells:
    rows.append(train_cell(name, args, test_sets))
    r = rows[-1]
    print(f"{name}: accuracy " + ", ".join(f"{r['accuracy'][n]:.3f} at {n} pairs"
                                           for n in PAIRS)
          + f" ({r['params']:,} params, state {r['state_size']}, {r['seconds']:.0f} s)",
          flush=True)

  head = " | ".join(f"{n} pairs" for n in PAIRS)
  table = [f"| cell | hidden | params | state | {head} | train time |",
           "|---|---|---|---|" + "---|" * len(PAIRS) + "---|"]
  for r in rows:
    acc = " | ".join(f"{r['accuracy'][n]:.3f}" for n in PAIRS)
    table.append(f"| {r['cell']} | {r['hidden_size']} | {r['params']:,} | "
                 f"{r['state_size']} | {acc} | {r['seconds']:.0f} s |")
  table = "\n".join(table)
  print("\nQuery accuracy on held-out sequences:\n\n" + table)

  results = pathlib.Path(args.results_dir)
  results.mkdir(parents=True, exist_ok=True)
  (results / "table.md").write_text(table + "\n")
  (results / "summary.json").write_text(json.dumps(
      {"length": args.length, "steps": args.steps, "batch_size": args.batch_size,
       "results": rows}, indent=1))
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(6, 4))
  for r in rows:
    ax.plot(PAIRS, [r["accuracy"][n] for n in PAIRS], marker="o", label=r["cell"])
  ax.axhline(1 / VALUES, color="grey", linestyle=":", label="chance")
  ax.set_xlabel("key-value pairs")
  ax.set_ylabel("query accuracy")
  ax.set_xticks(PAIRS)
  ax.set_title("MQAR, about equal parameters")
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(results / "accuracy.png", dpi=120)
  print(f"\nwrote {results}/table.md, summary.json and accuracy.png")


if __name__ == "__main__":
  main()
