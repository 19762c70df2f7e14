"""Workloads users run, measured whole (part of ``make bench``):

1. **Rollout**: an RL agent acting with one-step calls inside a jitted
   ``lax.scan`` (B=16 environments, H=128, I=32, 256 steps), GRU and LSTM:
   jaxrnn's functional API on ``"auto"`` and ``"xla"``, ``jaxrnn.linen.Cell``
   as the body of ``nn.scan`` (the drop-in for Flax's cells), and Flax's own
   cell in ``lax.scan``. Microseconds per step, and the ratio to Flax.
2. **Training step** of a 2-layer LSTM language model (embedding of 64
   tokens, H=256, read-out, cross-entropy, Adam; B=32, T=128): jaxrnn on
   ``"auto"`` against the same model on Flax's ``OptimizedLSTMCell``.
3. **Per-step product** of the native forward (LSTM B=32 I=128 H=256): its
   GFLOP/s from the kernels' phase timers, as a fraction of the machine's
   float32 matmul peak measured here (XLA's dot, 2048^3).

  python benchmarks/workloads.py [--rounds 9]

Interleaved: every implementation once per round, medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import jaxrnn
import jaxrnn.linen
from jaxrnn import _native


def interleaved(fns: dict, rounds: int) -> dict:
  for fn in fns.values():
    jax.block_until_ready(fn())
  times = {k: [] for k in fns}
  for _ in range(rounds):
    for k, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn())
      times[k].append(time.perf_counter() - start)
  return {k: statistics.median(v) for k, v in times.items()}


# ------------------------------------------------------------------ rollout
class Rollout(nn.Module):
  """jaxrnn.linen.Cell as the body of nn.scan, as Flax users write it."""
  cell: jaxrnn.Cell
  hidden_size: int

  @nn.compact
  def __call__(self, carry, xs):
    scan = nn.scan(jaxrnn.linen.Cell, variable_broadcast="params",
                   split_rngs={"params": False})
    return scan(self.cell, self.hidden_size)(carry, xs)


def rollout_cases(name, B=16, I=32, H=128, steps=256):
  xs = jax.random.normal(jax.random.key(1), (steps, B, I))
  cell = {"gru": jaxrnn.GRUCell(), "lstm": jaxrnn.LSTMCell()}[name]
  params = cell.init(jax.random.key(0), I, H)
  carry = cell.initial_carry(params, (B,))
  cases = {}
  for impl in ("auto", "xla"):
    @jax.jit
    def roll(p, c, x, impl=impl):
      def body(c, x_t):
        c, y = jaxrnn.scan(cell, p, x_t[:, None], initial_carry=c, impl=impl)
        return c, y[:, 0]
      return jax.lax.scan(body, c, x)
    cases[f"jaxrnn scan ({impl})"] = lambda roll=roll: roll(params, carry, xs)

  module = Rollout(cell, H)
  c0 = jaxrnn.linen.Cell(cell, H).initialize_carry(jax.random.key(0), (B, I))
  vars_ = module.init(jax.random.key(0), c0, xs)
  roll_linen = jax.jit(module.apply)
  cases["jaxrnn.linen.Cell in nn.scan"] = lambda: roll_linen(vars_, c0, xs)

  flax_cell = {"gru": nn.GRUCell(H), "lstm": nn.OptimizedLSTMCell(H)}[name]
  fc0 = flax_cell.initialize_carry(jax.random.key(0), (B, I))
  fvars = flax_cell.init(jax.random.key(0), fc0, xs[0])
  roll_flax = jax.jit(lambda v, c, x: jax.lax.scan(lambda c, x_t: flax_cell.apply(v, c, x_t),
                                                   c, x))
  cases["flax cell in lax.scan"] = lambda: roll_flax(fvars, fc0, xs)
  return cases, steps


def rollout_table(rounds):
  lines = ["| cell | implementation | µs per step | ÷ Flax |", "|---|---|---|---|"]
  for name in ("gru", "lstm"):
    cases, steps = rollout_cases(name)
    med = interleaved(cases, rounds)
    flax_us = 1e6 * med["flax cell in lax.scan"] / steps
    for k, s in med.items():
      us = 1e6 * s / steps
      lines.append(f"| {name} | {k} | {us:.1f} | {us / flax_us:.2f} |")
  return "\n".join(lines)


# ------------------------------------------------------------ training step
class LM(nn.Module):
  """Embedding, two recurrent layers, read-out: `jaxrnn` picks jaxrnn's
  layer (``jaxrnn.linen.RNN`` on ``"auto"``) or Flax's ``OptimizedLSTMCell``."""
  vocab: int
  width: int
  jaxrnn: bool

  @nn.compact
  def __call__(self, tokens):
    x = nn.Embed(self.vocab, self.width)(tokens)
    for _ in range(2):
      if self.jaxrnn:
        x = jaxrnn.linen.RNN(jaxrnn.LSTMCell(), self.width)(x)[1]
      else:
        x = nn.RNN(nn.OptimizedLSTMCell(self.width))(x)
    return nn.Dense(self.vocab)(x)


