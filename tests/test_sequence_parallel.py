"""Sequence parallelism for the linear recurrences: the time axis split over
4 forced CPU devices equals the single-device solve (a fresh interpreter,
since the device count is fixed when JAX starts)."""

import os
import pathlib
import subprocess
import sys

import jax
import pytest
from jax.sharding import Mesh

import jaxrnn

SCRIPT = pathlib.Path(__file__).resolve().parent / "sequence_parallel_script.py"


def test_sharded_time_equals_one_device():
  env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
         + " --xla_force_host_platform_device_count=4"}
  proc = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "all ok" in proc.stdout


def test_bad_mesh_arguments():
  mesh = Mesh(jax.devices()[:1], ("data",))
  with pytest.raises(ValueError, match="sequence_axis: expected one of the mesh's axes"):
    jaxrnn.MinGRUCell(sequence_mesh=mesh)
  with pytest.raises(TypeError, match="sequence_mesh: expected a jax.sharding.Mesh"):
    jaxrnn.LRUCell(sequence_mesh="time")
