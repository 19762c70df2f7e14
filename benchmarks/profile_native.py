"""Where the native kernels' time goes: per-step microseconds of each phase.

  python benchmarks/profile_native.py                 # the issue's shapes
  python benchmarks/profile_native.py --cell gru --B 1 --T 1000 --I 64 --H 128

For each mode (forward for inference, forward+backward for training), runs
the jit-compiled layer --runs times with the kernels' phase timers on
(jaxrnn._native.profile) and prints the median wall time per call next to
the phases' share, in microseconds per step:

  projection  x W_i + b, one GEMM per chunk of steps (forward)
  recurrent   each step's h W_h (forward) or dz W_h^T (backward) GEMM
  gate_math   each step's elementwise math, and its copies
  carries     backward: gathering the carry before each step
  weights     backward: dW_h, dW_i, dX (three GEMMs over all steps), biases

The remainder ("other") is XLA around the kernels: the forward kernel's
share of a training step, argument copies and the loss.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn import _native

CELLS = {"lstm": jaxrnn.LSTMCell(), "gru": jaxrnn.GRUCell(), "rnn": jaxrnn.SimpleRNNCell(),
         "gru_before": jaxrnn.GRUCell(reset_after=False), "cifg": jaxrnn.CIFGLSTMCell(),
         "peephole": jaxrnn.PeepholeLSTMCell()}
PHASES = ("pack", "recurrent", "gate_math", "barrier", "carries", "weights")


def profile(cell, B, T, I, H, runs):
  params = cell.init(jax.random.key(0), I, H)
  xs = jax.random.normal(jax.random.key(1), (B, T, I))
  forward = lambda p, x: jaxrnn.scan(cell, p, x, impl="native")[1]
  modes = {"fwd": jax.jit(forward),
           "fwd+bwd": jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(forward(p, x) ** 2)))}
  rows = []
  for mode, fn in modes.items():
    jax.block_until_ready(fn(params, xs))
    _native.profile(True)
    times = []
    for _ in range(runs):
      start = time.perf_counter()
      jax.block_until_ready(fn(params, xs))
      times.append(time.perf_counter() - start)
    phases = _native.profile(False)
    per_step = {k: 1e6 * v / runs / T for k, v in phases.items()}
    total = 1e6 * statistics.median(times) / T
    rows.append((mode, total, per_step))
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cell", default="", help=f"one of {sorted(CELLS)} (default: lstm and gru)")
  parser.add_argument("--B", type=int, default=32)
  parser.add_argument("--T", type=int, default=256)
  parser.add_argument("--I", type=int, default=128)
  parser.add_argument("--H", type=int, default=256)
  parser.add_argument("--runs", type=int, default=7)
  args = parser.parse_args(argv)
  if not _native.available():
    parser.error(f"the native kernels are not available: {_native.status()}")
  names = [args.cell] if args.cell else ["lstm", "gru"]
  print("| cell | B | T | I | H | mode | µs/step (median call) | "
        + " | ".join(PHASES) + " | other |")
  print("|---" * (8 + len(PHASES)) + "|")
  for name in names:
    for mode, total, per_step in profile(CELLS[name], args.B, args.T, args.I, args.H,
                                         args.runs):
      other = total - sum(per_step.values())
      print(f"| {name} | {args.B} | {args.T} | {args.I} | {args.H} | {mode} | {total:.0f} | "
            + " | ".join(f"{per_step[p]:.0f}" for p in PHASES) + f" | {other:.0f} |")


if __name__ == "__main__":
  main()
