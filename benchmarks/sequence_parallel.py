"""Sequence parallelism on this machine: a linear recurrence's time axis
split over D forced CPU devices against one device, forward and
forward+backward, interleaved (every variant once per round), medians.

  python benchmarks/sequence_parallel.py              # D = 2 (this machine's cores)
  python benchmarks/sequence_parallel.py --devices 4 --T 65536

The device count is fixed when JAX starts, so this script sets XLA_FLAGS
itself before importing JAX.
"""

import argparse
import dataclasses
import os
import sys
import time

parser = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--devices", type=int, default=2)
parser.add_argument("--T", type=int, default=16384)
parser.add_argument("--B", type=int, default=4)
parser.add_argument("--H", type=int, default=256)
parser.add_argument("--rounds", type=int, default=7)
parser.add_argument("--cells", default="min_gru,rg_lru")
args = parser.parse_args()
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           f" --xla_force_host_platform_device_count={args.devices}")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxrnn  # noqa: E402

CELLS = {"min_gru": jaxrnn.MinGRUCell(method="associative"),
         "rg_lru": jaxrnn.RGLRUCell(method="associative"),
         "min_gru_seq": jaxrnn.MinGRUCell(method="sequential")}
mesh = Mesh(np.array(jax.devices()), ("time",))
xs = jax.random.normal(jax.random.key(0), (args.B, args.T, args.H))


def variants(name):
  cell = CELLS[name]
  params = cell.init(jax.random.key(1), args.H, args.H)
  out = {}
  for label, c in ((f"1 device ({cell.resolved_method()})", cell),
                   (f"{args.devices} devices", dataclasses.replace(cell, sequence_mesh=mesh))):
    fwd = jax.jit(lambda p, x, c=c: jaxrnn.scan(c, p, x)[1])
    grad = jax.jit(jax.grad(lambda p, x, c=c: jnp.sum(jaxrnn.scan(c, p, x)[1] ** 2)))
    out[(label, "fwd")] = lambda f=fwd, p=params: f(p, xs)
    out[(label, "fwd+bwd")] = lambda g=grad, p=params: g(p, xs)
  return out


rows = []
for name in args.cells.split(","):
  runs = variants(name)
  for f in runs.values():  # compile
    jax.block_until_ready(f())
  times = {k: [] for k in runs}
  for _ in range(args.rounds):
    for k, f in runs.items():
      start = time.perf_counter()
      jax.block_until_ready(f())
      times[k].append(1e3 * (time.perf_counter() - start))
  for mode in ("fwd", "fwd+bwd"):
    one, many = [np.median(v) for (label, m), v in times.items() if m == mode]
    rows.append(f"| {name} | {mode} | {one:.1f} | {many:.1f} | {one / many:.2f}x |")

print(f"B={args.B} T={args.T} H={args.H}, float32, {args.rounds} interleaved rounds, "
      f"{os.cpu_count()} cores, {args.devices} forced CPU devices; median ms")
print("| cell | pass | 1 device | split over devices | speed-up |")
print("|---|---|---|---|---|")
print("\n".join(rows))
