"""Weights and carries to and from PyTorch, Flax and Equinox."""
