"""Flax linen modules wrapping jaxrnn's functional cells and layers."""

from jaxrnn._src.flax_linen import Cell
from jaxrnn._src.flax_linen import RNN
from jaxrnn._src.flax_linen import from_functional
from jaxrnn._src.flax_linen import to_functional

__all__ = ("Cell", "RNN", "from_functional", "to_functional")
