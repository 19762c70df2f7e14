"""The documentation covers the public API: every public name appears in an
autodoc directive of the docs pages and has a docstring. (`make docs` builds
the site with warnings as errors; this test needs no Sphinx.)"""

import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
MODULES = ("jaxrnn", "jaxrnn.blocks", "jaxrnn.linen", "jaxrnn.nnx", "jaxrnn.interop",
           "jaxrnn.train")


def documented():
  """Names given to autoclass/autofunction (indexed ones) and the public
  names of modules given to automodule with :members:."""
  names = set()
  for kind, name, options in re.findall(
      r"\.\. auto(class|function|module):: (\S+)\n((?:   :.*\n)*)", PAGES):
    if ":no-index:" in options:
      continue
    if kind == "module":
      if ":members:" in options:
        names |= {f"{name}.{n}" for n in importlib.import_module(name).__all__}
    else:
      names.add(name)
  return names


PUBLIC = [f"{m}.{n}" for m in MODULES for n in importlib.import_module(m).__all__]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_is_documented(name):
  module, attr = name.rsplit(".", 1)
  obj = getattr(importlib.import_module(module), attr)
  assert name in documented(), f"{name} is missing from the API reference in docs/"
  assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
  # a dataclass or NamedTuple without one gets its signature as __doc__
  assert not obj.__doc__.startswith(f"{attr}("), f"{name} has no docstring"


def test_every_include_marker_exists():
  readme = (ROOT / "README.md").read_text()
  for marker in re.findall(r":(?:start-after|end-before): (<!-- docs:\S+ -->)", PAGES):
    assert marker in readme, marker
