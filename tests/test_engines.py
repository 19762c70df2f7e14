"""The engine protocol's contract, tested the way users meet it: their own
subclassed cells, which_engine against what really runs, the default engine
around functions jitted before, vmap and a sharded batch on the native
kernels, a transposed weight named in the error."""

import dataclasses
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import _native
from jaxrnn._src.engines import registry

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------- users' own cells
@dataclasses.dataclass(frozen=True)
class DoubledLSTM(jaxrnn.LSTMCell):
  def recurrence(self, params, carry, xp, *a, **k):
    carry, y = super().recurrence(params, carry, xp, *a, **k)
    return type(carry)(*(2 * f for f in carry)), 2 * y


@dataclasses.dataclass(frozen=True)
class ShiftedInputLSTM(jaxrnn.LSTMCell):
  def input_projection(self, params, x):
    return super().input_projection(params, x) + 0.5


@dataclasses.dataclass(frozen=True)
class LeakyLSTM(jaxrnn.LSTMCell):
  def pointwise(self, params, carry, z):
    new, y = super().pointwise(params, carry, z)
    return type(new)(0.9 * new.h, new.c), 0.9 * y


@dataclasses.dataclass(frozen=True)
class DoubledGRU(jaxrnn.GRUCell):
  def recurrence(self, params, carry, xp, *a, **k):
    carry, y = super().recurrence(params, carry, xp, *a, **k)
    return type(carry)(2 * carry.h), 2 * y


@dataclasses.dataclass(frozen=True)
class ShiftedInputGRU(jaxrnn.GRUCell):
  def input_projection(self, params, x):
    return super().input_projection(params, x) * 1.5


@dataclasses.dataclass(frozen=True)
class ClippedGRU(jaxrnn.GRUCell):
  def pointwise(self, params, carry, z):
    new, y = super().pointwise(params, carry, z)
    return type(new)(jnp.clip(new.h, -0.3, 0.3)), jnp.clip(y, -0.3, 0.3)


@dataclasses.dataclass(frozen=True)
class DoubledRNN(jaxrnn.SimpleRNNCell):
  def recurrence(self, params, carry, xp, *a, **k):
    carry, y = super().recurrence(params, carry, xp, *a, **k)
    return type(carry)(2 * carry.h), 2 * y


@dataclasses.dataclass(frozen=True)
class ShiftedInputRNN(jaxrnn.SimpleRNNCell):
  def input_projection(self, params, x):
    return super().input_projection(params, x) - 0.25


@dataclasses.dataclass(frozen=True)
class SquaredRNN(jaxrnn.SimpleRNNCell):
  def pointwise(self, params, carry, z):
    new, y = super().pointwise(params, carry, z)
    return type(new)(new.h ** 2), y ** 2


@dataclasses.dataclass(frozen=True)
class DoubledMinGRU(jaxrnn.MinGRUCell):
  def recurrence(self, params, carry, x, *a, **k):
    carry, y = super().recurrence(params, carry, x, *a, **k)
    return type(carry)(2 * carry.h), 2 * y


@dataclasses.dataclass(frozen=True)
class ShiftedInputMinGRU(jaxrnn.MinGRUCell):
  def input_projection(self, params, x):
    return x + 0.5


@dataclasses.dataclass(frozen=True)
class DampedMinGRU(jaxrnn.MinGRUCell):
  """Overrides the coefficients (and not their log-space form) of a cell
  that runs in log space."""

  def coefficients(self, params, x):
    a, b = super().coefficients(params, x)
    return 0.5 * a, b


@dataclasses.dataclass(frozen=True)
class CalledLSTM(jaxrnn.LSTMCell):
  """Overrides the whole step call."""

  def __call__(self, params, carry, x):
    carry, y = super().__call__(params, carry, x)
    return carry, 2 * y


@dataclasses.dataclass(frozen=True)
class SquashedGRU(jaxrnn.GRUCell):
  """A preactivation that is not affine in ``hw``."""

  def preactivation(self, params, xp, hw):
    return super().preactivation(params, xp, jnp.tanh(hw))