def training_table(rounds, B=32, T=128, vocab=64, width=256):
  tokens = jax.random.randint(jax.random.key(0), (B, T + 1), 0, vocab)
  opt = optax.adam(1e-3)
  cases = {}
  for label, model in (("jaxrnn (auto)", LM(vocab, width, True)),
                       ("flax OptimizedLSTMCell", LM(vocab, width, False))):
    params = model.init(jax.random.key(1), tokens[:, :-1])
    state = opt.init(params)

    @jax.jit
    def step(params, state, model=model):
      def loss(p):
        logits = model.apply(p, tokens[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
      value, grads = jax.value_and_grad(loss)(params)
      updates, state = opt.update(grads, state, params)
      return optax.apply_updates(params, updates), state, value
    cases[label] = lambda step=step, params=params, state=state: step(params, state)
  med = interleaved(cases, rounds)
  base = med["flax OptimizedLSTMCell"]
  lines = [f"2-layer LSTM language model, B={B} T={T} width {width}, one Adam step:", "",
           "| implementation | ms per step | ÷ Flax |", "|---|---|---|"]
  lines += [f"| {k} | {1e3 * s:.1f} | {s / base:.2f} |" for k, s in med.items()]
  return "\n".join(lines)


# ------------------------------------------------------- per-step product
def product_fraction(rounds, B=32, T=256, I=128, H=256):
  a = jax.random.normal(jax.random.key(0), (2048, 2048))
  dot = jax.jit(lambda a: a @ a)
  peak = 2 * 2048 ** 3 / interleaved({"dot": lambda: dot(a)}, rounds)["dot"] / 1e9
  if not _native.available():
    return f"matmul peak {peak:.0f} GFLOP/s; native kernels not available ({_native.status()})"
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), I, H)
  xs = jax.random.normal(jax.random.key(1), (B, T, I))
  fwd = jax.jit(lambda p, x: jaxrnn.scan(cell, p, x, impl="native")[1])
  jax.block_until_ready(fwd(params, xs))
  _native.profile(True)
  for _ in range(rounds):
    jax.block_until_ready(fwd(params, xs))
  phases = _native.profile(False)
  flops = 2 * B * 4 * H * (I + H) * T * rounds  # [x_t, h] [W_i; W_h], every step
  rate = flops / phases["recurrent"] / 1e9
  return (f"per-step product (LSTM B={B} I={I} H={H}, x and h parts): {rate:.0f} GFLOP/s = "
          f"{rate / peak:.0%} of the measured float32 matmul peak ({peak:.0f} GFLOP/s, "
          f"XLA dot 2048^3); kernels: {_native.instruction_set()}")


def report(rounds: int) -> str:
  return "\n\n".join(["Rollout: one-step calls in a jitted scan, B=16 I=32 H=128, "
                      "256 steps:", rollout_table(rounds), training_table(rounds),
                      product_fraction(rounds)])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--rounds", type=int, default=9)
  print(report(parser.parse_args(argv).rounds))


if __name__ == "__main__":
  main()
