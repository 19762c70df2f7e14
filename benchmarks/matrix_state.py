"""The matrix-state cells: chunkwise against sequential, and against memax.

Forward and forward+backward (the gradient of ``sum(ys)`` with respect to
params and inputs), B=4, d_model=256, 4 heads (d_k = d_v = 64), float32,
T in {256, 1024, 4096, 16384}. Within each (T, mode) every implementation is
timed once per round, round after round (``bench.interleaved``), and the
table gives medians and their ratios from the same run.

- ``chunkwise``: jaxrnn's default for these cells (the chunkwise engine);
- ``sequential``: the same cell with ``method="sequential"``, its own step
  under ``lax.scan``;
- ``memax``: memax 0.1.1's DeltaNet and GDN (equinox), an associative scan
  over ``d × d`` transition matrices. memax has one head; it is given
  ``recurrent_size=128``, so its state (128 × 128) equals the 4 × 64 × 64 of
  jaxrnn's. Its rows stop at T=1024 at the default: the scan keeps ``T``
  matrices of ``d × d`` for each of two operands (T=4096: 1 GiB per batch
  row forward, several in the backward), and runs ``O(T d³)``. memax is
  timed apart, interleaved with its cell's chunkwise form alone: whatever
  ran right after its scan paid the page faults of the gigabytes it gave
  back (in one shared rotation the chunkwise rows that followed it took up
  to 3x their time).

memorax (1.0.1) is not compared: it requires wandb, neptune-scale,
tensorboardx, gymnax, flashbax and distrax to install.

Also: the peak memory of a training step at T=16384, from XLA's compiled
memory analysis (the temporary buffers of the whole step), chunkwise against
sequential.

Run: ``python benchmarks/matrix_state.py [--rounds 5] [--lengths 256,1024]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

import jax
import jax.numpy as jnp

import jaxrnn

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import bench  # noqa: E402  pylint: disable=wrong-import-position

B, D, HEADS = 4, 256, 4
CELLS = {
    "mLSTM": jaxrnn.MLSTMCell(num_heads=HEADS),
    "GLA": jaxrnn.GLACell(num_heads=HEADS),
    "DeltaNet": jaxrnn.DeltaNetCell(num_heads=HEADS),
    "Gated DeltaNet": jaxrnn.GatedDeltaNetCell(num_heads=HEADS),
}
MEMAX = {"DeltaNet": "memax.equinox.semigroups.delta:DeltaNet",
         "Gated DeltaNet": "memax.equinox.semigroups.gdn:GDN"}


def jaxrnn_case(cell, T, mode):
  params = cell.init(jax.random.key(0), D, D)
  xs = jax.random.normal(jax.random.key(1), (B, T, D))
  if mode == "fwd":
    fn = jax.jit(lambda p, x: jaxrnn.scan(cell, p, x)[1])
  else:
    fn = jax.jit(jax.grad(lambda p, x: jnp.sum(jaxrnn.scan(cell, p, x)[1]),
                          argnums=(0, 1)))
  return lambda: fn(params, xs)


def memax_case(name, T, mode):
  import importlib  # pylint: disable=import-outside-toplevel
  import equinox as eqx  # pylint: disable=import-outside-toplevel
  module, cls = MEMAX[name].split(":")
  model = getattr(importlib.import_module(module), cls)(D, 128, key=jax.random.key(0))
  xs = jax.random.normal(jax.random.key(1), (B, T, D))
  starts = jnp.zeros((B, T), bool)

  def layer(m, x, s):
    return m(m.initialize_carry(), (x, s))[1]

  batched = jax.vmap(layer, in_axes=(None, 0, 0))
  if mode == "fwd":
    fn = eqx.filter_jit(batched)
    return lambda: fn(model, xs, starts)
  fn = eqx.filter_jit(eqx.filter_grad(
      lambda m, x, s: jnp.sum(batched(m, x, s))))
  return lambda: fn(model, xs, starts)


def peak_mb(cell, T) -> float:
  """XLA's temporary memory of a training step (loss, gradients), in MB."""
  params = cell.init(jax.random.key(0), D, D)
  xs = jax.ShapeDtypeStruct((B, T, D), jnp.float32)
  step = jax.jit(jax.grad(lambda p, x: jnp.sum(jaxrnn.scan(cell, p, x)[1] ** 2)))
  analysis = step.lower(params, xs).compile().memory_analysis()
  return analysis.temp_size_in_bytes / 2 ** 20


