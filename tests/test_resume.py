"""A training run killed with SIGKILL at several points (between steps, and
inside a checkpoint write) and resumed ends with the params *and the metrics
history* of an uninterrupted run."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np

SCRIPT = pathlib.Path(__file__).resolve().parent / "train_script.py"


def start(run_dir, **kill):
  env = {**os.environ, **{k: str(v) for k, v in kill.items()}}
  return subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), "1", "0", "0"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
  _, err = proc.communicate(timeout=300)
  return proc.returncode, err[-2000:]


def outcome(run_dir):
  params = np.load(run_dir / "params0.npz")
  history = json.loads((run_dir / "metrics.json").read_text())
  return [params[k] for k in sorted(params.files)], history


# Killed before step 5 (mid log window, after checkpoint 3), before step 10,
# and while committing checkpoint 6 (its files written, not yet renamed).
KILLS = {"step5": {"KILL_STEP": 4}, "step10": {"KILL_STEP": 9}, "write6": {"KILL_WRITE": 6}}


def test_kill_and_resume_keeps_params_and_history(tmp_path):
  # the runs are independent: two at a time, as many as there are cores
  whole = start(tmp_path / "whole")
  killed = {name: start(tmp_path / name, **kill) for name, kill in KILLS.items()}
  assert finish(whole)[0] == 0
  want_params, want_history = outcome(tmp_path / "whole")
  assert [r["step"] for r in want_history] == [2, 4, 6, 8, 10, 12]
  for name, proc in killed.items():
    code, err = finish(proc)
    assert code == -signal.SIGKILL, (name, err)
    assert not (tmp_path / name / "params0.npz").exists()
  resumed = {name: start(tmp_path / name) for name in KILLS}
  for name, proc in resumed.items():
    code, err = finish(proc)
    assert code == 0, (name, err)
    got_params, got_history = outcome(tmp_path / name)
    assert got_history == want_history, name
    for g, w in zip(got_params, want_params):
      np.testing.assert_array_equal(g, w)
