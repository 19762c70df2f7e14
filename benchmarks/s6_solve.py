"""S6's sequential solve: coefficients in the loop against materialised.

The linear engine's sequential solve computes S6's ``(D, N)`` coefficients
step by step inside the loop (``coefficients_in_loop``); before, it made
``(T, *batch, D, N)`` arrays of them and scanned over those. This script
times both, interleaved (one call of each per round, medians over rounds),
for a layer's forward and its forward and backward, and prints the table.

  python benchmarks/s6_solve.py                 # B=32, T=1000, D=128, N=16
  python benchmarks/s6_solve.py --rounds 3 --length 256
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn


class MaterialisedS6(jaxrnn.SelectiveSSMCell):
  """S6 solved from materialised ``(T, *batch, D, N)`` coefficients."""

  coefficients_in_loop = False


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--length", type=int, default=1000)
  parser.add_argument("--channels", type=int, default=128)
  parser.add_argument("--rounds", type=int, default=7)
  args = parser.parse_args(argv)
  cells = {"in the loop": jaxrnn.SelectiveSSMCell(method="sequential"),
           "materialised": MaterialisedS6(method="sequential")}
  params = cells["in the loop"].init(jax.random.key(0), args.channels, args.channels)
  xs = jax.random.normal(jax.random.key(1), (args.batch, args.length, args.channels))
  fns = {}
  for name, cell in cells.items():
    fwd = jax.jit(lambda p, x, c=cell: jaxrnn.scan(c, p, x)[1])
    grad = jax.jit(jax.grad(lambda p, x, c=cell: jnp.sum(jnp.sin(jaxrnn.scan(c, p, x)[1]))))
    fns[name, "forward"], fns[name, "forward + backward"] = fwd, grad
  want = fns["materialised", "forward"](params, xs)
  np.testing.assert_allclose(fns["in the loop", "forward"](params, xs), want,
                             rtol=1e-5, atol=1e-5)
  for fn in fns.values():  # compile
    jax.block_until_ready(fn(params, xs))
  times = {key: [] for key in fns}
  for _ in range(args.rounds):
    for key, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn(params, xs))
      times[key].append(time.perf_counter() - start)
  print(f"S6 layer, batch {args.batch}, T={args.length}, D={args.channels}, N=16, "
        f"{jax.devices()[0].platform}; medians of {args.rounds} interleaved rounds\n")
  print("| pass | materialised (s) | in the loop (s) | speed-up |")
  print("|---|---|---|---|")
  for what in ("forward", "forward + backward"):
    old = float(np.median(times["materialised", what]))
    new = float(np.median(times["in the loop", what]))
    print(f"| {what} | {old:.3f} | {new:.3f} | {old / new:.2f}× |")


if __name__ == "__main__":
  main()
