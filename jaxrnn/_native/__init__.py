"""The native CPU kernels' Python binding: fused recurrent layers in C++
behind ``jax.ffi``.

``_kernels`` (``kernels.cc``, ``module.cc``) is built by ``pip install`` when
a C++ compiler is there. It holds two XLA FFI handlers, a forward and a
backward, that serve the kernels named in :data:`KINDS`. Both are
persistent, weight-stationary loops (``persistent.h``): the threads of the
kernels' own pool (``pool.h``; :func:`set_threads`) each own a slice of the
hidden units and keep their packed weights in cache for the whole call, and
meet once per step at a spin barrier. The products are the kernels' own
register-blocked micro-kernel (``microkernel.h``), compiled for AVX-512,
AVX2 and the baseline and chosen at load (:func:`instruction_set`); no BLAS.

:func:`run_layer` wraps the two handlers in a ``jax.custom_vjp``: the forward
saves each step's activated gates, and the backward is cuDNN's scheme (one
product per step in the loop; dW_h, dW_i, the biases and dX as products over
all steps after it). Each handler call is a citizen of the XLA program:

- **Sharding** (``custom_partitioning``): under ``jit`` with the batch axis of
  ``xs`` sharded over a mesh, every device runs the kernel on its own rows;
  the backward's weight gradients are summed over the batch axes with one
  ``psum``. Nothing is gathered.
- **Batching** (``custom_vmap``): ``vmap`` of the forward folds the mapped
  axis into the kernel's batch, one call for all examples. The backward
  under ``vmap`` runs once per example (``lax.map``): its weight gradients
  must stay per example, and the kernel sums them over its batch.
- **Memory**: outputs and saved activations are XLA buffers. The kernels'
  scratch (``workspace.h``) is kept per thread between calls up to 256 MiB a
  slot and freed above that.
- **Threads**: a call that finds the pool busy (two XLA ops calling the
  kernels at once) waits for it.

Forward-mode autodiff (``jvp``) is not defined: use ``impl="autodiff"``.
If the extension is missing, cannot load or cannot register, :func:`status`
says why and the engine protocol runs the layer on XLA.

This module knows the kernels' argument layout only; which cell runs on
which kernel is the cells' own declaration (``Cell.native_kernel``).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

# The kernels, by the name a cell declares (``Cell.native_variant()``). Kept
# in sync with kernels.cc (enum Kind).
KINDS = {"rnn_tanh": 0, "rnn_relu": 1, "lstm": 2, "gru_after": 3,
         "gru_before": 4, "cifg": 5, "peephole": 6}
_RNN_TANH, _RNN_RELU, _LSTM, _GRU_AFTER, _GRU_BEFORE, _CIFG, _PEEPHOLE = range(7)
_HAS_CELL_STATE = (_LSTM, _CIFG, _PEEPHOLE)
DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))
_FORWARD, _BACKWARD = "jaxrnn_rnn_forward", "jaxrnn_rnn_backward"
_INT_MAX = 2 ** 31 - 1


def _load():
  """Imports the extension and registers its targets."""
  try:
    from jaxrnn._native import _kernels  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    return False, f"the native extension is not built or cannot load ({e})"
  try:
    handlers = _kernels.handlers()
    jax.ffi.register_ffi_target(_FORWARD, handlers["forward"], platform="cpu")
    jax.ffi.register_ffi_target(_BACKWARD, handlers["backward"], platform="cpu")
  except Exception as e:  # pylint: disable=broad-except
    # Any failure here (an XLA without FFI, a jaxlib that refuses the
    # capsules) leaves the XLA engines to run; status() keeps the reason.
    return False, f"the FFI targets could not be registered ({type(e).__name__}: {e})"
  return True, "the native extension is built and loaded"


@functools.lru_cache(maxsize=None)
def _loaded() -> tuple:
  return _load()  # once, on first use: `import jaxrnn` stays light


def available() -> bool:
  """Whether the native kernels are built and loaded."""
  return _loaded()[0]


def status() -> str:
  """Why the native kernels are or are not available."""
  return _loaded()[1]


def _extension():
  if not available():
    raise RuntimeError(f"jaxrnn's native kernels are not available: {status()}")
  from jaxrnn._native import _kernels  # pylint: disable=import-outside-toplevel
  return _kernels


def profile(on: bool) -> dict:
  """Seconds the kernels spent per phase since the last call, summed over
  calls, as worker 0 of each call saw them (``pack``, ``recurrent``,
  ``gate_math``, ``barrier``, ``carries``, ``weights``; see ``profile.h``);
  then switches timing on or off. For benchmarks/profile_native.py."""
  return _extension().profile(bool(on))


def set_threads(n: int, *, always: bool = False) -> int:
  """Sets the threads one kernel call may use from now on and returns the
  previous number. ``n <= 0`` restores the default: ``JAXRNN_NUM_THREADS``
  if set, else the cores this process may run on. A call uses fewer when
  its work is too small to pay for them (``kernels.cc``, ``workers``),
  unless ``always`` (for tests: every call then runs ``n`` workers, one
  panel of units at least each)."""
  if not isinstance(n, int) or isinstance(n, bool):
    raise TypeError(f"set_threads: n must be an int, got {type(n).__name__}")
  return _extension().threads(n, bool(always))


def instruction_set() -> str:
  """The instruction set the kernels chose at load: ``avx512``, ``avx2`` or
  ``baseline``."""
  return _extension().isa()


def too_large(input_size: int, width: int) -> Optional[str]:
  """Why the kernels cannot take these layer widths, or ``None``. Their
  products index in 64 bits; widths stay below 2^31 so that a packed panel's
  offsets stay in range."""
  if max(input_size, width) > _INT_MAX:
    return f"it takes widths below 2^31, got {max(input_size, width)}"
  return None


def run_layer(variant: str, params: Any, xs: jax.Array, carry: Any,
              valid: Optional[jax.Array], *, reverse: bool, w_i: jax.Array,
              b: Optional[jax.Array]):
  """Runs kernel ``variant`` over time-major ``xs`` ``(T, *batch, I)``.

  ``w_i`` and ``b`` are the cell's ``input_weights``; ``params.w_h`` and the
  variant's extra params are read by name. Invalid steps hold the carry and
  output zeros, as on every engine. Returns ``(h, c, ys)``, ``c`` ``None``
  for kernels without a cell state, ``batch`` flattened back.
  """
  if not available():
    raise RuntimeError(f"jaxrnn's native kernels are not available: {status()}")
  k = KINDS[variant]
  T, batch, I = xs.shape[0], xs.shape[1:-1], xs.shape[-1]
  B = int(np.prod(batch, dtype=np.int64))
  dtype = xs.dtype
  H = params.w_h.shape[0]
  if b is None:
    b = jnp.zeros((w_i.shape[1],), dtype)
  empty = jnp.zeros((0,), dtype)
  extra = empty
  if k == _GRU_AFTER:
    extra = params.b_h[2 * H:] if params.b_h is not None else jnp.zeros((H,), dtype)
  elif k == _PEEPHOLE:
    extra = jnp.concatenate([params.p_i, params.p_f, params.p_o])
  flat = lambda a: a.reshape((B, a.shape[-1]))
  h0 = flat(carry.h)
  c0 = flat(carry.c) if k in _HAS_CELL_STATE else empty
  v = (jnp.zeros((0,), jnp.uint8) if valid is None
       else valid.reshape((T, B)).astype(jnp.uint8))
  ys, h, c = _layer(k, bool(reverse), xs.reshape((T, B, I)), w_i, b,
                    params.w_h, extra, h0, c0, v)
  unflat = lambda a: a.reshape(batch + (a.shape[-1],))
  return unflat(h), (unflat(c) if k in _HAS_CELL_STATE else None), \
      ys.reshape((T,) + batch + (H,))


def _residual_width(k: int, H: int) -> int:
  """Saved activations per step and row (kernels.cc, residual_width)."""
  if k in (_RNN_TANH, _RNN_RELU):
    return H
  if k == _GRU_AFTER:
    return 4 * H
  return (4 if k in (_LSTM, _PEEPHOLE) else 3) * H


# ------------------------------------------------------------------ the calls
# Each FFI call is built in three layers, innermost first: the raw ffi_call;
# custom_partitioning (each device runs its batch rows); custom_vmap (vmap
# folds into the batch). The batch axis of every argument and result is
# listed once, in _FORWARD_LAYOUT and _BACKWARD_LAYOUT: the index of the
# batch axis, None for an array without one (weights), and whether a result
# is summed over the batch (weight gradients).

def _forward_layout(has_c: bool, masked: bool, save: bool):
  args = (1, None, None, None, None, 0, 0 if has_c else None, 1 if masked else None)
  outs = (1, 0, 0 if has_c else None, 1 if save else None,
          1 if save and has_c else None)
  return args, outs, (False,) * 5


def _backward_layout(has_c: bool, masked: bool):
  c = 0 if has_c else None
  t = 1 if has_c else None
  args = (1, None, None, None, 0, c, 1 if masked else None, 1, 1, t, 1, 0, c)
  outs = (1, None, None, None, None, 0, c)
  summed = (False, True, True, True, True, False, False)
  return args, outs, summed


def _ffi_forward(k, reverse, save, xs, w_i, b, w_h, extra, h0, c0, valid):
  T, B, _ = xs.shape
  H = w_h.shape[0]
  sd = lambda *shape: jax.ShapeDtypeStruct(shape, xs.dtype)
  has_c = k in _HAS_CELL_STATE
  R = _residual_width(k, H)
  out = (sd(T, B, H), sd(B, H), sd(B, H) if has_c else sd(0),
         sd(T, B, R) if save else sd(0),
         sd(T, B, H) if save and has_c else sd(0))
  call = jax.ffi.ffi_call(_FORWARD, out)
  return call(xs, w_i, b, w_h, extra, h0, c0, valid, kind=np.int64(k),
              reverse=np.int64(reverse))


def _ffi_backward(k, reverse, xs, w_i, w_h, extra, h0, c0, valid, ys, res, cs,
                  dys, dh, dc):
  like = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype)
  b = jax.ShapeDtypeStruct((w_i.shape[1],), w_i.dtype)
  call = jax.ffi.ffi_call(
      _BACKWARD, (like(xs), like(w_i), b, like(w_h), like(extra), like(h0), like(c0)))
  return call(xs, w_i, w_h, extra, h0, c0, valid, ys, res, cs, dys, dh, dc,
              kind=np.int64(k), reverse=np.int64(reverse))


def _partitioned(fn, layout):
  """``fn`` with a sharding rule: the batch factor ``b`` passes through; every
  other axis is replicated; results without ``b`` that are sums over it
  (weight gradients) are ``psum``-ed over the mesh axes ``b`` is split on."""
  arg_axes, out_axes, summed = layout
  split = custom_partitioning(fn)

  def spec(ndim, axis, batch):
    names = [None] * ndim
    if axis is not None:
      names[axis] = batch
    return PartitionSpec(*names)

  def partition(mesh, arg_shapes, result_shape):
    xs_spec = arg_shapes[0].sharding.spec
    batch = xs_spec[1] if len(xs_spec) > 1 else None
    arg_shardings = tuple(NamedSharding(mesh, spec(len(a.shape), ax, batch))
                          for a, ax in zip(arg_shapes, arg_axes))
    out_shardings = tuple(NamedSharding(mesh, spec(len(r.shape), ax, batch))
                          for r, ax in zip(result_shape, out_axes))
    axes = () if batch is None else (batch if isinstance(batch, tuple) else (batch,))

    def lower(*args):
      outs = fn(*args)
      if not axes:
        return outs
      return tuple(jax.lax.psum(o, axes) if s else o for o, s in zip(outs, summed))
    return mesh, lower, out_shardings, arg_shardings

  def infer(mesh, arg_shapes, result_shape):  # the GSPMD partitioner's question
    return partition(mesh, arg_shapes, result_shape)[2]

  def rule(mesh, arg_types, result_types):
    del mesh, arg_types, result_types
    counter = iter(range(10 ** 6))
    name = lambda ax, i, ndim: ("b" if i == ax else f"r{next(counter)}")
    describe = lambda axes, ndims: ", ".join(
        " ".join(name(ax, i, n) for i in range(n)) for ax, n in zip(axes, ndims))
    return f"{describe(arg_axes, _ndims[0])} -> {describe(out_axes, _ndims[1])}"

  _ndims = [None, None]

  def call(*args):
    _ndims[0] = tuple(a.ndim for a in args)
    _ndims[1] = tuple(o.ndim for o in jax.eval_shape(fn, *args))
    return split(*args)

  split.def_partition(partition=partition, infer_sharding_from_operands=infer,
                      sharding_rule=rule)
  return call


def _folded(fn, layout):
  """``fn`` under ``vmap``: the mapped axis folded into the batch axis (one
  call) when only arrays with a batch axis are mapped and no result is a sum
  over the batch; else one call per mapped element (``lax.map``)."""
  arg_axes, out_axes, summed = layout
  batched_fn = jax.custom_batching.custom_vmap(fn)

  @batched_fn.def_vmap
  def rule(axis_size, in_batched, *args):
    can_fold = not any(summed) and all(
        not mapped or ax is not None for mapped, ax in zip(in_batched, arg_axes))
    if not can_fold:
      mapped = [i for i, m in enumerate(in_batched) if m]

      def one(sliced):
        full = list(args)
        for i, a in zip(mapped, sliced):
          full[i] = a
        return batched_fn(*full)
      outs = jax.lax.map(one, [args[i] for i in mapped])
      return tuple(outs), (True,) * len(outs)
    folded = []
    for a, mapped, ax in zip(args, in_batched, arg_axes):
      if ax is None:
        folded.append(a)
        continue
      if not mapped:
        a = jnp.broadcast_to(a, (axis_size,) + a.shape)
      a = jnp.moveaxis(a, 0, ax)  # (..., N, B, ...)
      folded.append(a.reshape(a.shape[:ax] + (-1,) + a.shape[ax + 2:]))
    outs = batched_fn(*folded)
    unfolded = []
    for o, ax in zip(outs, out_axes):
      if ax is None:  # an empty placeholder result
        unfolded.append(jnp.broadcast_to(o, (axis_size,) + o.shape))
        continue
      o = o.reshape(o.shape[:ax] + (axis_size, -1) + o.shape[ax + 1:])
      unfolded.append(jnp.moveaxis(o, ax, 0))
    return tuple(unfolded), (True,) * len(outs)

  return batched_fn


@functools.lru_cache(maxsize=None)
def _forward_call(k, reverse, save, masked):
  layout = _forward_layout(k in _HAS_CELL_STATE, masked, save)
  fn = functools.partial(_ffi_forward, k, reverse, save)
  return _folded(_partitioned(fn, layout), layout)


@functools.lru_cache(maxsize=None)
def _backward_call(k, reverse, masked):
  layout = _backward_layout(k in _HAS_CELL_STATE, masked)
  fn = functools.partial(_ffi_backward, k, reverse)
  return _folded(_partitioned(fn, layout), layout)


def _forward(k, reverse, xs, w_i, b, w_h, extra, h0, c0, valid, *, save):
  call = _forward_call(k, reverse, save, valid.ndim == 2)
  return call(xs, w_i, b, w_h, extra, h0, c0, valid)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _layer(k, reverse, xs, w_i, b, w_h, extra, h0, c0, valid):
  ys, h, c, _, _ = _forward(k, reverse, xs, w_i, b, w_h, extra, h0, c0, valid,
                            save=False)
  return ys, h, c


def _layer_fwd(k, reverse, xs, w_i, b, w_h, extra, h0, c0, valid):
  ys, h, c, res, cs = _forward(k, reverse, xs, w_i, b, w_h, extra, h0, c0,
                               valid, save=True)
  return (ys, h, c), (xs, w_i, w_h, extra, h0, c0, valid, ys, res, cs)


def _layer_bwd(k, reverse, saved, cotangents):
  xs, w_i, w_h, extra, h0, c0, valid, ys, res, cs = saved
  dys, dh, dc = cotangents
  call = _backward_call(k, reverse, valid.ndim == 2)
  dxs, dw_i, db, dw_h, dextra, dh0, dc0 = call(
      xs, w_i, w_h, extra, h0, c0, valid, ys, res, cs, dys, dh, dc)
  return dxs, dw_i, db, dw_h, dextra, dh0, dc0, None


_layer.defvjp(_layer_fwd, _layer_bwd)


def backward_scratch_bytes(variant: str, T: int, B: int, H: int,
                           dtype: Any = jnp.float32, I: Optional[int] = None) -> int:
  """Bytes the backward kernel allocates for itself (outside XLA's buffers)
  for one call over ``T`` steps of ``B`` rows of width ``H`` (input width
  ``I``, default ``H``), as ``persistent.h`` asks its workspaces for them:
  the carries before each step, the pre-activation cotangents, the packed
  operands and outputs of the weight gradients (widths rounded up to whole
  panels, at most 32 elements), and each thread's packed ``W_h^T`` slice and
  ``(B, H)`` rows. XLA's memory analysis does not count them;
  ``workspace.h`` frees a slot above 256 MiB when the call ends and keeps
  smaller ones for the next call."""
  k = KINDS[variant]
  I = H if I is None else I
  G = {_RNN_TANH: 1, _RNN_RELU: 1, _LSTM: 4, _PEEPHOLE: 4}.get(k, 3)
  pad = lambda n: -(-n // 32) * 32
  rows, Hp, Ip = T * B, pad(H), pad(I)
  elements = rows * H + rows * G * H  # carries before each step, dz
  if k == _GRU_AFTER:
    elements += rows * H  # the input side's n block
  elements += rows * Hp + rows * Ip + G * H * Ip  # packed H_prev, X, W_i^T
  elements += G * H * max(Hp, Ip) + rows * Ip     # dW^T, dX before unpadding
  elements += Hp * G * H + 3 * B * Hp + 96 * 256  # per thread, all threads
  return elements * jnp.dtype(dtype).itemsize
