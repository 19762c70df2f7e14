"""The native CPU engine: fused recurrent layers in C++ behind ``jax.ffi``.

``_kernels`` (``kernels.cc``, ``module.cc``) is built by ``pip install`` when
a C++ compiler is there. It holds two XLA FFI handlers, a forward and a
backward, that serve the simple RNN (tanh, relu), LSTM, both GRU variants,
CIFG and peephole LSTM. Each step's matmul goes to the BLAS that scipy ships,
found at import as jaxlib finds LAPACK (``scipy.linalg.cython_blas``), so
nothing links against a BLAS at build time.

:func:`run_layer` wraps the two handlers in a ``jax.custom_vjp``: the forward
saves each step's activated gates, and the backward is cuDNN's scheme (one
GEMM per step in the loop; dW_h, dW_i, the biases and dX as single GEMMs over
all steps after it). Under ``vmap`` the handlers run once per mapped element.
Forward-mode autodiff (``jvp``) is not defined for them: use
``impl="autodiff"`` there.

If the extension is missing or cannot load, :func:`status` says why and the
sequence layers run on the XLA engine.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._src import base
from jaxrnn._src import gru as gru_lib
from jaxrnn._src import lstm as lstm_lib
from jaxrnn._src import simple as simple_lib

# Kept in sync with kernels.cc (enum Kind).
_RNN_TANH, _RNN_RELU, _LSTM, _GRU_AFTER, _GRU_BEFORE, _CIFG, _PEEPHOLE = range(7)
_HAS_CELL_STATE = (_LSTM, _CIFG, _PEEPHOLE)
_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))
_FORWARD, _BACKWARD = "jaxrnn_rnn_forward", "jaxrnn_rnn_backward"


def _load():
  """Imports the extension, hands it scipy's GEMMs, registers the targets."""
  try:
    from jaxrnn._native import _kernels  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    return False, f"the native extension is not built or cannot load ({e})"
  try:
    from scipy.linalg import cython_blas  # pylint: disable=import-outside-toplevel
    capi = cython_blas.__pyx_capi__
    _kernels.set_gemm(capi["sgemm"], capi["dgemm"])
  except (ImportError, KeyError, TypeError) as e:
    return False, f"no BLAS from scipy.linalg.cython_blas ({e})"
  handlers = _kernels.handlers()
  jax.ffi.register_ffi_target(_FORWARD, handlers["forward"], platform="cpu")
  jax.ffi.register_ffi_target(_BACKWARD, handlers["backward"], platform="cpu")
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


def profile(on: bool) -> dict:
  """Seconds the kernels spent per phase since the last call, summed over
  calls and threads (``projection``, ``recurrent``, ``gate_math``,
  ``carries``, ``weights``; see ``profile.h``); then switches timing on or
  off. For benchmarks/profile_native.py."""
  if not available():
    raise RuntimeError(f"jaxrnn's native kernels are not available: {status()}")
  from jaxrnn._native import _kernels  # pylint: disable=import-outside-toplevel
  return _kernels.profile(bool(on))


def kind(cell: base.Cell) -> Optional[int]:
  """The kernel's code for ``cell``, or ``None`` if no kernel serves it.

  Exact types only: a subclass (``ProjectedLSTMCell``, or a user's) may change
  the step, so it runs on the XLA engine.
  """
  t = type(cell)
  if t is simple_lib.SimpleRNNCell:
    return _RNN_TANH if cell.activation == "tanh" else _RNN_RELU
  if t is lstm_lib.LSTMCell:
    return _LSTM
  if t is lstm_lib.CIFGLSTMCell:
    return _CIFG
  if t is lstm_lib.PeepholeLSTMCell:
    return _PEEPHOLE
  if t is gru_lib.GRUCell:
    return _GRU_AFTER if cell.reset_after else _GRU_BEFORE
  return None


def unsupported(cell: base.Cell, params: Any, xs: jax.Array,
                carry: Optional[Any]) -> Optional[str]:
  """Why the native kernel cannot run this layer, or ``None`` if it can."""
  if not available():
    return status()
  if jax.default_backend() != "cpu":
    return f"it runs on CPU only, and the backend is {jax.default_backend()}"
  if kind(cell) is None:
    return f"it has no kernel for {type(cell).__name__}"
  dtypes = {jnp.dtype(leaf.dtype) for leaf in jax.tree.leaves((params, carry))}
  dtypes.add(jnp.dtype(xs.dtype))
  if len(dtypes) != 1 or dtypes.pop() not in _DTYPES:
    return ("it needs xs, params and carry all float32 or all float64, got "
            + ", ".join(sorted({str(jnp.dtype(leaf.dtype)) for leaf in
                                jax.tree.leaves((xs, params, carry))})))
  if math.prod(xs.shape) == 0:
    return "the sequence or the batch is empty"
  return None


