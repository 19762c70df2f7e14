"""jaxrnn against its peers, side by side in one process, interleaved.

  python benchmarks/bench.py            # the full table (about 20 minutes on 2 cores)
  python benchmarks/bench.py --quick    # one small configuration per cell
  python benchmarks/bench.py --only lstm --impls torch,jaxrnn-native

Interleaved: for each configuration and mode, every implementation is
compiled and warmed up first; then --runs rounds follow, and in each round
every implementation is timed once (in a rotating order), so that the noise
of a shared machine falls on all alike. Rows report the median over rounds.
jaxrnn appears three times: "jaxrnn native" (impl="native", the C++
kernels), "jaxrnn xla" (impl="xla", jax.lax.scan with the fused backward) and,
forward+backward only, "jaxrnn autodiff" (the same scan, differentiated by
JAX).

Each row: median wall time (float32), forward
or forward+backward (value_and_grad of sum(y**2) w.r.t. the params), GFLOP/s
counting the recurrent cell's matmuls only (an LSTM step is 8*B*H*(I+H)
FLOPs, forward+backward is counted as 3x forward), the ratio to torch and
to the best JAX peer, and compile time measured apart (lower + compile). The
long-sequence rows add the compiled program's peak temporary memory (JAX).
Peers that are not installed are skipped with a line saying so.

Then the workloads of benchmarks/workloads.py: one-step calls in a jitted
RL rollout, a training step of a 2-layer model, and the native per-step
product as a fraction of the machine's matmul peak; and the matrix-state
cells of benchmarks/matrix_state.py (chunkwise against sequential and memax,
about 15 minutes more).

Writes a markdown table to stdout and to benchmarks/results/latest.md, and
one JSON record per row to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn

GATES = {"lstm": 4, "gru": 3, "rnn": 1, "peephole": 4, "cifg": 3, "bilstm2": 4}
JAXRNN_CELLS = {
    "lstm": jaxrnn.LSTMCell(), "gru": jaxrnn.GRUCell(), "rnn": jaxrnn.SimpleRNNCell(),
    "peephole": jaxrnn.PeepholeLSTMCell(), "cifg": jaxrnn.CIFGLSTMCell(),
}


@dataclasses.dataclass(frozen=True)
class Config:
  cell: str
  B: int
  T: int
  I: int
  H: int
  modes: tuple = ("fwd", "fwd+bwd")
  memory: bool = False

  def flops(self, mode):
    layers = 4 if self.cell == "bilstm2" else 1  # 2 layers x 2 directions
    step = 2 * GATES[self.cell] * self.B * self.H * (self.I + self.H)
    return layers * step * self.T * (3 if mode == "fwd+bwd" else 1)


def configs(quick: bool):
  if quick:
    return [Config(c, 8, 32, 16, 32) for c in ("lstm", "gru", "rnn")]
  full = [Config(c, 32, 256, 128, 256) for c in ("lstm", "gru", "rnn", "peephole", "cifg")]
  full += [Config("lstm", 1, 1000, 64, 128), Config("gru", 1, 1000, 64, 128),
           Config("lstm", 64, 128, 256, 512), Config("gru", 64, 128, 256, 512),
           Config("bilstm2", 32, 256, 128, 256),
           Config("lstm", 8, 4096, 128, 128, modes=("fwd+bwd",), memory=True)]
  return full


# ------------------------------------------------------------------ timing
def block(tree):
  for leaf in jax.tree.leaves(tree):
    if hasattr(leaf, "block_until_ready"):
      leaf.block_until_ready()
  return tree


def time_calls(fn: Callable, runs: int) -> float:
  """Median of ``runs`` calls after a warm-up (for the memory table)."""
  fn()  # warm-up
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    block(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def interleaved(cases: list, rounds: int) -> list:
  """Median seconds of each case's ``call``, timed once per round in turn.

  Round r starts at case r (mod n), so no implementation always runs right
  after the same one.
  """
  for case in cases:
    block(case.call())  # warm-up
  times = [[] for _ in cases]
  for r in range(rounds):
    for i in range(len(cases)):
      j = (i + r) % len(cases)
      start = time.perf_counter()
      block(cases[j].call())
      times[j].append(time.perf_counter() - start)
  return [statistics.median(t) for t in times]


@dataclasses.dataclass
class Result:
  impl: str
  cell: str
  B: int
  T: int
  I: int
  H: int
  mode: str
  median_ms: float
  compile_s: Optional[float]
  gflops: float
  peak_mb: Optional[float] = None


@dataclasses.dataclass
class Case:
  """One implementation of one configuration and mode, ready to time."""
  impl: str
  call: Callable
  compile_s: Optional[float] = None
  peak_mb: Optional[float] = None


def jax_case(name, cfg, mode, forward, params, xs):
  """A JAX forward(params, xs) -> ys, or value_and_grad of sum(ys**2),
  compiled (compile time measured apart: lower + compile)."""
  if mode == "fwd":
    fn = forward
  else:
    fn = jax.value_and_grad(lambda p, x: jnp.sum(forward(p, x) ** 2))
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(params, xs).compile()
  compile_s = time.perf_counter() - start
  peak = None
  if cfg.memory:
    stats = compiled.memory_analysis()
    if stats is not None:
      peak = (stats.temp_size_in_bytes + stats.output_size_in_bytes) / 2**20
  return Case(name, lambda: compiled(params, xs), compile_s, peak)


# ------------------------------------------------------------------- peers
def run_jaxrnn(cfg, mode, impl):
  key = jax.random.key(0)
  xs = jax.random.normal(key, (cfg.B, cfg.T, cfg.I))
  if cfg.cell == "bilstm2":
    stack = jaxrnn.Stacked([jaxrnn.Bidirectional(jaxrnn.LSTMCell())] * 2)
    params = stack.init(key, cfg.I, cfg.H)
    forward = lambda p, x: stack(p, x, impl=impl)[1]
  else:
    cell = JAXRNN_CELLS[cfg.cell]
    params = cell.init(key, cfg.I, cfg.H)
    forward = lambda p, x: jaxrnn.scan(cell, p, x, impl=impl)[1]
  return jax_case(f"jaxrnn {impl}", cfg, mode, forward, params, xs)


def run_flax(cfg, mode, optimized=False):
  import flax.linen as nn
  cls = {"lstm": nn.OptimizedLSTMCell if optimized else nn.LSTMCell,
         "gru": nn.GRUCell, "rnn": nn.SimpleCell}
  if cfg.cell == "bilstm2":
    if optimized:
      return None
    layer = lambda: nn.Bidirectional(nn.RNN(nn.LSTMCell(cfg.H)), nn.RNN(nn.LSTMCell(cfg.H)))
    model = nn.Sequential([layer(), layer()])
  elif cfg.cell in cls and (cfg.cell == "lstm" or not optimized):
    model = nn.RNN(cls[cfg.cell](features=cfg.H))
  else:
    return None
  xs = jax.random.normal(jax.random.key(0), (cfg.B, cfg.T, cfg.I))
  params = model.init(jax.random.key(1), xs)
  name = "flax " + ("OptimizedLSTMCell" if optimized else
                    {"lstm": "LSTMCell", "gru": "GRUCell", "rnn": "SimpleCell",
                     "bilstm2": "LSTMCell"}[cfg.cell])
  return jax_case(name, cfg, mode, model.apply, params, xs)


def run_equinox(cfg, mode):
  import equinox as eqx
  if cfg.cell not in ("lstm", "gru"):
    return None
  cls = eqx.nn.LSTMCell if cfg.cell == "lstm" else eqx.nn.GRUCell
  cell = cls(cfg.I, cfg.H, key=jax.random.key(0))
  params, static = eqx.partition(cell, eqx.is_array)

  def forward(params, xs):
    cell = eqx.combine(params, static)
    def one(x):
      zeros = jnp.zeros(cfg.H)
      init = (zeros, zeros) if cfg.cell == "lstm" else zeros
      def step(carry, x_t):
        carry = cell(x_t, carry)
        return carry, carry[0] if cfg.cell == "lstm" else carry
      return jax.lax.scan(step, init, x)[1]
    return jax.vmap(one)(xs)

  xs = jax.random.normal(jax.random.key(1), (cfg.B, cfg.T, cfg.I))
  return jax_case(f"equinox {cls.__name__}", cfg, mode, forward, params, xs)


def run_haiku(cfg, mode):
  import haiku as hk
  if cfg.cell not in ("lstm", "gru", "rnn"):
    return None
  core_cls = {"lstm": hk.LSTM, "gru": hk.GRU, "rnn": hk.VanillaRNN}[cfg.cell]

  def f(xs):
    core = core_cls(cfg.H)
    return hk.dynamic_unroll(core, xs, core.initial_state(cfg.B), time_major=False)[0]

  model = hk.without_apply_rng(hk.transform(f))
  xs = jax.random.normal(jax.random.key(1), (cfg.B, cfg.T, cfg.I))
  params = model.init(jax.random.key(0), xs)
  return jax_case(f"haiku {core_cls.__name__}", cfg, mode, model.apply, params, xs)


def run_torch(cfg, mode):
  import torch
  if cfg.cell not in ("lstm", "gru", "rnn", "bilstm2"):
    return None
  cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN,
         "bilstm2": torch.nn.LSTM}[cfg.cell]
  kwargs = dict(num_layers=2, bidirectional=True) if cfg.cell == "bilstm2" else {}
  module = cls(cfg.I, cfg.H, batch_first=True, **kwargs)
  x = torch.randn(cfg.B, cfg.T, cfg.I)
  if mode == "fwd":
    def call():
      with torch.no_grad():
        return module(x)[0]
  else:
    def call():
      module.zero_grad(set_to_none=True)
      loss = module(x)[0].pow(2).sum()
      loss.backward()
      return loss
  return Case(f"torch {cls.__name__}", call)


PEERS = {
    "torch": run_torch,
    "flax": run_flax,
    "flax-opt": lambda cfg, mode: run_flax(cfg, mode, optimized=True),
    "equinox": run_equinox,
    "haiku": run_haiku,
    "jaxrnn-native": lambda cfg, mode: run_jaxrnn(cfg, mode, "native"),
    "jaxrnn-xla": lambda cfg, mode: run_jaxrnn(cfg, mode, "xla"),
    # the same forward as "xla"; only its backward differs
    "jaxrnn-autodiff": lambda cfg, mode: (
        run_jaxrnn(cfg, mode, "autodiff") if mode != "fwd" else None),
}
REQUIRES = {"torch": "torch", "flax": "flax", "flax-opt": "flax",
            "equinox": "equinox", "haiku": "haiku"}


# ------------------------------------------------------------------ report
def markdown(results):
  lines = ["| cell | B | T | I | H | mode | impl | median ms | GFLOP/s | × torch | × best JAX peer | compile s | peak MB |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  groups = {}
  for r in results:
    groups.setdefault((r.cell, r.B, r.T, r.I, r.H, r.mode), []).append(r)
  for key, rows in groups.items():
    torch_ms = next((r.median_ms for r in rows if r.impl.startswith("torch")), None)
    peers = [r.median_ms for r in rows
             if not r.impl.startswith(("torch", "jaxrnn"))]
    best_peer = min(peers) if peers else None
    for r in rows:
      ratio = lambda ref: f"{r.median_ms / ref:.2f}" if ref else "–"
      lines.append(
          f"| {r.cell} | {r.B} | {r.T} | {r.I} | {r.H} | {r.mode} | {r.impl} | "
          f"{r.median_ms:.1f} | {r.gflops:.1f} | {ratio(torch_ms)} | {ratio(best_peer)} | "
          f"{'–' if r.compile_s is None else f'{r.compile_s:.2f}'} | "
          f"{'–' if r.peak_mb is None else f'{r.peak_mb:.1f}'} |")
  return "\n".join(lines)


def environment():
  info = {"python": platform.python_version(), "machine": platform.machine(),
          "cpu_count": os.cpu_count(), "jax": jax.__version__,
          "backend": jax.default_backend(), "devices": len(jax.devices())}
  for mod in ("flax", "equinox", "haiku", "torch"):
    try:
      info[mod] = __import__(mod).__version__
    except ImportError:
      info[mod] = None
  try:
    import torch
    info["torch_threads"] = torch.get_num_threads()
  except ImportError:
    pass
  try:
    info["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                       if l.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return info


def memory_table(lengths, runs):
  """A sequence-to-one training step (value_and_grad of sum(h_T**2), as in
  classification or the adding problem) at growing T: XLA's peak temporary
  memory and the median time (interleaved), with and without ``remat``, on
  both engines. (A loss on every step's output adds O(T) arrays, the outputs
  and their cotangents, that no checkpointing removes.)

  The native kernels also allocate scratch of their own, which XLA does not
  see: the "kernel scratch MB" column adds the backward kernel's largest
  allocation (``jaxrnn._native.backward_scratch_bytes``) for one call, which
  covers T steps, or one chunk of ceil(sqrt(T)) steps under remat."""
  import math
  import flax.linen as nn
  from jaxrnn import _native
  B, I, H = 8, 128, 128
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), I, H)
  flax_model = nn.RNN(nn.LSTMCell(H))
  lines = ["| T | impl | temp MB | kernel scratch MB | median ms |", "|---|---|---|---|---|"]
  records = []
  for T in lengths:
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    flax_params = flax_model.init(jax.random.key(2), xs[:, :2])
    specs = [(f"jaxrnn {impl}" + (" remat=True" if remat else ""),
              functools.partial(lambda p, x, impl, remat: jaxrnn.scan(
                  cell, p, x, impl=impl, remat=remat)[0].h, impl=impl, remat=remat),
              params)
             for impl in ("native", "xla") for remat in (False, True)]
    specs.append(("flax LSTMCell", lambda p, x: flax_model.apply(p, x)[:, -1], flax_params))
    cases, temp = [], []
    for name, forward, p in specs:
      fn = jax.value_and_grad(lambda p, x, forward=forward: jnp.sum(forward(p, x) ** 2))
      compiled = jax.jit(fn).lower(p, xs).compile()
      temp.append(compiled.memory_analysis().temp_size_in_bytes / 2**20)
      cases.append(Case(name, functools.partial(compiled, p, xs)))
    for case, mb, seconds in zip(cases, temp, interleaved(cases, runs)):
      scratch = None
      if "native" in case.impl:
        steps = math.isqrt(T - 1) + 1 if "remat" in case.impl else T
        scratch = _native.backward_scratch_bytes(cell.native_variant(), steps, B, H,
                                                 jnp.float32) / 2**20
      ms = 1e3 * seconds
      lines.append(f"| {T} | {case.impl} | {mb:.1f} | "
                   f"{'–' if scratch is None else f'{scratch:.1f}'} | {ms:.0f} |")
      records.append({"impl": case.impl, "cell": "lstm", "B": B, "T": T, "I": I, "H": H,
                      "mode": "fwd+bwd", "median_ms": ms, "temp_mb": mb,
                      "kernel_scratch_mb": scratch})
  return "\n".join(lines), records


MODERN = {
    "LSTM": jaxrnn.LSTMCell(), "GRU": jaxrnn.GRUCell(),
    **{f"{name} {method}": cls(method=method)
       for name, cls in (("MinGRU", jaxrnn.MinGRUCell), ("MinLSTM", jaxrnn.MinLSTMCell),
                         ("LRU", jaxrnn.LRUCell), ("RG-LRU", jaxrnn.RGLRUCell))
       for method in ("sequential", "associative")},
}


def modern_table(lengths, runs, B=8, H=256):
  """Forward+backward of the linear-recurrence cells, by both methods, next
  to LSTM and GRU (impl="auto": the native kernels), at the same hidden
  size (input size = hidden size, as the RG-LRU needs), interleaved per T."""
  lines = ["| T | cell | method | median ms | × LSTM |", "|---|---|---|---|---|"]
  records = []
  for T in lengths:
    xs = jax.random.normal(jax.random.key(1), (B, T, H))
    cases = []
    for name, cell in MODERN.items():
      params = cell.init(jax.random.key(0), H, H)
      fn = jax.value_and_grad(lambda p, x, cell=cell: jnp.sum(jaxrnn.scan(cell, p, x)[1] ** 2))
      compiled = jax.jit(fn).lower(params, xs).compile()
      cases.append(Case(name, functools.partial(compiled, params, xs)))
    times = interleaved(cases, runs)
    lstm_ms = 1e3 * times[0]
    for case, seconds in zip(cases, times):
      ms = 1e3 * seconds
      cell_name, _, method = case.impl.partition(" ")
      lines.append(f"| {T} | {cell_name} | {method or '(native)'} | {ms:.1f} | "
                   f"{ms / lstm_ms:.2f} |")
      records.append({"impl": case.impl, "B": B, "T": T, "I": H, "H": H,
                      "mode": "fwd+bwd", "median_ms": ms})
  return "\n".join(lines), records


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="small configurations only")
  parser.add_argument("--runs", type=int, default=9, help="interleaved rounds (>= 7 for the table)")
  parser.add_argument("--only", default="", help="comma-separated cells (lstm,gru,rnn,peephole,cifg,bilstm2)")
  parser.add_argument("--impls", default=",".join(PEERS), help="comma-separated implementations")
  parser.add_argument("--modern-only", action="store_true",
                      help="only the table of the linear-recurrence cells")
  parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results" / "latest.json"))
  args = parser.parse_args(argv)

  impls = [i for i in args.impls.split(",") if i]
  available = []
  for impl in impls:
    if impl not in PEERS:
      parser.error(f"--impls: unknown {impl!r}; choose from {list(PEERS)}")
    module = REQUIRES.get(impl)
    try:
      if module:
        __import__(module)
      available.append(impl)
    except ImportError:
      print(f"skipping {impl}: {module} is not installed (pip install -e '.[bench]')")
  if jax.default_backend() != "gpu":
    print("skipping jax.experimental.rnn: it runs on GPU only (cuDNN)")
  env = environment()
  print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))

  cells = set(args.only.split(",")) if args.only else None
  results = []
  if args.modern_only:
    table, records = modern_table((256, 1024, 4096), args.runs)
    print(table)
    out = pathlib.Path(args.out).with_name("modern.md")
    out.write_text("environment: " + ", ".join(f"{k}={v}" for k, v in env.items())
                   + "\n\nForward+backward, B=8, I=H=256, float32:\n\n" + table + "\n")
    print(f"\nwrote {out}")
    return
  for cfg in configs(args.quick):
    if cells and cfg.cell not in cells:
      continue
    for mode in cfg.modes:
      cases = [case for case in (PEERS[impl](cfg, mode) for impl in available)
               if case is not None]
      for case, seconds in zip(cases, interleaved(cases, args.runs)):
        ms = 1e3 * seconds
        results.append(Result(case.impl, cfg.cell, cfg.B, cfg.T, cfg.I, cfg.H, mode,
                              ms, case.compile_s, cfg.flops(mode) / ms / 1e6,
                              case.peak_mb))
        print(f"  {cfg.cell} B={cfg.B} T={cfg.T} I={cfg.I} H={cfg.H} {mode:8s} "
              f"{case.impl:28s} {ms:9.1f} ms", file=sys.stderr, flush=True)
  table = markdown(results)
  print(table)
  memory = []
  if not args.quick and (not cells or "lstm" in cells) and "jaxrnn-native" in available:
    mem_table, memory = memory_table((1000, 2500, 5000, 10000), runs=3)
    print("\nMemory of a sequence-to-one LSTM training step, B=8 I=128 H=128 (3 rounds):\n")
    print(mem_table)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps({"environment": env, "results": [dataclasses.asdict(r) for r in results],
                             "memory": memory}, indent=1))
  report = ["environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), "", table]
  if memory:
    report += ["", "Memory of a sequence-to-one LSTM training step, B=8 I=128 H=128:", "",
               mem_table]
  if not cells and args.impls == ",".join(PEERS):
    import workloads  # pylint: disable=import-outside-toplevel
    whole = workloads.report(3 if args.quick else args.runs)
    print("\nWorkloads (benchmarks/workloads.py):\n\n" + whole)
    report += ["", "Workloads (benchmarks/workloads.py):", "", whole]
    import matrix_state  # pylint: disable=import-outside-toplevel
    matrix = matrix_state.main(["--rounds", "3"] + (["--lengths", "256,1024"]
                                                     if args.quick else []))
    report += ["", "Matrix-state cells (benchmarks/matrix_state.py):", "", matrix]
  out.with_suffix(".md").write_text("\n".join(report) + "\n")
  print(f"\nwrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
  main()
