"""lrrange: Leslie Smith's LR range test, cyclical LRs and one-cycle for fastai."""

from .callbacks import LRRange, range_test
from .result import RangeResult

__all__ = ["LRRange", "RangeResult", "range_test"]
__version__ = "0.1.0"
