"""lrrange: Leslie Smith's LR range test, cyclical LRs and one-cycle for fastai."""

from .callbacks import Cyclical, LRRange, OneCycle, range_test
from .multi import RepeatedResult, SweepResult
from .result import RangeResult

__all__ = ["Cyclical", "LRRange", "OneCycle", "RangeResult", "RepeatedResult", "SweepResult", "range_test"]
__version__ = "0.1.0"
