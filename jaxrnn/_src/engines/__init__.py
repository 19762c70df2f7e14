"""The engines that run a cell over time, on one protocol (:mod:`.protocol`)."""
