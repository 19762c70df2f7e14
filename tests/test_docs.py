"""Every Python code block in the README and the docs pages runs as written
(the pages include README sections; blocks of their own count too)."""

import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [block for page in PAGES
          for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]


def test_readme_has_code():
  assert len(BLOCKS) >= 3


RUNNER = """
import json, sys, traceback
for index, block in enumerate(json.loads(sys.stdin.read())):
  try:
    exec(compile(block, f"<block {index}>", "exec"), {"__name__": "__main__"})
  except Exception:
    sys.exit(f"code block {index} failed:\\n{block}\\n{traceback.format_exc()}")
"""


def test_code_blocks_run():
  # One fresh interpreter (JAX's defaults: no float64 flag) runs every block,
  # each in a namespace of its own.
  subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(BLOCKS), text=True,
                 check=True, cwd=ROOT, timeout=900)


def test_core_imports_no_flax_or_optax():
  code = ("import sys, jaxrnn; bad = [m for m in ('flax', 'optax', 'torch') "
          "if m in sys.modules]; assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
