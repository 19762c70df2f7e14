"""Every Python code block in the README and the docs pages runs as written
(the pages include README sections; blocks of their own count too)."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [block for page in PAGES
          for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]


def test_readme_has_code():
  assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index):
  # A fresh interpreter, so the block sees JAX's defaults (no float64 flag).
  subprocess.run([sys.executable, "-c", BLOCKS[index]], check=True, cwd=ROOT,
                 timeout=300)


def test_core_imports_no_flax_or_optax():
  code = ("import sys, jaxrnn; bad = [m for m in ('flax', 'optax', 'torch') "
          "if m in sys.modules]; assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
