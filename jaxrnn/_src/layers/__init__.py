"""Sequence layers: the checked front-end (:mod:`.scan`), Bidirectional and
Stacked (:mod:`.composite`), the regularisers and the read-out."""
