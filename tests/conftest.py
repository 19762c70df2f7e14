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
