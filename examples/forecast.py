"""Time-series forecasting on the Mackey-Glass series (generated, tau=17;
Mackey & Glass 1977, "Oscillation and chaos in physiological control
systems", Science 197).

The model is a jaxrnn.blocks.SequenceModel: the value projected to d_model,
two pre-norm residual blocks around a GRU (or LSTM) (a width-4 causal
convolution, the cell, a GeGLU MLP), a final RMS norm and a linear read-out
of the next value. It is trained to predict the next value at every step of
a window. The forecast reads the observed series with jaxrnn.scan, keeps the
carry, then runs the model's one-step form, model(params, carry, x), fed back
its own predictions; the forecast is plotted against the truth.

  python examples/forecast.py                 # ~1.5 minutes on one CPU core
  python examples/forecast.py --cell lstm --horizon 500
  python examples/forecast.py --smoke
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn import blocks
from jaxrnn import train


def mackey_glass(n: int, tau: int = 17, beta=0.2, gamma=0.1, power=10, dt=0.1,
                 sample_every: int = 10, seed: int = 0) -> np.ndarray:
  """``dx/dt = beta x(t-tau) / (1 + x(t-tau)^power) - gamma x(t)``, Euler steps
  of ``dt``, sampled every ``sample_every`` steps (1 time unit)."""
  delay = int(tau / dt)
  rng = np.random.default_rng(seed)
  x = np.empty(n * sample_every + delay)
  x[:delay] = 1.2 + 0.01 * rng.standard_normal(delay)
  for t in range(delay, len(x)):
    lagged = x[t - delay]
    x[t] = x[t - 1] + dt * (beta * lagged / (1 + lagged ** power) - gamma * x[t - 1])
  return x[delay::sample_every][:n].astype(np.float32)


def make_model(args) -> blocks.SequenceModel:
  """``--blocks`` pre-norm blocks around the cell, between a projection of
  the value and a read-out of the next one."""
  cell = jaxrnn.GRUCell() if args.cell == "gru" else jaxrnn.LSTMCell()
  block = blocks.PreNormBlock(cell, hidden_size=args.hidden_size, conv_size=4,
                              mlp="geglu", expansion=2.0)
  return blocks.SequenceModel((block,) * args.blocks, d_model=args.d_model,
                              num_outputs=1, input_size=1)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cell", choices=("gru", "lstm"), default="gru")
  parser.add_argument("--blocks", type=int, default=2)
  parser.add_argument("--d-model", type=int, default=64, help="the residual stream's width")
  parser.add_argument("--hidden-size", type=int, default=None,
                      help="the cell's hidden size (default: --d-model)")
  parser.add_argument("--window", type=int, default=64)
  parser.add_argument("--batch-size", type=int, default=32)
  parser.add_argument("--steps", type=int, default=1500)
  parser.add_argument("--learning-rate", type=float, default=3e-3)
  parser.add_argument("--horizon", type=int, default=300, help="steps forecast ahead")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--results-dir", default="results/forecast")
  parser.add_argument("--no-progress", action="store_true")
  parser.add_argument("--smoke", action="store_true", help="a few steps, to check that it runs")
  args = parser.parse_args(argv)
  if args.smoke:
    args.steps, args.horizon, args.window = 10, 20, 16

  series = mackey_glass(4000, seed=args.seed)
  mean, std = series[:3000].mean(), series[:3000].std()
  series = (series - mean) / std
  train_part, test_part = series[:3000], series[3000:]

  model = make_model(args)
  k_model, k_data = jax.random.split(jax.random.key(args.seed))
  params = model.init(k_model)

  def loss_fn(params, windows):  # (B, window + 1): predict each next value
    _, predictions = jaxrnn.scan(model, params, windows[:, :-1, None])
    return train.regression_loss(predictions[..., 0], windows[:, 1:])

  train_series = jnp.asarray(train_part)
  def batch_fn(step):
    starts = jax.random.randint(jax.random.fold_in(k_data, step), (args.batch_size,), 0,
                                len(train_part) - args.window - 1)
    return jax.vmap(lambda s: jax.lax.dynamic_slice(train_series, (s,), (args.window + 1,)))(starts)

  optimizer = train.make_optimizer(args.learning_rate, total_steps=args.steps,
                                   warmup_steps=min(100, args.steps // 10))
  state, history = train.fit(train.make_train_step(loss_fn, optimizer),
                             train.create_train_state(params, optimizer), batch_fn,
                             num_steps=args.steps, log_every=max(args.steps // 20, 1),
                             progress=not args.no_progress, description=f"{args.cell}")

  # Multi-step forecast: warm up on the window before the test part (the
  # sequence form, which returns the carry), then run the one-step form from
  # that carry, each prediction fed back as the next input.
  @functools.partial(jax.jit, static_argnames="horizon")
  def forecast(params, context, horizon):
    carry, predictions = jaxrnn.scan(model, params, context[:, None])

    def step(carry_and_value, _):
      carry, value = carry_and_value
      carry, y = model(params, carry, value)
      return (carry, y), y

    first = predictions[-1]
    _, ahead = jax.lax.scan(step, (carry, first), length=horizon - 1)
    return jnp.concatenate([first[None], ahead])[:, 0]

  context = jnp.asarray(series[3000 - args.window:3000])
  truth = test_part[:args.horizon]
  prediction = np.asarray(forecast(state.params, context, args.horizon))
  rmse = lambda n: float(np.sqrt(np.mean((prediction[:n] - truth[:n]) ** 2)))
  horizons = [n for n in (10, 50, 100, args.horizon) if n <= args.horizon]
  print("forecast RMSE (normalised units) at horizon " +
        ", ".join(f"{n}: {rmse(n):.3f}" for n in sorted(set(horizons))))

  results = pathlib.Path(args.results_dir)
  history.write(results)
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(9, 3.5))
  ax.plot(np.arange(-args.window, 0), np.asarray(context), color="gray", label="context")
  ax.plot(truth, label="truth")
  ax.plot(prediction, "--", label=f"{args.cell} forecast")
  ax.set_xlabel("steps ahead")
  ax.set_title(f"Mackey-Glass, {args.horizon}-step forecast (fed back its own predictions)")
  ax.legend()
  fig.tight_layout()
  fig.savefig(results / "forecast.png", dpi=120)
  (results / "summary.json").write_text(json.dumps(
      {"cell": args.cell, "blocks": args.blocks, "d_model": args.d_model,
       "steps": args.steps,
       "rmse": {str(n): rmse(n) for n in sorted(set(horizons))}}, indent=1))
  print(f"wrote {results}/forecast.png, summary.json, metrics.json, metrics.csv")


if __name__ == "__main__":
  main()
