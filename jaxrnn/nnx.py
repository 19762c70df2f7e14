"""Flax nnx modules wrapping jaxrnn's functional cells and layers."""

from jaxrnn._src.flax.nnx import Block
from jaxrnn._src.flax.nnx import Cell
from jaxrnn._src.flax.nnx import RNN
from jaxrnn._src.flax.nnx import load_functional
from jaxrnn._src.flax.nnx import to_functional

__all__ = ("Block", "Cell", "RNN", "load_functional", "to_functional")