USER_CELLS = {
    "lstm.recurrence": DoubledLSTM(),
    "lstm.input_projection": ShiftedInputLSTM(),
    "lstm.pointwise": LeakyLSTM(),
    "gru.recurrence": DoubledGRU(),
    "gru.input_projection": ShiftedInputGRU(),
    "gru.pointwise": ClippedGRU(),
    "rnn.recurrence": DoubledRNN(),
    "rnn.input_projection": ShiftedInputRNN(),
    "rnn.pointwise": SquaredRNN(),
    "min_gru.recurrence": DoubledMinGRU(),
    "min_gru.input_projection": ShiftedInputMinGRU(),
    "min_gru_log.coefficients": DampedMinGRU(log_space=True),
    "lstm.__call__": CalledLSTM(),
    "gru.preactivation": SquashedGRU(),
}


def loop(cell, params, xs, carry, reverse=False):
  """The reference: a Python loop of the cell's own step, batch-major."""
  T = xs.shape[-2]
  ys = [None] * T
  for t in (reversed(range(T)) if reverse else range(T)):
    carry, ys[t] = cell(params, carry, xs[..., t, :])
  return carry, jnp.stack(ys, axis=-2)


def close(a, b, tol=1e-10):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


def test_declarations_follow_overrides():
  """What a subclass overrides decides which fast paths it keeps."""
  assert jaxrnn.LSTMCell().step_form() == "split"
  assert jaxrnn.LSTMCell().native_variant() == "lstm"
  assert DoubledLSTM().step_form() == "opaque" and DoubledLSTM().native_variant() is None
  assert ShiftedInputLSTM().step_form() == "opaque"
  assert LeakyLSTM().step_form() == "split" and LeakyLSTM().native_variant() is None
  assert ClippedGRU().step_form() == "split" and ClippedGRU().native_variant() is None
  assert jaxrnn.GRUCell(reset_after=False).step_form() == "opaque"
  assert jaxrnn.ProjectedLSTMCell().native_variant() is None
  assert DoubledMinGRU().step_form() == "opaque"
  assert DampedMinGRU(log_space=True).step_form() == "linear"
  assert not DampedMinGRU(log_space=True).in_log_space()
  assert CalledLSTM().step_form() == "opaque" and CalledLSTM().native_variant() is None
  assert SquashedGRU().step_form() == "opaque"


