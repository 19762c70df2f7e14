"""Every example's --smoke mode runs and writes its results; the benchmark
script runs (a check that it works, not a timing)."""

import importlib
import json
import pathlib
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(args, tmp_path):
  proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


@pytest.mark.parametrize("script,outputs", [
    ("adding_problem.py", ["table.md", "summary.json", "metrics.json", "learning_curves.png"]),
    ("char_lm.py", ["summary.json", "metrics.csv", "bits_per_char.png"]),
    ("forecast.py", ["summary.json", "forecast.png"]),
    ("classify.py", ["summary.json", "metrics.json"]),
    ("long_range.py", ["table.md", "summary.json", "learning_curves.png"]),
    ("regularisers.py", ["table.md", "summary.json", "learning_curves.png"]),
    ("recall.py", ["table.md", "summary.json", "accuracy.png"]),
])
def test_example_smoke(script, outputs, tmp_path):
  # every cell is tested on its own elsewhere: three per table example here
  cells = {"long_range.py": ["--cells", "lstm_chrono,min_gru,slstm"],
           "adding_problem.py": ["--cells", "rnn,gru_cho,lstmp"],
           "recall.py": ["--cells", "min_gru,gated_deltanet,mlstm"]}.get(script, [])
  out = run([f"examples/{script}", "--smoke", "--no-progress", "--results-dir", str(tmp_path),
             *cells], tmp_path)
  for name in outputs:
    assert (tmp_path / name).stat().st_size > 0, name
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert str(tmp_path) in out
  if script == "recall.py":  # every cell asked for, an accuracy per number of pairs
    assert [r["cell"] for r in summary["results"]] == ["min_gru", "gated_deltanet", "mlstm"]
    assert all(0 <= a <= 1 for r in summary["results"] for a in r["accuracy"].values())
  if script in ("adding_problem.py", "long_range.py"):  # every cell asked for
    assert len(summary["results"]) == 3
    for row in summary["results"]:
      assert row["label"] in out and 0 <= row["test_mse"] < 10


SCRIPTS = ["examples/adding_problem.py", "examples/char_lm.py", "examples/forecast.py",
           "examples/classify.py", "examples/long_range.py", "examples/regularisers.py",
           "examples/recall.py", "benchmarks/matrix_state.py", "benchmarks/bench.py",
           "benchmarks/profile_native.py", "benchmarks/engine_choice.py",
           "benchmarks/workloads.py", "benchmarks/learning.py", "benchmarks/s6_solve.py"]

# Every script's --help, in one interpreter (one import of jax, not thirteen).
HELP = """
import contextlib, io, runpy, sys
for path in sys.argv[1:]:
  sys.argv, out = [path, "--help"], io.StringIO()
  with contextlib.redirect_stdout(out):
    try:
      runpy.run_path(path, run_name="__main__")
    except SystemExit as stop:
      assert stop.code in (0, None), (path, stop.code)
  assert "usage" in out.getvalue(), path
  print("ok", path)
"""


def test_help(tmp_path):
  out = run(["-c", HELP, *SCRIPTS], tmp_path)
  assert [line.split()[1] for line in out.splitlines()] == SCRIPTS


def test_benchmark_runs(tmp_path):
  out = run(["benchmarks/bench.py", "--quick", "--runs", "1", "--only", "lstm",
             "--impls", "jaxrnn-native,jaxrnn-xla,flax", "--out", str(tmp_path / "b.json")],
            tmp_path)
  assert "| lstm |" in out
  records = json.loads((tmp_path / "b.json").read_text())["results"]
  assert {r["impl"] for r in records} == {"jaxrnn native", "jaxrnn xla", "flax LSTMCell"}
  assert all(r["median_ms"] > 0 and r["compile_s"] > 0 for r in records)


def test_learning_suite_runs(tmp_path):
  """Every task, one row each, at tiny sizes: each row printed, a table per
  task, JSON with a finite score for every row, a sample of the language
  model, and the plot."""
  out = run(["benchmarks/learning.py", "--smoke", "--out", str(tmp_path)], tmp_path)
  results = [r for task in ("adding", "selective_copy", "mnist1d", "shakespeare")
             for r in json.loads((tmp_path / f"learning_smoke_{task}.json").read_text())[
                 "results"]]
  assert [(r["task"], r["row"]) for r in results] == [
      ("adding", "min_gru"), ("selective_copy", "mamba"), ("mnist1d", "lstm"),
      ("shakespeare", "lstm")]
  for r in results:
    assert np.isfinite(r["final"]) and r["steps"] == 20 and r["label"] in out
  assert results[-1]["sample"].startswith("ROMEO.") and len(results[-1]["sample"]) > 40
  table = (tmp_path / "learning_smoke.md").read_text()
  assert table.count("### ") == 4 and "Anchor: GRU 91%" in table
  assert (tmp_path / "learning_smoke.png").stat().st_size > 0


