"""Several range tests read as one: repeats over batch orders or initialisations, and weight-decay sweeps.

One range test is a single, batch-dependent draw. ``repeated_test`` runs k of
them from the same starting weights (each with its own seeded batch order, or
from k fresh initialisations) and reads them on a common LR grid: a median
curve, a 10-90% band, every run's pick, their spread in decades and a pick
robust to it. ``wd_sweep`` runs one test per weight decay and picks a weight
decay with its LR (Smith, 2018, "A disciplined approach to neural network
hyper-parameters", section 4.4). The learner is restored after all runs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import suggest

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
from .result import RangeResult
from .snapshot import Snapshot

BAND = (0.1, 0.9)
ROBUST_QUANTILE = 0.25
WD_LOSS_TOLERANCE = 0.05
WD_LR_TOLERANCE = 10**0.5


def on_grid(result: RangeResult, grid: np.ndarray) -> np.ndarray:
    """A run's smoothed loss at each grid LR, interpolated in log LR.

    Past the last LR of a run that diverged (or hit a non-finite loss) the
    value is ``inf``: that run's loss had blown up there. Outside the tested
    range otherwise it is NaN: nothing was measured.
    """
    grid = np.asarray(grid, dtype=float)
    out = np.full(grid.shape, np.nan)
    if len(result) == 0:
        if result.stop_reason in ("diverged", "nonfinite"):
            out[:] = np.inf
        return out
    x = np.log(result.lrs)
    inside = (grid >= result.lrs[0]) & (grid <= result.lrs[-1])
    out[inside] = np.interp(np.log(grid[inside]), x, result.smoothed)
    if result.stop_reason in ("diverged", "nonfinite"):
        out[grid > result.lrs[-1]] = np.inf
    return out


def band_quantile(curves: np.ndarray, q: float) -> np.ndarray:
    """Per-column quantile ``q`` of ``curves`` (runs x grid), linear between order statistics.

    NaN entries are left out; ``inf`` counts as the largest value, so a
    quantile that falls among diverged runs is ``inf`` (NumPy's nanquantile
    would give NaN there). Columns with no value give NaN.

    >>> band_quantile(np.array([[1.0, 1.0], [3.0, np.inf]]), 0.5).tolist()
    [2.0, inf]
    """
    curves = np.asarray(curves, dtype=float)
    n = np.sum(~np.isnan(curves), axis=0)
    s = np.sort(curves, axis=0)
    h = q * np.maximum(n - 1, 0)
    lo, hi = np.floor(h).astype(int), np.ceil(h).astype(int)
    a = np.take_along_axis(s, lo[None], axis=0)[0]
    b = np.take_along_axis(s, hi[None], axis=0)[0]
    frac = h - lo
    with np.errstate(invalid="ignore"):
        out = np.where(frac == 0, a, np.where(np.isinf(b), np.inf, a + (b - a) * frac))
    return np.where(n > 0, out, np.nan)


def spread_decades(lrs: Sequence[float]) -> float:
    """``log10(max / min)`` of the finite, positive LRs: how far apart the picks are."""
    a = np.asarray(lrs, dtype=float)
    a = a[np.isfinite(a) & (a > 0)]
    return float(np.log10(a.max() / a.min())) if len(a) else float("nan")


def robust_pick(lrs: Sequence[float], q: float = ROBUST_QUANTILE) -> float:
    """The ``q`` quantile of the picks in log space: at or below the pick of a (1 - q) share of runs.

    >>> round(robust_pick([1e-3, 1e-2, 1e-1, 1e-2]), 6)
    0.005623
    """
    a = np.asarray(lrs, dtype=float)
    a = a[np.isfinite(a) & (a > 0)]
    if not len(a):
        return float("nan")
    return float(np.clip(10 ** np.quantile(np.log10(a), q), a.min(), a.max()))


@dataclass(eq=False)
class RepeatedResult:
    """k range tests on a common LR grid.

    ``lrs`` is the grid (the longest run's LRs: every run follows the same
    schedule, so the grid holds each run's LRs), ``curves`` each run's
    smoothed loss on it (``on_grid``), ``median``, ``low`` and ``high`` the
    median and the ``BAND`` quantiles across runs. ``run_suggestions`` are
    the runs' own picks, ``spread`` their distance in decades, ``suggestion``
    the robust pick (``robust_pick``). ``suggestions`` and ``bounds`` read the
    median curve, so the result stands in for a ``RangeResult`` where
    ``OneCycle`` or ``Cyclical`` look one up.
    """

    runs: list[RangeResult]
    seeds: list[int]
    reinit: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.runs:
            raise ValueError("runs must hold at least one RangeResult")
        longest = max(self.runs, key=len)
        self.lrs = longest.lrs.copy()
        self.curves = np.vstack([on_grid(r, self.lrs) for r in self.runs])
        self.low = band_quantile(self.curves, BAND[0])
        self.median = band_quantile(self.curves, 0.5)
        self.high = band_quantile(self.curves, BAND[1])

    @property
    def smoothed(self) -> np.ndarray:
        """The median curve (the name a ``RangeResult`` uses for the curve its rules read)."""
        return self.median

    def __len__(self) -> int:
        return len(self.runs)

    def __repr__(self) -> str:
        return (
            f"RepeatedResult({len(self)} runs, reinit={self.reinit}, spread={self.spread:.2f} decades, "
            f"suggestion={self.suggestion:.3g})"
        )

    @property
    def run_suggestions(self) -> np.ndarray:
        """Each run's own ``suggestion``, in run order."""
        return np.array([r.suggestion for r in self.runs], dtype=float)

    @property
    def spread(self) -> float:
        """How many decades separate the highest and lowest of the runs' picks."""
        return spread_decades(self.run_suggestions)

    @property
    def suggestion(self) -> float:
        """The robust pick: the lower quartile (log space) of the runs' picks."""
        return robust_pick(self.run_suggestions)

    @cached_property
    def suggestions(self) -> dict[str, float]:
        """Every rule's pick on the median curve."""
        return suggest.suggest_all(self.lrs, self.median)

    @cached_property
    def bounds(self) -> tuple[float, float]:
        """``(base_lr, max_lr)`` for a cyclical schedule, read from the median curve."""
        return suggest.bounds(self.lrs, self.median)

    def to_frame(self) -> pd.DataFrame:
        """One row per grid LR: ``lr``, ``low``, ``median``, ``high``, then ``run0``, ``run1``, ..."""
        frame = pd.DataFrame({"lr": self.lrs, "low": self.low, "median": self.median, "high": self.high})
        for i, curve in enumerate(self.curves):
            frame[f"run{i}"] = curve
        return frame

    def plot(self, ax: Axes | None = None) -> Figure:
        """Every run faint, the band shaded, the median bold; each run's pick and the robust one marked."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 4.0))
        else:
            fig = ax.figure
        for curve in self.curves:
            ax.plot(self.lrs, curve, color="0.6", lw=0.8, alpha=0.6)
        lo, hi = int(BAND[0] * 100), int(BAND[1] * 100)
        ax.fill_between(self.lrs, self.low, self.high, color="C0", alpha=0.25, label=f"{lo}-{hi}% band")
        ax.plot(self.lrs, self.median, color="C0", lw=2, label=f"median of {len(self)} runs")
        for k, lr in enumerate(self.run_suggestions):
            if np.isfinite(lr):
                ax.axvline(lr, color="C1", lw=0.8, alpha=0.7, label="each run's pick" if k == 0 else None)
        if np.isfinite(self.suggestion):
            ax.axvline(
                self.suggestion, color="C3", lw=2, ls="--", label=f"robust pick: {self.suggestion:.2e}"
            )
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("smoothed loss")
        kind = "initialisations" if self.reinit else "batch orders"
        ax.set_title(f"{len(self)} range tests over {kind}; picks spread {self.spread:.2f} decades")
        _set_ylim(ax, list(self.curves))
        ax.legend(fontsize="small")
        return fig


def _set_ylim(ax, curves: Sequence[np.ndarray]) -> None:
    """Show from the lowest loss to a little above the starting loss, so divergence tails don't flatten it."""
    arrays = [np.asarray(c, dtype=float) for c in curves]
    finite = [c[np.isfinite(c)] for c in arrays]
    finite = [c for c in finite if len(c)]
    if finite:
        lo = min(float(c.min()) for c in finite)
        top = float(np.median([c[0] for c in finite]))
        top = top + 0.3 * abs(top - lo) + 1e-12
        if top > lo:
            ax.set_ylim(lo - 0.05 * (top - lo), top)


def choose_wd(
    wds: Sequence[float],
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
    loss_tolerance: float = WD_LOSS_TOLERANCE,
    lr_tolerance: float = WD_LR_TOLERANCE,
) -> int:
    """Index of the weight decay to train with: the largest that still reaches the lowest loss at a high LR.

    For each weight decay take the minimum of its smoothed curve and the LR
    where it lies. Keep those whose minimum is within ``loss_tolerance``
    (relative) of the lowest; among them keep those whose minimum lies within
    a factor ``lr_tolerance`` (half a decade) of the highest such LR; return
    the largest weight decay left. -1 when no curve has a finite point.

    >>> lrs = np.array([1e-3, 1e-2, 1e-1])
    >>> choose_wd([0, 1e-2, 1e-1], [(lrs, [2.0, 1.0, 3.0]), (lrs, [2.0, 1.5, 1.0]), (lrs, [2.0, 1.5, 1.3])])
    1
    """
    minima = []
    for i, (lrs, losses) in enumerate(curves):
        lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
        ok = np.isfinite(losses) & np.isfinite(lrs)
        if ok.any():
            j = int(np.argmin(np.where(ok, losses, np.inf)))
            minima.append((i, float(losses[j]), float(lrs[j])))
    if not minima:
        return -1
    best = min(m for _, m, _ in minima)
    near = [(i, lr) for i, m, lr in minima if m <= best + loss_tolerance * abs(best)]
    top = max(lr for _, lr in near)
    high = [i for i, lr in near if lr * lr_tolerance >= top]
    return max(high, key=lambda i: (wds[i], i))


@dataclass(eq=False)
class SweepResult:
    """One range test (or ``RepeatedResult``) per weight decay, and the pick of ``choose_wd``.

    ``wd`` is the chosen weight decay, ``suggestion`` and ``bounds`` its
    run's, so the result stands in for a ``RangeResult`` where ``OneCycle`` or
    ``Cyclical`` look one up (pass ``wd=result.wd`` to ``fit`` yourself).
    """

    wds: list[float]
    runs: list[RangeResult | RepeatedResult]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if len(self.wds) != len(self.runs) or not self.runs:
            raise ValueError(
                f"wds and runs must be non-empty and of one length, got {len(self.wds)} and {len(self.runs)}"
            )
        self.index = choose_wd(self.wds, [(r.lrs, r.smoothed) for r in self.runs])

    def __len__(self) -> int:
        return len(self.runs)

    def __repr__(self) -> str:
        return f"SweepResult(wds={self.wds}, wd={self.wd}, suggestion={self.suggestion:.3g})"

    @property
    def wd(self) -> float:
        """The chosen weight decay (NaN when no run recorded a finite loss)."""
        return float(self.wds[self.index]) if self.index >= 0 else float("nan")

    @property
    def suggestion(self) -> float:
        """The LR for the chosen weight decay: its run's ``suggestion``."""
        return self.runs[self.index].suggestion if self.index >= 0 else float("nan")

    @property
    def bounds(self) -> tuple[float, float]:
        """The chosen run's ``(base_lr, max_lr)``."""
        return self.runs[self.index].bounds if self.index >= 0 else (float("nan"), float("nan"))

    def to_frame(self) -> pd.DataFrame:
        """One row per weight decay: its lowest smoothed loss, the LR there, its suggestion."""
        rows = []
        for k, (wd, r) in enumerate(zip(self.wds, self.runs, strict=True)):
            finite = np.isfinite(r.smoothed)
            j = int(np.argmin(np.where(finite, r.smoothed, np.inf))) if finite.any() else None
            rows.append({
                "wd": wd,
                "min_loss": float(r.smoothed[j]) if j is not None else float("nan"),
                "lr_at_min": float(r.lrs[j]) if j is not None else float("nan"),
                "suggestion": r.suggestion,
                "chosen": k == self.index,
            })
        return pd.DataFrame(rows)

    def plot(self, ax: Axes | None = None) -> Figure:
        """The smoothed (or median) curves of every weight decay overlaid; the chosen one bold."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 4.0))
        else:
            fig = ax.figure
        for k, (wd, r) in enumerate(zip(self.wds, self.runs, strict=True)):
            chosen = k == self.index
            ax.plot(r.lrs, r.smoothed, color=f"C{k}", lw=2.5 if chosen else 1.2,
                    label=f"wd={wd:g}{' (chosen)' if chosen else ''}")
        if self.index >= 0 and np.isfinite(self.suggestion):
            ax.axvline(self.suggestion, color=f"C{self.index}", ls="--", lw=1.5,
                       label=f"suggested LR: {self.suggestion:.2e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("smoothed loss")
        ax.set_title(f"weight-decay sweep: wd={self.wd:g} at LR {self.suggestion:.2e}")
        _set_ylim(ax, [r.smoothed for r in self.runs])
        ax.legend(fontsize="small")
        return fig


# --- running ------------------------------------------------------------------


def check_repeats(repeats: Any, reinit: Any, seed: Any) -> None:
    """ValueError naming the argument for a bad ``repeats``, ``reinit`` or ``seed``."""
    if isinstance(repeats, bool) or not isinstance(repeats, Integral) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if not isinstance(reinit, bool):
        raise ValueError(f"reinit must be True or False, got {reinit!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def check_wds(wds: Any) -> list[float]:
    """The weight decays as floats; ValueError naming ``wds`` unless a non-empty sequence of numbers >= 0."""
    if isinstance(wds, (str, bytes)) or not isinstance(wds, (Sequence, np.ndarray)) or len(wds) == 0:
        raise ValueError(f"wds must be a non-empty sequence of finite numbers >= 0, got {wds!r}")
    for wd in wds:
        if not isinstance(wd, Real) or isinstance(wd, bool) or not math.isfinite(wd) or wd < 0:
            raise ValueError(f"wds must be a non-empty sequence of finite numbers >= 0, got {wds!r}")
    return [float(wd) for wd in wds]


def reinitialise(model: nn.Module, seed: int) -> None:
    """Fresh weights: ``reset_parameters()`` on each module that has one, after ``torch.manual_seed``."""
    modules = [m for m in model.modules() if callable(getattr(m, "reset_parameters", None))]
    if not modules:
        raise ValueError("reinit=True needs a model with modules that have reset_parameters()")
    torch.manual_seed(seed)
    for m in modules:
        m.reset_parameters()


@contextmanager
def restored(learn) -> Iterator[None]:
    """Put the learner back as it was after several tests: weights, optimizer, RNGs, batch order, result."""
    snapshot = Snapshot(learn)
    had_result = hasattr(learn, "range_result")
    previous = getattr(learn, "range_result", None)
    try:
        with learn.no_logging(), learn.no_bar():
            yield
    except BaseException:
        if had_result:
            learn.range_result = previous
        elif hasattr(learn, "range_result"):
            del learn.range_result
        raise
    finally:
        snapshot.restore()


def _run_once(learn, cb, seed: int, reinit: bool, wd: float | None) -> RangeResult:
    """One range test with batch order ``seed`` (and fresh weights from it when ``reinit``)."""
    learn.dls.train.rng = random.Random(seed)
    if reinit:
        reinitialise(learn.model, seed)
    learn.fit(1, wd=wd, cbs=cb)
    return cb.result


def _repeats(learn, cbs: list, reinit: bool, seed: int, wd: float | None) -> RepeatedResult:
    seeds = [seed + i for i in range(len(cbs))]
    runs = [_run_once(learn, cb, s, reinit, wd) for cb, s in zip(cbs, seeds, strict=True)]
    return RepeatedResult(runs, seeds, reinit, {"wd": wd})


def repeated_test(
    learn, repeats: int = 5, reinit: bool = False, seed: int = 0, **lrrange_kwargs: Any
) -> RepeatedResult:
    """``repeats`` range tests (``LRRange(**lrrange_kwargs)``) from the same weights, as a ``RepeatedResult``.

    Run ``i`` draws its batch order from ``random.Random(seed + i)`` (the same
    seed gives the same curves); with ``reinit`` it also starts from fresh
    weights drawn with ``torch.manual_seed(seed + i)``. The learner is
    restored afterwards, as it was before the first run.
    """
    from .callbacks import LRRange

    check_repeats(repeats, reinit, seed)
    cbs = [LRRange(**lrrange_kwargs) for _ in range(repeats)]
    with restored(learn):
        result = _repeats(learn, cbs, reinit, seed, None)
    learn.range_result = result
    return result


def wd_sweep(
    learn,
    wds: Sequence[float],
    repeats: int = 1,
    reinit: bool = False,
    seed: int = 0,
    **lrrange_kwargs: Any,
) -> SweepResult:
    """One range test per weight decay in ``wds`` (``repeats`` > 1: a ``RepeatedResult`` each).

    Every weight decay sees the same batch orders (seeds ``seed``,
    ``seed + 1``, ...), so the curves differ by the weight decay alone; the
    optimizer's weight decay and the rest of the learner are restored
    afterwards. ``SweepResult.wd`` is the pick of ``choose_wd``.
    """
    from .callbacks import LRRange

    values = check_wds(wds)
    check_repeats(repeats, reinit, seed)
    cbs = [[LRRange(**lrrange_kwargs) for _ in range(repeats)] for _ in values]
    runs: list[RangeResult | RepeatedResult] = []
    with restored(learn):
        for wd, group in zip(values, cbs, strict=True):
            if repeats == 1 and not reinit:
                runs.append(_run_once(learn, group[0], seed, False, wd))
            else:
                runs.append(_repeats(learn, group, reinit, seed, wd))
    result = SweepResult(values, runs, {"repeats": repeats, "reinit": reinit, "seed": seed})
    learn.range_result = result
    return result