def run_layer(cell: base.Cell, params: Any, xs: jax.Array, carry: Any,
              valid: Optional[jax.Array], *, reverse: bool):
  """Runs ``cell`` over time-major ``xs`` ``(T, *batch, I)`` natively.

  Same contract as the XLA engine's ``run_cell``: invalid steps hold the carry
  and output zeros. Returns ``(final_carry, ys)``.
  """
  if not available():
    raise RuntimeError(f"jaxrnn's native kernels are not available: {status()}")
  k = kind(cell)
  T, batch, I = xs.shape[0], xs.shape[1:-1], xs.shape[-1]
  B = int(np.prod(batch, dtype=np.int64))
  dtype = xs.dtype
  w_i, b = cell.input_weights(params)
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
  carry = (base.LSTMState(unflat(h), unflat(c)) if k in _HAS_CELL_STATE
           else base.RNNState(unflat(h)))
  return carry, ys.reshape((T,) + batch + (H,))


def _residual_width(k: int, H: int) -> int:
  """Saved activations per step and row (kernels.cc, residual_width)."""
  if k in (_RNN_TANH, _RNN_RELU):
    return H
  if k == _GRU_AFTER:
    return 4 * H
  return (4 if k in (_LSTM, _PEEPHOLE) else 3) * H


def _forward(k, reverse, xs, w_i, b, w_h, extra, h0, c0, valid, *, save):
  T, B, _ = xs.shape
  H = w_h.shape[0]
  sd = lambda *shape: jax.ShapeDtypeStruct(shape, xs.dtype)
  has_c = k in _HAS_CELL_STATE
  R = _residual_width(k, H)
  out = (sd(T, B, H), sd(B, H), sd(B, H) if has_c else sd(0),
         sd(T, B, R) if save else sd(0),
         sd(T, B, H) if save and has_c else sd(0))
  call = jax.ffi.ffi_call(_FORWARD, out, vmap_method="sequential")
  return call(xs, w_i, b, w_h, extra, h0, c0, valid, kind=np.int64(k),
              reverse=np.int64(reverse))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _layer(k, reverse, xs, w_i, b, w_h, extra, h0, c0, valid):
  ys, h, c, _, _ = _forward(k, reverse, xs, w_i, b, w_h, extra, h0, c0, valid,
                            save=False)
  return ys, h, c


def _layer_fwd(k, reverse, xs, w_i, b, w_h, extra, h0, c0, valid):
  ys, h, c, res, cs = _forward(k, reverse, xs, w_i, b, w_h, extra, h0, c0,
                               valid, save=True)
  return (ys, h, c), (xs, w_i, b, w_h, extra, h0, c0, valid, ys, res, cs)


def _layer_bwd(k, reverse, saved, cotangents):
  xs, w_i, b, w_h, extra, h0, c0, valid, ys, res, cs = saved
  dys, dh, dc = cotangents
  like = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype)
  call = jax.ffi.ffi_call(
      _BACKWARD, tuple(like(a) for a in (xs, w_i, b, w_h, extra, h0, c0)),
      vmap_method="sequential")
  dxs, dw_i, db, dw_h, dextra, dh0, dc0 = call(
      xs, w_i, w_h, extra, h0, c0, valid, ys, res, cs, dys, dh, dc,
      kind=np.int64(k), reverse=np.int64(reverse))
  return dxs, dw_i, db, dw_h, dextra, dh0, dc0, None


_layer.defvjp(_layer_fwd, _layer_bwd)


def backward_scratch_bytes(cell: base.Cell, T: int, B: int, I: int, H: int,
                           dtype: Any = jnp.float32) -> int:
  """Bytes the backward kernel allocates for itself (outside XLA's buffers)
  for one call over ``T`` steps of ``B`` rows: the carries before each step,
  the pre-activation cotangents, ``W_h^T`` and a few ``(B, H)`` rows, as
  ``rows.h`` (``backward``) asks its workspace for them. XLA's memory
  analysis does not count them. ``I`` is accepted for symmetry and unused."""
  del I
  k = kind(cell)
  G = {_RNN_TANH: 1, _RNN_RELU: 1, _LSTM: 4, _PEEPHOLE: 4}.get(k, 3)
  rows = T * B
  elements = rows * H + H * G * H + rows * G * H  # hprev, W_h^T, dz
  if k == _GRU_AFTER:
    elements += rows * H  # the input side's n block
  elements += 3 * B * H  # dh, dc, d(r h)
  return elements * jnp.dtype(dtype).itemsize
