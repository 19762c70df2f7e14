"""Training with optax and orbax, on one or many processes."""