@pytest.mark.parametrize("name", list(USER_CELLS))
def test_user_cell_on_every_layer_equals_its_own_step(name):
  """scan (auto and autodiff) and one of Bidirectional, Stacked, linen and
  nnx in turn (each meets three cell families and three overridden methods)
  equal a Python loop of the subclass's own step, from a stored non-zero
  carry, gradients included."""
  from flax import nnx
  from jaxrnn import linen as jrl
  from jaxrnn import nnx as jrn
  cell = USER_CELLS[name]
  B, T, I, H = 2, 5, 3, 4
  params = cell.init(jax.random.key(0), I, H, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (B, T, I), jnp.float64)
  keys = jax.random.split(jax.random.key(2), len(cell.carry_type._fields))
  carry = cell.carry_type(*(0.5 + 0.3 * jax.random.normal(k, (B, H), jnp.float64)
                            for k in keys))
  loss = lambda out: jnp.sum(jnp.sin(out[1])) + sum(jnp.sum(c ** 2) for c in out[0])
  want = loop(cell, params, xs, carry)
  want_grad = jax.grad(lambda p: loss(loop(cell, p, xs, carry)))(params)
  # "xla" runs what "auto" runs here: a subclass has no native kernel.
  for impl in ("auto", "autodiff"):
    run = lambda p: jaxrnn.scan(cell, p, xs, initial_carry=carry, impl=impl)
    close(run(params), want)
    close(jax.grad(lambda p: loss(run(p)))(params), want_grad)
  layer = list(USER_CELLS).index(name) % 4
  if layer == 0:  # Bidirectional: both directions are the user's cell.
    bi = jaxrnn.Bidirectional(cell)
    bi_params = jaxrnn.BidirectionalParams(params, params)
    (c_f, c_b), ys = bi(bi_params, xs, initial_carry=(carry, carry))
    want_b = loop(cell, params, xs, carry, reverse=True)
    close((c_f, c_b, ys), (want[0], want_b[0], jnp.concatenate([want[1], want_b[1]], -1)))
  elif layer == 1:  # Stacked: two layers of the user's cell.
    stack = jaxrnn.Stacked((cell, cell))
    p2 = cell.init(jax.random.key(3), H, H, dtype=jnp.float64)
    (s1, s2), ys = stack((params, p2), xs, initial_carry=(carry, carry))
    want2 = loop(cell, p2, want[1], carry)
    close((s1, s2, ys), (want[0], want2[0], want2[1]))
  elif layer == 2:  # linen, from the same functional params
    module = jrl.RNN(cell, H, param_dtype=jnp.float64)
    close(module.apply(jrl.from_functional(params), xs, initial_carry=carry), want)
  else:  # nnx, loaded with the same functional params
    rnn = jrn.RNN(cell, I, H, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    jrn.load_functional(rnn, params)
    close(rnn(xs, initial_carry=carry), want)


# ----------------------------------------------- which_engine == what runs
def _ran(fn):
  """The engines that ran, recorded at trace time (a fresh trace)."""
  jax.clear_caches()
  registry._RECORD = []
  try:
    fn()
    return list(registry._RECORD)
  finally:
    registry._RECORD = None


GRID_CELLS = {
    "lstm": jaxrnn.LSTMCell(), "gru_before": jaxrnn.GRUCell(reset_after=False),
    "min_gru": jaxrnn.MinGRUCell(), "ln_lstm": jaxrnn.LayerNormLSTMCell(),
    "slstm": jaxrnn.SLSTMCell(num_heads=2), "user": LeakyLSTM(),
}
OPTIONS = ("plain", "mask", "resets", "reverse", "remat", "input", "output",
           "recurrent", "zoneout", "zoneout_eval", "weight", "vmap", "jvp")
# Each cell meets each option; the dtypes take turns.
GRID = [(c, o, (jnp.float32, jnp.float64, jnp.bfloat16)[(i + j) % 3])
        for i, c in enumerate(GRID_CELLS) for j, o in enumerate(OPTIONS)]


@pytest.mark.parametrize("name, option, dtype", GRID)
def test_which_engine_is_the_engine_that_runs(name, option, dtype):
  cell = GRID_CELLS[name]
  if option == "recurrent" and cell.step_form() == "linear":
    pytest.skip("refused at trace time: a linear cell has no recurrent product")
  if option == "weight" and "w_h" not in cell.params_type._fields:
    pytest.skip("refused at trace time: no w_h")
  params = cell.init(jax.random.key(0), 4, 4, dtype=dtype)
  xs = jnp.ones((2, 3, 4), dtype)
  kwargs = {"mask": dict(mask=np.array([[True, True, False]] * 2)),
            "resets": dict(resets=np.array([[False, True, False]] * 2)),
            "reverse": dict(reverse=True), "remat": dict(remat=True),
            "zoneout_eval": dict(dropout=jaxrnn.RecurrentDropout(zoneout=0.2),
                                 deterministic=True)}.get(option, {})
  if option in ("input", "output", "recurrent", "zoneout", "weight"):
    kwargs = dict(dropout=jaxrnn.RecurrentDropout(**{option: 0.2}),
                  key=jax.random.key(1))
  impl = "autodiff" if option == "jvp" else None
  reported, _ = jaxrnn.which_engine(cell, params, xs, impl=impl, **kwargs)
  run = lambda x: jaxrnn.scan(cell, params, x, impl=impl, **kwargs)[1]
  # Traced, not compiled: the engines record themselves at trace time.
  if option == "vmap":
    ran = _ran(lambda: jax.make_jaxpr(jax.vmap(run))(xs[None]))
  elif option == "jvp":
    ran = _ran(lambda: jax.make_jaxpr(lambda x: jax.jvp(run, (x,), (x,)))(xs))
  else:
    ran = _ran(lambda: jax.make_jaxpr(jax.grad(
        lambda x: run(x).astype(jnp.float32).sum()))(xs))
  assert ran and set(ran) == {reported}, (ran, reported)


def test_default_engine_reaches_a_function_jitted_before():
  """The default engine is part of jit's cache key: the block retraces."""
  cell = jaxrnn.GRUCell()
  params = cell.init(jax.random.key(0), 3, 4, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (2, 5, 3), jnp.float64)
  f = jax.jit(lambda x: jaxrnn.scan(cell, params, x)[1].sum())
  f(xs)  # compiled under "auto"
  with jaxrnn.default_engine("autodiff"):
    value, tangent = jax.jvp(f, (xs,), (jnp.ones_like(xs),))
  want = jax.jvp(lambda x: jaxrnn.scan(cell, params, x, impl="autodiff")[1].sum(),
                 (xs,), (jnp.ones_like(xs),))
  close((value, tangent), want)
  with pytest.raises(TypeError, match="forward-mode"):
    jax.jvp(f, (xs,), (jnp.ones_like(xs),))  # outside the block: auto again


def test_a_transposed_weight_is_named():
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 4, 8)
  with pytest.raises(ValueError, match=r"params\.w_h: expected shape \(8, 32\).*got \(32, 8\)"):
    jaxrnn.scan(cell, params._replace(w_h=params.w_h.T), jnp.ones((2, 5, 4)))


