"""Flax nnx modules over the functional cells and layers.

The module holds the functional params (the NamedTuples ``cell.init``
returns) as an ``nnx.List`` with one ``nnx.Param`` per array, plus their tree
structure; nnx's optimizers and transforms see plain array params, and
:func:`to_functional` / :func:`load_functional` rebuild or replace the
functional params exactly.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrnn._src.cells import base
from jaxrnn._src.layers import dropout as dropout_lib
from jaxrnn._src.flax import linen as flax_linen
from jaxrnn._src.layers import composite as layers
from jaxrnn._src.layers import order
from jaxrnn._src.layers import scan as scan_lib


class Cell(nnx.Module):
  """One step of a jaxrnn cell: ``module(carry, x) -> (carry, y)``;
  ``initializer``, ``forget_bias``, ``chrono``, ``proj_size`` and
  ``param_dtype`` are passed to ``cell.init``."""

  def __init__(self, cell: base.Cell, in_features: int, hidden_size: int, *,
               rngs: nnx.Rngs, initializer: str = "default",
               forget_bias: Optional[float] = None, proj_size: Optional[int] = None,
               param_dtype: Any = jnp.float32, chrono: Optional[float] = None):
    self.cell = cell
    self.in_features = in_features
    self.hidden_size = hidden_size
    self.init_kwargs = flax_linen.init_kwargs(cell, initializer, forget_bias,
                                              proj_size, param_dtype, chrono)
    _store(self, cell.init(rngs.params(), in_features, hidden_size, **self.init_kwargs))

  def __call__(self, carry, x):
    return self.cell(to_functional(self), carry, x)

  def initialize_carry(self, input_shape, rngs=None):
    """Zeros for inputs of shape ``(*batch, features)`` (nnx's convention)."""
    del rngs
    return self.cell.initial_carry(to_functional(self), tuple(input_shape[:-1]))


class RNN(nnx.Module):
  """A jaxrnn sequence layer (cell, ``Bidirectional`` or ``Stacked``) as an
  nnx module; ``module(xs, ...) -> (carry, ys)`` as the functional layer.

  ``reverse``, ``unroll``, ``remat``, ``time_major``, ``impl`` and the
  peers' output conventions ``keep_order``, ``go_backwards`` and
  ``zero_output_for_mask`` are as in :func:`jaxrnn.scan`; ``dropout`` is a :class:`jaxrnn.RecurrentDropout` for
  a cell or a ``Bidirectional`` (a ``Stacked`` layer holds its own). Dropout
  is on in training mode (``module.train()``, the default) and off after
  ``module.eval()`` (zoneout then gives its expectation); it draws from
  ``rngs.dropout``.
  """

  def __init__(self, layer: Union[base.Cell, layers.Bidirectional, layers.Stacked],
               in_features: int, hidden_size: Union[int, Sequence[int]], *,
               rngs: nnx.Rngs, reverse: bool = False, unroll: int = 1,
               remat: bool = False, time_major: bool = False, impl: Optional[str] = None,
               initializer: str = "default", forget_bias: Optional[float] = None,
               proj_size: Optional[int] = None, param_dtype: Any = jnp.float32,
               dropout: Optional[dropout_lib.RecurrentDropout] = None,
               keep_order: bool = True, go_backwards: bool = False,
               zero_output_for_mask: bool = True, chrono: Optional[float] = None):
    if impl is not None:
      scan_lib.check_impl(impl)
    if reverse and not isinstance(layer, base.Cell):
      raise ValueError(f"reverse: applies to a cell, not to {type(layer).__name__}")
    flax_linen.check_dropout(layer, dropout)
    order.check(layer, reverse=reverse or go_backwards is True, keep_order=keep_order,
                go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)
    self.spec = layer
    self.dropout = dropout
    self.reverse, self.unroll, self.remat, self.time_major = reverse, unroll, remat, time_major
    self.impl = impl
    self.keep_order, self.go_backwards = keep_order, go_backwards
    self.zero_output_for_mask = zero_output_for_mask
    kwargs = flax_linen.init_kwargs(layer, initializer, forget_bias, proj_size, param_dtype,
                                    chrono)
    _store(self, layer.init(rngs.params(), in_features, hidden_size, **kwargs))
    self.rngs = rngs
    self.deterministic = False

  def __call__(self, xs, *, initial_carry=None, seq_lengths=None, mask=None,
               resets=None, reset_carry=None):
    xs = base.as_array(xs, "xs")
    params = to_functional(self)
    common = dict(initial_carry=initial_carry, seq_lengths=seq_lengths, mask=mask,
                  resets=resets, reset_carry=reset_carry,
                  time_major=self.time_major, unroll=self.unroll, remat=self.remat,
                  impl=self.impl)
    train = not self.deterministic and flax_linen.draws_masks(self.spec, self.dropout)
    common.update(key=self.rngs.dropout() if train else None,
                  deterministic=not train)
    return scan_lib.apply(self.spec, params, xs, reverse=self.reverse,
                          dropout=self.dropout, keep_order=self.keep_order,
                          go_backwards=self.go_backwards,
                          zero_output_for_mask=self.zero_output_for_mask, **common)

  def initialize_carry(self, input_shape, rngs=None):
    """Zeros for inputs of shape ``(*batch, T, features)`` (or time-major)."""
    del rngs
    batch = scan_lib.carry_batch_shape(input_shape, self.time_major,
                                       self.spec.feature_axes())
    return self.spec.initial_carry(to_functional(self), tuple(batch))


def _store(module, params) -> None:
  leaves, module.treedef = jax.tree.flatten(params)
  module.layer = nnx.List([nnx.Param(leaf) for leaf in leaves])


def to_functional(module: Union[Cell, RNN, "Block"]):
  """The functional params a module holds (exact)."""
  return jax.tree.unflatten(module.treedef, [p[...] for p in module.layer])


def load_functional(module: Union[Cell, RNN, "Block"], params) -> None:
  """Puts functional ``params`` into ``module`` in place (exact).

  ``params`` have the module's structure and shapes, except that a bias
  (``b_i``, ``b_h``) may be ``None`` on either side: bias-free params (from
  ``interop.from_flax(LSTMCell(), ...)`` or a torch layer with
  ``bias=False``) load, and :func:`to_functional` gives them back unchanged.

  Raises:
    ValueError: ``params`` are not shaped like the module's.
  """
  is_none = lambda x: x is None
  got, got_def = jax.tree_util.tree_flatten_with_path(params, is_leaf=is_none)
  have, have_def = jax.tree_util.tree_flatten_with_path(to_functional(module),
                                                        is_leaf=is_none)
  describe = lambda leaves: [None if x is None else jnp.shape(x) for _, x in leaves]
  error = ValueError(f"params: expected the structure and shapes of this module's params "
                     f"({have_def}, {describe(have)}), got ({got_def}, {describe(got)})")
  if got_def != have_def:
    raise error
  for (path, new), (_, old) in zip(got, have):
    if new is None and old is None:  # a part the options leave out
      continue
    if new is None or old is None:
      field = getattr(path[-1], "name", None) if path else None
      if field not in ("b_i", "b_h"):
        raise error
    elif jnp.shape(new) != jnp.shape(old):
      raise error
  spec = module.cell if isinstance(module, Cell) else module.spec
  if hasattr(spec, "check_params"):  # a cell, a block or a sequence model
    spec.check_params(params)
  else:
    spec._check_params(params, "params")  # pylint: disable=protected-access
  if [x is None for _, x in got] != [x is None for _, x in have]:
    _store(module, params)  # a bias dropped or added: the module's variables follow
    return
  for variable, leaf in zip(module.layer, jax.tree.leaves(params)):
    variable[...] = jnp.asarray(leaf)  # a whole replacement, in every flax >= 0.12


class Block(nnx.Module):
  """A jaxrnn block (:mod:`jaxrnn.blocks`) or sequence model as an nnx
  module: ``module(xs, ...) -> (carry, ys)`` over a sequence, as
  :func:`jaxrnn.scan` runs it, and ``module.step(carry, x) -> (carry, y)``
  for one step. ``d_model`` is the block's width (a sequence model has its
  own; pass ``None``); ``unroll``, ``remat``, ``time_major`` and ``impl``
  are as in :func:`jaxrnn.scan`.
  """

  def __init__(self, block, d_model: Optional[int], *, rngs: nnx.Rngs,
               unroll: int = 1, remat: bool = False, time_major: bool = False,
               impl: Optional[str] = None, param_dtype: Any = jnp.float32):
    if impl is not None:
      scan_lib.check_impl(impl)
    self.spec = block
    self.unroll, self.remat, self.time_major, self.impl = unroll, remat, time_major, impl
    _store(self, flax_linen.init_block(block, rngs.params(), d_model, param_dtype))

  def __call__(self, xs, *, initial_carry=None, seq_lengths=None, mask=None,
               resets=None, reset_carry=None):
    return scan_lib.apply(self.spec, to_functional(self), xs,
                          initial_carry=initial_carry, seq_lengths=seq_lengths,
                          mask=mask, resets=resets, reset_carry=reset_carry,
                          time_major=self.time_major, unroll=self.unroll,
                          remat=self.remat, impl=self.impl)

  def step(self, carry, x):
    return self.spec(to_functional(self), carry, x)

  def initialize_carry(self, batch_shape=()):
    return self.spec.initial_carry(to_functional(self), tuple(batch_shape))
