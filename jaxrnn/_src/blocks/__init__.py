"""Residual blocks as the papers build them, and a sequence model of them."""