def test_learning_suite_merges_runs_by_budget(tmp_path):
  """--merge keeps saved runs; a run with another budget is its own row,
  and a rerun of the same row, budget and seed replaces the saved one."""
  base = ["benchmarks/learning.py", "--smoke", "--tasks", "adding", "--out", str(tmp_path)]
  run(base, tmp_path)
  first = json.loads((tmp_path / "learning_smoke_adding.json").read_text())["results"]
  run(base + ["--merge", "--steps", "10"], tmp_path)
  run(base + ["--merge", "--steps", "10"], tmp_path)
  saved = json.loads((tmp_path / "learning_smoke_adding.json").read_text())
  assert saved["budget"] == 20
  assert [(r["budget"], r["steps"]) for r in saved["results"]] == [(10, 10), (20, 20)]
  assert saved["results"][1] == first[0]
  table = (tmp_path / "learning_smoke_adding.md").read_text()
  assert "| minGRU | " in table and "| minGRU, 10 steps | " in table
  run(base + ["--merge", "--first-seed", "1"], tmp_path)  # a second seed joins the row
  saved = json.loads((tmp_path / "learning_smoke_adding.json").read_text())["results"]
  assert [(r["budget"], r["seed"]) for r in saved] == [(10, 0), (20, 0), (20, 1)]
  table = (tmp_path / "learning_smoke_adding.md").read_text()
  assert [line.split(" | ")[2] for line in table.splitlines()
          if line.startswith("| minGRU")] == ["1", "2"]  # the seeds column


def import_script(folder: str, name: str):
  """A script of the repo's folder, imported as a module."""
  sys.path.insert(0, str(ROOT / folder))
  try:
    return importlib.import_module(name)
  finally:
    sys.path.remove(str(ROOT / folder))


def test_learning_suite_row_depth():
  """A lever row's own depth (the LRU with 4 blocks) overrides the task's 2,
  and is its only difference from the 2-block row: the same block, twice more."""
  learning = import_script("benchmarks", "learning")
  task = learning.TASKS["adding"](True)
  two, four = learning.build_model(task, "lru"), learning.build_model(task, "lru_4")
  assert len(two.blocks) == task.num_blocks == 2 and len(four.blocks) == 4
  assert set(two.blocks) == set(four.blocks) and two.blocks[0] == four.blocks[0]
  assert learning.ROWS["lru_4"][0] == "LRU, 4 blocks"
  p2, p4 = two.init(jax.random.key(0)), four.init(jax.random.key(0))
  size = lambda tree: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))
  assert size(p4) - size(p2) == 2 * size(p2.blocks[0]) > 0


def test_long_range_example_is_the_suites_adding_task():
  """examples/long_range.py builds, for every row it shares with the learning
  suite's adding task, the same model: the same blocks (no convolution in a
  cell's block, chrono init for the LSTM row), depth and width."""
  learning = import_script("benchmarks", "learning")
  long_range = import_script("examples", "long_range")
  task = learning.TASKS["adding"](False)
  args = types.SimpleNamespace(length=1000, blocks=2, hidden_size=32)
  shared = sorted(set(long_range.CELLS) & set(learning.ROWS))
  assert {"lstm", "lstm_chrono", "min_gru", "lru", "griffin", "mamba"} <= set(shared)
  for row in shared:
    assert long_range.make_model(row, args) == learning.build_model(task, row), row
  block = long_range.make_model("lstm_chrono", args).blocks[0]
  assert block.conv_size == 0 and dict(block.cell_init) == {"chrono": 1000}


def test_matrix_state_benchmark_runs(tmp_path):
  """Every row of the matrix-state section is printed, memax's marked
  when it is not run."""
  out = run(["benchmarks/matrix_state.py", "--lengths", "16", "--rounds", "1",
             "--memax-max-T", "0", "--out", str(tmp_path / "m.md")], tmp_path)
  for cell in ("mLSTM", "GLA", "DeltaNet", "Gated DeltaNet"):
    assert sum(f"| {cell} |" in line for line in out.splitlines()) == 3, cell
  assert out.count("not run above T=0") + out.count("not installed") == 4
  assert (tmp_path / "m.md").stat().st_size > 0


def test_native_profile_runs(tmp_path):
  out = run(["benchmarks/profile_native.py", "--cell", "gru", "--B", "2", "--T", "8",
             "--I", "4", "--H", "8", "--runs", "2"], tmp_path)
  rows = [line for line in out.splitlines() if line.startswith("| gru |")]
  assert [row.split("|")[6].strip() for row in rows] == ["fwd", "fwd+bwd"]


def test_s6_solve_benchmark_runs(tmp_path):
  out = run(["benchmarks/s6_solve.py", "--batch", "2", "--length", "10",
             "--channels", "4", "--rounds", "1"], tmp_path)
  assert "| forward + backward |" in out and "×" in out
