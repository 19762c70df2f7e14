"""Builds jaxrnn's optional native CPU kernels (jaxrnn/_native) during install.

The extension compiles against the XLA FFI headers that jaxlib ships (a build
requirement in pyproject.toml) and links no BLAS: it takes scipy's at import.
It is optional: where it cannot be built (no C++17 compiler, another
platform), the install goes on and jaxrnn runs on the XLA engine, and
`jaxrnn.native_status()` says why.
"""

import importlib.util
import os
import sys

from setuptools import Extension, setup


def _jaxlib_include() -> str:
  spec = importlib.util.find_spec("jaxlib")
  if spec is None or not spec.submodule_search_locations:
    return ""
  return os.path.join(list(spec.submodule_search_locations)[0], "include")


# -ffp-contract=fast: the micro-kernel's multiply-adds become FMAs (as XLA's).
_FLAGS = ["-std=c++17", "-O3", "-fno-trapping-math", "-ffp-contract=fast",
          "-fvisibility=hidden", "-pthread", "-Wno-psabi"]

setup(ext_modules=[
    Extension(
        "jaxrnn._native._kernels",
        sources=["jaxrnn/_native/kernels.cc", "jaxrnn/_native/module.cc"],
        depends=[f"jaxrnn/_native/{name}.h" for name in (
            "activations", "cells", "common", "microkernel", "persistent",
            "pool", "profile", "workspace")],
        include_dirs=[_jaxlib_include()],
        extra_compile_args=_FLAGS if sys.platform != "win32" else ["/std:c++17", "/O2"],
        extra_link_args=["-pthread"] if sys.platform != "win32" else [],
        language="c++",
        optional=True,
    ),
])
