"""Sphinx configuration: the API reference from the docstrings (autodoc,
Google style through napoleon), pages in Markdown (MyST), equations through
MathJax. Built by `make docs` with warnings as errors."""

import jaxrnn

project = "jaxrnn"
author = "the jaxrnn developers"
release = version = jaxrnn.__version__
copyright = "2026, the jaxrnn developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
# The pages include README sections, whose headings start at H2 or H3.
suppress_warnings = ["myst.header"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # NamedTuple fields are documented once, as attributes

html_theme = "furo"
html_title = "jaxrnn"
html_static_path = ["_static"]
