"""Data-parallel training over two processes on JAX's distributed runtime
(two local CPU processes, gloo collectives): the same params as one process
on the same global batches, one history written by process 0, and a kill of
both processes resumed from their shared checkpoint."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "train_script.py")


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def launch(run_dir, nproc, **env):
  port = str(free_port())
  env = {**os.environ, **{k: str(v) for k, v in env.items()}}
  procs = [subprocess.Popen([sys.executable, SCRIPT, str(run_dir), str(nproc), str(pid), port],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for pid in range(nproc)]
  results = []
  for proc in procs:
    _, err = proc.communicate(timeout=300)
    results.append((proc.returncode, err[-3000:]))
  return results


def params(run_dir, pid=0):
  data = np.load(run_dir / f"params{pid}.npz")
  return [data[k] for k in sorted(data.files)]


def assert_params_close(got, want):
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


@pytest.mark.skipif(sys.platform != "linux", reason="gloo CPU collectives: tested on Linux")
def test_two_processes_equal_one_and_resume_after_kill(tmp_path):
  for code, err in launch(tmp_path / "one", 1):
    assert code == 0, err
  for code, err in launch(tmp_path / "two", 2):
    assert code == 0, err
  want = params(tmp_path / "one")
  # both processes hold the same (replicated) params, equal to one process's
  assert_params_close(params(tmp_path / "two", 0), want)
  assert_params_close(params(tmp_path / "two", 1), params(tmp_path / "two", 0))
  history = json.loads((tmp_path / "two" / "metrics.json").read_text())
  one = json.loads((tmp_path / "one" / "metrics.json").read_text())
  assert [r["step"] for r in history] == [2, 4, 6, 8, 10, 12]
  np.testing.assert_allclose([r["train/loss"] for r in history],
                             [r["train/loss"] for r in one], rtol=1e-4)
  # killed before step 5 (checkpoint 3 saved), then both resumed
  killed = launch(tmp_path / "killed", 2, KILL_STEP=4)
  assert all(code == -signal.SIGKILL for code, _ in killed), killed
  for code, err in launch(tmp_path / "killed", 2):
    assert code == 0, err
  assert_params_close(params(tmp_path / "killed", 0), params(tmp_path / "two", 0))
  assert json.loads((tmp_path / "killed" / "metrics.json").read_text()) == history
