"""Test configuration: float64 available everywhere, so NumPy references and
numerical gradients can be compared in double precision. Cells still default
to float32 params; tests ask for float64 explicitly where they need it.

``jax_numpy_rank_promotion="raise"`` is not set: every cell adds a
``(k*hidden,)`` bias to ``(*batch, k*hidden)`` activations on purpose, for any
number of batch dimensions, and the shape checks in the cells already reject
mismatched batch shapes with a ValueError.
"""

import jax

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
