"""Pure schedules: a step (or a fraction of training) in, a value out.

Nothing here knows about fastai or torch state. Every function accepts NumPy
arrays for its endpoints, so one call gives every parameter group its value.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

RANGE_MODES = ("exp", "linear")


def range_lr(
    step: int, num_it: int, start: ArrayLike, end: ArrayLike, mode: str = "exp"
) -> float | np.ndarray:
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


CYCLICAL_MODES = ("triangular", "triangular2", "exp_range")


def _cos_anneal(pos: float, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def one_cycle(
    pct: float, start: ArrayLike, peak: ArrayLike, end: ArrayLike, pct_start: float = 0.25
) -> float | np.ndarray:
    """One cycle of two cosine phases: ``start`` to ``peak``, then ``peak`` to ``end``.

    With ``cos(p, a, b) = a + (1 + cos(pi * (1 - p))) * (b - a) / 2`` and ``pct``
    the fraction of training done (clipped to [0, 1]), the value is
    ``cos(pct / pct_start, start, peak)`` while ``pct < pct_start`` and
    ``cos((pct - pct_start) / (1 - pct_start), peak, end)`` after: fastai's
    ``combined_cos``. The one-cycle LR (Smith, 2018) is
    ``one_cycle(pct, lr_max / div, lr_max, lr_max / div_final)`` and its
    momentum ``one_cycle(pct, *moms)``, falling while the LR rises. The
    position within a phase is computed in float32, as fastai does, so the
    values are bit for bit those of ``fit_one_cycle``.

    >>> [round(one_cycle(p, 0.04, 1.0, 1e-5), 6) for p in (0.0, 0.125, 0.25, 1.0)]
    [0.04, 0.52, 1.0, 1e-05]
    >>> round(one_cycle(0.125, 0.95, 0.85, 0.95), 6)
    0.9
    """
    if not 0.0 < pct_start < 1.0:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start!r}")
    start_a, peak_a, end_a = (np.asarray(v, dtype=float) for v in (start, peak, end))
    edges = np.cumsum(np.array([0.0, pct_start, 1 - pct_start], dtype=np.float32), dtype=np.float32)
    pos = np.float32(min(max(float(pct), 0.0), 1.0))
    phase = 1 if pos >= edges[1] else 0
    within = float((pos - edges[phase]) / (edges[phase + 1] - edges[phase]))
    lo, hi = (start_a, peak_a) if phase == 0 else (peak_a, end_a)
    out = _cos_anneal(within, lo, hi)
    return out.item() if out.ndim == 0 else out


def cyclical(
    step: int,
    start: ArrayLike,
    peak: ArrayLike,
    step_size: int,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> float | np.ndarray:
    """Smith's cyclical schedule at training iteration ``step`` (0-based); half a cycle is ``step_size``.

    ``cycle = floor(1 + step / (2 * step_size))``, ``x = |step / step_size - 2 * cycle + 1|``,
    ``value = start + (peak - start) * max(0, 1 - x) * scale`` with ``scale`` 1
    (``triangular``), ``1 / 2**(cycle - 1)`` (``triangular2``: the swing halves
    every cycle) or ``gamma**step`` (``exp_range``) (Smith, 2017, section 3.1).
    The LR goes ``start=base_lr`` up to ``peak=max_lr``; momentum cycles the
    other way with ``start=max_mom, peak=base_mom``.

    >>> [cyclical(t, 1.0, 3.0, 2) for t in range(5)]
    [1.0, 2.0, 3.0, 2.0, 1.0]
    >>> [cyclical(t, 1.0, 3.0, 2, "triangular2") for t in (2, 6, 10)]
    [3.0, 2.0, 1.5]
    >>> cyclical(2, 1.0, 3.0, 2, "exp_range", gamma=0.5)
    1.5
    """
    if mode not in CYCLICAL_MODES:
        raise ValueError(f"mode must be one of {CYCLICAL_MODES}, got {mode!r}")
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size!r}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma!r}")
    start_a, peak_a = np.asarray(start, dtype=float), np.asarray(peak, dtype=float)
    cycle = np.floor(1 + step / (2 * step_size))
    x = abs(step / step_size - 2 * cycle + 1)
    if mode == "triangular":
        scale = 1.0
    elif mode == "triangular2":
        scale = 0.5 ** (cycle - 1)
    else:
        scale = gamma**step
    out = start_a + (peak_a - start_a) * max(0.0, 1 - x) * scale
    return out.item() if out.ndim == 0 else out