@pytest.mark.parametrize("cell", [jaxrnn.LRUCell(), jaxrnn.RGLRUCell()])
@pytest.mark.parametrize("deterministic", [False, True])
def test_zoneout_output_of_a_linear_cell_is_engine_independent(cell, deterministic):
  """A read-out cell's zoned output: the linear engine and the step rules
  (a subclass that runs on autodiff) read it out of the zoned state."""
  @dataclasses.dataclass(frozen=True)
  class Stepped(type(cell)):
    def recurrence(self, params, carry, x, *a, **k):
      return super().recurrence(params, carry, x, *a, **k)
  params = cell.init(jax.random.key(0), 4, 4, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (2, 6, 4), jnp.float64)
  kwargs = dict(dropout=jaxrnn.RecurrentDropout(zoneout=0.4), key=jax.random.key(2),
                deterministic=deterministic)
  assert jaxrnn.which_engine(Stepped(), params, xs, **kwargs)[0] == "autodiff"
  close(jaxrnn.scan(cell, params, xs, **kwargs), jaxrnn.scan(Stepped(), params, xs, **kwargs))


def test_slstm_zoneout_holds_its_stabilised_state_together():
  """c, n and m of a unit are held or updated together."""
  cell = jaxrnn.SLSTMCell(num_heads=2)
  params = cell.init(jax.random.key(0), 4, 8, dtype=jnp.float64)
  carry = cell.carry_type(*(0.5 + 0.1 * jax.random.normal(k, (64, 8), jnp.float64)
                            for k in jax.random.split(jax.random.key(1), 4)))
  xs = jax.random.normal(jax.random.key(2), (64, 1, 4), jnp.float64)
  new, _ = jaxrnn.scan(cell, params, xs, initial_carry=carry,
                       dropout=jaxrnn.RecurrentDropout(zoneout=0.5), key=jax.random.key(3))
  held = [np.asarray(getattr(new, f) == getattr(carry, f)) for f in ("c", "n", "m")]
  assert 0.3 < held[0].mean() < 0.7
  np.testing.assert_array_equal(held[0], held[1])
  np.testing.assert_array_equal(held[0], held[2])


# ------------------------------------------------- the native engine in XLA
needs_native = pytest.mark.skipif(not _native.available(), reason=_native.status())


@needs_native
def test_vmap_folds_into_one_native_call():
  """vmap of the native forward is one kernel call over all examples, equal
  to a loop; under grad the backward runs per example and equals autodiff."""
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4, dtype=jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (5, 2, 6, 3), jnp.float64)
  run = lambda x: jaxrnn.scan(cell, params, x, impl="native")[1]
  hlo = jax.jit(jax.vmap(run)).lower(xs).compile().as_text()
  calls = [l for l in hlo.split("\n") if 'custom_call_target="jaxrnn_rnn_forward"' in l]
  assert len(calls) == 1 and "f64[6,10,4]" in calls[0], calls  # T=6, 5*2 rows
  assert " while(" not in hlo
  close(jax.vmap(run)(xs), jnp.stack([run(x) for x in xs]))
  grad = lambda impl: jax.grad(lambda p: jax.vmap(
      lambda x: jaxrnn.scan(cell, p, x, impl=impl)[1])(xs).sum())(params)
  close(grad("native"), grad("autodiff"))
  per_example = lambda impl: jax.vmap(jax.grad(
      lambda p, x: jaxrnn.scan(cell, p, x, impl=impl)[1].sum()), (None, 0))(params, xs)
  close(per_example("native"), per_example("autodiff"))


