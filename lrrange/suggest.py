"""Suggestion rules: arrays of (lr, smoothed loss) in, one learning rate out.

Every rule is a pure function ``rule(lrs, losses) -> float`` of the curve a
range test recorded. Rules read only the finite points before the first
non-finite one, and never return an LR outside the tested range (NaN only for
an empty curve). ``RULES`` maps names to rules; ``DEFAULT`` names the one
``RangeResult.suggestion`` uses: ``blend``, lrrange's own rule, chosen on
the regret benchmark in ``bench/regret`` (results in ``bench/results/``).
``descent`` and ``bottom`` are its two readings of the curve.

``valley``, ``slide``, ``minimum`` and ``steep`` give what fastai's functions
of the same names (``fastai.callback.schedule``) give inside ``lr_find``: they
read ``lrs[num_it//10:-5]`` and follow fastai's conventions exactly, in
O(n log n) instead of fastai's O(n²) ``valley``. ``num_it`` is the number of
steps the test was asked for (``None``: the number recorded, the same unless
the test stopped early). The only departure is that a pick outside the tested
range (``minimum``'s LR/10 can be) is clipped into it.
"""

from __future__ import annotations

import numbers
from bisect import bisect_left
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

Rule = Callable[[np.ndarray, np.ndarray], float]


