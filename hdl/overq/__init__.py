"""OverQ: outlier-overwrite encoder and the weight-stationary systolic array (ALGORITHMS.md §2)."""

from .array import SystolicArray
from .encoder import OverQEncode, OverQEncoder

__all__ = ["OverQEncode", "OverQEncoder", "SystolicArray"]
