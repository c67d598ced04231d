"""Distribution-free bounds on scores in [0, 1]: pure numpy functions, named results, no I/O.

``bound_rows`` computes every bound for many (possibly ragged) rows at once; the sequence
functions give anytime-valid bounds after every prefix of one row, for adaptive sampling.
The maths, sidedness and alpha conventions are documented in ``docs/metrics.md``.
"""

from shared.stats.binomial import BinomialBounds, clopper_pearson
from shared.stats.columns import ASSUMPTIONS, COLUMNS, Column
from shared.stats.dkw import dkw_epsilon
from shared.stats.rows import BoundsTable, bound_rows
from shared.stats.sequences import (
    ConfidenceSequence,
    betting_sequence,
    binary_mixture_sequence,
)

__all__ = [
    "ASSUMPTIONS",
    "COLUMNS",
    "Column",
    "BinomialBounds",
    "BoundsTable",
    "ConfidenceSequence",
    "betting_sequence",
    "binary_mixture_sequence",
    "bound_rows",
    "clopper_pearson",
    "dkw_epsilon",
]