def chunk_sweep(T: int, rounds: int, sizes=(16, 32, 64, 128)) -> str:
  """Forward+backward at each chunk size, interleaved per cell: the
  measurement behind each family's ``default_chunk_size``."""
  lines = [f"| cell | " + " | ".join(f"C={C} ms" for C in sizes) + " | fastest |",
           "|---|" + "---|" * (len(sizes) + 1)]
  for name, cell in CELLS.items():
    cases = [bench.Case(str(C), jaxrnn_case(dataclasses.replace(cell, chunk_size=C),
                                            T, "fwd+bwd")) for C in sizes]
    medians = [1e3 * s for s in bench.interleaved(cases, rounds)]
    best = sizes[medians.index(min(medians))]
    lines.append(f"| {name} | " + " | ".join(f"{m:.1f}" for m in medians)
                 + f" | {best} |")
    print(lines[-1], flush=True)
  return "\n".join(lines)


def main(argv=None) -> str:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--lengths", default="256,1024,4096,16384")
  parser.add_argument("--memax-max-T", type=int, default=1024)
  parser.add_argument("--chunk-sweep", type=int, default=0, metavar="T",
                      help="only time forward+backward at chunk sizes 16-128 for T steps")
  parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results"
                                            / "matrix_state.md"))
  args = parser.parse_args(argv)
  if args.chunk_sweep:
    table = chunk_sweep(args.chunk_sweep, args.rounds)
    out = pathlib.Path(args.out).with_name("matrix_state_chunks.md")
    out.write_text(f"Forward+backward, T={args.chunk_sweep}, B={B}, d_model={D}, "
                   f"{HEADS} heads, float32, medians of {args.rounds} interleaved "
                   f"rounds:\n\n{table}\n")
    print(f"wrote {out}")
    return table
  try:
    import memax  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    have_memax = True
  except ImportError:
    have_memax = False
    print("memax is not installed (pip install -e '.[bench]'): its rows are "
          "marked so", file=sys.stderr)
  lines = ["| T | mode | cell | chunkwise ms | sequential ms | sequential ÷ chunkwise "
           "| memax ms | memax ÷ chunkwise |", "|---|---|---|---|---|---|---|---|"]
  for T in (int(t) for t in args.lengths.split(",")):
    for mode in ("fwd", "fwd+bwd"):
      # chunkwise against sequential, all cells interleaved; memax apart, each
      # against its cell's chunkwise form: its scan allocates gigabytes, and
      # whatever runs next pays the page faults of the memory it gave back.
      cases = {}
      for name, cell in CELLS.items():
        cases[(name, "chunkwise")] = bench.Case(name, jaxrnn_case(cell, T, mode))
        sequential = dataclasses.replace(cell, method="sequential")
        cases[(name, "sequential")] = bench.Case(name, jaxrnn_case(sequential, T, mode))
      medians = dict(zip(cases, bench.interleaved(list(cases.values()), args.rounds)))
      for name in CELLS:
        chunk = 1e3 * medians[(name, "chunkwise")]
        seq = 1e3 * medians[(name, "sequential")]
        if have_memax and name in MEMAX and T <= args.memax_max_T:
          pair = [bench.Case("chunkwise", jaxrnn_case(CELLS[name], T, mode)),
                  bench.Case("memax", memax_case(name, T, mode))]
          own, mx = (1e3 * t for t in bench.interleaved(pair, args.rounds))
          memax_cells = f"{mx:.1f} | {mx / own:.1f}× (chunkwise {own:.1f} beside it)"
        elif name in MEMAX:
          why = "not installed" if not have_memax else f"not run above T={args.memax_max_T}"
          memax_cells = f"{why} | –"
        else:
          memax_cells = "no such cell | –"
        row = (f"| {T} | {mode} | {name} | {chunk:.1f} | {seq:.1f} | {seq / chunk:.2f}× "
               f"| {memax_cells} |")
        print(row, flush=True)
        lines.append(row)
  T_mem = max(int(t) for t in args.lengths.split(","))
  memory = [f"", f"Peak temporary memory of a training step (XLA's memory analysis), "
            f"T={T_mem}, B={B}, d_model={D}, {HEADS} heads:", "",
            "| cell | chunkwise MB | sequential MB | sequential ÷ chunkwise |",
            "|---|---|---|---|"]
  for name, cell in CELLS.items():
    chunk = peak_mb(cell, T_mem)
    seq = peak_mb(dataclasses.replace(cell, method="sequential"), T_mem)
    memory.append(f"| {name} | {chunk:.0f} | {seq:.0f} | {seq / chunk:.1f}× |")
  report = "\n".join(lines + memory)
  print("\n".join(memory))
  env = bench.environment()
  out = pathlib.Path(args.out)
  out.write_text("environment: " + ", ".join(f"{k}={v}" for k, v in env.items())
                 + f"\n\nB={B}, d_model={D}, {HEADS} heads, float32, medians of "
                 f"{args.rounds} interleaved rounds:\n\n" + report + "\n")
  print(f"wrote {out}")
  return report


if __name__ == "__main__":
  main()
