"""The measurement behind the native engine's cost rule (where "auto" takes
the native kernels and where it leaves a layer to XLA): native against the
fused XLA engine, forward and forward+backward, over short sequences.

  python benchmarks/engine_choice.py            # the grid below, 7 rounds

Every configuration of a round is timed once, round after round
(interleaved), and the table gives medians and the ratio native / xla of
the medians. The rule in jaxrnn/_src/engines/native.py (MIN_STEPS, and
MIN_WORK for the work of one step) is read off this table; the numbers that
justify it are pasted in benchmarks/results/engine_choice.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import jaxrnn

CELLS = {"lstm": jaxrnn.LSTMCell(), "gru": jaxrnn.GRUCell()}


def build(cell, impl, T, B, I, H):
  params = cell.init(jax.random.key(0), I, H)
  xs = jax.random.normal(jax.random.key(1), (B, T, I))
  run = lambda p, x: jaxrnn.scan(cell, p, x, impl=impl)[1]
  fwd = jax.jit(run)
  grad = jax.jit(jax.grad(lambda p, x: jnp.sum(run(p, x) ** 2)))
  return {"fwd": (fwd, params, xs), "fwd+bwd": (grad, params, xs)}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--steps", default="1,2,4,8,16,64")
  parser.add_argument("--shapes", default="1x64,16x128,64x256",
                      help="BxH pairs; I = H/2")
  args = parser.parse_args(argv)
  steps = [int(t) for t in args.steps.split(",")]
  shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
  configs = {}
  for name, cell in CELLS.items():
    for B, H in shapes:
      for T in steps:
        for impl in ("native", "xla"):
          for mode, fn in build(cell, impl, T, B, H // 2, H).items():
            configs[(name, B, H, T, mode, impl)] = fn
  for fn, p, x in configs.values():
    jax.block_until_ready(fn(p, x))
  times = {k: [] for k in configs}
  for _ in range(args.rounds):
    for k, (fn, p, x) in configs.items():
      start = time.perf_counter()
      jax.block_until_ready(fn(p, x))
      times[k].append(time.perf_counter() - start)
  med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
  print("| cell | B | H | T | mode | native µs | xla µs | native / xla |")
  print("|---|---|---|---|---|---|---|---|")
  for (name, B, H, T, mode, impl) in configs:
    if impl != "native":
      continue
    n, x = med[(name, B, H, T, mode, "native")], med[(name, B, H, T, mode, "xla")]
    print(f"| {name} | {B} | {H} | {T} | {mode} | {n:.0f} | {x:.0f} | {n / x:.2f} |")


if __name__ == "__main__":
  main()
