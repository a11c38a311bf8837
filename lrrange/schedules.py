"""Pure schedules: a step (or a fraction of training) in, a value out.

Nothing here knows about fastai or torch state. Every function accepts NumPy
arrays for its endpoints, so one call gives every parameter group its value.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

RANGE_MODES = ("exp", "linear")


def range_lr(step: int, num_it: int, start: ArrayLike, end: ArrayLike, mode: str = "exp"):
    """LR of the range test at ``step`` (0-based) of ``num_it``.

    With ``t = step / (num_it - 1)``, ``exp`` gives ``start * (end/start)**t`` (a
    geometric sweep, evenly spaced on a log axis) and ``linear`` gives
    ``start + t * (end - start)``. Step 0 is exactly ``start`` and step
    ``num_it - 1`` exactly ``end``; endpoints may be arrays (one per param group).

    >>> range_lr(0, 3, 1e-3, 1e-1), range_lr(1, 3, 1e-3, 1e-1), range_lr(2, 3, 1e-3, 1e-1)
    (0.001, 0.01, 0.1)
    >>> range_lr(1, 3, 0.0, 1.0, mode="linear")
    0.5
    """
    if mode not in RANGE_MODES:
        raise ValueError(f"mode must be one of {RANGE_MODES}, got {mode!r}")
    if num_it < 2:
        raise ValueError(f"num_it must be an integer >= 2, got {num_it!r}")
    start_a, end_a = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    if step <= 0:
        out = start_a
    elif step >= num_it - 1:
        out = end_a
    else:
        t = step / (num_it - 1)
        if mode == "exp":
            out = start_a * (end_a / start_a) ** t
        else:
            out = start_a + t * (end_a - start_a)
    return out.item() if out.ndim == 0 else out.copy()