@needs_native
def test_native_splits_a_sharded_batch():
  """Under a 2-device mesh each device runs the kernel on its own rows: no
  all-gather, B/2 rows per call, results and gradients as on one device;
  and a data-parallel train step does the same."""
  script = textwrap.dedent('''
      import os
      os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
      import jax, jax.numpy as jnp, numpy as np, optax, jaxrnn
      from jaxrnn import train
      from jax.sharding import NamedSharding, PartitionSpec as P
      jax.config.update("jax_enable_x64", True)
      mesh = train.data_mesh()
      cell = jaxrnn.LSTMCell()
      params = cell.init(jax.random.key(0), 8, 16, dtype=jnp.float64)
      xs = jax.random.normal(jax.random.key(1), (20, 7, 8), jnp.float64)
      sharded = jax.device_put(xs, NamedSharding(mesh, P("data")))
      def check(hlo):
        calls = [l for l in hlo.split("\\n") if "custom_call_target=\\"jaxrnn" in l]
        assert calls and all("all-gather" not in l for l in hlo.split("\\n")), hlo
        assert all("f64[7,10," in l for l in calls if "forward" in l), calls
      loss = lambda p, x: jnp.sum(jnp.sin(jaxrnn.scan(cell, p, x, impl="native")[1]))
      f = jax.jit(jax.value_and_grad(loss))
      check(f.lower(params, sharded).compile().as_text())
      got, want = f(params, sharded), jax.jit(jax.value_and_grad(loss))(params, xs)
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10),
                   got, want)
      ys = jax.jit(lambda p, x: jaxrnn.scan(cell, p, x, impl="native")[1])(params, sharded)
      assert ys.sharding.spec == P("data"), ys.sharding
      # a train step of fit's data parallelism
      head = jaxrnn.Linear()
      model = (params, head.init(jax.random.key(2), 16, 1, dtype=jnp.float64))
      def model_loss(p, batch):
        ys = jaxrnn.scan(cell, p[0], batch["x"], impl="native")[1]
        return train.regression_loss(head(p[1], ys[:, -1]), batch["y"])
      opt = optax.sgd(0.1)
      step = train.make_train_step(model_loss, opt)
      batch = {"x": xs, "y": jnp.ones((20, 1), jnp.float64)}
      state = train.replicate(train.create_train_state(model, opt), mesh)
      check(step.lower(state, train.shard_batch(batch, mesh)).compile().as_text())
      s_mesh, _ = step(state, train.shard_batch(batch, mesh))
      s_one, _ = step(train.create_train_state(model, opt), batch)
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10),
                   s_mesh.params, s_one.params)
      print("OK")
  ''')
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=HERE, timeout=300)
  assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_a_registration_failure_falls_back(monkeypatch):
  """An extension that loads but cannot register its targets leaves "auto"
  on XLA, and native_status() says why."""
  class Broken:
    @staticmethod
    def set_gemm(*args):
      del args

    @staticmethod
    def handlers():
      raise RuntimeError("no FFI here (test)")
  monkeypatch.setitem(sys.modules, "jaxrnn._native._kernels", Broken)
  monkeypatch.setattr(_native, "_kernels", Broken, raising=False)
  ok, why = _native._load()
  assert not ok and "could not be registered" in why and "no FFI here" in why
  monkeypatch.setattr(_native, "_loaded", lambda: (ok, why))
  cell = jaxrnn.LSTMCell()
  params = cell.init(jax.random.key(0), 3, 4)
  engine, reason = jaxrnn.which_engine(cell, params, jnp.ones((2, 5, 3)))
  assert engine == "xla" and "could not be registered" in reason
