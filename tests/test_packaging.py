"""What pyproject.toml declares: the lower bounds `make test-min` installs,
and nothing that is never imported (the native kernels link no BLAS, so
scipy is jax's dependency, not ours)."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _dependencies():
  text = (ROOT / "pyproject.toml").read_text()
  block = text[text.index("dependencies = ["):text.index("]", text.index("dependencies = ["))]
  return dict(re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9][^",]*)"', block))


def test_lower_bounds_are_the_versions_make_test_min_installs():
  pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$",
                         (ROOT / "tests/minimum/constraints.txt").read_text(), re.M))
  assert _dependencies() == pins


def test_declares_what_it_imports_and_nothing_else():
  declared = set(_dependencies())
  assert "scipy" not in declared and "chex" not in declared
  sources = "\n".join(p.read_text() for p in (ROOT / "jaxrnn").rglob("*.py"))
  for name in declared - {"jaxlib"}:  # jax's runtime; the native build's headers
    module = {"orbax-checkpoint": "orbax"}.get(name, name)
    assert re.search(rf"^\s*(import|from) {module}\b", sources, re.M), name
