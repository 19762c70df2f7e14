"""Flax linen modules wrapping jaxrnn's functional cells and layers."""

from jaxrnn._src.flax.linen import Block
from jaxrnn._src.flax.linen import Cell
from jaxrnn._src.flax.linen import RNN
from jaxrnn._src.flax.linen import from_functional
from jaxrnn._src.flax.linen import to_functional

__all__ = ("Block", "Cell", "RNN", "from_functional", "to_functional")