def _prepare(lrs: ArrayLike, losses: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Finite points up to the first non-finite one (or LR <= 0), as float arrays."""
    lrs_a, losses_a = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lrs_a.shape != losses_a.shape or lrs_a.ndim != 1:
        raise ValueError(
            f"lrs and losses must be 1-d arrays of one length, got {lrs_a.shape} and {losses_a.shape}"
        )
    bad = ~(np.isfinite(lrs_a) & np.isfinite(losses_a) & (lrs_a > 0))
    stop = int(np.argmax(bad)) if bad.any() else len(lrs_a)
    return lrs_a[:stop], losses_a[:stop]


def _fastai_window(
    lrs: ArrayLike, losses: ArrayLike, num_it: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tested LRs and fastai's window of them: ``[num_it//10 : n-5]``, or all if that is empty."""
    if num_it is not None and (isinstance(num_it, bool) or not isinstance(num_it, int) or num_it < 1):
        raise ValueError(f"num_it must be None or an integer >= 1 (the steps asked for), got {num_it!r}")
    lrs_a, losses_a = _prepare(lrs, losses)
    n = len(lrs_a)
    skip = (n if num_it is None else num_it) // 10
    w = slice(skip, n - 5) if n - 5 > skip else slice(0, n)
    return lrs_a, lrs_a[w], losses_a[w]


def _clip(lr: float, lrs: np.ndarray) -> float:
    return float(np.clip(lr, lrs.min(), lrs.max()))


def _valley_index(losses: np.ndarray) -> int:
    """fastai's ``valley`` index, via patience sorting instead of its double loop.

    fastai takes the longest strictly decreasing subsequence (not run), ending at
    the first index ``end`` where that length ``m`` is reached, sets
    ``start = end - m`` and returns ``start + int(m/3) + int(m/3/2)``. Since a new
    record length is always the previous record plus one, ``end`` is where the
    patience pile count last grows. With no decrease at all fastai never updates
    and answers 0; otherwise the index may be -1 (Python wraps it), as in fastai.
    """
    tails: list[float] = []
    end = 0
    for i, v in enumerate((-losses).tolist()):
        k = bisect_left(tails, v)
        if k == len(tails):
            tails.append(v)
            end = i
        else:
            tails[k] = v
    m = len(tails)
    if m == 1:
        return 0
    sections = m / 3
    return end - m + int(sections) + int(sections / 2)


def valley(lrs: ArrayLike, losses: ArrayLike, num_it: int | None = None) -> float:
    """fastai's default: the LR about m/2 steps before the end of the loss's longest decreasing run.

    The run (``m`` points) is a subsequence, points may be skipped, so the pick
    lies in the longest stretch where the loss keeps setting new lows.
    """
    _, lr_w, loss_w = _fastai_window(lrs, losses, num_it)
    if len(lr_w) == 0:
        return float("nan")
    return float(lr_w[_valley_index(loss_w)])


def slide(
    lrs: ArrayLike, losses: ArrayLike, num_it: int | None = None, lr_diff: int = 15, thresh: float = 0.005
) -> float:
    """fastai's ``slide``: walking left from the end, the LR where the loss gradient settles.

    Two points ``lr_diff`` apart slide leftwards together until their gradients
    (``np.gradient`` per step) differ by at most ``thresh``; the pick is the left
    point's LR one step before that. Windows shorter than ``lr_diff + 1`` (where
    fastai raises ``IndexError``) use ``lr_diff = len - 1``.
    """
    _, lr_w, loss_w = _fastai_window(lrs, losses, num_it)
    n = len(lr_w)
    if n < 2:
        return float(lr_w[0]) if n else float("nan")
    d = min(lr_diff, n - 1)
    grad = np.gradient(loss_w)
    # offset k pairs the points n-1-k (right) and n-1-d-k (left), k = 0..n-1-d
    right = grad[n - 1 :: -1][: n - d]
    left = grad[n - 1 - d :: -1]
    settled = np.nonzero(~(np.abs(right - left) > thresh))[0]
    k = int(settled[0]) if len(settled) else n - d
    return float(lr_w[n - 1 - d - max(k - 1, 0)])


def minimum(lrs: ArrayLike, losses: ArrayLike, num_it: int | None = None) -> float:
    """fastai's ``minimum``: the LR of the smallest smoothed loss, divided by 10 (clipped into range)."""
    tested, lr_w, loss_w = _fastai_window(lrs, losses, num_it)
    if len(lr_w) == 0:
        return float("nan")
    return _clip(float(lr_w[int(np.argmin(loss_w))]) / 10, tested)


def steep(lrs: ArrayLike, losses: ArrayLike, num_it: int | None = None) -> float:
    """fastai's ``steep``: the left end of the segment where loss falls fastest against log LR."""
    _, lr_w, loss_w = _fastai_window(lrs, losses, num_it)
    if len(lr_w) < 2:
        return float(lr_w[0]) if len(lr_w) else float("nan")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        grads = np.diff(loss_w) / np.diff(np.log(lr_w))
    return float(lr_w[int(np.argmin(grads))])


def _fall(lrs: np.ndarray, losses: np.ndarray) -> tuple[int, int, float]:
    """Where the curve falls: ``(start, bottom, start_level)`` of the main descent.

    Reading starts at ``n//10`` (fastai's skip of the noisy first steps); the
    start level is the smoothed loss there. Reading stops once the loss, having
    fallen at least half of its whole drop, climbs back above that level: past
    that point the run is diverging, and a dip there is not a valley (noise in
    a flat start never falls that far). ``bottom`` is the minimum before the stop.
    """
    n = len(losses)
    start = n // 10
    level = losses[start]
    after = losses[start:]
    half = level - 0.5 * (level - after.min())
    fallen = np.minimum.accumulate(after) <= half
    over = np.nonzero(fallen & (after > level))[0]
    stop = start + int(over[0]) if len(over) else n
    bottom = start + int(np.argmin(losses[start:stop]))
    return start, bottom, float(level)


def _first_below(losses: np.ndarray, start: int, bottom: int, level: float, fraction: float) -> int:
    """First index in ``[start, bottom]`` whose loss is ``fraction`` of the way down the fall."""
    target = level - fraction * (level - losses[bottom])
    return start + int(np.argmax(losses[start : bottom + 1] <= target))


FRACTION = 0.6
"""How far down its main fall the default rule reads (see ``blend``)."""


def _check_fraction(fraction: float) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be a number strictly between 0 and 1, got {fraction!r}")
    return float(fraction)


def descent(lrs: ArrayLike, losses: ArrayLike, fraction: float = FRACTION) -> float:
    """The first LR where the smoothed loss is ``fraction`` of the way down its main fall.

    The fall runs from the smoothed loss at the start of the reading window
    down to its minimum before divergence (see ``_fall``); the pick is the first
    LR whose smoothed loss is at or below ``start - fraction * (start - minimum)``.
    Reading a loss *level* instead of a derivative makes it immune to a flat,
    noisy start and to a dip in the divergence tail; ``fraction=0.5`` is the
    middle of the S-shaped fall, where the loss falls fastest.

    >>> lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    >>> descent(lrs, [2.0, 2.0, 1.8, 1.0, 0.6, 5.0])  # falls 2.0 -> 0.6; 60% down is 1.16
    0.01
    """
    fraction = _check_fraction(fraction)
    lrs_a, losses_a = _prepare(lrs, losses)
    if len(lrs_a) == 0:
        return float("nan")
    start, low, level = _fall(lrs_a, losses_a)
    return float(lrs_a[_first_below(losses_a, start, low, level, fraction)])


def bottom(lrs: ArrayLike, losses: ArrayLike) -> float:
    """The LR where the main fall bottoms out: its lowest smoothed loss before divergence (``_fall``).

    fastai's ``minimum`` is a tenth of the lowest loss's LR over the whole
    window, so a dip in the divergence tail can carry it decades too high;
    this one stops reading where the tail starts.

    >>> bottom([1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.0, 2.0, 1.8, 1.0, 0.6, 5.0])
    0.1
    """
    lrs_a, losses_a = _prepare(lrs, losses)
    if len(lrs_a) == 0:
        return float("nan")
    return float(lrs_a[_fall(lrs_a, losses_a)[1]])


def blend(lrs: ArrayLike, losses: ArrayLike, fraction: float = FRACTION) -> float:
    """lrrange's default: the geometric mean of ``descent`` and a tenth of ``bottom``.

    Two readings of the main fall with different failure modes: how far the
    loss has come down (``descent`` at ``fraction``, 60%), and where it stops
    improving (``bottom``), the edge the LR must stay below, a tenth of it as
    in fastai's ``minimum``. Their mean in log LR hedges between them; both
    ignore a flat noisy start and the divergence tail, and the pick always
    lies between the two readings (clipped into the tested range).

    Why this rule, measured on the regret benchmark (``bench/regret``, one-cycle
    at the pick vs at every LR of a grid, Adam and SGD with momentum, results
    in ``bench/results/``): on its three MLP tasks ``descent`` alone at 0.55
    lost the least of all rules, but on three held-out tasks with other
    architectures (BatchNorm CNNs on digits and MNIST, a BatchNorm MLP on
    generated data) it landed 0.3-0.5 decades low and lost to fastai's
    ``minimum``. Of the rules that meet every goal of the benchmark on the MLP
    tasks (``descent`` at 0.55 or 0.6, this blend at 0.6), the blend has the
    smallest worst gap to the best other library's rule on the held-out
    tasks; a second held-out set, run after the choice, is the check. No
    fixed rule is within a grid step of the best LR everywhere: the best
    fraction alone ranges from about 0.4 to 0.8 across these tasks.

    >>> lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    >>> blend(lrs, [2.0, 2.0, 1.8, 1.0, 0.6, 5.0])  # sqrt(descent 0.01 * bottom 0.1 / 10)
    0.01
    """
    fraction = _check_fraction(fraction)
    lrs_a, losses_a = _prepare(lrs, losses)
    if len(lrs_a) == 0:
        return float("nan")
    start, low, level = _fall(lrs_a, losses_a)
    fall = float(lrs_a[_first_below(losses_a, start, low, level, fraction)])
    edge = max(float(lrs_a[low]) / 10, float(lrs_a.min()))
    return _clip(float(np.sqrt(fall * edge)), lrs_a)


RULES: dict[str, Rule] = {
    "blend": blend,
    "descent": descent,
    "valley": valley,
    "slide": slide,
    "minimum": minimum,
    "steep": steep,
}
DEFAULT = "blend"
FASTAI_RULES = ("valley", "slide", "minimum", "steep")


def suggest_all(lrs: ArrayLike, losses: ArrayLike, num_it: int | None = None) -> dict[str, float]:
    """Every rule's pick, by name; ``num_it`` (steps asked for) goes to fastai's rules' window."""
    return {
        name: rule(lrs, losses, num_it=num_it) if name in FASTAI_RULES else rule(lrs, losses)
        for name, rule in RULES.items()
    }


def bounds(lrs: ArrayLike, losses: ArrayLike) -> tuple[float, float]:
    """``(base_lr, max_lr)`` for a cyclical schedule, after Smith (2017), section 3.3.

    Smith sets ``max_lr`` where the range test stops improving and ``base_lr``
    where it starts to, or at a third to a quarter of ``max_lr``. On the loss
    curve's main fall (the one ``descent`` reads): ``max_lr`` is the first LR
    90% of the way down (where the loss stops falling, before the flat bottom
    that runs into divergence); ``base_lr`` is the first LR 10% of the way down
    (where it starts falling), raised to ``max_lr / 4`` when the fall is wide.
    Both lie in the tested range, and ``base_lr < max_lr`` whenever the range
    has more than one LR.
    """
    lrs_a, losses_a = _prepare(lrs, losses)
    if len(lrs_a) == 0:
        return float("nan"), float("nan")
    start, low, level = _fall(lrs_a, losses_a)
    hi = float(lrs_a[_first_below(losses_a, start, low, level, 0.9)])
    rising = float(lrs_a[_first_below(losses_a, start, low, level, 0.1)])
    lo = _clip(max(rising, hi / 4) if rising < hi else hi / 4, lrs_a)
    if lo >= hi:
        distinct = np.unique(lrs_a)
        lo, hi = float(distinct[0]), float(distinct[min(1, len(distinct) - 1)])
    return lo, hi
