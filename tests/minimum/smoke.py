"""A smoke test of jaxrnn on the lowest versions pyproject.toml admits
(`make test-min` installs exactly those, then runs this): every engine, the
Flax modules, a training run with optax and orbax checkpoints, resumed.

Each check compares against an independent path (a Python loop of the cell's
step, or a second run), not only that it runs. Ends with the plain line
``N passed, N failed``.
"""

import sys
import tempfile
import traceback

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import jaxrnn  # noqa: E402
from jaxrnn import train  # noqa: E402

CHECKS = []


def check(fn):
  CHECKS.append(fn)
  return fn


def loop(cell, params, xs, carry):
  ys = []
  for t in range(xs.shape[1]):
    carry, y = cell(params, carry, xs[:, t])
    ys.append(y)
  return carry, jnp.stack(ys, 1)


def close(a, b, tol=1e-10):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


@check
def every_engine_equals_the_step_loop():
  for cell, impls in ((jaxrnn.LSTMCell(), ("native", "xla", "autodiff")),
                      (jaxrnn.GRUCell(), ("native", "xla")),
                      (jaxrnn.MinGRUCell(), ("auto",))):
    params = cell.init(jax.random.key(0), 3, 4, dtype=jnp.float64)
    xs = jax.random.normal(jax.random.key(1), (2, 6, 3), jnp.float64)
    want = loop(cell, params, xs, cell.initial_carry(params, (2,)))
    want_grad = jax.grad(
        lambda p: loop(cell, p, xs, cell.initial_carry(p, (2,)))[1].sum())(params)
    for impl in impls:
      close(jaxrnn.scan(cell, params, xs, impl=impl), want)
      close(jax.grad(lambda p: jaxrnn.scan(cell, p, xs, impl=impl)[1].sum())(params),
            want_grad)
  assert jaxrnn.native_available(), jaxrnn.native_status()


@check
def default_engine_vmap_and_jvp():
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (5, 2, 6, 3), jnp.float64)
  run = lambda x: jaxrnn.scan(cell, params, x)[1]
  close(jax.vmap(run)(xs), jnp.stack([run(x) for x in xs]))
  f = jax.jit(lambda x: run(x).sum())
  f(xs[0])
  with jaxrnn.default_engine("autodiff"):
    got = jax.jvp(f, (xs[0],), (xs[0],))
  carry = cell.initial_carry(params, (2,))
  close(got, jax.jvp(lambda x: loop(cell, params, x, carry)[1].sum(), (xs[0],), (xs[0],)))


@check
def flax_modules():
  from flax import nnx
  from jaxrnn import linen as jrl
  from jaxrnn import nnx as jrn
  cell = jaxrnn.GRUCell()
  xs = jnp.ones((2, 5, 3))
  module = jrl.RNN(cell, 4)
  variables = module.init(jax.random.key(0), xs)
  params = jrl.to_functional(variables)
  close(module.apply(variables, xs), jaxrnn.scan(cell, params, xs), 1e-6)
  layer = jrn.RNN(cell, 3, 4, rngs=nnx.Rngs(0))
  close(layer(xs), jaxrnn.scan(cell, jrn.to_functional(layer), xs), 1e-6)


@check
def training_resumes_from_a_checkpoint():
  import optax
  cell, head = jaxrnn.LSTMCell(), jaxrnn.Linear()
  key = jax.random.key(0)
  params = (cell.init(key, 2, 8), head.init(key, 8, 1))
  xs = jax.random.normal(jax.random.key(1), (16, 10, 2))
  batch = {"x": xs, "y": xs.sum((1, 2))[:, None]}

  def loss(p, b):
    h = jaxrnn.scan(cell, p[0], b["x"])[0].h
    return train.regression_loss(head(p[1], h), b["y"])
  opt = optax.adam(1e-2)
  step = train.make_train_step(loss, opt)
  state = train.create_train_state(params, opt)
  straight, _ = train.fit(step, state, lambda i: batch, num_steps=6, progress=False)
  with tempfile.TemporaryDirectory() as d:
    ckpt = train.Checkpointer(d, every=3)
    train.fit(step, state, lambda i: batch, num_steps=3, checkpointer=ckpt, progress=False)
    resumed, history = train.fit(step, state, lambda i: batch, num_steps=6, log_every=1,
                                 checkpointer=train.Checkpointer(d, every=3))
    assert history.plot(f"{d}/loss.png").stat().st_size > 0  # matplotlib, tqdm
  close(resumed.params, straight.params, 1e-6)


def main():
  passed = failed = 0
  for fn in CHECKS:
    try:
      fn()
      passed += 1
      print(f"ok      {fn.__name__}")
    except Exception:  # pylint: disable=broad-except
      failed += 1
      print(f"FAILED  {fn.__name__}")
      traceback.print_exc()
  print(f"{passed} passed, {failed} failed")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
