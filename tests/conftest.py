"""Test configuration: float64 available everywhere, so NumPy references and
numerical gradients can be compared in double precision. Cells still default
to float32 params; tests ask for float64 explicitly where they need it.

``jax_numpy_rank_promotion="raise"`` is not set: every cell adds a
``(k*hidden,)`` bias to ``(*batch, k*hidden)`` activations on purpose, for any
number of batch dimensions, and the shape checks in the cells already reject
mismatched batch shapes with a ValueError.
"""

import os

# The suite is compile-bound: most of its time is XLA compiling small
# programs. LLVM's optimisation level sets how fast the compiled code runs,
# not what it computes (XLA:CPU leaves fast-math off), and level 0 takes
# about 30% off the suite's time (measured interleaved on 2 cores: 37 against
# 53 s on a compile-heavy sample). Set before the CPU backend starts, and
# inherited by the suite's subprocesses (examples, multiprocess). A user's
# own XLA_FLAGS setting of it wins. Benchmarks run as scripts, at the default.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_backend_optimization_level=0").strip()

# Keras (an interop reference) runs on JAX, whatever the machine's default.
os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


import pytest  # noqa: E402

import jaxrnn  # noqa: E402


@pytest.fixture(params=["xla", "native"])
def engine(request):
  """Runs a test on each engine: "xla", and "native", which is
  ``impl="auto"`` (the native kernel wherever it applies, XLA for the rest,
  e.g. LSTMP or bfloat16). A module opts in with
  ``pytestmark = pytest.mark.usefixtures("engine")``."""
  with jaxrnn.default_engine("xla" if request.param == "xla" else "auto"):
    yield request.param
