"""The public API's type hints, checked by mypy as a user's code sees them
(the package ships py.typed): typical use passes, and wrong types are caught."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MYPY = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
        "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache")]

BAD = '''
import jax, jax.numpy as jnp, jaxrnn
cell = jaxrnn.LSTMCell()
params = cell.init(jax.random.key(0), 8, 16)
jaxrnn.scan(cell, params, jnp.ones((2, 3, 8)), unroll="four")
jaxrnn.Stacked((cell,), dropout_rate="high")
status: int = jaxrnn.native_status()
'''


def test_typical_use_type_checks_and_wrong_types_are_caught(tmp_path):
  assert (ROOT / "jaxrnn" / "py.typed").exists()
  good = subprocess.run([*MYPY, str(ROOT / "tests" / "typing" / "usage.py")],
                        capture_output=True, text=True, cwd=ROOT, timeout=600)
  assert good.returncode == 0, good.stdout + good.stderr
  (tmp_path / "bad.py").write_text(BAD)
  bad = subprocess.run([*MYPY, str(tmp_path / "bad.py")], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
  errors = [line for line in bad.stdout.splitlines() if ": error:" in line]
  assert [line.split(":")[1] for line in errors] == ["5", "6", "7"], bad.stdout
