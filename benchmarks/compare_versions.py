"""This tree's jaxrnn against an earlier revision's, in one process, interleaved.

  python benchmarks/compare_versions.py --rev HEAD~3
  python benchmarks/compare_versions.py --rev main --only lstm --rounds 15

For a change that should not cost speed (a refactoring of the engines): the
earlier revision's ``jaxrnn/`` is taken with ``git archive``, renamed to a
package of its own (``jaxrnn_rev``) in a temporary folder and imported beside
this tree's, with this tree's built native extension (the revisions must
share the kernels' FFI interface). Each row compiles both versions, then
times them in turn, round after round (``bench.interleaved``), and reports
the medians and their ratio (this tree ÷ the revision): one run, one
machine state, so the ratio is the measurement.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench  # noqa: E402  (the timing helpers)

import jaxrnn  # noqa: E402

ROWS = [("lstm", 32, 256, 128, 256), ("gru", 32, 256, 128, 256),
        ("rnn", 32, 256, 128, 256), ("lstm", 1, 1000, 64, 128),
        ("gru", 1, 1000, 64, 128), ("rnn", 1, 1000, 64, 128)]


def import_revision(rev: str):
  """The revision's jaxrnn as the package ``jaxrnn_rev``."""
  folder = pathlib.Path(tempfile.mkdtemp(prefix="jaxrnn_rev_"))
  archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "jaxrnn"],
                           check=True, capture_output=True).stdout
  subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
  package = folder / "jaxrnn_rev"
  (folder / "jaxrnn").rename(package)
  for so in glob.glob(str(ROOT / "jaxrnn" / "_native" / "_kernels*.so")):
    shutil.copy(so, package / "_native")
  for path in package.rglob("*.py"):
    text = path.read_text()
    text = re.sub(r"\bjaxrnn\.", "jaxrnn_rev.", text)
    text = re.sub(r"\bfrom jaxrnn import\b", "from jaxrnn_rev import", text)
    text = text.replace('"jaxrnn_rnn_', '"jaxrnn_rev_rnn_')  # FFI targets of its own
    path.write_text(text)
  sys.path.insert(0, str(folder))
  return importlib.import_module("jaxrnn_rev")


def case(lib, name, cell_name, B, T, I, H, impl, mode):
  cell = {"lstm": lib.LSTMCell(), "gru": lib.GRUCell(), "rnn": lib.SimpleRNNCell()}[cell_name]
  params = cell.init(jax.random.key(0), I, H)
  xs = jax.random.normal(jax.random.key(1), (B, T, I))
  forward = lambda p, x: lib.scan(cell, p, x, impl=impl)[1]
  cfg = bench.Config(cell_name, B, T, I, H)
  return bench.jax_case(name, cfg, mode, forward, params, xs)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--rev", required=True, help="the earlier revision (git)")
  parser.add_argument("--rounds", type=int, default=9)
  parser.add_argument("--only", default="", help="comma-separated cells")
  parser.add_argument("--impls", default="native,xla")
  args = parser.parse_args(argv)
  old = import_revision(args.rev)
  only = set(filter(None, args.only.split(",")))
  print(f"this tree ({jaxrnn.__file__}) against {args.rev}; "
        f"{args.rounds} interleaved rounds; ratio = this tree / {args.rev}\n")
  print("| cell | B | T | I | H | impl | mode | this tree ms | rev ms | ratio |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for cell_name, B, T, I, H in ROWS:
    if only and cell_name not in only:
      continue
    for impl in args.impls.split(","):
      for mode in ("fwd", "fwd+bwd"):
        cases = [case(jaxrnn, "new", cell_name, B, T, I, H, impl, mode),
                 case(old, "rev", cell_name, B, T, I, H, impl, mode)]
        new_s, old_s = bench.interleaved(cases, args.rounds)
        print(f"| {cell_name} | {B} | {T} | {I} | {H} | {impl} | {mode} | "
              f"{1e3 * new_s:.2f} | {1e3 * old_s:.2f} | {new_s / old_s:.2f} |",
              flush=True)


if __name__ == "__main__":
  main()
