"""Flax modules over the functional layers: linen and nnx."""
