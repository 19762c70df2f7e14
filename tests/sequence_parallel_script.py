"""Run by tests/test_sequence_parallel.py with 4 forced CPU devices: each
linear recurrence with its time axis split over the devices against the
single-device solve, outputs, final carries and gradients."""

import dataclasses
import sys

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

import jaxrnn  # noqa: E402

assert len(jax.devices()) == 4, jax.devices()
mesh = Mesh(np.array(jax.devices()), ("time",))
CELLS = {"min_gru": jaxrnn.MinGRUCell(), "min_gru_log": jaxrnn.MinGRUCell(log_space=True),
         "min_lstm": jaxrnn.MinLSTMCell(), "lru": jaxrnn.LRUCell(r_min=0.5, r_max=0.99),
         "rg_lru": jaxrnn.RGLRUCell()}
B, T, H = 3, 10, 4  # T = 10 over 4 devices: padded to 12
k_p, k_x, k_c, k_m = jax.random.split(jax.random.key(0), 4)
xs = jax.random.normal(k_x, (B, T, H), jnp.float64)
mask = jax.random.bernoulli(k_m, 0.8, (B, T))
resets = jnp.zeros((B, T), bool).at[1, 6].set(True)

# the directions alternate over the cells; minGRU takes both
for i, (name, cell) in enumerate(CELLS.items()):
  parallel = dataclasses.replace(cell, sequence_mesh=mesh, sequence_axis="time")
  params = cell.init(k_p, H, H, dtype=jnp.float64)
  carry = cell.initial_carry(params, (B,))
  carry = type(carry)(*(jnp.abs(jax.random.normal(k_c, c.shape, c.dtype)) for c in carry))
  for reverse in ((False, True) if name == "min_gru" else (bool(i % 2),)):
    def run(c, p, x, h0):
      return jaxrnn.scan(c, p, x, initial_carry=h0, mask=mask, resets=resets, reverse=reverse)

    def loss(c, p, x, h0):
      final, ys = run(c, p, x, h0)
      return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(l ** 2) for l in jax.tree.leaves(final))
    want = run(cell, params, xs, carry), jax.grad(loss, argnums=(1, 2, 3))(cell, params, xs, carry)
    got = run(parallel, params, xs, carry), jax.grad(loss, argnums=(1, 2, 3))(parallel, params, xs, carry)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10), got, want)
  print(name, "ok")
print("all ok")
