"""Suggestion rules: arrays of (lr, smoothed loss) in, one learning rate out.

Every rule is a pure function ``rule(lrs, losses) -> float``. Rules ignore
non-finite points, skip the noisy first steps and the divergence tail, and
never return an LR outside the tested range. ``RULES`` maps names to rules;
``DEFAULT`` names the one ``RangeResult.suggestion`` uses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

Rule = Callable[[np.ndarray, np.ndarray], float]


def _prepare(lrs: ArrayLike, losses: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Finite points up to the first non-finite one, as float arrays."""
    lrs_a, losses_a = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lrs_a.shape != losses_a.shape or lrs_a.ndim != 1:
        raise ValueError(
            f"lrs and losses must be 1-d arrays of one length, got {lrs_a.shape} and {losses_a.shape}"
        )
    bad = ~(np.isfinite(lrs_a) & np.isfinite(losses_a) & (lrs_a > 0))
    stop = int(np.argmax(bad)) if bad.any() else len(lrs_a)
    return lrs_a[:stop], losses_a[:stop]


def _window(losses: np.ndarray) -> slice:
    """Indices worth reading: skip the first 10% and cut after the loss passes 4x its minimum."""
    n = len(losses)
    start = min(n // 10, max(n - 2, 0))
    best = np.minimum.accumulate(losses)
    over = np.nonzero(losses[start:] > 4 * np.abs(best[start:]) + 1e-12)[0]
    stop = start + int(over[0]) if len(over) else n
    return slice(start, max(stop, start + 1))


def _clip(lr: float, lrs: np.ndarray) -> float:
    return float(np.clip(lr, lrs.min(), lrs.max()))


def minimum(lrs: ArrayLike, losses: ArrayLike) -> float:
    """LR at the minimum of the smoothed loss, divided by 10 (fastai's ``minimum``)."""
    lrs_a, losses_a = _prepare(lrs, losses)
    if len(lrs_a) == 0:
        return float("nan")
    w = _window(losses_a)
    i = w.start + int(np.argmin(losses_a[w]))
    return _clip(lrs_a[i] / 10, lrs_a)


def steep(lrs: ArrayLike, losses: ArrayLike) -> float:
    """LR where the smoothed loss falls fastest against log LR."""
    lrs_a, losses_a = _prepare(lrs, losses)
    if len(lrs_a) < 3:
        return float(lrs_a[0]) if len(lrs_a) else float("nan")
    w = _window(losses_a)
    x, y = np.log(lrs_a[w]), losses_a[w]
    if len(x) < 3:
        return float(lrs_a[w][0])
    i = int(np.argmin(np.gradient(y, x)))
    return float(lrs_a[w][i])


RULES: dict[str, Rule] = {"minimum": minimum, "steep": steep}
DEFAULT = "minimum"


def suggest_all(lrs: ArrayLike, losses: ArrayLike) -> dict[str, float]:
    """Every rule's pick, by name."""
    return {name: rule(lrs, losses) for name, rule in RULES.items()}


def bounds(lrs: ArrayLike, losses: ArrayLike) -> tuple[float, float]:
    """Base and max LR for a cyclical schedule, after Smith (2017), section 3.3.

    ``max_lr`` is where the smoothed loss stops falling (its minimum), halved to
    stay clear of the divergence; ``base_lr`` is a quarter of it, inside Smith's
    "one third to one fourth of the maximum" advice. Both lie in the tested range
    and ``base_lr < max_lr`` whenever the range has more than one LR.
    """
    lrs_a, losses_a = _prepare(lrs, losses)
    if len(lrs_a) == 0:
        return float("nan"), float("nan")
    w = _window(losses_a)
    i = w.start + int(np.argmin(losses_a[w]))
    hi = _clip(lrs_a[i] / 2, lrs_a)
    lo = _clip(hi / 4, lrs_a)
    if lo >= hi and len(lrs_a) > 1:
        lo, hi = float(lrs_a.min()), max(hi, float(np.unique(lrs_a)[1]))
    return lo, hi
