"""The cells: one family per module, all on the interface of :mod:`.base`."""
