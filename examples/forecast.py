"""Time-series forecasting on the Mackey-Glass series (generated, tau=17).

A GRU (or LSTM) reads a window of past values and predicts the next one at
every step; after training it forecasts many steps ahead by feeding its own
predictions back, and the forecast is plotted against the truth.

  python examples/forecast.py                 # ~1 minute on 2 CPU cores
  python examples/forecast.py --cell lstm --horizon 500
  python examples/forecast.py --smoke
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
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


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cell", choices=("gru", "lstm"), default="gru")
  parser.add_argument("--hidden-size", type=int, default=64)
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

  cell = jaxrnn.GRUCell() if args.cell == "gru" else jaxrnn.LSTMCell()
  readout = jaxrnn.Linear()
  k_cell, k_out, k_data = jax.random.split(jax.random.key(args.seed), 3)
  params = (cell.init(k_cell, 1, args.hidden_size), readout.init(k_out, args.hidden_size, 1))

  def predict(params, carry, xs):
    carry, hs = jaxrnn.scan(cell, params[0], xs[..., None], initial_carry=carry)
    return carry, readout(params[1], hs)[..., 0]

  def loss_fn(params, batch):
    windows = batch  # (B, window + 1): predict each next value
    _, predictions = predict(params, None, windows[:, :-1])
    return train.regression_loss(predictions, windows[:, 1:])

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

  # Multi-step forecast: warm up on the window before the test part, then
  # feed each prediction back as the next input.
  @jax.jit
  def forecast(params, context, horizon_values):
    carry, predictions = predict(params, None, context[None])
    def step(carry_and_value, _):
      carry, value = carry_and_value
      carry, y = predict(params, carry, value.reshape(1, 1))
      return (carry, y[0, 0]), y[0, 0]
    _, ys = jax.lax.scan(step, (carry, predictions[0, -1]), horizon_values)
    return jnp.concatenate([predictions[0, -1:], ys[:-1]])

  context = jnp.asarray(series[3000 - args.window:3000])
  truth = test_part[:args.horizon]
  prediction = np.asarray(forecast(state.params, context, jnp.zeros(args.horizon)))
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
      {"cell": args.cell, "steps": args.steps,
       "rmse": {str(n): rmse(n) for n in sorted(set(horizons))}}, indent=1))
  print(f"wrote {results}/forecast.png, summary.json, metrics.json, metrics.csv")


if __name__ == "__main__":
  main()
