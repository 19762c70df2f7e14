"""jaxrnn's implementation; the public names are re-exported by ``jaxrnn``."""
