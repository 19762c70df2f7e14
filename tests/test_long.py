"""Long and half-precision sequences for every cell: T=3,000 forward and
backward with remat, T=30,000 forward, and bfloat16/float16 inputs, all
finite. (Times are the benchmarks' business; this is about numbers. Each
engine's exactness over long sequences is tested at T=4096 against a step
loop in its own module.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from test_resets import ALL_CELLS


def setup(cell, T, dtype=jnp.float32):
  spatial = (3,) * (cell.feature_axes() - 1)
  params = cell.init(jax.random.key(0), 4, 4, dtype=dtype,
                     **({"proj_size": 2} if isinstance(cell, jaxrnn.ProjectedLSTMCell) else {}))
  xs = jax.random.normal(jax.random.key(1), (1, T, *spatial, 4), jnp.float32).astype(dtype)
  return params, xs


def finite(tree):
  return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("name", sorted(ALL_CELLS))
def test_long_sequences(name):
  cell = ALL_CELLS[name]
  params, xs = setup(cell, 30_000)
  carry, ys = jaxrnn.scan(cell, params, xs)
  assert finite((carry, ys)) and ys.shape[1] == 30_000
  short = xs[:, :3_000]
  grads = jax.grad(lambda p, x: jnp.sum(jaxrnn.scan(cell, p, x, remat=True)[1]),
                   argnums=(0, 1))(params, short)
  assert finite(grads)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision(dtype):
  """Half-precision params and inputs run on every cell and give finite
  outputs in that dtype; the linear recurrences solve in float32. The cells
  take the two dtypes in turn, LSTM and GRU both."""
  first = dtype == jnp.bfloat16
  for i, (name, cell) in enumerate(ALL_CELLS.items()):
    if (i % 2 == 0) != first and name not in ("lstm", "gru_after"):
      continue
    params, xs = setup(cell, 1000, dtype)
    carry, ys = jaxrnn.scan(cell, params, xs)
    assert ys.dtype == dtype, name
    assert finite((carry, ys)), name
