"""The learning suite: every cell family in the same block, and the papers'
own blocks, trained on four tasks, each against a published anchor.

Tasks (all generated in code, from a package, or from a file the repo ships):

- ``adding``: the adding problem at T=1000 (Hochreiter & Schmidhuber 1997;
  examples/adding_problem.py). Solved is test MSE < 0.01 (the mean predictor
  scores 0.167); the table gives the steps and seconds to solve.
- ``selective_copy``: Gu & Dao (2023)'s selective copying, scaled down to a
  sequence of 128 tokens with 16 to copy (the papers use 4096), 8 token
  values. The minGRU paper (Feng et al. 2024, Table 1) reaches 96.8%
  (minGRU) and 85.7% (minLSTM) with 2 layers at full scale, after 400k steps
  of batch 64 (the Mamba paper's setting, Gu & Dao 2023, Appendix E.1).
- ``mnist1d``: MNIST-1D (Greydanus 2020), built by the ``mnist1d`` package's
  ``make_dataset`` (no download): 4000 training and 1000 test sequences of
  40 values. Its README: GRU 91%, CNN 94%, MLP 68%.
- ``shakespeare``: a character language model on 18 plays shipped in
  ``examples/data/shakespeare.txt.gz`` (its README gives the provenance);
  the last 10% is the validation text. nanoGPT's CPU setting (4 layers, 128
  wide, context 64, 2000 iterations, about 3 minutes on a laptop) reaches
  1.88 nats/char on tiny-shakespeare, a similar but not identical corpus.
  The budget, 375 steps of 32 windows of 128, is its number of training
  characters (2000 x 12 x 64 = 1,536,000); ``--steps 2000`` is the longer
  run of the goal (<= 1.5 nats). A run's budget is part of its row.

Every model is :class:`jaxrnn.blocks.SequenceModel`: an input layer, two
blocks (by default), a final RMSNorm and a read-out. A cell row puts the cell
in the same pre-norm block (a width-4 causal convolution, the cell, a GeGLU
MLP of expansion 2; on the adding problem and selective copy, without the
convolution, see ``Task.block_options``); a paper's row uses its block (Griffin, Mamba, xLSTM's
two). ``d_model`` is the same for every row of a task, so the parameters are
not equal: the table gives each row's count.
A lever row may set its own depth (``lru_4``, the LRU in 4 blocks); its
label says so.

  python benchmarks/learning.py                       # defaults: every task, the default rows
  python benchmarks/learning.py --tasks adding --cells lstm,min_gru --seeds 3
  python benchmarks/learning.py --tasks mnist1d --cells gla --seeds 2 --first-seed 1 --merge
  python benchmarks/learning.py --smoke --out /tmp/learn
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn import blocks
from jaxrnn import train

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from adding_problem import adding_batch  # noqa: E402
from char_lm import load_corpus  # noqa: E402


def cell_block(cell, chrono: bool = False, num_blocks: int | None = None):
  """A cell's row: the pre-norm block around it; a task may change the
  block's options (``Task.block_options``), the same for every cell row.
  ``chrono``: the cell's init is chrono initialisation (Tallec & Ollivier
  2018) for the task's longest dependency, ``Task.horizon``.
  ``num_blocks``: this row's depth, where it is not the task's (a lever row,
  labelled with it)."""
  def make(horizon: int, **options):
    cell_init = {"chrono": horizon} if chrono else {}
    return blocks.PreNormBlock(cell, cell_init=cell_init, **{
        "conv_size": 4, "mlp": "geglu", "expansion": 2.0, **options})
  make.takes_options = True
  make.num_blocks = num_blocks
  return make


# The LRU rows' ring: |λ| in [0.9, 0.999], phase up to π/10 (the README's levers).
LRU = jaxrnn.LRUCell(r_min=0.9, r_max=0.999, max_phase=0.314)

ROWS = {
    "lstm": ("LSTM", cell_block(jaxrnn.LSTMCell())),
    "lstm_chrono": ("LSTM, chrono init", cell_block(jaxrnn.LSTMCell(), chrono=True)),
    "gru": ("GRU", cell_block(jaxrnn.GRUCell())),
    "min_gru": ("minGRU", cell_block(jaxrnn.MinGRUCell())),
    "min_lstm": ("minLSTM", cell_block(jaxrnn.MinLSTMCell())),
    "lru": ("LRU", cell_block(LRU)),
    # The LRU is linear in time: its only nonlinearity is between blocks, and
    # the LRU's reference code (minimal-LRU) stacks 4 by default. See the
    # README's Learning for the levers measured on MNIST-1D.
    "lru_4": ("LRU, 4 blocks", cell_block(LRU, num_blocks=4)),
    "rg_lru": ("RG-LRU", cell_block(jaxrnn.RGLRUCell())),
    "slstm": ("sLSTM", cell_block(jaxrnn.SLSTMCell(num_heads=4))),
    "mlstm": ("mLSTM", cell_block(jaxrnn.MLSTMCell(num_heads=4))),
    "gla": ("GLA", cell_block(jaxrnn.GLACell(num_heads=4))),
    "gated_deltanet": ("Gated DeltaNet", cell_block(jaxrnn.GatedDeltaNetCell(num_heads=4))),
    "s6": ("S6", cell_block(jaxrnn.SelectiveSSMCell())),
    "griffin": ("Griffin block (RG-LRU)", blocks.GriffinBlock),
    "mamba": ("Mamba block (S6)", blocks.MambaBlock),
    "xlstm_s": ("xLSTM sLSTM block", blocks.SLSTMBlock),
    "xlstm_m": ("xLSTM mLSTM block", blocks.MLSTMBlock),
}


@dataclasses.dataclass
class Task:
  """A task: data, model shape, loss, metric and budget.

  ``horizon`` is the longest dependency (the chrono rows' ``T_max``);
  ``batch(key)`` gives a training batch; ``evaluate(model, params)`` the
  test metrics; ``score`` names the metric in the table, ``solved`` says
  whether a score meets the task's bar (``None``: no bar).
  """

  name: str
  title: str
  anchor: str
  d_model: int
  horizon: int
  steps: int
  learning_rate: float
  batch: Callable
  loss: Callable
  evaluate: Callable
  model_kwargs: dict
  score: str
  higher_is_better: bool
  solved: Callable = None
  eval_every: int = 100
  stop_when_solved: bool = False
  num_blocks: int = 2
  block_options: dict = dataclasses.field(default_factory=dict)


# ------------------------------------------------------------------ tasks
def adding_task(smoke: bool) -> Task:
  T, B = (40, 8) if smoke else (1000, 32)
  test = adding_batch(jax.random.key(10_000), 64 if smoke else 512, T)

  def loss(model, params, batch):
    xs, targets = batch
    _, ys = jaxrnn.scan(model, params, xs)
    return train.regression_loss(ys[:, -1, 0], targets)[0]

  def evaluate(model, params):
    return {"mse": float(loss(model, params, test))}

  return Task("adding", f"Adding problem, T={T}", "solved: MSE < 0.01 (mean predictor 0.167)",
              d_model=16 if smoke else 32, horizon=T, steps=20 if smoke else 1000,
              learning_rate=3e-3, batch=lambda key: adding_batch(key, B, T), loss=loss,
              evaluate=evaluate, model_kwargs=dict(input_size=2, num_outputs=1),
              score="mse", higher_is_better=False, solved=lambda s: s < 0.01,
              eval_every=10 if smoke else 100, stop_when_solved=True,
              # Measured: with the convolution as well as the MLP, 2 GRU blocks
              # solved it in 1 of 4 seeds within 600-700 steps; without it, in 2 of 2
              # (MLP) and 3 of 3 (no MLP either). See the README's Learning.
              block_options=dict(conv_size=0))


def selective_copy_batch(key, batch_size: int, length: int, copies: int, values: int):
  """Tokens ``(B, length + copies)``: ``copies`` value tokens (1..values) at
  random sorted positions among noise (0) in the first ``length``, then
  ``copies`` markers (values + 1); the targets are the values in order, to
  be read at the markers."""
  k_pos, k_val = jax.random.split(key)
  scores = jax.random.uniform(k_pos, (batch_size, length))
  positions = jnp.sort(jnp.argsort(scores, axis=1)[:, :copies], axis=1)
  vals = jax.random.randint(k_val, (batch_size, copies), 1, values + 1)
  tokens = jnp.zeros((batch_size, length), jnp.int32)
  tokens = jax.vmap(lambda t, p, v: t.at[p].set(v))(tokens, positions, vals)
  markers = jnp.full((batch_size, copies), values + 1, jnp.int32)
  return jnp.concatenate([tokens, markers], axis=1), vals - 1


def selective_copy_task(smoke: bool) -> Task:
  L, copies, values, B = (24, 4, 4, 8) if smoke else (128, 16, 8, 64)
  test = selective_copy_batch(jax.random.key(10_000), 64 if smoke else 512, L, copies, values)

  def logits(model, params, tokens):
    return jaxrnn.scan(model, params, tokens)[1][:, -copies:]

  def loss(model, params, batch):
    tokens, targets = batch
    return train.classification_loss(logits(model, params, tokens), targets)[0]

  def evaluate(model, params):
    tokens, targets = test
    right = jnp.argmax(logits(model, params, tokens), -1) == targets
    return {"accuracy": float(right.mean())}

  return Task("selective_copy", f"Selective copy, {L} tokens, {copies} to copy",
              "minGRU / minLSTM, 2 layers, L=4096: 96.8% / 85.7% (Feng et al. 2024)",
              d_model=16 if smoke else 64, horizon=L + copies, steps=20 if smoke else 1500,
              learning_rate=3e-3,
              batch=lambda key: selective_copy_batch(key, B, L, copies, values), loss=loss,
              evaluate=evaluate, model_kwargs=dict(vocab_size=values + 2, num_outputs=values),
              score="accuracy", higher_is_better=True, solved=lambda s: s > 0.95,
              eval_every=10 if smoke else 250, stop_when_solved=True,
              # Measured (minGRU blocks, L=256, 750 steps): 16.7% with the convolution,
              # 28.1% without it, and each step twice as fast. See the README's Learning.
              block_options=dict(conv_size=0))


def mnist1d_task(smoke: bool) -> Task:
  from mnist1d.data import get_dataset_args, make_dataset  # the `learn` extra
  data = make_dataset(get_dataset_args())
  x, y = data["x"].astype(np.float32)[..., None], data["y"].astype(np.int32)
  x_test, y_test = data["x_test"].astype(np.float32)[..., None], data["y_test"]
  if smoke:
    x, y, x_test, y_test = x[:64], y[:64], x_test[:64], y_test[:64]
  B = 8 if smoke else 100

  def batch(key):
    idx = jax.random.randint(key, (B,), 0, len(x))
    return jnp.asarray(x)[idx], jnp.asarray(y)[idx]

  def loss(model, params, batch):
    xs, labels = batch
    return train.classification_loss(jaxrnn.scan(model, params, xs)[1][:, -1], labels)[0]

  def evaluate(model, params):
    logits = jaxrnn.scan(model, params, jnp.asarray(x_test))[1][:, -1]
    return {"accuracy": float((jnp.argmax(logits, -1) == y_test).mean())}

  return Task("mnist1d", "MNIST-1D (4000 train, 1000 test, length 40)",
              "GRU 91%, CNN 94%, MLP 68% (mnist1d README)",
              d_model=16 if smoke else 64, horizon=x.shape[1], steps=20 if smoke else 4000,
              learning_rate=3e-3, batch=batch, loss=loss, evaluate=evaluate,
              model_kwargs=dict(input_size=1, num_outputs=10), score="accuracy",
              higher_is_better=True, solved=lambda s: s >= 0.91,
              eval_every=10 if smoke else 500)


def shakespeare_task(smoke: bool) -> Task:
  text = load_corpus(10 ** 8, "shakespeare")
  if smoke:
    text = text[:20_000]
  chars = sorted(set(text))
  ids = np.frombuffer(text.encode("ascii"), np.uint8)
  table = np.zeros(256, np.int32)
  table[[ord(c) for c in chars]] = np.arange(len(chars))
  data = jnp.asarray(table[ids])
  split = int(0.9 * len(data))
  train_data, val_data = data[:split], data[split:]
  T, B = (16, 4) if smoke else (128, 32)

  def windows(key, source, n):
    start = jax.random.randint(key, (n,), 0, len(source) - T - 1)
    idx = start[:, None] + jnp.arange(T + 1)
    return source[idx]

  def loss(model, params, batch):
    ys = jaxrnn.scan(model, params, batch[:, :-1])[1]
    return train.language_model_loss(ys, batch[:, 1:])[0]

  val_batches = [windows(jax.random.key(10_000 + i), val_data, 64)
                 for i in range(2 if smoke else 16)]

  def evaluate(model, params):
    return {"nats": float(np.mean([loss(model, params, b) for b in val_batches]))}

  task = Task("shakespeare", f"Character LM, Shakespeare ({len(text) / 1e6:.2f} M chars, "
              f"context {T})", "nanoGPT CPU setting: 1.88 nats (tiny-shakespeare)",
              d_model=16 if smoke else 128, horizon=T, steps=20 if smoke else 375,
              learning_rate=2e-3, batch=lambda key: windows(key, train_data, B), loss=loss,
              evaluate=evaluate, model_kwargs=dict(vocab_size=len(chars),
                                                   num_outputs=len(chars)),
              score="nats", higher_is_better=False, solved=lambda s: s < 1.88,
              eval_every=10 if smoke else 125)
  task.chars = chars
  return task


TASKS = {"adding": adding_task, "selective_copy": selective_copy_task,
         "mnist1d": mnist1d_task, "shakespeare": shakespeare_task}
# The rows `make learn` runs (the README's tables); --cells all runs every row.
DEFAULT_ROWS = {
    "adding": "lstm_chrono,min_gru,gru,rg_lru,griffin,mlstm",
    "selective_copy": "min_gru,mlstm,griffin",
    "mnist1d": "lstm,gru,min_gru,rg_lru,mamba",
    "shakespeare": "lstm,griffin",
}
# One row per task, a cell block and a paper's block among them.
SMOKE_ROWS = {"adding": "min_gru", "selective_copy": "mamba", "mnist1d": "lstm",
              "shakespeare": "lstm"}


# -------------------------------------------------------------- training
def sample(model, params, chars, prompt: str, length: int, key) -> str:
  """Characters drawn one step at a time with the model's step form."""
  index = {c: i for i, c in enumerate(chars)}
  step = jax.jit(model.__call__)
  carry = model.initial_carry(params, (), jnp.float32)
  for c in prompt:
    carry, logits = step(params, carry, jnp.asarray(index[c], jnp.int32))
  out = []
  for k in jax.random.split(key, length):
    token = jax.random.categorical(k, logits / 0.8)
    out.append(chars[int(token)])
    carry, logits = step(params, carry, token.astype(jnp.int32))
  return prompt + "".join(out)


def build_model(task: Task, row: str) -> blocks.SequenceModel:
  """The row's model for the task: its block, at the row's depth or the task's."""
  make_block = ROWS[row][1]
  takes_options = getattr(make_block, "takes_options", False)  # a paper's block: fixed
  block = (make_block(task.horizon, **task.block_options) if takes_options
           else make_block())
  num_blocks = getattr(make_block, "num_blocks", None) or task.num_blocks
  return blocks.SequenceModel((block,) * num_blocks, d_model=task.d_model,
                              **task.model_kwargs)


def run_row(task: Task, row: str, seed: int, steps: int):
  label = ROWS[row][0]
  model = build_model(task, row)
  k_init, k_data = jax.random.split(jax.random.key(seed))
  params = model.init(k_init)
  n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params))
  optimizer = train.make_optimizer(task.learning_rate, clip_norm=1.0,
                                   warmup_steps=min(100, steps // 10), total_steps=steps)
  state = train.create_train_state(params, optimizer)
  loss_fn = lambda params, batch: (task.loss(model, params, batch), {})
  step_fn = train.make_train_step(loss_fn, optimizer)
  evaluate = lambda params: task.evaluate(model, params)
  curve, solved_at, start = [], None, time.perf_counter()
  for step in range(1, steps + 1):
    state, _ = step_fn(state, task.batch(jax.random.fold_in(k_data, step)))
    if step % task.eval_every == 0 or step == steps:
      score = evaluate(state.params)[task.score]
      seconds = time.perf_counter() - start
      curve.append((step, seconds, score))
      if solved_at is None and task.solved is not None and task.solved(score):
        solved_at = (step, seconds)
        if task.stop_when_solved:
          break
  final = curve[-1][2]
  best = (max if task.higher_is_better else min)(s for _, _, s in curve)
  result = {"task": task.name, "row": row, "label": label, "seed": seed,
            "params": n_params, "budget": steps, "steps": curve[-1][0], "seconds": curve[-1][1],
            "final": final, "best": best, "curve": curve,
            "solved_step": solved_at and solved_at[0],
            "solved_seconds": solved_at and solved_at[1]}
  return result, model, state.params


def merge(saved: list, new: list) -> list:
  """``saved`` runs with ``new`` ones replacing those of the same row, budget
  and seed, in the order of ``ROWS``, then of the budgets and the seeds."""
  runs = {(r["row"], r["budget"], r["seed"]): r for r in saved + new}
  order = {row: i for i, row in enumerate(ROWS)}
  return sorted(runs.values(),
                key=lambda r: (order.get(r["row"], len(order)), r["budget"], r["seed"]))


def save(out: pathlib.Path, stem: str, task: Task, results: list) -> str:
  """Writes the task's table and JSON to ``out``; returns the table."""
  section = table(task, results)
  (out / f"{stem}_{task.name}.md").write_text(section + "\n")
  (out / f"{stem}_{task.name}.json").write_text(json.dumps(
      {"task": task.name, "title": task.title, "anchor": task.anchor, "score": task.score,
       "budget": task.steps, "backend": jax.default_backend(), "results": results}, indent=1))
  return section


def row_label(run: dict, task_budget: int) -> str:
  """A run's label, with its budget when that is not the task's."""
  return run["label"] + ("" if run["budget"] == task_budget else f", {run['budget']} steps")


def table(task: Task, results: list) -> str:
  fmt = (lambda s: f"{100 * s:.1f}%") if task.score == "accuracy" else (lambda s: f"{s:.4f}")
  lines = [f"### {task.title}", "", f"Anchor: {task.anchor}.", "",
           f"| row | params | seeds | {task.score} (median) | best | steps | seconds | solved at (step, s) |",
           "|---|---|---|---|---|---|---|---|"]
  by_row = {}  # a run with another budget than the task's is a row of its own
  for r in results:
    by_row.setdefault((r["row"], r["budget"]), []).append(r)
  for (row, budget), runs in by_row.items():
    label = row_label(runs[0], task.steps)
    finals = [r["final"] for r in runs]
    solved = [f"{r['solved_step']}, {r['solved_seconds']:.0f}" if r["solved_step"] else "no"
              for r in runs]
    lines.append(f"| {label} | {runs[0]['params']:,} | {len(runs)} | "
                 f"{fmt(float(np.median(finals)))} | "
                 f"{fmt((max if task.higher_is_better else min)(r['best'] for r in runs))} | "
                 f"{int(np.median([r['steps'] for r in runs]))} | "
                 f"{np.median([r['seconds'] for r in runs]):.0f} | {'; '.join(solved)} |")
  return "\n".join(lines)


def plot(out: pathlib.Path, stem: str) -> pathlib.Path:
  """One panel per task whose results are in ``out``: the test metric of
  each row (its first seed) over training."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  saved = [json.loads((out / f"{stem}_{name}.json").read_text()) for name in TASKS
           if (out / f"{stem}_{name}.json").exists()]
  fig, axes = plt.subplots(1, len(saved), figsize=(4.5 * len(saved), 3.8), squeeze=False)
  for ax, task in zip(axes[0], saved):
    first = min(r["seed"] for r in task["results"])
    shown = [r for r in task["results"] if r["seed"] == first]
    for i, r in enumerate(shown):  # ten colours, then the same ones dashed
      steps, _, scores = zip(*r["curve"])
      ax.plot(steps, scores, label=row_label(r, task["budget"]), color=f"C{i % 10}",
              linestyle=("-", "--", ":")[i // 10 % 3])
    ax.set_title(task["title"], fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel(task["score"])
    if task["score"] == "mse":
      ax.set_yscale("log")
    ax.legend(fontsize=6)
  fig.tight_layout()
  path = out / f"{stem}.png"
  fig.savefig(path, dpi=110)
  return path


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--tasks", default=",".join(TASKS))
  parser.add_argument("--cells", default=None,
                      help=f"rows, comma-separated, or 'all' (of {', '.join(ROWS)}); "
                           "default: each task's default rows")
  parser.add_argument("--seeds", type=int, default=1, help="how many seeds per row")
  parser.add_argument("--first-seed", type=int, default=0,
                      help="the first seed (with --merge, to add seeds to saved runs)")
  parser.add_argument("--steps", type=int, default=None, help="override each task's budget")
  parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, one row per task")
  parser.add_argument("--merge", action="store_true",
                      help="add the runs to the task's saved results in --out, replacing "
                           "those of the same row and seed, instead of starting anew")
  args = parser.parse_args(argv)
  tasks = {}
  for name in args.tasks.split(","):
    if name not in TASKS:
      parser.error(f"--tasks: expected names from {tuple(TASKS)}, got {name!r}")
    tasks[name] = TASKS[name](args.smoke)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  stem = "learning_smoke" if args.smoke else "learning"
  for name, task in tasks.items():
    rows = args.cells or (SMOKE_ROWS if args.smoke else DEFAULT_ROWS)[name]
    rows = list(ROWS) if rows == "all" else rows.split(",")
    for row in rows:
      if row not in ROWS:
        parser.error(f"--cells: expected names from {tuple(ROWS)}, got {row!r}")
    saved = out / f"{stem}_{name}.json"
    earlier = (json.loads(saved.read_text())["results"] if args.merge and saved.exists()
               else [])
    task_results = []
    for row in rows:
      for seed in range(args.first_seed, args.first_seed + args.seeds):
        result, model, params = run_row(task, row, seed, args.steps or task.steps)
        task_results.append(result)
        solved = (f", solved at step {result['solved_step']}" if result["solved_step"] else "")
        print(f"{name:15s} {result['label']:26s} seed {seed}: {task.score} "
              f"{result['final']:.4f} after {result['steps']} steps, "
              f"{result['seconds']:.0f} s{solved}", flush=True)
        if name == "shakespeare":
          text = sample(model, params, task.chars, "ROMEO.\n", 40 if args.smoke else 300,
                        jax.random.key(seed))
          result["sample"] = text
          print(text, flush=True)
        # Saved after every run, so that an interrupted suite keeps what it did.
        section = save(out, stem, task, merge(earlier, task_results))
    print(section + "\n", flush=True)
  # The figure and the joint table cover every task whose results are in out/.
  tables = [(out / f"{stem}_{n}.md").read_text() for n in TASKS
            if (out / f"{stem}_{n}.md").exists()]
  (out / f"{stem}.md").write_text("\n".join(tables))
  print(f"wrote {out / stem}_<task>.md and .json, {out / stem}.md and {plot(out, stem)}")


if __name__ == "__main__":
  main()
